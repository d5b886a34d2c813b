// One client connection: HTTP/1.1 requests in, answers or one SSE stream out.
//
// Rules:
// - The object is deleted only by TcpStream's close callback (after on_close()); every path that
//   ends a connection calls close(), which is idempotent.
// - Requests are answered strictly in order. A request that must wait (a channel owned by another
//   worker) stops parsing until the owner answers; pipelined bytes wait in pending_.
// - Once a connection streams SSE, it reads only to notice the client leaving.
// - deliver() runs inside a channel's fan-out: it queues a reference to the shared frame (no copy,
//   no allocation once the queue is warm) and may close this connection, never another one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gateway/api/policy.hpp"
#include "gateway/api/router.hpp"
#include "gateway/http/request_parser.hpp"
#include "gateway/hub/hub.hpp"
#include "gateway/net/tcp_stream.hpp"
#include "upstream/route_proxy.hpp"

namespace ssegw::server {

class Worker;
struct Message;

class Connection final : public net::TcpStream,
                         public hub::Subscriber,
                         public upstream::Downstream {
 public:
  Connection(Worker& worker, uint64_t id);

  uint64_t id() const { return id_; }
  void start();
  // Over limits.max_connections: answer 503 and close.
  void reject_overloaded();
  // Counts the connection against its client address; over limits.max_connections_per_ip it
  // answers 429, closes and returns false.
  bool admit_client();

  void deliver(const base::FrameRef& frame) override;
  void end_of_stream() override;

  // Called by the worker's periodic tick: timeouts and heartbeats.
  void tick(uint64_t now_ms);
  // Graceful shutdown: end streams cleanly, let a request in progress finish.
  void begin_shutdown();

  // Answers from the worker that owns the channel.
  void on_owner_reply(Message& reply);

  // The worker's intrusive list of connections.
  Connection* prev = nullptr;
  Connection* next = nullptr;

 private:
  enum class Phase : uint8_t {
    kRequest,          // reading and answering requests
    kWaitingForOwner,  // a request waits for another worker's answer
    kStreaming,        // an SSE response is open
    kProxying,         // a route streams an upstream's answer
    kClosing,          // the last answer is going out; then FIN and close
  };

  void on_data(const char* data, size_t length) override;
  void on_read_end(int status) override;
  void on_drained() override;
  void on_write_progress() override;
  void on_close() override;

  size_t parse(const char* data, size_t length);
  void process_pending();
  void resume_requests();
  // The policy stage (api::Policy) first, then the handler of what it let through: every
  // handler takes the api::Permit that only the policy stage makes.
  void dispatch();
  void handle(api::Permit permit);
  void handle_preflight(const api::Permit& permit);
  void handle_ops(const api::Permit& permit);
  void handle_publish(const api::Permit& permit);
  void handle_subscribe(const api::Permit& permit);
  void handle_info(const api::Permit& permit);
  void handle_route(api::Permit permit);
  // limits.owner_timeout passed while the owner of a channel (or Redis) has not answered.
  void owner_timed_out();
  int64_t now_unix() const;

  // upstream::Downstream: the proxied answer.
  void start_response(int status, std::string header_lines, bool has_body) override;
  void send(std::string_view body_bytes) override;
  void send_frame(const base::FrameRef& frame) override;
  void finish() override;
  void abort() override;
  size_t unsent_bytes() const override { return queued_bytes(); }
  uint64_t bytes_acked() const override { return net::TcpStream::bytes_acked(); }
  uint64_t connection_id() const override { return id_; }

  void respond(int status, std::string_view content_type, std::string_view body,
               std::string_view extra_headers = {});
  void respond_error(int status, const char* code, std::string_view message,
                     std::string_view extra_headers = {});
  void respond_published(const std::string& channel, const hub::Published& published);
  void respond_info(const std::string& channel, const hub::ChannelInfo& info);
  void after_response();
  void count_request(int status);
  // Pipelined publishes to channels owned by other workers go out without waiting for each
  // answer; their answers, and any answer given meanwhile, leave in request order.
  bool may_dispatch_now();
  void reset_for_next_request();
  void queue_answer_slot();
  void flush_answers();
  void answer_publish(const Message& reply);

  void write_stream_head();
  void subscribed(bool mirror);
  void end_stream();
  void leave_channel();
  // Cuts a subscriber that cannot keep up (slow_consumer), with a metric and a log line.
  void cut_slow_consumer(const char* why);
  void close_gracefully();

  // An answer in request order: written once it is ready and every earlier one has gone.
  struct Answer {
    uint64_t sequence;
    uint64_t asked_ms = 0;  // when the request went to the owner (0: answered here)
    bool ready = false;
    bool close_after = false;  // the request asked to close, or the input cannot be trusted
    bool http10 = false;
    std::string cors_headers;  // the request's, for an answer built later
    std::string bytes;
  };

  Worker& worker_;
  uint64_t id_;
  // Empty unless publishes await their owners. A vector, not a deque: an empty vector holds no
  // memory, and a deque's first block would cost every idle subscriber about 600 bytes.
  std::vector<Answer> answers_;
  uint64_t next_answer_ = 1;
  bool deferred_dispatch_ = false;  // a parsed request waits for answers_ to drain
  http::RequestParser parser_;
  std::string pending_;  // bytes read but not yet parsed
  std::string cors_headers_;
  std::string stream_channel_;  // the channel streamed, when its owner is another worker
  std::unique_ptr<upstream::RouteProxy> proxy_;
  std::string client_ip_;   // the peer's address, for X-Forwarded-For
  std::string client_key_;  // its key in the per-address limits (api::client_key), counted there
                            // while not empty
  const char* route_label_ = "unmatched";  // the request's route template, for metrics
  Phase phase_ = Phase::kRequest;
  bool close_after_response_ = false;
  bool http10_ = false;
  bool head_written_ = false;
  bool attached_ = false;
  bool mirror_ = false;
  bool continue_sent_ = false;
  bool reading_paused_ = false;
  bool served_any_ = false;
  bool resume_after_drain_ = false;  // a proxied answer ended; go on with pipelined requests
  bool chunked_answer_ = false;      // the proxied answer's body goes out in chunks
  uint64_t replay_allowance_ = 0;    // queued replay bytes not counted against the slow limit
  uint64_t phase_started_ms_ = 0;
  uint64_t owner_asked_ms_ = 0;  // a subscribe or info awaits its owner since then (0: none)
  uint64_t last_output_ms_ = 0;
  // Stall detection of a stream: bytes_written() at the last tick, and since when it has not
  // moved while bytes waited (0: not stalled).
  uint64_t stall_written_ = 0;
  uint64_t stalled_since_ms_ = 0;
};

}  // namespace ssegw::server
