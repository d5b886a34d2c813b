// --mode llm: N streamed chat completions against ssegw-mock-llm, directly or through a proxy,
// and the latency of every chunk from the mock's send-time stamp to its receipt here.
//
// Every request carries X-Mock-Tokens, X-Mock-Interval-Ms and X-Mock-Stamp: 1, so the mock
// starts each token's text with "T<uv_hrtime() ns>;" taken right before it writes the token. The
// bench runs on the same machine and reads the same CLOCK_MONOTONIC, so receipt - stamp is the
// time the chunk spent in the kernel, in any proxy between, and in this process's queue. Running
// the same command against the mock and against a gateway in front of it gives the latency the
// gateway adds, per chunk, as the difference.
//
// A run starts streams at --connect-rate, with at most --concurrency open and --max-pending
// waiting for their head, until --streams have been started; it stops when every stream has been
// resolved (completed or failed), at --duration-limit, or on SIGINT/SIGTERM.
//
// Rules:
// - Everything runs on one loop, on the main thread; the counters are plain integers.
// - LlmRun owns its streams' memory and outlives uv_run: it is destroyed after uv_run has
//   returned and uv_loop_close has succeeded.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "bench/latency_histogram.hpp"
#include "bench/llm_stream.hpp"
#include "bench/options.hpp"
#include "bench/proc_stats.hpp"

namespace bench {

struct LlmStats {
  uint64_t started = 0;
  uint64_t headers = 0;    // streams that got their 200 head
  uint64_t completed = 0;  // the response ended cleanly (whether or not its content was whole)
  uint64_t failed = 0;     // the sum of the failed_* counts
  uint64_t failed_connect = 0;
  uint64_t failed_timeout = 0;
  uint64_t failed_status = 0;
  int last_bad_status = 0;
  uint64_t failed_closed = 0;
  uint64_t failed_truncated = 0;
  uint64_t failed_protocol = 0;
  uint64_t failed_unfinished = 0;
  uint64_t not_started = 0;     // never started before the run stopped
  uint64_t terminated = 0;      // streams whose terminator ([DONE], ...) arrived
  uint64_t no_terminator = 0;   // completed streams without it
  uint64_t short_streams = 0;   // completed streams with fewer stamped chunks than --tokens
  uint64_t chunks = 0;          // stamped chunks received
  uint64_t error_events = 0;    // event: error, or data {"error":...} (a proxy's truncation)
  uint64_t other_events = 0;    // events with neither stamp nor terminator (role, usage, ping)
  uint64_t comments = 0;        // keep-alive comments
  uint64_t bytes = 0;           // bytes read, headers and framing included
  uint64_t first_chunk_ns = 0;  // receipt of the first and the last stamped chunk
  uint64_t last_chunk_ns = 0;
  uint64_t future_stamps = 0;    // stamps later than the receipt (clock mismatch: not local)
  LatencyHistogram latency;      // receipt - stamp, per chunk
  LatencyHistogram first_chunk;  // request start -> first stamped chunk, per stream
};

struct LlmReport;

class LlmRun {
 public:
  // Fills `report` (timings, CPU and RSS readings) as the run goes; `report.stats` points here.
  LlmRun(const Options& o, uv_loop_t* loop, LlmReport& report);
  LlmRun(const LlmRun&) = delete;
  LlmRun& operator=(const LlmRun&) = delete;

  // Starts the pacing timer and the signal handlers. The run then goes by itself until stop(),
  // which closes every handle, so the loop runs out.
  void start();

  // For LlmStream.
  const Options& options() const { return options_; }
  SseClient::Loop& client_loop() { return client_loop_; }
  LlmStats& mutable_stats() { return stats_; }
  const std::string& request() const { return request_; }
  void on_head() { --pending_; }
  // The stream was resolved; `was_pending` when it never got its head.
  void on_resolved(bool was_pending);

 private:
  static void on_timer(uv_timer_t* handle);
  static void on_signal(uv_signal_t* handle, int signum);
  static void on_handle_close(uv_handle_t* handle);
  void tick();
  void stop(uint64_t now);
  void progress(uint64_t now);

  void sample_server_peak();

  const Options& options_;
  uv_loop_t* loop_;
  LlmReport& report_;
  std::unique_ptr<LlmStream[]> streams_;
  std::string request_;  // one POST, shared by every stream
  LlmStats stats_;
  SseClient::Loop client_loop_{loop_, stats_.bytes};

  uint32_t concurrency_;
  uint32_t next_ = 0;        // streams started so far
  uint32_t active_ = 0;      // started and not resolved
  uint32_t pending_ = 0;     // started and waiting for the response head
  uint32_t resolved_ = 0;    // completed or failed
  uint32_t sweep_from_ = 0;  // every stream before this one has its head or is resolved
  uint64_t start_ns_ = 0;
  uint64_t deadline_ns_ = 0;
  uint64_t last_sweep_ns_ = 0;
  uint64_t last_sample_ns_ = 0;
  uint64_t last_progress_ns_ = 0;
  double self_cpu_start_ = 0;
  bool stopped_ = false;
  bool slow_tick_ = false;
  uv_timer_t timer_;
  uv_signal_t signals_[2];
};

// The whole mode: runs, prints the report, returns the exit status.
int run_llm(const Options& o);

}  // namespace bench
