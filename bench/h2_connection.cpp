#include "bench/h2_connection.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace bench {
namespace {

// The client's windows: large, so that the bench measures the server, not flow control.
constexpr int32_t kStreamWindow = 16 * 1024 * 1024;
constexpr int32_t kConnectionWindow = 1 << 30;

nghttp2_nv header(const char* name, const std::string& value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), strlen(name), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

H2Connection::H2Connection(SseClient::Loop& loop, const sockaddr_in& to, std::string authority,
                           uint8_t source_ip)
    : loop_(loop), to_(to), authority_(std::move(authority)), source_ip_(source_ip) {}

H2Connection::~H2Connection() {
  if (session_) nghttp2_session_del(session_);
}

void H2Connection::attach(SseClient& client, const std::string& path) {
  waiting_[&client] = path;
  if (state_ == State::Idle) start_connect();
  if (state_ == State::Open) {
    submit(client);
    flush();
  } else if (state_ != State::Connecting) {
    waiting_.erase(&client);
    client.on_connect_failed();
  }
}

void H2Connection::detach(SseClient& client) {
  waiting_.erase(&client);
  for (auto it = streams_.begin(); it != streams_.end(); ++it) {
    if (it->second != &client) continue;
    if (state_ == State::Open)
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, it->first, NGHTTP2_CANCEL);
    streams_.erase(it);
    flush();
    return;
  }
}

void H2Connection::start_connect() {
  state_ = State::Connecting;
  if (uv_tcp_init_ex(loop_.uv, &tcp_, AF_INET) != 0) {
    state_ = State::Closed;
    return;
  }
  tcp_.data = this;
  int rc = bind_source(&tcp_, source_ip_);
  connect_req_.data = this;
  if (rc == 0)
    rc = uv_tcp_connect(&connect_req_, &tcp_, reinterpret_cast<const sockaddr*>(&to_),
                        &H2Connection::on_connect);
  if (rc != 0) {
    // Fails every client attached so far (the caller's too) once the handle has closed.
    state_ = State::Closing;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &H2Connection::on_close);
  }
}

void H2Connection::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<H2Connection*>(req->data);
  if (self->state_ != State::Connecting) return;
  if (status != 0) {
    self->close();
    return;
  }
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &H2Connection::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &H2Connection::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks,
                                                            &H2Connection::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &H2Connection::on_stream_close);
  nghttp2_session_client_new(&self->session_, callbacks, self);
  nghttp2_session_callbacks_del(callbacks);
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100000},
                                       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
                                       {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  nghttp2_submit_settings(self->session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(self->session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  self->state_ = State::Open;
  std::vector<SseClient*> waiting;
  for (auto& [client, path] : self->waiting_) waiting.push_back(client);
  for (SseClient* client : waiting) self->submit(*client);
  auto* stream = reinterpret_cast<uv_stream_t*>(&self->tcp_);
  if (uv_read_start(stream, &H2Connection::on_alloc, &H2Connection::on_read) != 0) {
    self->close();
    return;
  }
  self->flush();
}

void H2Connection::submit(SseClient& client) {
  auto it = waiting_.find(&client);
  if (it == waiting_.end()) return;
  std::string path = std::move(it->second);
  waiting_.erase(it);
  static const std::string kGet = "GET", kHttp = "http", kAccept = "text/event-stream",
                           kAgent = "ssegw-bench";
  nghttp2_nv headers[] = {header(":method", kGet),          header(":scheme", kHttp),
                          header(":authority", authority_), header(":path", path),
                          header("accept", kAccept),        header("user-agent", kAgent)};
  int32_t id =
      nghttp2_submit_request(session_, nullptr, headers, std::size(headers), nullptr, nullptr);
  if (id < 0) {
    client.on_connect_failed();
    return;
  }
  client.state_ = SseClient::State::AwaitingHead;
  streams_[id] = &client;
}

SseClient* H2Connection::client_of(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second;
}

int H2Connection::on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                            size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                            void* self) {
  if (frame->hd.type != NGHTTP2_HEADERS || namelen != 7 || memcmp(name, ":status", 7) != 0)
    return 0;
  static_cast<H2Connection*>(self)->status_[frame->hd.stream_id] =
      atoi(std::string(reinterpret_cast<const char*>(value), valuelen).c_str());
  return 0;
}

int H2Connection::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* context) {
  auto* self = static_cast<H2Connection*>(context);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_RESPONSE) return 0;
  SseClient* client = self->client_of(frame->hd.stream_id);
  if (!client || client->state_ != SseClient::State::AwaitingHead) return 0;
  int status = self->status_[frame->hd.stream_id];
  self->status_.erase(frame->hd.stream_id);
  if (status != 200) {
    client->on_bad_status(status);  // closes the client, which detaches (RST_STREAM)
    return 0;
  }
  client->state_ = SseClient::State::Streaming;
  client->on_streaming();
  return 0;
}

