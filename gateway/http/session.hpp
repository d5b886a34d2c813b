// One HTTP/1.1 client connection: requests in, answers out, in order (RFC 9112). The session does
// the framing, pipelining, keep-alive, 100-continue and timeouts; what each request means is its
// subclass's business (handle()), which answers through the session's Exchange interface.
//
// A connection whose first bytes are HTTP/2's client preface (h2c with prior knowledge), or whose
// TLS handshake chose "h2" by ALPN, is HTTP/2 instead: the session hands its bytes to an
// H2Session (h2_session.hpp), and the subclass's h2 handler answers each stream.
//
// Rules:
// - The object is deleted only by TcpStream's close callback (after on_close()); every path that
//   ends a connection calls close(), which is idempotent.
// - Requests are answered strictly in order. handle() answers the current request at once, or
//   defers it (publishes whose owner answers later: the next pipelined request may go ahead if
//   may_overlap() says so, up to kMaxPendingAnswers), or leaves it unanswered and reading waits
//   until respond() or start_stream() comes. Pipelined bytes wait in pending_ meanwhile.
// - Only the head of the line streams: a request that may not overlap waits until every earlier
//   answer is out.
// - A deferred or awaited answer has a deadline (Limits::answer_timeout_ms): past it the session
//   answers every waiting request with answer_timeout()'s error and closes after them.
// - Answers that arrive from a callback (not from inside handle()) go on with the pipelined
//   requests at once; from inside handle() the parse loop goes on by itself (no re-entry).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/exchange.hpp"
#include "gateway/http/h2_session.hpp"
#include "gateway/http/request_parser.hpp"
#include "gateway/http/stream_handler.hpp"
#include "gateway/net/tcp_stream.hpp"

namespace ssegw::http {

class Session : public net::TcpStream, public Exchange {
 public:
  struct Limits {
    size_t max_header_bytes = 16 * 1024;
    size_t max_body_bytes = 1024 * 1024;
    uint64_t header_timeout_ms = 10000;  // a request must be complete within this
    uint64_t idle_timeout_ms = 60000;    // an idle keep-alive connection is closed after this
    uint64_t answer_timeout_ms = 10000;  // a deferred or awaited answer must come within this
    H2Session::Limits http2;
  };
  // Publishes in flight per connection, before reading waits for their answers.
  static constexpr size_t kMaxPendingAnswers = 64;
  // Above this much unsent output, pipelined requests wait until the client reads.
  static constexpr size_t kOutputHighWater = 256 * 1024;
  // How long a closing connection waits for the client to close after our FIN.
  static constexpr uint64_t kLingerMs = 2000;

  Session(net::Loop& loop, const Limits& limits, uint64_t id);

  // h2: HTTP/2 is spoken when the client starts with its preface, answered by h2; nullptr:
  // HTTP/1.1 only. h2_only: TLS chose "h2" by ALPN, so HTTP/2 from the first byte.
  void start(H2Session::Handler* h2 = nullptr, bool h2_only = false);
  bool http2() const { return h2_ != nullptr; }
  // Answers a connection that is not served (over a limit) and closes it after the answer.
  void refuse(int status, const char* code, std::string_view message,
              std::string_view extra_headers = {});
  // Timeouts; the owner calls it periodically (every 250 ms).
  void tick(uint64_t now_ms);
  // Graceful shutdown: a stream ends cleanly, a request in progress finishes, then close.
  void begin_shutdown();

  // Exchange.
  const Request& request() const override { return parser_.request(); }
  bool http10() const override { return http10_; }
  void set_label(const char* label) override { label_ = label; }
  void answer_headers(std::string lines) override { answer_headers_ = std::move(lines); }
  void close_after() override { close_after_ = true; }
  void respond(int status, std::string_view content_type, std::string_view body,
               std::string_view extra_headers = {}) override;
  void respond_error(int status, const char* code, std::string_view message,
                     std::string_view extra_headers = {}) override;
  AnswerSlot defer() override;
  void complete(AnswerSlot slot, int status, std::string_view content_type, std::string_view body,
                std::string_view extra_headers = {}) override;
  void start_stream(int status, std::string_view header_lines, bool has_body) override;
  void send_now() override { flush(); }
  void write_body(std::string_view bytes) override;
  void write_frame(const base::FrameRef& frame) override;
  void write_prefixed(std::string_view prefix, const base::FrameRef& frame, size_t offset) override;
  void end_stream() override;
  void abort() override { close(); }
  bool streaming() const override { return phase_ == Phase::kStreaming; }
  size_t unsent_bytes() const override { return queued_bytes(); }
  uint64_t bytes_written() const override { return TcpStream::bytes_written(); }
  uint64_t bytes_acked() const override { return TcpStream::bytes_acked(); }
  uint64_t id() const override { return id_; }
  Lifetime lifetime() const override;

