#include "gateway/http/session.hpp"

#include <algorithm>
#include <cstring>

#include "gateway/http/response.hpp"

namespace ssegw::http {
namespace {

const base::FrameRef& chunked_end_frame() {
  static const base::FrameRef frame = base::Frame::copy_of("0\r\n\r\n");
  return frame;
}

// Writes "<hex>\r\n" (at most 18 bytes) and returns its length.
size_t chunk_head(char* out, size_t size) {
  char hex[16];
  size_t n = 0;
  do {
    hex[n++] = "0123456789abcdef"[size & 15];
    size >>= 4;
  } while (size);
  for (size_t i = 0; i < n; ++i) out[i] = hex[n - 1 - i];
  out[n] = '\r';
  out[n + 1] = '\n';
  return n + 2;
}

const base::FrameRef& continue_frame() {
  static const base::FrameRef frame = base::Frame::copy_of("HTTP/1.1 100 Continue\r\n\r\n");
  return frame;
}

}  // namespace

Session::Session(net::Loop& loop, const Limits& limits, uint64_t id)
    : net::TcpStream(loop),
      id_(id),
      limits_(limits),
      parser_({limits.max_header_bytes, limits.max_body_bytes}) {}

Session::~Session() = default;

void Session::start(H2Session::Handler* h2, bool h2_only) {
  phase_started_ms_ = loop().now_ms();
  h2_handler_ = h2;
  if (h2 && h2_only) {
    start_http2({});
    if (!is_open()) return;
  }
  start_reading();
}

Lifetime Session::lifetime() const {
  if (!lifetime_) lifetime_ = std::make_shared<int>(0);
  return lifetime_;
}

void Session::refuse(int status, const char* code, std::string_view message,
                     std::string_view extra_headers) {
  start_reading();  // to see the client's close at once: until then it holds a connection slot
  label_ = "unmatched";
  close_after_ = true;
  respond_error(status, code, message, extra_headers);
}

// ---- input ------------------------------------------------------------------------------------

void Session::on_data(const char* data, size_t length) {
  if (h2_) {
    h2_->on_data(data, length);
    return;
  }
  if (h2_handler_) {
    sniff(data, length);
    return;
  }
  if (phase_ == Phase::kClosing) return;
  // A stream that ends only by closing (SSE) takes no more requests: reading only notices the
  // client leaving.
  if (phase_ == Phase::kStreaming && close_after_) return;
  if (phase_ == Phase::kRequest && pending_input_.empty() && !reading_paused_) {
    size_t used = parse(data, length);
    if (used < length) pending_input_.assign(data + used, length - used);
  } else {
    pending_input_.append(data, length);
  }
  if (pending_input_.size() > limits_.max_header_bytes + limits_.max_body_bytes) {
    stop_reading();
    reading_paused_ = true;
  }
}

// Parses and answers requests until input runs out or a request has to wait.
size_t Session::parse(const char* data, size_t length) {
  if (in_parse_) return 0;  // an answer given from inside handle(): the running loop goes on
  in_parse_ = true;
  size_t used = 0;
  while (used < length && phase_ == Phase::kRequest && is_open()) {
    if (queued_bytes() > kOutputHighWater) {
      // The client sends requests faster than it reads answers: wait for on_drained().
      stop_reading();
      reading_paused_ = true;
      break;
    }
    if (!parser_.in_progress() && served_any_) phase_started_ms_ = loop().now_ms();
    auto result = parser_.feed(data + used, length - used);
    used += result.consumed;
    if (result.status == RequestParser::Status::kError) {
      const ParseError& error = parser_.error();
      close_after_ = true;
      label_ = "unmatched";
      respond_error(error.status, error.code, error.message);
      used = length;
      break;
    }
    if (result.status == RequestParser::Status::kNeedMore) {
      const Request& request = parser_.request();
      if (parser_.headers_complete() && request.expect_continue && !continue_sent_) {
        continue_sent_ = true;
        write(continue_frame(), false);
      }
      break;
    }
    dispatch();
  }
  in_parse_ = false;
  return used;
}

void Session::process_pending() {
  if (pending_input_.empty()) return;
  size_t used = parse(pending_input_.data(), pending_input_.size());
  pending_input_.erase(0, used);
}

// The session may take requests again: after an answer came, or once output has drained.
void Session::resume_requests() {
  if (phase_ != Phase::kRequest || !is_open() || in_parse_) return;
  if (queued_bytes() > kOutputHighWater) return;
  bool was_paused = reading_paused_;
  reading_paused_ = false;
  process_pending();
  if (was_paused && !reading_paused_ && phase_ == Phase::kRequest) start_reading();
}

void Session::on_read_end(int) {
  // EOF or reset: whatever we were doing, nobody is listening any more.
  close();
}

void Session::on_drained() {
  if (h2_) {
    h2_->on_output_progress();
    return;
  }
  if (phase_ == Phase::kStreaming) {
    on_stream_drained();
    return;
  }
  if (resume_after_drain_) {
    resume_after_drain_ = false;
    resume_requests();
    return;
  }
  if (reading_paused_) resume_requests();
}

void Session::on_write_progress() {
  if (h2_) {
    h2_->on_output_progress();
    return;
  }
  if (phase_ == Phase::kStreaming) on_stream_progress();
}

void Session::on_close() {
  lifetime_.reset();       // callbacks that come back from now on find the exchange gone
  if (h2_) h2_->closed();  // every stream's handler gives back what it holds
  on_session_closed();
  h2_.reset();
}

// ---- requests ---------------------------------------------------------------------------------

void Session::dispatch() {
  Request& request = parser_.request();
  // While answers are deferred only what may overlap goes ahead (it defers its answer too);
  // anything else could answer out of order, or start a stream, so it waits for them.
  if (!pending_.empty() && !may_overlap(request)) {
    deferred_dispatch_ = true;
    phase_ = Phase::kWaiting;
    return;
  }
  served_any_ = true;
  http10_ = request.http10();
  if (!request.keep_alive || parser_.upgrade() || shutting_down_)
    close_after_ = announce_close_ = true;
  answered_ = false;
  in_dispatch_ = true;
  handle(request);
  in_dispatch_ = false;
  if (!is_open() || phase_ == Phase::kStreaming || phase_ == Phase::kClosing) return;
  if (answered_) {
    after_answer();
    return;
  }
  // No answer yet: it comes from a callback, and nothing is read until then.
  phase_ = Phase::kWaiting;
  awaited_since_ms_ = loop().now_ms();
}

// The current request has its answer, or its place among the deferred ones.
void Session::after_answer() {
  awaited_since_ms_ = 0;
  if (pending_.empty()) {
    if (close_after_) {
      close_gracefully();
      return;
    }
    reset_for_next_request();
    resume_requests();  // a no-op inside the parse loop, which goes on by itself
    return;
  }
  bool closes = pending_.back().close_after;
  reset_for_next_request();
  if (closes || pending_.size() >= kMaxPendingAnswers) {
    phase_ = Phase::kWaiting;  // nothing more is read until the answers are out
    return;
  }
  resume_requests();
}

void Session::reset_for_next_request() {
  parser_.next();
  announce_close_ = close_after_;
  continue_sent_ = false;
  answer_headers_.clear();
  label_ = "unmatched";
  phase_ = Phase::kRequest;
  phase_started_ms_ = loop().now_ms();
}

// ---- answers ----------------------------------------------------------------------------------

std::string Session::build(int status, bool http10, std::string_view headers,
                           std::string_view content_type, std::string_view body,
                           std::string_view extra_headers, bool keep_alive) {
  ResponseBuilder builder(status, http10);
  builder.raw_headers(extra_headers);
  builder.raw_headers(headers);
  if (status == 204 || status == 304) return builder.without_body(keep_alive);
  return builder.with_body(content_type, body, keep_alive);
}

void Session::respond(int status, std::string_view content_type, std::string_view body,
                      std::string_view extra_headers) {
  if (!is_open() || phase_ == Phase::kClosing || phase_ == Phase::kStreaming) return;
  std::string bytes =
      build(status, http10_, answer_headers_, content_type, body, extra_headers, !close_after_);
  count(label_, status);
  answered_ = true;
  if (!pending_.empty()) {  // earlier answers are still deferred: queue behind them
    pending_.push_back(
        {next_slot_++, 0, true, close_after_, http10_, label_, {}, std::move(bytes)});
  } else {
    write(base::Frame::copy_of(bytes), false, true);  // answers leave before deliveries
  }
  // Outside dispatch() (a callback's answer, a timeout, a refusal) the session moves on here.
  if (!in_dispatch_) after_answer();
}

void Session::respond_error(int status, const char* code, std::string_view message,
                            std::string_view extra_headers) {
  if (status == 400 || status == 408 || status == 413 || status == 431) close_after_ = true;
  respond(status, "application/json", json_error(code, message), extra_headers);
}

AnswerSlot Session::defer() {
  AnswerSlot slot = next_slot_++;
  pending_.push_back(
      {slot, loop().now_ms(), false, close_after_, http10_, label_, answer_headers_, {}});
  answered_ = true;
  return slot;
}

void Session::complete(AnswerSlot slot, int status, std::string_view content_type,
                       std::string_view body, std::string_view extra_headers) {
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const Pending& p) { return p.slot == slot; });
  if (it == pending_.end() || it->ready) return;  // timed out meanwhile
  it->bytes =
      build(status, it->http10, it->headers, content_type, body, extra_headers, !it->close_after);
  it->ready = true;
  count(it->label, status);
  flush_pending();
}

