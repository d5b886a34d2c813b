#include "gateway/http/h2_session.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>

#include "gateway/http/h2_stream.hpp"

namespace ssegw::http {
namespace {

H2Session* self_of(void* user_data) {
  return static_cast<H2Session*>(user_data);
}

H2Stream* stream_of(nghttp2_session* session, int32_t stream_id) {
  return static_cast<H2Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
}

}  // namespace

// nghttp2's callbacks, as static members so that they reach the session's and streams' private
// parts. user_data is the H2Session.
struct H2Session::Callbacks {
  // Frames that are whole: a client sends them; serialised once, copied to the connection.
  static ssize_t send(nghttp2_session*, const uint8_t* data, size_t length, int, void* user) {
    H2Session* self = self_of(user);
    if (self->tcp_.queued_bytes() > kOutputHighWater) return NGHTTP2_ERR_WOULDBLOCK;
    self->tcp_.write_copy({reinterpret_cast<const char*>(data), length});
    return static_cast<ssize_t>(length);
  }

  // A DATA frame of a stream's queued frames (NGHTTP2_DATA_FLAG_NO_COPY): its header, then the
  // queued bytes themselves.
  static int send_data(nghttp2_session*, nghttp2_frame* frame, const uint8_t* frame_header,
                       size_t length, nghttp2_data_source* source, void* user) {
    H2Session* self = self_of(user);
    if (self->tcp_.queued_bytes() > kOutputHighWater) return NGHTTP2_ERR_WOULDBLOCK;
    if (frame->data.padlen != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;  // never asked for
    static_cast<H2Stream*>(source->ptr)->send(frame_header, length);
    return 0;
  }

  static int begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    H2Session* self = self_of(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    if (self->shutting_down_) {
      // GOAWAY may not have reached the client yet.
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    auto* stream = new H2Stream(*self, frame->hd.stream_id, self->now_ms());
    stream->next_ = self->streams_;
    if (self->streams_) self->streams_->prev_ = stream;
    self->streams_ = stream;
    ++self->stream_count_;
    self->handler_.stream_opened();
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, stream);
    return 0;
  }

  static int header(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                    size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void*) {
    // A trailer block (HCAT_HEADERS after the request's own) is dropped, as HTTP/1.1's parser
    // drops trailers: its fields would otherwise join the request's after the request's own
    // were checked (an Authorization only in a trailer, an X-Forwarded-For for the upstream).
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    H2Stream* stream = stream_of(session, frame->hd.stream_id);
    if (!stream) return 0;
    stream->add_header({reinterpret_cast<const char*>(name), namelen},
                       {reinterpret_cast<const char*>(value), valuelen});
    return 0;
  }

  static int data_chunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                        size_t length, void* user) {
    H2Stream* stream = stream_of(session, stream_id);
    if (stream) stream->add_body({reinterpret_cast<const char*>(data), length});
    if (stream && stream->state_ == H2Stream::State::kRequest)
      self_of(user)->body_received(stream, length);
    else  // not kept: the window opens again at once
      nghttp2_session_consume(session, stream_id, length);
    return 0;
  }

  static int frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    H2Session* self = self_of(user);
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      // The client's own reset: nghttp2's rapid-reset limit counts it (before the stream closes).
      if (H2Stream* stream = stream_of(session, frame->hd.stream_id)) stream->client_reset_ = true;
      return 0;
    }
    bool ends = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) || !ends) return 0;
    H2Stream* stream = stream_of(session, frame->hd.stream_id);
    if (!stream) return 0;
    stream->request_ended_ = true;
    if (stream->state_ != H2Stream::State::kRequest) return 0;
    self->served_any_ = true;
    stream->dispatch(self->handler_.open_stream(*stream));
    return 0;
  }

  static int stream_close(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                          void* user) {
    H2Session* self = self_of(user);
    H2Stream* stream = stream_of(session, stream_id);
    if (!stream) return 0;
    // "MadeYouReset" (CVE-2025-8671): a client makes the server reset streams whose work has
    // started (a WINDOW_UPDATE that overflows the stream's window, a frame nghttp2 refuses), and
    // nghttp2 1.52 counts only the resets it receives. The gateway's own resets of dispatched
    // requests spend the same budget; past it, GOAWAY ENHANCE_YOUR_CALM.
    if (error_code != NGHTTP2_NO_ERROR && stream->handler_ && !stream->client_reset_ &&
        !self->spend_reset_token() && !self->closing_) {
      self->handler_.flood();
      self->terminate(NGHTTP2_ENHANCE_YOUR_CALM);
      self->closing_ = true;  // begin_frame() reads no further frame of this input
    }
    nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
    self->unlink(stream);
    delete stream;
    return 0;
  }

  static int frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type == NGHTTP2_GOAWAY)
      self_of(user)->handler_.goaway_sent(frame->goaway.error_code);
    // A complete answer to a request still coming (a 413, a 431): RFC 9113 8.1 lets the server
    // stop the rest with RST_STREAM NO_ERROR, once the answer is out.
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)) {
      H2Stream* stream = stream_of(session, frame->hd.stream_id);
      if (stream && !stream->request_ended_)
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    }
    return 0;
  }

  static int begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
    H2Session* self = self_of(user);
    if (self->closing_) return NGHTTP2_ERR_CALLBACK_FAILURE;  // a flood ended the connection
    bool empty = false;
    switch (hd->type) {
      case NGHTTP2_PING:
      case NGHTTP2_PRIORITY:
        empty = true;
        break;
      case NGHTTP2_SETTINGS:
        empty = !(hd->flags & NGHTTP2_FLAG_ACK);
        break;
      case NGHTTP2_DATA:
      case NGHTTP2_HEADERS:
      case NGHTTP2_CONTINUATION:
        empty = hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM);
        break;
      default:
        break;
    }
    if (empty && !self->spend_empty_frame_token()) {
      self->handler_.flood();
      self->terminate(NGHTTP2_ENHANCE_YOUR_CALM);
      return NGHTTP2_ERR_CALLBACK_FAILURE;  // read no further
    }
    return 0;
  }
};