 protected:
  ~Session() override;

  // A complete request to answer (see Rules).
  virtual void handle(Request& request) = 0;
  // Whether a request may start while earlier answers are still deferred.
  virtual bool may_overlap(const Request& request) const = 0;
  // An answer went out: for ssegw_http_requests_total.
  virtual void count(const char* label, int status) = 0;
  // The error a deferred or awaited answer gets when answer_timeout_ms passes; also the place to
  // count it and to forget what was waited for.
  using Timeout = StreamHandler::Timeout;
  virtual Timeout answer_timeout() = 0;
  // The awaited answer has deadlines of its own (StreamHandler::own_deadline()).
  virtual bool own_deadline() const { return false; }
  // The stream in progress: its output drained, or shrank (for backpressure).
  virtual void on_stream_drained() {}
  virtual void on_stream_progress() {}
  // The connection is closing: the last call before the object goes.
  virtual void on_session_closed() {}

  bool draining() const { return shutting_down_; }

 private:
  enum class Phase : uint8_t {
    kRequest,    // reading and answering requests
    kWaiting,    // a request waits for its answer, or for earlier deferred answers
    kStreaming,  // a streamed answer is open
    kClosing,    // the last answer is going out; then FIN and close
  };

  // An answer in request order: written once it is ready and every earlier one has gone.
  struct Pending {
    AnswerSlot slot;
    uint64_t deferred_ms;  // when it was deferred (0: answered at once, queued behind others)
    bool ready = false;
    bool close_after = false;
    bool http10 = false;
    const char* label = "unmatched";
    std::string headers;  // the request's answer headers, for an answer built later
    std::string bytes;
  };

  void on_data(const char* data, size_t length) override;
  void on_read_end(int status) override;
  void on_drained() override;
  void on_write_progress() override;
  void on_close() override;
  void before_flush() override;

  // The first bytes: HTTP/2's preface, or HTTP/1.1 (sniffing, then the rest as usual).
  void sniff(const char* data, size_t length);
  void start_http2(std::string_view first_bytes);
  size_t parse(const char* data, size_t length);
  void process_pending();
  void resume_requests();
  void dispatch();
  void after_answer();
  void reset_for_next_request();
  void flush_pending();
  void close_gracefully();
  std::string build(int status, bool http10, std::string_view headers,
                    std::string_view content_type, std::string_view body,
                    std::string_view extra_headers, bool keep_alive);
  void timed_out();

  uint64_t id_;
  Limits limits_;
  RequestParser parser_;
  std::string pending_input_;  // bytes read but not yet parsed
  std::vector<Pending> pending_;
  AnswerSlot next_slot_ = 1;
  std::string answer_headers_;
  const char* label_ = "unmatched";
  H2Session::Handler* h2_handler_ = nullptr;  // while the first bytes may still be a preface
  std::unique_ptr<H2Session> h2_;
  mutable std::shared_ptr<const void> lifetime_;  // made on first use: most never need one
  Phase phase_ = Phase::kRequest;
  bool close_after_ = false;
  bool announce_close_ = false;  // the client asked to close (or a drain began): say so
  bool http10_ = false;
  bool chunked_ = false;             // the stream's body is chunked
  bool answered_ = false;            // the current request has its answer (or a slot)
  bool in_parse_ = false;            // parse() is on the stack: its loop goes on by itself
  bool in_dispatch_ = false;         // handle() is on the stack: dispatch() moves on after it
  bool deferred_dispatch_ = false;   // a parsed request waits for pending_ to drain
  bool resume_after_drain_ = false;  // a stream ended; go on with pipelined requests
  bool continue_sent_ = false;
  bool reading_paused_ = false;
  bool served_any_ = false;
  bool shutting_down_ = false;
  uint64_t phase_started_ms_ = 0;
  uint64_t awaited_since_ms_ = 0;  // the current request waits for its answer since then
};

}  // namespace ssegw::http