// Writes every ready answer at the head of the line, in order.
void Session::flush_pending() {
  size_t sent = 0;
  bool close_now = false;
  while (sent < pending_.size() && pending_[sent].ready && is_open()) {
    write(base::Frame::copy_of(pending_[sent].bytes), false, true);
    close_now = pending_[sent++].close_after;
    if (close_now) break;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(sent));
  if (pending_.empty()) std::vector<Pending>().swap(pending_);  // give the memory back
  if (close_now) {
    pending_.clear();
    close_gracefully();
    return;
  }
  if (!pending_.empty() || in_parse_) return;
  if (phase_ != Phase::kWaiting) {
    // A drain began while answers were out and nothing else is in progress: done now.
    if (close_after_ && phase_ == Phase::kRequest && !parser_.in_progress() &&
        pending_input_.empty())
      close_gracefully();
    return;
  }
  if (awaited_since_ms_) return;  // the current request still waits for its own answer
  phase_ = Phase::kRequest;
  if (deferred_dispatch_) {
    deferred_dispatch_ = false;
    dispatch();
  }
  resume_requests();
}

void Session::close_gracefully() {
  phase_ = Phase::kClosing;
  phase_started_ms_ = loop().now_ms();
  pending_input_.clear();
  shutdown_after_flush();
}

