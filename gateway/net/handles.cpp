#include "gateway/net/handles.hpp"

#include <netdb.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "gateway/base/check.hpp"
#include "gateway/net/loop.hpp"

namespace ssegw::net {

Listener::Listener(Loop& loop, OnConnection on_connection)
    : on_connection_(std::move(on_connection)) {
  opened(uv_tcp_init(loop.uv(), uv()), "uv_tcp_init");
}

int Listener::listen_fd(int fd, int backlog) {
  if (!is_open()) return UV_EINVAL;
  int r = uv_tcp_open(uv(), fd);
  if (r != 0) return r;
  return uv_listen(reinterpret_cast<uv_stream_t*>(uv()), backlog, on_connection);
}

void Listener::on_connection(uv_stream_t* server, int status) {
  // Errors such as EMFILE are handled inside libuv (it sheds the connection with a reserve fd),
  // so there is nothing to retry here.
  if (status == 0) owner(server)->on_connection_(server);
}

Timer::Timer(Loop& loop, std::function<void()> callback) : callback_(std::move(callback)) {
  opened(uv_timer_init(loop.uv(), uv()), "uv_timer_init");
}

void Timer::start(uint64_t timeout_ms, uint64_t repeat_ms) {
  if (is_open()) uv_timer_start(uv(), on_timer, timeout_ms, repeat_ms);
}

void Timer::stop() {
  if (is_open()) uv_timer_stop(uv());
}

void Timer::on_timer(uv_timer_t* handle) {
  owner(handle)->callback_();
}

Async::Async(Loop& loop, std::function<void()> callback) : callback_(std::move(callback)) {
  fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  int r = uv_poll_init(loop.uv(), uv(), fd_);
  if (r != 0) ::close(fd_);  // the destructor will not run: opened() throws
  opened(r, "uv_poll_init");
  // Cannot fail on a fresh eventfd short of memory; if it did, no wake-up would ever arrive.
  SSEGW_CHECK(uv_poll_start(uv(), UV_READABLE, on_readable) == 0);
}

Async::~Async() {
  if (fd_ >= 0) ::close(fd_);  // the poll handle has closed (Handle's destructor checks it)
}

void Async::send() {
  if (pending_.exchange(true, std::memory_order_acq_rel)) return;  // a write is still unread
  uint64_t one = 1;
  ssize_t n;
  do {
    n = ::write(fd_, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
  // EAGAIN: the counter is at its maximum, so the loop is woken anyway.
}

void Async::on_readable(uv_poll_t* handle, int, int) {
  Async* self = owner(handle);
  uint64_t count;
  while (::read(self->fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
  // Cleared after the read: a send() from here on writes again, so none is lost. A send() whose
  // exchange came before this one (it saw true and wrote nothing) released what it sent to this
  // exchange, which reads its value: the callback below sees it.
  self->pending_.exchange(false, std::memory_order_acq_rel);
  self->callback_();  // on an error status too: what it drains is there either way
}

Signal::Signal(Loop& loop, std::function<void(int)> callback) : callback_(std::move(callback)) {
  opened(uv_signal_init(loop.uv(), uv()), "uv_signal_init");
}

int Signal::start(int signum) {
  return is_open() ? uv_signal_start(uv(), on_signal, signum) : UV_EINVAL;
}

void Signal::stop() {
  if (is_open()) uv_signal_stop(uv());
}

void Signal::on_signal(uv_signal_t* handle, int signum) {
  owner(handle)->callback_(signum);
}

int open_listen_socket(const std::string& host, uint16_t port, bool reuse_port,
                       std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
    error = std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
    return -EINVAL;
  }
  int fd = -1, err = 0;
  for (addrinfo* ai = result; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    // Listening here, before any worker runs, means the address accepts connections as soon as
    // the "listening" line is logged; the kernel queues them until a worker's loop picks them up.
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) break;
    err = errno;
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(result);
  if (fd < 0) {
    error = "cannot bind " + host + ":" + service + ": " + std::strerror(err);
    return -err;
  }
  return fd;
}

std::string local_address(int fd, uint16_t* port_out) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  char host[NI_MAXHOST], port[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof(host), port, sizeof(port),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return "";
  if (port_out) *port_out = static_cast<uint16_t>(std::stoi(port));
  if (addr.ss_family == AF_INET6) return std::string("[") + host + "]:" + port;
  return std::string(host) + ":" + port;
}

}  // namespace ssegw::net
