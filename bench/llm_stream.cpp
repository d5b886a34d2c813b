#include "bench/llm_stream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string_view>

#include "bench/llm_run.hpp"
#include "bench/llm_stamp.hpp"

namespace bench {

void LlmStream::init(LlmRun* run, uint32_t source_ip) {
  run_ = run;
  source_ip_ = static_cast<uint8_t>(source_ip);
  sse_.set_handler(&LlmStream::on_event, this);
}

void LlmStream::start(uint64_t now_ns) {
  if (state_ != State::Idle) return;
  ++run_->mutable_stats().started;
  started_ns_ = now_ns;
  state_ = State::Connecting;
  static const llhttp_settings_t callbacks = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_headers_complete = &LlmStream::on_headers_complete;
    s.on_body = &LlmStream::on_body;
    s.on_message_complete = &LlmStream::on_message_complete;
    return s;
  }();
  llhttp_init(&http_, HTTP_RESPONSE, &callbacks);
  http_.data = this;

  // As in Subscriber::start: IP_BIND_ADDRESS_NO_PORT before the bind lets the port be chosen per
  // (source, destination) pair at connect time.
  if (uv_tcp_init_ex(run_->loop(), &tcp_, AF_INET) != 0) {
    fail(Failure::Connect);
    return;
  }
  handle_open_ = true;
  tcp_.data = this;
  int rc = 0;
  if (source_ip_ != 0) {
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    }
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | source_ip_);
    rc = uv_tcp_bind(&tcp_, reinterpret_cast<const sockaddr*>(&src), 0);
  }
  if (rc == 0) {
    connect_req_.data = this;
    rc = uv_tcp_connect(&connect_req_, &tcp_,
                        reinterpret_cast<const sockaddr*>(&run_->options().llm_url.addr),
                        &LlmStream::on_connect);
  }
  if (rc != 0) fail(Failure::Connect);
}

void LlmStream::check_timeout(uint64_t now_ns, uint64_t timeout_ns) {
  if (pending() && now_ns - started_ns_ >= timeout_ns) fail(Failure::Timeout);
}

void LlmStream::abort() {
  if (active()) fail(Failure::Unfinished);
}

void LlmStream::complete() {
  if (!active()) return;
  LlmStats& s = run_->mutable_stats();
  ++s.completed;
  if (!terminated_) ++s.no_terminator;
  if (chunks_ < run_->options().tokens) ++s.short_streams;
  resolve();
}

void LlmStream::fail(Failure why) {
  if (!active()) return;
  LlmStats& s = run_->mutable_stats();
  switch (why) {
    case Failure::Connect:
      ++s.failed_connect;
      break;
    case Failure::Timeout:
      ++s.failed_timeout;
      break;
    case Failure::Status:
      ++s.failed_status;
      break;
    case Failure::Closed:
      ++s.failed_closed;
      break;
    case Failure::Truncated:
      ++s.failed_truncated;
      break;
    case Failure::Protocol:
      ++s.failed_protocol;
      break;
    case Failure::Unfinished:
      ++s.failed_unfinished;
      break;
  }
  ++s.failed;
  resolve();
}

void LlmStream::resolve() {
  LlmStats& s = run_->mutable_stats();
  if (terminated_) ++s.terminated;
  s.comments += sse_.comments();
  bool was_pending = pending();
  close();
  run_->on_resolved(was_pending);
}

void LlmStream::close() {
  if (state_ == State::Idle || !handle_open_) {
    state_ = State::Closed;
    return;
  }
  if (state_ == State::Closing || state_ == State::Closed) return;
  state_ = State::Closing;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &LlmStream::on_close);
}

void LlmStream::on_close(uv_handle_t* handle) {
  auto* self = static_cast<LlmStream*>(handle->data);
  self->handle_open_ = false;
  self->state_ = State::Closed;
}

