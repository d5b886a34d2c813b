// The figures of one --mode llm run, and their two renderings: one JSON object (stdout) and a
// table (stderr).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "bench/llm_run.hpp"
#include "bench/options.hpp"
#include "bench/proc_stats.hpp"

namespace bench {

struct LlmReport {
  const Options* options = nullptr;
  const LlmStats* stats = nullptr;
  uint64_t fd_limit = 0;

  double window_s = 0;     // first stream started -> stop
  bool hard_stop = false;  // cut short by --duration-limit (or the derived limit)
  bool interrupted = false;

  // Server (--pid), summed; `server_ok` is false when a process could not be read at some sample.
  bool server = false;
  bool server_ok = true;
  ProcSample server_start;  // before the first connect
  uint64_t server_rss_peak_kib = 0;
  double server_cpu_s = 0;  // over the window

  double self_cpu_s = 0;  // this process, over the window
  SelfSample self_end;

  // Derived.
  uint64_t expected_chunks() const;
  double chunks_per_s() const;  // stamped chunks received / window
  // What --expect-all demands; `why` names the first thing that fell short.
  bool all_ok(std::string& why) const;
};

std::string to_json(const LlmReport& r);
void print_table(FILE* out, const LlmReport& r);

}  // namespace bench
