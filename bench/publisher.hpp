// The publisher: paces events at --rate over the channels round-robin and sends them on a few
// keep-alive connections, in the request format of the server under test.
//
// Channel c always goes out on connection c % N, and each connection answers its requests in
// order, so a channel's seqs reach the server in order and a subscriber can flag any reordering.
//
// Rules:
// - Runs on the main loop only. Publisher owns its PublisherConns; each owns one uv_tcp_t that it
//   may close and reopen (after the close callback) when the server drops the connection.
// - Memory is freed only after the loop has run to completion, so a connect or write cancelled by
//   uv_close finds valid memory and checks state_.
// - The queues are bounded: events that find their connection's queue full are counted as
//   skipped, which means the server (or this publisher) could not keep up with --rate.
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "bench/latency_histogram.hpp"
#include "bench/run_state.hpp"

namespace bench {

struct PublishStats {
  uint64_t sent = 0;           // requests written
  uint64_t published = 0;      // answered 2xx
  uint64_t failed_status = 0;  // answered otherwise
  int last_bad_status = 0;
  uint64_t failed_conn = 0;  // in flight when the connection failed
  uint64_t skipped = 0;      // due, but the connection's queue was full
  uint64_t unsent = 0;       // still queued when the publish window closed
  uint64_t unanswered = 0;   // still in flight at the stop
  uint64_t reconnects = 0;
  uint64_t expected_deliveries = 0;  // subscribers of the channel at send time, for 2xx events
  LatencyHistogram ack;              // request written -> response complete
};

class Publisher;

class PublisherConn {
 public:
  PublisherConn() = default;
  PublisherConn(const PublisherConn&) = delete;
  PublisherConn& operator=(const PublisherConn&) = delete;

  void init(Publisher* owner) { owner_ = owner; }
  // Adds an event for `channel`; false when the queue is full.
  bool enqueue(uint32_t channel);
  // Opens the connection ahead of the first event.
  void connect();
  // Reopens a dropped connection when events wait, and sends what the pipeline allows.
  void pump();
  // Forgets queued events (counting them as unsent); in-flight requests still complete.
  uint64_t drop_queue();
  // Forgets the requests in flight; returns how many there were.
  uint64_t abandon_in_flight();
  bool idle() const { return queue_.empty() && in_flight_.empty(); }
  bool open() const { return state_ == State::Open; }
  void close();

 private:
  enum class State : uint8_t { Closed, Connecting, Open, Closing };
  struct InFlight {
    uint32_t channel;
    uint32_t expected;
    uint64_t sent_ns;
  };
  static constexpr size_t kMaxQueue = 65536;

  void flush();
  void broken();
  static void on_connect(uv_connect_t* req, int status);
  static void on_write(uv_write_t* req, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_close(uv_handle_t* handle);
  static int on_message_complete(llhttp_t* parser);

  Publisher* owner_ = nullptr;
  State state_ = State::Closed;
  bool close_after_response_ = false;
  bool write_active_ = false;
  uint64_t retry_at_ns_ = 0;
  std::deque<uint32_t> queue_;
  std::deque<InFlight> in_flight_;
  std::string writing_;  // bytes of the uv_write in flight
  std::string pending_;  // requests built while it was in flight, sent next as one write
  char read_buf_[4096];
  uv_tcp_t tcp_;
  uv_connect_t connect_req_;
  uv_write_t write_req_;
  llhttp_t http_;
};

class Publisher {
 public:
  Publisher(RunState& run, uv_loop_t* loop);
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  void connect();                      // opens the connections ahead of the window
  void start(uint64_t now_ns);         // the publish window opens
  void stop_generating(uint64_t now);  // the window closes; queued events are dropped
  bool idle() const;                   // nothing queued, nothing in flight
  void close();                        // closes connections and the pacing timer

  uint64_t window_start_ns() const { return start_ns_; }
  uint64_t window_end_ns() const { return end_ns_; }
  PublishStats& stats() { return stats_; }

  // For PublisherConn.
  RunState& run() { return run_; }
  uv_loop_t* loop() { return loop_; }
  // Appends the whole request for one event on `channel` to `out`.
  void build_request(std::string& out, uint32_t channel, uint64_t seq, uint64_t now_ns);

 private:
  static void on_timer(uv_timer_t* handle);
  static void on_timer_close(uv_handle_t* handle);
  void tick();

  RunState& run_;
  uv_loop_t* loop_;
  std::unique_ptr<PublisherConn[]> conns_;
  uint32_t n_conns_;
  std::vector<std::string> heads_;  // per channel: request line and fixed headers
  std::vector<std::string> json_channels_;
  std::string scratch_;
  PublishStats stats_;
  uint64_t start_ns_ = 0;
  uint64_t end_ns_ = 0;
  uint64_t issued_ = 0;  // events due so far
  bool generating_ = false;
  bool timer_open_ = false;
  uv_timer_t timer_;
};

}  // namespace bench
