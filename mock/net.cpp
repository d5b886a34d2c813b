#include "mock/net.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ssegw::mock {
namespace {

// Every read is handled before the next one and the mock has one thread, so all streams read
// into the same buffer.
char g_read_buffer[64 * 1024];

// A socket bound to `ai` with SO_REUSEADDR (a restarted mock gets its port back at once), or
// -errno.
int bound_socket(const addrinfo& ai) {
  int fd = socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, ai.ai_addr, ai.ai_addrlen) == 0) return fd;
  int err = errno;
  ::close(fd);
  return -err;
}

}  // namespace

// ---- Stream -----------------------------------------------------------------------------------

Stream::Stream(uv_loop_t* loop) : loop_(loop) {
  tcp_.data = this;
  write_req_.data = this;
  shutdown_req_.data = this;
}

int Stream::accept(uv_stream_t* server) {
  int r = uv_tcp_init(loop_, &tcp_);
  if (r != 0) return r;
  initialized_ = true;
  r = uv_accept(server, stream());
  if (r == 0) uv_tcp_nodelay(&tcp_, 1);  // every token is its own segment, as an LLM sends it
  return r;
}

void Stream::start_reading() {
  if (!is_open()) return;
  auto alloc = [](uv_handle_t*, size_t, uv_buf_t* buf) {
    *buf = uv_buf_init(g_read_buffer, sizeof g_read_buffer);
  };
  uv_read_start(stream(), alloc, [](uv_stream_t* tcp, ssize_t nread, const uv_buf_t* buf) {
    auto* self = static_cast<Stream*>(tcp->data);
    if (nread < 0) {
      self->on_read_end();
    } else if (nread > 0) {
      self->on_data(buf->base, static_cast<size_t>(nread));
      self->flush();
    }
  });
}

void Stream::write(std::string_view bytes) {
  if (is_open()) out_.append(bytes);
}

void Stream::flush() {
  while (is_open() && !writing_ && !out_.empty()) {
    uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
    int n = uv_try_write(stream(), &buf, 1);
    if (n < 0 && n != UV_EAGAIN) {
      close();
      return;
    }
    if (n > 0) out_.erase(0, static_cast<size_t>(n));
    if (out_.empty()) {
      drained();  // which may write more: the loop goes on
      continue;
    }
    // The socket is full: libuv writes the rest when it can.
    in_flight_.swap(out_);
    buf = uv_buf_init(in_flight_.data(), static_cast<unsigned>(in_flight_.size()));
    auto done = [](uv_write_t* req, int status) {
      static_cast<Stream*>(req->data)->written(status);
    };
    if (uv_write(&write_req_, stream(), &buf, 1, done) != 0) {
      close();
      return;
    }
    writing_ = true;
  }
}

void Stream::written(int status) {
  writing_ = false;
  in_flight_.clear();
  if (status < 0) {
    close();  // UV_ECANCELED once close() has begun: nothing else to do
    return;
  }
  if (out_.empty()) drained();
  flush();
}

void Stream::drained() {
  if (shutdown_wanted_ && !shutdown_started_) {
    shutdown_started_ = true;
    auto done = [](uv_shutdown_t* req, int status) {
      if (status < 0) static_cast<Stream*>(req->data)->close();
    };
    if (uv_shutdown(&shutdown_req_, stream(), done) != 0) close();
  }
  if (is_open()) on_drained();
}

void Stream::shutdown_after_flush() {
  shutdown_wanted_ = true;
  if (queued_bytes() == 0) drained();
}

void Stream::close() {
  if (state_ != State::kOpen) return;
  state_ = State::kClosing;
  if (!initialized_) {  // uv_tcp_init failed: libuv never saw the handle
    on_close();
    delete this;
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* handle) {
    auto* self = static_cast<Stream*>(handle->data);
    self->on_close();
    delete self;
  });
}

// ---- Listener ---------------------------------------------------------------------------------

Listener::Listener(uv_loop_t* loop, OnConnection on_connection)
    : loop_(loop), on_connection_(std::move(on_connection)) {
  tcp_.data = this;
}

bool Listener::listen(const std::string& host, uint16_t port, std::string& error) {
  // getaddrinfo and bind(2) by hand: libuv binds one handle to one address, and a name such as
  // localhost has several, of which the first may not be bindable (::1 without IPv6).
  addrinfo hints{};  // any family; the host is never empty, so AI_PASSIVE would change nothing
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    error = "cannot resolve " + host + ": " + gai_strerror(rc);
    return false;
  }
  int fd = -EINVAL;
  for (addrinfo* ai = found; ai && fd < 0; ai = ai->ai_next) fd = bound_socket(*ai);
  freeaddrinfo(found);
  if (fd < 0) {
    error = "cannot bind " + host + ":" + service + ": " + std::strerror(-fd);
    return false;
  }
  uv_tcp_init(loop_, &tcp_);
  open_ = true;
  int r = uv_tcp_open(&tcp_, fd);
  if (r != 0) ::close(fd);
  auto accept = [](uv_stream_t* server, int status) {
    // EMFILE and the like: libuv sheds the connection itself; there is nothing to retry.
    if (status == 0) static_cast<Listener*>(server->data)->on_connection_(server);
  };
  if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&tcp_), 1024, accept);
  if (r != 0) error = uv_strerror(r);
  return r == 0;
}

std::string Listener::address() const {
  sockaddr_storage addr{};
  int length = sizeof addr;
  char host[INET6_ADDRSTRLEN] = "";
  if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&addr), &length) != 0 ||
      uv_ip_name(reinterpret_cast<sockaddr*>(&addr), host, sizeof host) != 0)
    return "";
  bool v6 = addr.ss_family == AF_INET6;
  uint16_t port = v6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&addr)->sin_port;
  // Appends, not `"[" + std::string(host)`: GCC 12 -O3 warns about that (-Wrestrict).
  std::string out;
  if (v6) out += '[';
  out += host;
  if (v6) out += ']';
  out += ':';
  out += std::to_string(ntohs(port));
  return out;
}

void Listener::close() {
  if (!open_) return;
  open_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), nullptr);
}

}  // namespace ssegw::mock
