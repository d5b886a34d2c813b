// The subscribers of one event loop: starts them at the connect rate with a cap on connections in
// flight, times out the slow ones, closes everything at the stop, and keeps the loop's counters.
//
// Rules:
// - A pool lives on exactly one loop and is touched only from that loop's thread, except the
//   atomics in SubscriberStats, which the controller reads while the run is going.
// - The pool owns its subscribers' memory and outlives its loop's run(): it is destroyed after
//   uv_run has returned and uv_loop_close has succeeded.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/h2_connection.hpp"
#include "bench/latency_histogram.hpp"
#include "bench/run_state.hpp"
#include "bench/subscriber.hpp"

namespace bench {

struct SubscriberStats {
  // Read by the controller while running (single writer: the pool's thread).
  std::atomic<uint64_t> started{0};
  std::atomic<uint64_t> connected{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> last_connected_ns{0};

  // Read after the pool's loop has finished.
  uint64_t failed_connect = 0;      // socket, bind or connect error
  uint64_t failed_timeout = 0;      // no response head within --connect-timeout
  uint64_t failed_status = 0;       // a response other than 200
  uint64_t failed_closed = 0;       // the server closed before the response head
  uint64_t failed_protocol = 0;     // a response llhttp rejects
  uint64_t failed_not_started = 0;  // still waiting for a start when the connect phase ended
  int last_bad_status = 0;
  uint64_t disconnected = 0;  // streams that ended before the stop
  uint64_t out_of_order = 0;  // events whose seq was not above the last one seen (dup or reorder)
  uint64_t gaps = 0;          // seqs skipped between consecutive events
  uint64_t size_mismatch = 0;
  uint64_t foreign = 0;      // data events that are not this run's (replayed history, others)
  uint64_t other_types = 0;  // events with a type other than message (gap, error, ...)
  uint64_t comments = 0;     // heartbeats and other comment lines
  uint64_t bytes = 0;        // bytes read, headers and framing included
  LatencyHistogram latency;

  void merge(const SubscriberStats& o);
};

class SubscriberPool {
 public:
  // Subscribers with global index worker, worker + workers, ... belong to this pool.
  SubscriberPool(RunState& run, uv_loop_t* loop, uint32_t worker, uint32_t workers);
  SubscriberPool(const SubscriberPool&) = delete;
  SubscriberPool& operator=(const SubscriberPool&) = delete;

  // Starts the pacing timer; the pool then runs by itself until run.phase() is Stop, when it
  // closes its handles, so the loop runs out.
  void start();

  uint32_t size() const { return count_; }
  SubscriberStats& stats() { return stats_; }

  // For Subscriber.
  RunState& run() { return run_; }
  SseClient::Loop& client_loop() { return client_loop_; }
  const std::string& request(uint32_t channel) const { return requests_[channel]; }
  const std::string& path(uint32_t channel) const { return paths_[channel]; }
  // With --http2: the connection that carries the stream of the pool's subscriber `index`.
  H2Connection* h2_connection(uint32_t index) {
    return h2_.empty() ? nullptr : h2_[index / run_.options.http2].get();
  }
  void on_resolved() { --pending_; }

 private:
  static void on_timer(uv_timer_t* handle);
  static void on_timer_close(uv_handle_t* handle);
  void tick();
  void stop_all();

  RunState& run_;
  uv_loop_t* loop_;
  uint32_t count_ = 0;
  std::unique_ptr<Subscriber[]> subs_;
  std::vector<std::string> requests_;  // one GET per channel, shared by its subscribers
  std::vector<std::string> paths_;     // the same requests' paths, for HTTP/2
  std::vector<std::unique_ptr<H2Connection>> h2_;
  SubscriberStats stats_;
  SseClient::Loop client_loop_{loop_, stats_.bytes};

  double rate_;
  uint32_t max_pending_;
  uint32_t next_ = 0;        // subscribers started so far
  uint32_t pending_ = 0;     // started and waiting for the response head
  uint32_t sweep_from_ = 0;  // every subscriber before this one has its head or failed
  uint64_t last_sweep_ns_ = 0;
  bool stopping_ = false;
  bool slow_tick_ = false;
  uv_timer_t timer_;
};

}  // namespace bench
