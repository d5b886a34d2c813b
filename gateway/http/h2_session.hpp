// HTTP/2 on one client connection (RFC 9113), with nghttp2: h2c with prior knowledge, or h2
// negotiated by ALPN. Each stream is an Exchange (h2_stream.hpp) with a StreamHandler of its own,
// so one connection carries many SSE streams, each held back only by its own flow-control window
// and slow-consumer limit.
//
// Rules:
// - The session does not own the TCP connection: http::Session does, and passes on what it hears.
//   Everything nghttp2 wants to write is serialised once per loop turn, from the TCP stream's
//   before_flush(), never once per event.
// - Handlers are told of a stream's end (closed()) and deleted only from inside nghttp2's
//   callbacks (mem_recv, send) or closed(); never from inside one of their own calls.
// - Floods are bounded (docs/security.md "HTTP/2"): nghttp2's limits on rapid resets, CONTINUATION
//   frames, SETTINGS entries and outbound acknowledgements are set explicitly, and frames that
//   carry nothing (PING, SETTINGS, PRIORITY, empty DATA, HEADERS and CONTINUATION) spend a
//   per-connection token budget, and so do the resets of started requests that the client did
//   not send itself (MadeYouReset); past any of them the connection ends with GOAWAY.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "gateway/http/exchange.hpp"
#include "gateway/http/stream_handler.hpp"
#include "gateway/net/tcp_stream.hpp"

struct nghttp2_session;

namespace ssegw::http {

class H2Stream;

class H2Session {
 public:
  struct Limits {
    size_t max_header_bytes = 16 * 1024;
    size_t max_body_bytes = 1024 * 1024;
    uint64_t header_timeout_ms = 10000;
    uint64_t idle_timeout_ms = 60000;
    uint64_t answer_timeout_ms = 10000;
    uint64_t stall_timeout_ms = 30000;  // output waiting that the kernel takes none of
    uint32_t max_concurrent_streams = 128;
    uint32_t initial_window_size = 65535;
  };
  // Frames that carry nothing: a burst, refilled per second. A browser sends a handful per
  // minute; a flood sends them as fast as the link goes.
  static constexpr uint32_t kEmptyFrameBurst = 256;
  static constexpr uint32_t kEmptyFramesPerSecond = 32;
  // nghttp2's limits, set explicitly (its defaults are 1000 resets at 33/s, 8, 32, 1000).
  static constexpr uint64_t kResetBurst = 256;  // also the budget of resets the server sends
  static constexpr uint64_t kResetsPerSecond = 32;
  static constexpr size_t kMaxContinuations = 8;
  static constexpr size_t kMaxSettings = 32;
  static constexpr size_t kMaxOutboundAcks = 100;
  // Above this much unsent output on the connection, no more frames are serialised: what
  // streams write waits in their own queues, counted against their own slow-consumer limits.
  static constexpr size_t kOutputHighWater = 256 * 1024;
  static constexpr uint64_t kLingerMs = 2000;
  // Request bodies (of limits.max_body_bytes at most) held in memory per connection before the
  // client's windows stay shut.
  static constexpr size_t kBufferedBodies = 4;
  // Request headers held per connection (requests not yet answered, or whose answer waits for
  // the client), in limits.max_header_bytes: past it a new request gets 431.
  static constexpr size_t kHeldHeaderLists = 32;

  class Handler {
   public:
    // A complete request on a new stream: the handler that answers it.
    virtual std::unique_ptr<StreamHandler> open_stream(Exchange& exchange) = 0;
    // An answer went out: for ssegw_http_requests_total.
    virtual void count(const char* label, int status) = 0;
    // The connection speaks HTTP/2 from now on.
    virtual void http2_started() = 0;
    virtual void stream_opened() = 0;
    virtual void stream_closed() = 0;
    virtual void goaway_sent(uint32_t error_code) = 0;
    virtual void flood() = 0;
    // A stream whose queued answer made no progress for limits.stall_timeout_ms (its window
    // stayed shut) was reset.
    virtual void stream_stalled() = 0;

   protected:
    ~Handler() = default;
  };

  H2Session(net::TcpStream& tcp, const Limits& limits, Handler& handler, uint64_t id);
  ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Sends the server's SETTINGS; false when nghttp2 could not be set up (the caller closes).
  bool start();
  // Bytes from the client, from the connection preface on.
  void on_data(const char* data, size_t length);
  // The connection's output drained or moved: more frames may go.
  void on_output_progress() { tcp_.want_flush(); }
  // Serialises what nghttp2 has to send; from the TCP stream's before_flush().
  void send();
  void tick(uint64_t now_ms);
  // Graceful shutdown: streamed answers end (END_STREAM), answers in progress finish, then
  // GOAWAY, then the connection closes.
  void begin_shutdown();
  // The connection is closing: every stream's handler hears closed().
  void closed();

  uint64_t id() const { return id_; }
  uint64_t now_ms() { return tcp_.loop().now_ms(); }
  const Limits& limits() const { return limits_; }

 private:
  friend class H2Stream;

  static int on_begin_frame(nghttp2_session*, const void* hd, void* self);
  void after_input();
  void after_send();
  void terminate(uint32_t error_code);
  void close_when_done();
  bool spend_empty_frame_token();
  bool spend_reset_token();
  void stream_stall(H2Stream* stream, uint64_t now_ms);
  void unlink(H2Stream* stream);
  // Request body accounting and the windows (see body_received()).
  void body_received(H2Stream* stream, size_t length);
  void body_done(H2Stream* stream, bool open = true);
  // For the streams.
  nghttp2_session* nghttp2() { return session_; }
  net::TcpStream& tcp() { return tcp_; }
  Handler& handler() { return handler_; }
  void resume(H2Stream* stream);

  struct Callbacks;

  net::TcpStream& tcp_;
  Limits limits_;
  Handler& handler_;
  uint64_t id_;
  nghttp2_session* session_ = nullptr;
  H2Stream* streams_ = nullptr;  // open streams, linked through their prev_/next_
  size_t stream_count_ = 0;
  size_t body_bytes_ = 0;  // request body bytes held by streams still reading their request
  size_t max_buffered_body_;
  size_t header_bytes_ = 0;  // request header bytes held by streams (H2Stream::add_header())
  size_t max_held_header_bytes_;
  bool served_any_ = false;
  bool shutting_down_ = false;
  bool goaway_submitted_ = false;
  bool closing_ = false;  // no more input; close once the output is out
  bool in_send_ = false;
  uint64_t started_ms_;
  uint64_t idle_since_ms_;  // no stream open since then
  uint64_t closing_since_ms_ = 0;
  // The empty-frame budget (a token bucket).
  uint32_t empty_tokens_ = kEmptyFrameBurst;
  uint64_t empty_refill_ms_;
  // Resets of dispatched streams that the client did not send (a token bucket of kResetBurst,
  // kResetsPerSecond): see Callbacks::stream_close.
  uint32_t reset_tokens_ = kResetBurst;
  uint64_t reset_refill_ms_;
  // Stall detection of the whole connection's output.
  uint64_t stall_written_ = 0;
  uint64_t stalled_since_ms_ = 0;
};

}  // namespace ssegw::http
