#include "bench/proc_stats.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace bench {

namespace {

bool read_file(const std::string& path, std::string& out) {
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return false;
  char buf[4096];
  size_t n;
  out.clear();
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return true;
}

}  // namespace

ProcSample sample_processes(const std::vector<pid_t>& pids) {
  ProcSample s;
  s.ok = !pids.empty();
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::string text;
  for (pid_t pid : pids) {
    std::string base = "/proc/" + std::to_string(pid);
    if (!read_file(base + "/status", text)) {
      s.ok = false;
      continue;
    }
    if (const char* rss = std::strstr(text.c_str(), "\nVmRSS:")) {
      s.rss_kib += std::strtoull(rss + 7, nullptr, 10);
    }
    if (!read_file(base + "/stat", text)) {
      s.ok = false;
      continue;
    }
    // The command name may hold spaces and parentheses; the fields resume after the last ')'.
    // utime and stime are fields 14 and 15, i.e. the 12th and 13th after the name.
    size_t close = text.rfind(')');
    if (close == std::string::npos) {
      s.ok = false;
      continue;
    }
    const char* p = text.c_str() + close + 1;
    unsigned long long utime = 0, stime = 0;
    if (std::sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
        2) {
      s.ok = false;
      continue;
    }
    s.cpu_s += static_cast<double>(utime + stime) / ticks;
  }
  return s;
}

SelfSample sample_self() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  SelfSample s;
  s.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  s.max_rss_kib = static_cast<uint64_t>(ru.ru_maxrss);
  return s;
}

namespace {

uint64_t raise_fd_limit_quietly(uint64_t wanted) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (wanted > rl.rlim_max) {
    std::string text;
    uint64_t nr_open =
        read_file("/proc/sys/fs/nr_open", text) ? std::strtoull(text.c_str(), nullptr, 10) : 0;
    rlimit more{};
    more.rlim_cur = more.rlim_max = std::min<uint64_t>(wanted, nr_open);
    if (more.rlim_max > rl.rlim_max && setrlimit(RLIMIT_NOFILE, &more) == 0) return more.rlim_cur;
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return rl.rlim_cur;
}

}  // namespace

uint64_t raise_fd_limit(uint64_t wanted) {
  uint64_t limit = raise_fd_limit_quietly(wanted);
  if (limit < wanted) {
    std::fprintf(stderr,
                 "warning: the fd limit is %llu, below the %llu this run needs; the rest fail\n",
                 static_cast<unsigned long long>(limit), static_cast<unsigned long long>(wanted));
  }
  return limit;
}

}  // namespace bench
