// One streamed chat completion (--mode llm): connect from a chosen loopback source address, POST
// the request, read the response head with llhttp, feed the de-chunked body to the SSE parser, and
// time every stamped chunk (bench/llm_stamp.hpp) against the receipt time of its socket read.
//
// Rules:
// - The object owns one uv_tcp_t. Its memory belongs to the LlmRun, which frees it only after the
//   loop has run to completion, so late callbacks (a connect or write cancelled by uv_close) still
//   find valid memory; they check state_ and return.
// - Every started stream is resolved exactly once, as completed or with one Failure, and is then
//   closed; close() is safe in any state and twice; state_ becomes Closed only in the close
//   callback.
// - No callback destroys anything; an outcome calls close() and returns.
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <cstdint>

#include "bench/sse_stream_parser.hpp"

namespace bench {

class LlmRun;

class LlmStream {
 public:
  enum class State : uint8_t { Idle, Connecting, AwaitingHead, Streaming, Closing, Closed };
  enum class Failure : uint8_t {
    Connect,     // socket, bind, connect or request write error
    Timeout,     // no response head within --connect-timeout
    Status,      // a response other than 200
    Closed,      // the server closed before the response head
    Truncated,   // the server closed after the head, before the end of the body
    Protocol,    // a response llhttp rejects
    Unfinished,  // still open when the run stopped
  };

  LlmStream() = default;
  LlmStream(const LlmStream&) = delete;
  LlmStream& operator=(const LlmStream&) = delete;

  void init(LlmRun* run, uint32_t source_ip);
  // Idle -> Connecting, or straight to a Connect failure when the socket cannot be made.
  void start(uint64_t now_ns);
  // Fails a stream still waiting for its response head after `timeout_ns`.
  void check_timeout(uint64_t now_ns, uint64_t timeout_ns);
  // The run stops: a stream still open is resolved as Unfinished.
  void abort();

  bool pending() const { return state_ == State::Connecting || state_ == State::AwaitingHead; }
  bool active() const { return pending() || state_ == State::Streaming; }

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

  void handle_event(const SseEvent& event);
  void complete();
  void fail(Failure why);
  // Counts what the stream saw, tells the run it is over, and closes it.
  void resolve();
  void close();

  LlmRun* run_ = nullptr;
  uint8_t source_ip_ = 0;  // 0: no bind, else 127.0.0.<source_ip_>
  State state_ = State::Idle;
  bool handle_open_ = false;
  bool body_ended_ = false;  // llhttp saw the end of the response
  bool terminated_ = false;  // the dialect's terminator ([DONE], message_stop, ...) arrived
  uint64_t started_ns_ = 0;
  uint32_t chunks_ = 0;

  uv_tcp_t tcp_;
  uv_connect_t connect_req_;
  uv_write_t write_req_;
  llhttp_t http_;
  LlmSseParser sse_;
};

}  // namespace bench
