// The figures of one run, and their two renderings: one JSON object (stdout) and a table (stderr).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "bench/options.hpp"
#include "bench/proc_stats.hpp"
#include "bench/publisher.hpp"
#include "bench/subscriber_pool.hpp"

namespace bench {

struct Report {
  const Options* options = nullptr;
  uint32_t run_id = 0;
  uint64_t fd_limit = 0;
  const SubscriberStats* subs = nullptr;  // merged over the loops
  const PublishStats* pub = nullptr;

  double connect_time_s = 0;    // start -> last 200 head
  double publish_window_s = 0;  // first -> last due event
  double drain_s = 0;           // end of window -> stop
  double total_s = 0;
  bool hard_stop = false;  // cut short by the time limit
  bool interrupted = false;

  // Server (--pid); `server_ok` is false when a process could not be read at some sample.
  bool server = false;
  bool server_ok = true;
  ProcSample server_before;  // before the first connect
  ProcSample server_idle;    // all connected, before the first publish
  uint64_t server_rss_peak_kib = 0;
  double server_cpu_s = 0;  // from the window's start to the stop

  SelfSample self_end;
  double self_cpu_window_s = 0;

  // Derived.
  int64_t lost() const;
  double deliveries_per_s() const;
  double rss_per_subscriber_bytes() const;
  // What --expect-all demands; `why` names the first thing that fell short.
  bool all_delivered(std::string& why) const;
};

std::string to_json(const Report& r);
void print_table(FILE* out, const Report& r);

}  // namespace bench