int H2Connection::on_data_chunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                                size_t len, void* self) {
  SseClient* client = static_cast<H2Connection*>(self)->client_of(stream_id);
  if (client && client->state_ == SseClient::State::Streaming)
    client->on_body(reinterpret_cast<const char*>(data), len);
  return 0;
}

int H2Connection::on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                  void* context) {
  auto* self = static_cast<H2Connection*>(context);
  self->status_.erase(stream_id);
  auto it = self->streams_.find(stream_id);
  if (it == self->streams_.end()) return 0;
  SseClient* client = it->second;
  self->streams_.erase(it);
  client->h2_ = nullptr;  // nothing to reset any more
  client->on_end(error_code == NGHTTP2_NO_ERROR && client->state_ == SseClient::State::Streaming
                     ? SseClient::End::Complete
                     : SseClient::End::Closed);
  return 0;
}

void H2Connection::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<H2Connection*>(handle->data);
  *buf = uv_buf_init(self->loop_.read_buffer.get(), SseClient::Loop::kReadBuffer);
}

void H2Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<H2Connection*>(stream->data);
  if (self->state_ != State::Open) return;
  if (nread > 0) {
    self->loop_.bytes += static_cast<uint64_t>(nread);
    self->loop_.now_ns = uv_hrtime();
    // nghttp2's callbacks may close clients, which reset their streams; the bytes that makes
    // go out after the whole read (a session may not send from inside its own callbacks).
    self->in_recv_ = true;
    ssize_t used = nghttp2_session_mem_recv(
        self->session_, reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread));
    self->in_recv_ = false;
    if (used < 0) {
      self->fail_all(SseClient::End::Protocol);
      return;
    }
    self->flush();
    return;
  }
  if (nread < 0) self->fail_all(SseClient::End::Closed);
}

void H2Connection::flush() {
  if (state_ != State::Open || in_recv_) return;
  for (;;) {
    const uint8_t* data;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) break;
    out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  if (writing_ || out_.empty()) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
  int written = uv_try_write(stream, &buf, 1);
  if (written > 0) out_.erase(0, static_cast<size_t>(written));
  if (out_.empty()) return;
  if (written < 0 && written != UV_EAGAIN) {
    fail_all(SseClient::End::Closed);
    return;
  }
  in_flight_.swap(out_);
  out_.clear();
  buf = uv_buf_init(in_flight_.data(), static_cast<unsigned>(in_flight_.size()));
  write_req_.data = this;
  if (uv_write(&write_req_, stream, &buf, 1, &H2Connection::on_write) != 0) {
    fail_all(SseClient::End::Closed);
    return;
  }
  writing_ = true;
}

void H2Connection::on_write(uv_write_t* req, int status) {
  auto* self = static_cast<H2Connection*>(req->data);
  self->writing_ = false;
  self->in_flight_.clear();
  if (self->state_ != State::Open) return;
  if (status != 0) {
    self->fail_all(SseClient::End::Closed);
    return;
  }
  self->flush();
}

// Every attached stream ends through its own hook; then the socket closes.
void H2Connection::fail_all(SseClient::End how) {
  std::unordered_map<int32_t, SseClient*> streams;
  streams.swap(streams_);
  close();
  for (auto& [id, client] : streams) {
    client->h2_ = nullptr;
    client->on_end(how);
  }
}

void H2Connection::close() {
  if (state_ == State::Closing || state_ == State::Closed || state_ == State::Idle) {
    if (state_ == State::Idle) state_ = State::Closed;
    return;
  }
  state_ = State::Closing;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &H2Connection::on_close);
}

void H2Connection::on_close(uv_handle_t* handle) {
  auto* self = static_cast<H2Connection*>(handle->data);
  self->state_ = State::Closed;
  // Clients still waiting for the connection never got a stream.
  std::unordered_map<SseClient*, std::string> waiting;
  waiting.swap(self->waiting_);
  for (auto& [client, path] : waiting) {
    client->h2_ = nullptr;
    if (client->state_ == SseClient::State::Connecting) client->on_connect_failed();
  }
}

}  // namespace bench