void LlmStream::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<LlmStream*>(req->data);
  if (self->state_ != State::Connecting) return;  // closed meanwhile (timeout, stop)
  if (status != 0) {
    self->fail(Failure::Connect);
    return;
  }
  self->state_ = State::AwaitingHead;
  auto* stream = reinterpret_cast<uv_stream_t*>(&self->tcp_);
  const std::string& request = self->run_->request();
  // The request is shared by every stream and lives as long as the run.
  uv_buf_t buf =
      uv_buf_init(const_cast<char*>(request.data()), static_cast<unsigned>(request.size()));
  self->write_req_.data = self;
  if (uv_write(&self->write_req_, stream, &buf, 1, &LlmStream::on_write) != 0 ||
      uv_read_start(stream, &LlmStream::on_alloc, &LlmStream::on_read) != 0) {
    self->fail(Failure::Connect);
  }
}

void LlmStream::on_write(uv_write_t* req, int status) {
  auto* self = static_cast<LlmStream*>(req->data);
  if (status != 0 && self->pending()) self->fail(Failure::Connect);
}

void LlmStream::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  // One buffer per loop: each read is parsed to the end before the next one is allocated.
  auto* self = static_cast<LlmStream*>(handle->data);
  *buf = uv_buf_init(self->run_->read_buffer(), LlmRun::kReadBuffer);
}

void LlmStream::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<LlmStream*>(stream->data);
  if (self->state_ != State::AwaitingHead && self->state_ != State::Streaming) return;
  if (nread > 0) {
    self->run_->mutable_stats().bytes += static_cast<uint64_t>(nread);
    self->run_->now_ns = uv_hrtime();
    llhttp_errno_t err = llhttp_execute(&self->http_, buf->base, static_cast<size_t>(nread));
    if (!self->active()) return;  // a callback resolved the stream (a bad status)
    if (err == HPE_OK) return;
    if (err == HPE_PAUSED && self->body_ended_) {
      self->complete();
    } else {
      self->fail(Failure::Protocol);
    }
    return;
  }
  if (nread == 0) return;
  // EOF or a read error. A close-delimited body (HTTP/1.0, no chunking) ends here.
  if (nread == UV_EOF) llhttp_finish(&self->http_);
  if (self->body_ended_) {
    self->complete();
  } else if (self->state_ == State::Streaming) {
    self->fail(Failure::Truncated);
  } else {
    self->fail(Failure::Closed);
  }
}

int LlmStream::on_headers_complete(llhttp_t* parser) {
  auto* self = static_cast<LlmStream*>(parser->data);
  if (self->state_ != State::AwaitingHead) return -1;
  if (parser->status_code != 200) {
    self->run_->mutable_stats().last_bad_status = parser->status_code;
    self->fail(Failure::Status);
    return -1;
  }
  self->state_ = State::Streaming;
  ++self->run_->mutable_stats().headers;
  self->run_->on_head();
  return 0;
}

int LlmStream::on_body(llhttp_t* parser, const char* at, size_t len) {
  auto* self = static_cast<LlmStream*>(parser->data);
  if (self->state_ == State::Streaming) self->sse_.feed(at, len);
  return 0;
}

int LlmStream::on_message_complete(llhttp_t* parser) {
  auto* self = static_cast<LlmStream*>(parser->data);
  self->body_ended_ = true;
  return HPE_PAUSED;  // one response per connection: anything after it is not ours to parse
}

void LlmStream::on_event(void* context, const SseEvent& event) {
  static_cast<LlmStream*>(context)->handle_event(event);
}

void LlmStream::handle_event(const SseEvent& event) {
  LlmStats& s = run_->mutable_stats();
  uint64_t stamp = 0;
  if (is_llm_terminator(event.type, event.data_prefix)) {
    terminated_ = true;
  } else if (event.type == "error" || event.data_prefix.starts_with("{\"error\"")) {
    ++s.error_events;
  } else if (find_llm_stamp(event.data_prefix, stamp)) {
    uint64_t now = run_->now_ns;
    if (stamp > now) ++s.future_stamps;
    s.latency.record(now > stamp ? now - stamp : 0);
    if (chunks_ == 0) s.first_chunk.record(now - started_ns_);
    if (s.first_chunk_ns == 0) s.first_chunk_ns = now;
    s.last_chunk_ns = now;
    ++chunks_;
    ++s.chunks;
  } else {
    ++s.other_events;
  }
}

}  // namespace bench
