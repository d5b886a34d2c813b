#include "gateway/metrics/process_collector.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace ssegw::metrics {
namespace {

prometheus::MetricFamily single(const char* name, const char* help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter)
    metric.counter.value = value;
  else
    metric.gauge.value = value;
  return {name, help, type, {metric}};
}

// Fields 14 (utime), 15 (stime) and 24 (rss, pages) of /proc/self/stat.
bool read_stat(double& cpu_seconds, double& rss_bytes) {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  // The command name may hold spaces and parentheses: fields restart after the last ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0, rss = 0;
  for (int index = 3; fields >> field; ++index) {
    if (index == 14) utime = std::stoull(field);
    if (index == 15) stime = std::stoull(field);
    if (index == 24) {
      rss = std::stoull(field);
      break;
    }
  }
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  cpu_seconds = static_cast<double>(utime + stime) / ticks;
  rss_bytes = static_cast<double>(rss) * static_cast<double>(sysconf(_SC_PAGESIZE));
  return true;
}

// The directory is opened with open(), not opendir(): ThreadSanitizer learns of a descriptor's new
// life from open() only, and would otherwise report closedir() as racing with another worker's
// use of the socket that last had the same number.
double count_open_fds() {
  int fd = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  DIR* dir = fdopendir(fd);
  if (!dir) {
    ::close(fd);
    return 0;
  }
  double count = 0;
  while (dirent* entry = readdir(dir))
    if (entry->d_name[0] != '.') ++count;
  closedir(dir);
  return count - 1;  // the directory handle itself
}

}  // namespace

void append_process_metrics(std::vector<prometheus::MetricFamily>& families) {
  double cpu = 0, rss = 0;
  if (read_stat(cpu, rss)) {
    families.push_back(single("process_cpu_seconds_total", "User and system CPU time spent",
                              prometheus::MetricType::Counter, cpu));
    families.push_back(single("process_resident_memory_bytes", "Resident memory size",
                              prometheus::MetricType::Gauge, rss));
  }
  families.push_back(single("process_open_fds", "Open file descriptors",
                            prometheus::MetricType::Gauge, count_open_fds()));
}

}  // namespace ssegw::metrics