H2Session::H2Session(net::TcpStream& tcp, const Limits& limits, Handler& handler, uint64_t id)
    : tcp_(tcp),
      limits_(limits),
      handler_(handler),
      id_(id),
      max_buffered_body_(kBufferedBodies * limits.max_body_bytes),
      max_held_header_bytes_(kHeldHeaderLists * limits.max_header_bytes),
      started_ms_(tcp.loop().now_ms()),
      idle_since_ms_(started_ms_),
      empty_refill_ms_(started_ms_),
      reset_refill_ms_(started_ms_) {}

H2Session::~H2Session() {
  closed();
  if (session_) nghttp2_session_del(session_);
}

bool H2Session::start() {
  nghttp2_session_callbacks* callbacks;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) return false;
  nghttp2_session_callbacks_set_send_callback(callbacks, Callbacks::send);
  nghttp2_session_callbacks_set_send_data_callback(callbacks, Callbacks::send_data);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, Callbacks::begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, Callbacks::header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, Callbacks::data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, Callbacks::frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, Callbacks::stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, Callbacks::frame_send);
  nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks, Callbacks::begin_frame);

  nghttp2_option* option;
  if (nghttp2_option_new(&option) != 0) {
    nghttp2_session_callbacks_del(callbacks);
    return false;
  }
  // The flood limits (CVE-2023-44487 rapid reset, CVE-2024-28182 CONTINUATION flood, SETTINGS
  // with many entries, acknowledgements piling up behind a client that does not read).
  nghttp2_option_set_stream_reset_rate_limit(option, kResetBurst, kResetsPerSecond);
  nghttp2_option_set_max_continuations(option, kMaxContinuations);
  nghttp2_option_set_max_settings(option, kMaxSettings);
  nghttp2_option_set_max_outbound_ack(option, kMaxOutboundAcks);
  // Closed streams are not kept for a priority tree the gateway does not use.
  nghttp2_option_set_no_closed_streams(option, 1);
  // The windows open again as request bodies leave memory, not as they arrive (body_received()).
  nghttp2_option_set_no_auto_window_update(option, 1);
  int r = nghttp2_session_server_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  if (r != 0) {
    session_ = nullptr;
    return false;
  }
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.initial_window_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(limits_.max_header_bytes)},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings,
                              sizeof(settings) / sizeof(settings[0])) != 0)
    return false;
  // The connection's own window too: the initial one (65535) is fixed by the RFC.
  if (limits_.initial_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE)
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(limits_.initial_window_size));
  handler_.http2_started();
  tcp_.want_flush();
  return true;
}

// ---- input ------------------------------------------------------------------------------------

void H2Session::on_data(const char* data, size_t length) {
  if (closing_ || !session_) return;
  ssize_t r = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), length);
  if (r < 0) {
    // A connection error nghttp2 could not answer by itself (it queues GOAWAY for most), a
    // flood (NGHTTP2_ERR_FLOODED: it queued GOAWAY) or our own refusal (begin_frame).
    if (r == NGHTTP2_ERR_FLOODED) handler_.flood();
    if (!goaway_submitted_ && r != NGHTTP2_ERR_CALLBACK_FAILURE)
      terminate(r == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    closing_ = true;
  }
  after_input();
}

void H2Session::after_input() {
  tcp_.want_flush();
}

