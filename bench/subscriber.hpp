// One SSE subscriber connection: connect (from a chosen loopback source address), send the GET,
// read the response head with llhttp, then feed the de-chunked body to the SSE parser and account
// for every bench event it carries.
//
// Rules:
// - The object owns one uv_tcp_t. Its memory belongs to the SubscriberPool, which frees it only
//   after its loop has run to completion, so late callbacks (a connect or write cancelled by
//   uv_close) still find valid memory; they check state_ and return.
// - close() is safe in any state and twice; state_ becomes Closed only in the close callback.
// - No callback destroys anything; a failure calls close() and returns.
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <cstdint>

#include "bench/sse_stream_parser.hpp"

namespace bench {

class SubscriberPool;

class Subscriber {
 public:
  enum class State : uint8_t { Idle, Connecting, AwaitingHead, Streaming, Closing, Closed };
  enum class Failure : uint8_t { Connect, Timeout, Status, Closed, Protocol };

  Subscriber() = default;
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  void init(SubscriberPool* pool, uint32_t channel, uint32_t source_ip);
  // Idle -> Connecting, or straight to Closed (counted as failed) when the socket cannot be made.
  void start(uint64_t now_ns);
  // Fails a connection still waiting for its response head after `timeout_ns`.
  void check_timeout(uint64_t now_ns, uint64_t timeout_ns);
  void close();

  State state() const { return state_; }
  bool pending() const { return state_ == State::Connecting || state_ == State::AwaitingHead; }

 private:
  static void on_connect(uv_connect_t* req, int status);
  static void on_write(uv_write_t* req, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_close(uv_handle_t* handle);
  static int on_headers_complete(llhttp_t* parser);
  static int on_body(llhttp_t* parser, const char* at, size_t len);
  static int on_message_complete(llhttp_t* parser);
  static void on_event(void* self, const SseEvent& event);

  void fail(Failure why);
  // The server ended a stream that had started: the rest of the run's events are lost to it.
  void lose_stream();
  void handle_event(const SseEvent& event);

  SubscriberPool* pool_ = nullptr;
  uint32_t channel_ = 0;
  uint8_t source_ip_ = 0;  // 0: no bind, else 127.0.0.<source_ip_>
  State state_ = State::Idle;
  bool handle_open_ = false;
  bool stream_ended_ = false;
  uint64_t started_ns_ = 0;
  uint64_t last_seq_ = 0;

  uv_tcp_t tcp_;
  uv_connect_t connect_req_;
  uv_write_t write_req_;
  llhttp_t http_;
  SseStreamParser sse_;
};

}  // namespace bench
