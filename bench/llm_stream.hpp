// One streamed chat completion (--mode llm, an SseClient): POST the request, feed the de-chunked
// body to the SSE parser, and time every stamped chunk (bench/llm_stamp.hpp) against the receipt
// time of its socket read.
//
// Rules (besides SseClient's):
// - Its memory belongs to the LlmRun, which frees it only after the loop has run to completion.
// - Every started stream is resolved exactly once, as completed or with one Failure, and is then
//   closed.
#pragma once

#include <cstdint>

#include "bench/sse_client.hpp"
#include "bench/sse_stream_parser.hpp"

namespace bench {

class LlmRun;

class LlmStream final : public SseClient {
 public:
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

  void init(LlmRun* run, uint32_t source_ip);
  // Idle -> Connecting, or straight to a Connect failure when the socket cannot be made.
  void start(uint64_t now_ns);
  // Fails a stream still waiting for its response head after `timeout_ns`.
  void check_timeout(uint64_t now_ns, uint64_t timeout_ns);
  // The run stops: a stream still open is resolved as Unfinished.
  void abort();

 private:
  void on_connect_failed() override { fail(Failure::Connect); }
  void on_bad_status(int status) override;
  void on_streaming() override;
  void on_body(const char* at, size_t len) override { sse_.feed(at, len); }
  void on_end(End how) override;
  static void on_event(void* self, const SseEvent& event);

  void handle_event(const SseEvent& event);
  void complete();
  void fail(Failure why);
  // Counts what the stream saw, tells the run it is over, and closes it.
  void resolve();

  LlmRun* run_ = nullptr;
  uint8_t source_ip_ = 0;    // 0: no bind, else 127.0.0.<source_ip_>
  bool terminated_ = false;  // the dialect's terminator ([DONE], message_stop, ...) arrived
  uint32_t chunks_ = 0;
  LlmSseParser sse_;
};

}  // namespace bench