// ---- streams ----------------------------------------------------------------------------------

void Session::start_stream(int status, std::string_view header_lines, bool has_body) {
  if (!is_open() || phase_ == Phase::kClosing || phase_ == Phase::kStreaming) return;
  ResponseBuilder builder(status, http10_);
  builder.raw_headers(header_lines);
  chunked_ = has_body && !http10_;
  // A close the client asked for is announced; one the gateway chose for a stream that ends
  // only by closing (close_after()) is not.
  if (!has_body) {
    // The head is the whole answer: no framing, and the connection stays as usable as after
    // any complete answer.
    if (close_after_)
      builder.header("Connection", "close");
    else if (http10_)
      builder.header("Connection", "keep-alive");
  } else if (http10_) {
    close_after_ = true;  // the body ends with the connection
    builder.header("Connection", "close");
  } else {
    builder.header("Transfer-Encoding", "chunked");
    if (announce_close_) builder.header("Connection", "close");
  }
  builder.raw_headers(answer_headers_);
  write(base::Frame::copy_of(builder.head()), false);
  count(label_, status);
  answered_ = true;
  awaited_since_ms_ = 0;
  phase_ = Phase::kStreaming;
  if (close_after_) {
    // A long-lived stream keeps no request memory.
    std::string().swap(pending_input_);
    parser_.request() = Request();
  }
}

// Queued like any write; a proxied answer calls send_now() once the upstream read that gave it
// is passed on, so that its chunks leave in one write without waiting for the loop turn's end.
void Session::write_body(std::string_view bytes) {
  if (bytes.empty() || phase_ != Phase::kStreaming) return;  // an empty chunk would end the body
  write(base::Frame::copy_of(bytes), chunked_);
}

void Session::write_frame(const base::FrameRef& frame) {
  if (phase_ == Phase::kStreaming) write(frame, chunked_);
}

