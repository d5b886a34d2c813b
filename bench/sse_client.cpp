#include "bench/sse_client.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <utility>

#include "bench/h2_connection.hpp"

namespace bench {

const llhttp_settings_t SseClient::kSettings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_headers_complete = &SseClient::on_headers_complete;
  s.on_body = &SseClient::on_http_body;
  s.on_message_complete = &SseClient::on_message_complete;
  return s;
}();

int bind_source(uv_tcp_t* tcp, uint8_t source_ip) {
  if (source_ip == 0) return 0;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd) == 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  }
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl((127u << 24) | source_ip);
  return uv_tcp_bind(tcp, reinterpret_cast<const sockaddr*>(&src), 0);
}

void SseClient::connect(Loop& loop, const sockaddr_in& to, const std::string& request,
                        uint8_t source_ip, uint64_t now_ns) {
  loop_ = &loop;
  request_ = &request;
  started_ns_ = now_ns;
  state_ = State::Connecting;
  llhttp_init(&http_, HTTP_RESPONSE, &kSettings);
  http_.data = this;

  // uv_tcp_init_ex creates the socket now, so IP_BIND_ADDRESS_NO_PORT can go on before the bind:
  // the port is then chosen at connect time per (source, destination) pair instead of being
  // reserved at bind time for the source address alone.
  if (uv_tcp_init_ex(loop.uv, &tcp_, AF_INET) != 0) {
    on_connect_failed();
    return;
  }
  handle_open_ = true;
  tcp_.data = this;
  int rc = bind_source(&tcp_, source_ip);
  if (rc == 0) {
    connect_req_.data = this;
    rc = uv_tcp_connect(&connect_req_, &tcp_, reinterpret_cast<const sockaddr*>(&to),
                        &SseClient::on_connect);
  }
  if (rc != 0) on_connect_failed();
}

void SseClient::connect_h2(Loop& loop, H2Connection& connection, const std::string& path,
                           uint64_t now_ns) {
  loop_ = &loop;
  started_ns_ = now_ns;
  state_ = State::Connecting;
  h2_ = &connection;
  connection.attach(*this, path);
}

void SseClient::close_handle() {
  if (state_ == State::Closing || state_ == State::Closed) return;
  // A stream of an HTTP/2 connection is reset; it has no handle of its own, so it is Closed now.
  if (H2Connection* connection = std::exchange(h2_, nullptr)) connection->detach(*this);
  if (!handle_open_) {
    state_ = State::Closed;
    return;
  }
  state_ = State::Closing;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &SseClient::on_close);
}

void SseClient::on_close(uv_handle_t* handle) {
  auto* self = static_cast<SseClient*>(handle->data);
  self->handle_open_ = false;
  self->state_ = State::Closed;
}

void SseClient::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<SseClient*>(req->data);
  if (self->state_ != State::Connecting) return;  // closed meanwhile (timeout, stop)
  if (status != 0) {
    self->on_connect_failed();
    return;
  }
  self->state_ = State::AwaitingHead;
  auto* stream = reinterpret_cast<uv_stream_t*>(&self->tcp_);
  const std::string& request = *self->request_;
  uv_buf_t buf =
      uv_buf_init(const_cast<char*>(request.data()), static_cast<unsigned>(request.size()));
  self->write_req_.data = self;
  if (uv_write(&self->write_req_, stream, &buf, 1, &SseClient::on_write) != 0 ||
      uv_read_start(stream, &SseClient::on_alloc, &SseClient::on_read) != 0) {
    self->on_connect_failed();
  }
}

void SseClient::on_write(uv_write_t* req, int status) {
  auto* self = static_cast<SseClient*>(req->data);
  if (status != 0 && self->state_ == State::AwaitingHead) self->on_connect_failed();
}

void SseClient::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  Loop& loop = *static_cast<SseClient*>(handle->data)->loop_;
  *buf = uv_buf_init(loop.read_buffer.get(), Loop::kReadBuffer);
}

void SseClient::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<SseClient*>(stream->data);
  if (!self->reading()) return;
  if (nread > 0) {
    self->loop_->bytes += static_cast<uint64_t>(nread);
    self->loop_->now_ns = uv_hrtime();
    llhttp_errno_t err = llhttp_execute(&self->http_, buf->base, static_cast<size_t>(nread));
    if (!self->reading()) return;  // a hook ended it (a bad status)
    if (err == HPE_OK) return;
    self->on_end(err == HPE_PAUSED && self->body_ended_ ? End::Complete : End::Protocol);
    return;
  }
  if (nread == 0) return;
  // EOF or a read error. A close-delimited body (HTTP/1.0, no chunking) ends here.
  if (nread == UV_EOF) llhttp_finish(&self->http_);
  self->on_end(self->body_ended_ ? End::Complete : End::Closed);
}

int SseClient::on_headers_complete(llhttp_t* parser) {
  auto* self = static_cast<SseClient*>(parser->data);
  if (self->state_ != State::AwaitingHead) return -1;
  if (parser->status_code != 200) {
    self->on_bad_status(parser->status_code);
    return -1;
  }
  self->state_ = State::Streaming;
  self->on_streaming();
  return 0;
}

int SseClient::on_http_body(llhttp_t* parser, const char* at, size_t len) {
  auto* self = static_cast<SseClient*>(parser->data);
  if (self->state_ == State::Streaming) self->on_body(at, len);
  return 0;
}

int SseClient::on_message_complete(llhttp_t* parser) {
  static_cast<SseClient*>(parser->data)->body_ended_ = true;
  return HPE_PAUSED;  // one response per connection: anything after it is not ours to parse
}

}  // namespace bench
