// Resource readings of the server under test (from /proc, summed over its processes) and of the
// bench itself (getrusage).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace bench {

struct ProcSample {
  bool ok = false;       // every process could be read
  uint64_t rss_kib = 0;  // VmRSS, summed
  double cpu_s = 0;      // utime + stime, summed
};

ProcSample sample_processes(const std::vector<pid_t>& pids);

struct SelfSample {
  double cpu_s = 0;  // user + system, all threads
  uint64_t max_rss_kib = 0;
};

SelfSample sample_self();

// Raises RLIMIT_NOFILE's soft limit to the hard limit, and both to `wanted` when the process may
// (CAP_SYS_RESOURCE, up to fs.nr_open); returns the new soft limit, and warns on stderr when it
// stays below `wanted` (the connections beyond it fail).
uint64_t raise_fd_limit(uint64_t wanted);

}  // namespace bench
