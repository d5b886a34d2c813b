// One HTTP/2 stream of a client connection (RFC 9113): its request, assembled from HEADERS and
// DATA with the same limits as HTTP/1.1, and its answer, as an Exchange.
//
// Rules:
// - The session (h2_session.hpp) owns its streams: it makes one at the first HEADERS and deletes
//   it when nghttp2 closes the stream, after its handler's closed(). An answer that comes from a
//   callback checks lifetime() first, like every Exchange.
// - Body bytes are never copied per stream: write_frame() queues a reference to the shared frame
//   (write_prefixed() a copied prefix, then a view of the frame), and the session writes DATA
//   frames as a 9-byte header plus views of the queued frames (NGHTTP2_DATA_FLAG_NO_COPY). What
//   waits here is unsent_bytes(), the stream's own: the slow-consumer limit cuts a stream whose
//   client window stays shut without touching the others.
// - abort() resets the stream (RST_STREAM CANCEL) and drops what it queued.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/http/exchange.hpp"
#include "gateway/http/stream_handler.hpp"
#include "gateway/net/frame_queue.hpp"

namespace ssegw::http {

class H2Session;

class H2Stream final : public Exchange {
 public:
  H2Stream(H2Session& session, int32_t id, uint64_t now_ms);
  ~H2Stream();
  H2Stream(const H2Stream&) = delete;
  H2Stream& operator=(const H2Stream&) = delete;

  // Exchange.
  const Request& request() const override { return request_; }
  bool http10() const override { return false; }
  void set_label(const char* label) override { label_ = label; }
  void answer_headers(std::string lines) override { answer_headers_ = std::move(lines); }
  // A stream ends by END_STREAM, never by closing; what HTTP/1.1 closes after is long-lived (a
  // subscription), and keeps no request memory once it streams.
  void close_after() override { long_lived_ = true; }
  void respond(int status, std::string_view content_type, std::string_view body,
               std::string_view extra_headers = {}) override;
  void respond_error(int status, const char* code, std::string_view message,
                     std::string_view extra_headers = {}) override;
  AnswerSlot defer() override;
  void complete(AnswerSlot slot, int status, std::string_view content_type, std::string_view body,
                std::string_view extra_headers = {}) override;
  void start_stream(int status, std::string_view header_lines, bool has_body) override;
  void send_now() override {}
  void write_body(std::string_view bytes) override;
  void write_frame(const base::FrameRef& frame) override;
  void write_prefixed(std::string_view prefix, const base::FrameRef& frame, size_t offset) override;
  void end_stream() override;
  void abort() override;
  bool streaming() const override { return state_ == State::kStreaming; }
  size_t unsent_bytes() const override { return queued_bytes_; }
  uint64_t bytes_written() const override { return sent_bytes_; }
  uint64_t bytes_acked() const override { return sent_bytes_; }
  uint64_t id() const override;
  Lifetime lifetime() const override;

  // nghttp2's DATA source (read callback): how much of the queue goes in the next frame.
  ssize_t read_length(size_t max, uint32_t* flags);

  // What a header field costs against limits.max_header_bytes (RFC 7541 4.1's entry size), and
  // the fields one request may have.
  static constexpr size_t kFieldOverhead = 32;
  static constexpr size_t kMaxHeaderFields = 256;

 private:
  friend class H2Session;

  enum class State : uint8_t {
    kRequest,    // HEADERS and DATA coming
    kRefused,    // the request was answered with an error before it was complete
    kAwaiting,   // handled; its answer comes later
    kDeferred,   // defer(): complete() brings the answer
    kStreaming,  // a streamed answer is open
    kAnswered,   // the whole answer is queued
    kReset,      // reset (abort(), or by the client); nothing more is sent
  };

  // Request assembly, from the session's nghttp2 callbacks. A failure answers the stream with
  // the same JSON error HTTP/1.1 would give and makes the rest of the request ignored.
  void add_header(std::string_view name, std::string_view value);
  void add_body(std::string_view bytes);
  // The request is complete (END_STREAM): validates what HTTP/1.1's parser would and hands it to
  // a new handler.
  void dispatch(std::unique_ptr<StreamHandler> handler);
  void refuse(int status, const char* code, std::string message);
  void release_request();
  bool answered() const { return state_ != State::kRequest && state_ != State::kAwaiting; }

  // Submits the HEADERS of an answer; with_body: a DATA provider follows from the queue.
  void submit(int status, std::string_view content_type, std::string_view header_lines,
              std::string_view extra_lines, size_t content_length, bool with_body);
  void queued(size_t bytes);
  void send(const uint8_t* frame_header, size_t length);

  H2Session& session_;
  int32_t id_;
  State state_ = State::kRequest;
  bool has_method_ = false;
  bool has_path_ = false;
  bool long_lived_ = false;
  bool request_ended_ = false;  // the client's END_STREAM came
  bool end_queued_ = false;     // the body ends after the queue (END_STREAM)
  bool data_deferred_ = false;  // nghttp2 waits for resume_data()
  bool notify_ = false;         // sent something since the handler last heard
  bool request_released_ = false;
  bool client_reset_ = false;  // the client's RST_STREAM closes it
  const char* label_ = "unmatched";
  Request request_;
  std::string authority_;
  std::string answer_headers_;
  size_t header_bytes_ = 0;  // counted in the session's header_bytes_ until released
  size_t header_fields_ = 0;
  size_t buffered_ = 0;    // body bytes counted in the session's body_bytes_
  size_t unconsumed_ = 0;  // body bytes whose window has not opened again yet
  uint64_t started_ms_;
  uint64_t awaited_since_ms_ = 0;
  net::FrameQueue queue_;
  uint32_t head_offset_ = 0;  // bytes of the first queued piece already sent
  size_t queued_bytes_ = 0;
  uint64_t sent_bytes_ = 0;
  // The stream's own output stall: queued bytes that none of has left since then (a shut
  // window), in the session's tick.
  uint64_t stall_sent_ = 0;
  uint64_t stalled_since_ms_ = 0;
  std::unique_ptr<StreamHandler> handler_;
  mutable std::shared_ptr<const void> lifetime_;  // made on first use
  // The session's list of its streams.
  H2Stream* prev_ = nullptr;
  H2Stream* next_ = nullptr;
};

}  // namespace ssegw::http