bool H2Session::spend_reset_token() {
  uint64_t now = now_ms();
  uint64_t refill = (now - reset_refill_ms_) * kResetsPerSecond / 1000;
  if (refill > 0) {
    reset_tokens_ = static_cast<uint32_t>(std::min<uint64_t>(kResetBurst, reset_tokens_ + refill));
    reset_refill_ms_ = now;
  }
  if (reset_tokens_ == 0) return false;
  --reset_tokens_;
  return true;
}

bool H2Session::spend_empty_frame_token() {
  uint64_t now = now_ms();
  uint64_t refill = (now - empty_refill_ms_) * kEmptyFramesPerSecond / 1000;
  if (refill > 0) {
    empty_tokens_ =
        static_cast<uint32_t>(std::min<uint64_t>(kEmptyFrameBurst, empty_tokens_ + refill));
    empty_refill_ms_ = now;
  }
  if (empty_tokens_ == 0) return false;
  --empty_tokens_;
  return true;
}

// A request body stays in memory until its request is complete. Past kBufferedBodies bodies'
// worth on the connection, the client's windows stay shut (no WINDOW_UPDATE) until one leaves:
// 128 streams could otherwise each hold limits.max_event_bytes.
void H2Session::body_received(H2Stream* stream, size_t length) {
  stream->buffered_ += length;
  stream->unconsumed_ += length;
  body_bytes_ += length;
  if (body_bytes_ <= max_buffered_body_) {
    nghttp2_session_consume(session_, stream->id_, stream->unconsumed_);
    stream->unconsumed_ = 0;
  }
}

void H2Session::body_done(H2Stream* stream, bool open) {
  body_bytes_ -= stream->buffered_;
  stream->buffered_ = 0;
  if (stream->unconsumed_) {
    if (open)
      nghttp2_session_consume(session_, stream->id_, stream->unconsumed_);
    else
      nghttp2_session_consume_connection(session_, stream->unconsumed_);
    stream->unconsumed_ = 0;
  }
  for (H2Stream* s = streams_; s && body_bytes_ <= max_buffered_body_; s = s->next_) {
    if (!s->unconsumed_) continue;
    nghttp2_session_consume(session_, s->id_, s->unconsumed_);
    s->unconsumed_ = 0;
  }
  tcp_.want_flush();
}

// ---- output -----------------------------------------------------------------------------------

void H2Session::send() {
  // After close_when_done() nghttp2 may still hold DATA sources of streams that are gone.
  if (!session_ || in_send_ || closing_since_ms_) return;
  in_send_ = true;
  int r = nghttp2_session_send(session_);
  in_send_ = false;
  if (r != 0) {
    tcp_.close();
    return;
  }
  after_send();
}

// Handlers hear of what their streams sent once per pass, outside nghttp2's callbacks: what they
// write then (a proxied answer's next chunk) goes in the next pass of the same turn.
// Nothing here asks for another pass for what nghttp2 still holds: a stream it holds back waits
// for the client's WINDOW_UPDATE (input asks for the pass), and frames held back by the
// connection's high-water mark wait for the socket (on_output_progress()). Asking regardless
// would spin the loop's flush pass.
void H2Session::after_send() {
  for (H2Stream* s = streams_; s; s = s->next_) {
    // An answer that is all queued needs its request no more: a client that keeps the window
    // shut must not pin the request's headers and body with it.
    if (!s->request_released_ &&
        (s->state_ == H2Stream::State::kAnswered || s->state_ == H2Stream::State::kReset))
      s->release_request();
    if (!s->notify_ || !s->handler_) continue;
    s->notify_ = false;
    if (s->queued_bytes_ == 0)
      s->handler_->drained();
    else
      s->handler_->progress();
  }
  if (!tcp_.is_open()) return;
  if (shutting_down_ && !goaway_submitted_) {
    bool busy = false;
    for (H2Stream* s = streams_; s; s = s->next_)
      busy = busy || s->state_ == H2Stream::State::kStreaming || s->queued_bytes_ > 0;
    if (!busy) {
      goaway_submitted_ = true;
      nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                            nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                            nullptr, 0);
      tcp_.want_flush();
    }
  }
  bool done = !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
  if (done || (goaway_submitted_ && stream_count_ == 0 && !nghttp2_session_want_write(session_)) ||
      closing_)
    close_when_done();
}

// The last GOAWAY is out (or the connection is past saving): nghttp2 reads and writes nothing
// more, so the streams left (after a connection error) go now rather than when the client
// closes, and their subscriptions and upstream requests with them.
void H2Session::close_when_done() {
  if (closing_since_ms_) return;
  closing_ = true;
  closing_since_ms_ = now_ms();
  tcp_.shutdown_after_flush();
  closed();
}

void H2Session::terminate(uint32_t error_code) {
  goaway_submitted_ = true;
  nghttp2_session_terminate_session(session_, error_code);
  tcp_.want_flush();
}