// Chunked, the piece is one chunk: its head and the prefix are copied, the frame's bytes and the
// CRLF that follows them in its memory (Frame::chunked()) are shared.
void Session::write_prefixed(std::string_view prefix, const base::FrameRef& frame, size_t offset) {
  if (phase_ != Phase::kStreaming) return;
  std::string_view rest = frame->raw().substr(offset);
  if (prefix.empty() && rest.empty()) return;  // an empty chunk would end the body
  if (!chunked_) {
    write_copy(prefix);
    write_view(frame, rest);
    return;
  }
  char head[256];
  size_t head_length = chunk_head(head, prefix.size() + rest.size());
  std::string_view chunk = frame->chunked();
  if (prefix.size() <= sizeof(head) - head_length) {  // one copied piece for both
    std::memcpy(head + head_length, prefix.data(), prefix.size());
    write_copy({head, head_length + prefix.size()});
  } else {
    write_copy({head, head_length});
    write_copy(prefix);
  }
  // rest, then the CRLF that ends the frame's own chunk.
  write_view(frame, {rest.data(), static_cast<size_t>(chunk.data() + chunk.size() - rest.data())});
}

void Session::end_stream() {
  if (phase_ != Phase::kStreaming) return;
  if (chunked_) write(chunked_end_frame(), false);
  if (close_after_) {
    close_gracefully();
    return;
  }
  reset_for_next_request();
  // Pipelined requests wait until this answer is out: resuming here would run them inside the
  // caller's own callback.
  resume_after_drain_ = true;
}

// ---- timeouts and shutdown --------------------------------------------------------------------

void Session::tick(uint64_t now_ms) {
  if (!is_open()) return;
  if (h2_) {
    h2_->tick(now_ms);
    return;
  }
  switch (phase_) {
    case Phase::kRequest: {
      uint64_t waited = now_ms - phase_started_ms_;
      bool started = parser_.in_progress() || !pending_input_.empty() || !served_any_;
      if (started && waited >= limits_.header_timeout_ms) {
        label_ = "unmatched";
        respond_error(408, "request_timeout", "the request was not complete in time");
      } else if (!started && pending_.empty() && waited >= limits_.idle_timeout_ms) {
        close();
      }
      break;
    }
    case Phase::kClosing:
      if (now_ms - phase_started_ms_ >= kLingerMs) close();
      break;
    case Phase::kWaiting:
    case Phase::kStreaming:
      break;
  }
  if (!is_open()) return;
  uint64_t deadline = limits_.answer_timeout_ms;
  bool late = awaited_since_ms_ && !own_deadline() && now_ms - awaited_since_ms_ >= deadline;
  for (const Pending& p : pending_)
    late = late || (!p.ready && p.deferred_ms && now_ms - p.deferred_ms >= deadline);
  if (late) timed_out();
}

// Whatever comes now is too late to be trusted in order: every waiting request is answered with
// the timeout's error, and the connection closes after the answers.
void Session::timed_out() {
  Timeout timeout = answer_timeout();
  close_after_ = true;
  std::string body = json_error(timeout.code, timeout.message);
  if (!pending_.empty()) {
    for (Pending& p : pending_) {
      if (p.ready) continue;
      p.bytes = build(503, p.http10, p.headers, "application/json", body, "Retry-After: 1\r\n",
                      /*keep_alive=*/false);
      p.ready = true;
      p.close_after = true;
      count(p.label, 503);
    }
    awaited_since_ms_ = 0;
    phase_ = Phase::kWaiting;  // flush_pending() closes at the first of them
    flush_pending();
    return;
  }
  respond(503, "application/json", body, "Retry-After: 1\r\n");
}

void Session::begin_shutdown() {
  shutting_down_ = true;
  if (h2_) {
    h2_->begin_shutdown();
    return;
  }
  switch (phase_) {
    case Phase::kRequest:
      if (!parser_.in_progress() && pending_input_.empty() && idle_output() && pending_.empty())
        close();
      else
        close_after_ = true;
      break;
    case Phase::kWaiting:
    case Phase::kStreaming:
      close_after_ = true;
      break;
    case Phase::kClosing:
      break;
  }
}

}  // namespace ssegw::http
