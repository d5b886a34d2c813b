// One client connection of the mock: it parses requests one at a time and plays at most one
// response, whose tokens are paced by the connection's timer.
//
// Rules:
// - The object is a Stream (mock/net.hpp): it is deleted in the TCP handle's close callback,
//   right after on_close(), which releases everything else it owns.
// - Its timer lives in a separate heap block, because the timer's close callback runs after the
//   connection is gone: on_close() detaches the block (owner = nullptr) and the block frees
//   itself in that callback. A tick between close() and on_close() sees !is_open() and returns.
// - While a response plays, request parsing stops; later bytes wait in pending_ (bounded) and
//   are parsed once it ends. Reading never stops, so a client disconnect is seen at once.
//   Parsing also waits while more than kHighWater bytes of answers are queued (a client that
//   pipelines and does not read), so the send queue stays bounded too.
// - A stream produces a token only while its send queue is at most kHighWater bytes. Above it
//   the stream waits for on_drained(), like a server blocked in send(), and the wait is counted.
// - Tokens keep a fixed schedule from the response head (due += interval), not "interval after
//   the timer fired": re-arming from the loop's cached time would let every two streams whose
//   timers once fired in the same loop turn stay aligned for good, until hundreds of streams
//   tick as one burst. A pause (stall, blocked send) moves the schedule, it does not catch up.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "mock/dialect.hpp"
#include "mock/http.hpp"
#include "mock/knobs.hpp"
#include "mock/net.hpp"
#include "mock/stats.hpp"

namespace ssegw::mock {

class Connection;

// Process-wide state, owned by the server, which outlives every connection.
struct MockState {
  Stats stats;
  std::unordered_set<Connection*> connections;
};

class Connection final : public Stream {
 public:
  static constexpr size_t kHighWater = 64 * 1024;

  Connection(uv_loop_t* loop, MockState& state);

  // Blocked time of a stream paused right now (0 when not paused).
  uint64_t blocked_ns(uint64_t now_ns) const;
  // Restarts the clock of a paused stream (after POST /mock/reset).
  void restart_blocked_clock(uint64_t now_ns);

 protected:
  ~Connection() override = default;

 private:
  enum class Phase : uint8_t { kIdle, kHeadDelay, kTokens, kBlocked };
  struct TimerBlock {
    uv_timer_t timer;
    Connection* owner;
  };

  void on_data(const char* data, size_t length) override;
  void on_read_end() override;
  void on_drained() override;
  void on_close() override;

  void process_input();
  void handle(const Request& request);
  void handle_mock(const Request& request);
  void reply(std::string response, uint64_t delay_ms);
  void after_reply();

  void start_stream(Api api, Knobs knobs, Usage usage, std::string feed_name, uint64_t first_n);
  std::string stream_head(Api api) const;
  void send_head();
  void advance();
  void produce();
  void finish();
  void fail_stream(bool clean_end);
  void end_stream();

  void send_raw(std::string_view bytes);
  void send_chunk(std::string_view bytes);
  void end_body();
  void close_when_drained();

  void arm(uint64_t delay_ms);
  void tick();
  static void on_tick(uv_timer_t* timer);

  MockState& state_;
  RequestReader reader_;
  std::string pending_;  // received bytes not parsed yet
  TimerBlock* timer_ = nullptr;

  // The response in progress.
  Phase phase_ = Phase::kIdle;
  bool busy_ = false;       // a response is playing: do not parse the next request
  bool streaming_ = false;  // that response is a stream (counted in active)
  bool dead_ = false;       // no further request will be answered on this connection
  bool in_process_ = false;
  bool continue_sent_ = false;
  bool close_when_drained_ = false;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool head_ = false;  // a HEAD request: every answer goes without its body
  // "X-Mock-Traceparent: <value>\r\n" under the echo_trace knob when the request carried a
  // traceparent: a stream's head echoes it.
  std::string trace_echo_;
  bool served_ = false;  // a first request was seen (counted in api_connections or not)
  bool chunked_ = true;
  bool stalled_ = false;
  std::string delayed_;  // a complete response waiting for head_delay_ms

  Api api_ = Api::kChat;
  Knobs knobs_;
  Usage usage_;
  std::vector<std::string> script_;
  std::string feed_name_;
  uint64_t feed_next_ = 1;
  uint64_t sent_ = 0;         // tokens (or feed events) written
  uint64_t next_due_ms_ = 0;  // loop time the next token is due at
  uint64_t last_write_ns_ = 0;
  uint64_t blocked_since_ns_ = 0;
  uint64_t disconnect_seen_ns_ = 0;
};

}  // namespace ssegw::mock
