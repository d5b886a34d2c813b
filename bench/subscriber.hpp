// One SSE subscriber (an SseClient): GET its channel, feed the de-chunked body to the SSE parser,
// and account for every bench event it carries.
//
// Rules (besides SseClient's):
// - Its memory belongs to the SubscriberPool, which frees it only after its loop has run to
//   completion.
// - close() is safe in any state and twice; it does the pool's accounting once.
#pragma once

#include <cstdint>

#include "bench/sse_client.hpp"
#include "bench/sse_stream_parser.hpp"

namespace bench {

class SubscriberPool;

class Subscriber final : public SseClient {
 public:
  enum class Failure : uint8_t { Connect, Timeout, Status, Closed, Protocol };

  Subscriber() = default;

  void init(SubscriberPool* pool, uint32_t index, uint32_t channel, uint32_t source_ip);
  // Idle -> Connecting, or straight to Closed (counted as failed) when the socket cannot be made.
  void start(uint64_t now_ns);
  // Fails a connection still waiting for its response head after `timeout_ns`.
  void check_timeout(uint64_t now_ns, uint64_t timeout_ns);
  void close();

 private:
  void on_connect_failed() override { fail(Failure::Connect); }
  void on_bad_status(int status) override;
  void on_streaming() override;
  void on_body(const char* at, size_t len) override { sse_.feed(at, len); }
  void on_end(End how) override;
  static void on_event(void* self, const SseEvent& event);

  void fail(Failure why);
  // The server ended a stream that had started: the rest of the run's events are lost to it.
  void lose_stream();
  void handle_event(const SseEvent& event);

  SubscriberPool* pool_ = nullptr;
  uint32_t index_ = 0;  // in the pool
  uint32_t channel_ = 0;
  uint8_t source_ip_ = 0;  // 0: no bind, else 127.0.0.<source_ip_>
  uint64_t last_seq_ = 0;
  SseStreamParser sse_;
};

}  // namespace bench