void H2Session::resume(H2Stream* stream) {
  nghttp2_session_resume_data(session_, stream->id_);
  tcp_.want_flush();
}

// ---- streams ----------------------------------------------------------------------------------

void H2Session::unlink(H2Stream* stream) {
  if (session_) body_done(stream, /*open=*/false);
  header_bytes_ -= stream->header_bytes_;
  stream->header_bytes_ = 0;
  if (stream->prev_) stream->prev_->next_ = stream->next_;
  if (stream->next_) stream->next_->prev_ = stream->prev_;
  if (streams_ == stream) streams_ = stream->next_;
  stream->prev_ = stream->next_ = nullptr;
  --stream_count_;
  if (stream_count_ == 0) idle_since_ms_ = now_ms();
  stream->lifetime_.reset();
  if (stream->handler_) stream->handler_->closed();
  handler_.stream_closed();
}

void H2Session::closed() {
  while (streams_) {
    H2Stream* stream = streams_;
    if (session_) nghttp2_session_set_stream_user_data(session_, stream->id_, nullptr);
    unlink(stream);
    delete stream;
  }
}

// ---- timeouts and shutdown --------------------------------------------------------------------

void H2Session::tick(uint64_t now_ms) {
  if (!tcp_.is_open() || !session_) return;
  if (closing_since_ms_) {
    if (now_ms - closing_since_ms_ >= kLingerMs) tcp_.close();
    return;
  }
  // The whole connection's output: a client that reads nothing holds every stream's frames.
  uint64_t written = tcp_.bytes_written();
  if (tcp_.idle_output() || written != stall_written_) {
    stall_written_ = written;
    stalled_since_ms_ = 0;
  } else if (!stalled_since_ms_) {
    stalled_since_ms_ = now_ms;
  } else if (now_ms - stalled_since_ms_ >= limits_.stall_timeout_ms) {
    tcp_.close();
    return;
  }
  for (H2Stream* s = streams_; s;) {
    H2Stream* next = s->next_;  // nothing here deletes a stream: only nghttp2's callbacks do
    if (s->state_ == H2Stream::State::kRequest) {
      if (now_ms - s->started_ms_ >= limits_.header_timeout_ms)
        s->refuse(408, "request_timeout", "the request was not complete in time");
    } else if (s->handler_) {
      bool waiting =
          s->state_ == H2Stream::State::kAwaiting || s->state_ == H2Stream::State::kDeferred;
      if (waiting && !s->handler_->own_deadline() &&
          now_ms - s->awaited_since_ms_ >= limits_.answer_timeout_ms) {
        StreamHandler::Timeout timeout = s->handler_->answer_timeout();
        s->state_ = H2Stream::State::kAwaiting;  // complete() of the slot is now too late
        s->respond_error(503, timeout.code, timeout.message, "Retry-After: 1\r\n");
      } else {
        s->handler_->tick(now_ms);
      }
    }
    stream_stall(s, now_ms);
    s = next;
  }
  if (stream_count_ == 0 && !goaway_submitted_) {
    uint64_t limit = served_any_ ? limits_.idle_timeout_ms : limits_.header_timeout_ms;
    if (now_ms - idle_since_ms_ >= limit) {
      goaway_submitted_ = true;
      nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                            nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                            nullptr, 0);
      closing_ = true;
    }
  }
  tcp_.want_flush();
}

// A stream's own output, behind its own window: the connection's stall check above sees only
// bytes the kernel will not take, and a client that shuts one stream's window (or all of them,
// SETTINGS_INITIAL_WINDOW_SIZE 0) while reading the socket would hold whole answers for as long
// as it likes. Only answers that are all queued (kAnswered, kRefused): a streamed answer's
// handler has a stall check of its own (the SSE streams' slow_consumer.stall_timeout, a route's
// routes[].stall_timeout), which this must not cut short.
void H2Session::stream_stall(H2Stream* s, uint64_t now_ms) {
  bool whole = s->state_ == H2Stream::State::kAnswered || s->state_ == H2Stream::State::kRefused;
  if (!whole || s->queued_bytes_ == 0 || s->sent_bytes_ != s->stall_sent_) {
    s->stall_sent_ = s->sent_bytes_;
    s->stalled_since_ms_ = 0;
  } else if (!s->stalled_since_ms_) {
    s->stalled_since_ms_ = now_ms;
  } else if (now_ms - s->stalled_since_ms_ >= limits_.stall_timeout_ms) {
    handler_.stream_stalled();
    s->abort();
  }
}

void H2Session::begin_shutdown() {
  if (shutting_down_ || !session_) return;
  shutting_down_ = true;
  for (H2Stream* s = streams_; s;) {
    H2Stream* next = s->next_;
    if (s->handler_) s->handler_->end_for_shutdown();
    s = next;
  }
  tcp_.want_flush();
}

}  // namespace ssegw::http
