// In-process test helpers: the other end of a TCP connection, written against raw libuv so that
// the code under test (net::TcpStream, upstream::Client) is not also its own test double.
//
// Rules:
// - Peers owns every handle it makes (a listener, accepted and connected peers) and frees them
//   only when it is destroyed, after close() and the loop's end; the destructor checks that
//   every close callback has run.
// - run_until() waits on a condition, never on a guessed duration: it runs the loop until the
//   condition holds or the timeout passes, waking every few milliseconds for conditions that
//   change without a loop event (TCP acknowledgements).
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ssegw::test {

inline bool run_until(uv_loop_t* loop, const std::function<bool()>& done,
                      uint64_t timeout_ms = 5000) {
  if (done()) return true;
  auto* wake = new uv_timer_t;
  uv_timer_init(loop, wake);
  uv_timer_start(
      wake, [](uv_timer_t*) {}, 5, 5);
  uv_update_time(loop);
  uint64_t deadline = uv_now(loop) + timeout_ms;
  bool ok = false;
  while (!(ok = done()) && uv_now(loop) < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(wake),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); });
  return ok;
}

// Runs the loop for a while: only to show that something does NOT happen in that time.
inline void run_for(uv_loop_t* loop, uint64_t ms) {
  uv_update_time(loop);
  uint64_t until = uv_now(loop) + ms;
  run_until(
      loop, [&] { return uv_now(loop) >= until; }, ms + 1000);
}

// A bound socket that does not listen: connecting to it is refused, and the port stays ours
// (no port bound, closed and reused by someone else meanwhile).
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~RefusingPort() { ::close(fd_); }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

inline sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", port, &addr);
  return addr;
}

class Peers;

// One end of a connection.
class Peer {
 public:
  std::string received;
  size_t reads = 0;  // read callbacks that brought bytes
  bool eof = false;
  int read_error = 0;      // another error than EOF
  int connect_status = 1;  // connected peers: 1 until the connect completes
  bool closed = false;     // the close callback ran
  // After each read that brought bytes.
  std::function<void(Peer&)> on_data;

  void start_reading() { uv_read_start(stream(), on_alloc, on_read); }
  void stop_reading() { uv_read_stop(stream()); }
  void write(std::string bytes) {
    auto* req = new WriteReq{{}, std::move(bytes)};
    uv_buf_t buf = uv_buf_init(req->bytes.data(), static_cast<unsigned>(req->bytes.size()));
    if (uv_write(&req->req, stream(), &buf, 1,
                 [](uv_write_t* r, int) { delete reinterpret_cast<WriteReq*>(r); }) != 0)
      delete req;
  }
  // FIN after what is written.
  void shutdown() {
    auto* req = new uv_shutdown_t;
    if (uv_shutdown(req, stream(), [](uv_shutdown_t* r, int) { delete r; }) != 0) delete req;
  }
  void close() {
    if (!uv_is_closing(handle())) uv_close(handle(), on_close);
  }
  // RST instead of FIN.
  void reset() {
    if (!uv_is_closing(handle())) uv_tcp_close_reset(&tcp_, on_close);
  }
  int fd() const {
    uv_os_fd_t fd = -1;
    uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd);
    return fd;
  }

 private:
  friend class Peers;
  struct WriteReq {
    uv_write_t req;
    std::string bytes;
  };
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&tcp_); }
  static void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
    static thread_local char storage[64 * 1024];
    *buf = uv_buf_init(storage, sizeof storage);
  }
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* self = static_cast<Peer*>(s->data);
    if (n > 0) {
      self->received.append(buf->base, static_cast<size_t>(n));
      ++self->reads;
      if (self->on_data) self->on_data(*self);
    } else if (n == UV_EOF) {
      self->eof = true;
    } else if (n < 0) {
      self->read_error = static_cast<int>(n);
    }
  }
  static void on_close(uv_handle_t* h) { static_cast<Peer*>(h->data)->closed = true; }

  uv_tcp_t tcp_;
  uv_connect_t connect_;
};

// A listener on 127.0.0.1 (port 0) and every peer it accepted or connected.
class Peers {
 public:
  explicit Peers(uv_loop_t* loop, bool listen = true) : loop_(loop) {
    uv_tcp_init(loop_, &listener_);
    listener_.data = this;
    listener_open_ = true;
    if (!listen) return;
    sockaddr_in addr = loopback(0);
    REQUIRE(uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&addr), 0) == 0);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 128, on_connection) == 0);
    int len = sizeof addr;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Peers() {
    CHECK_MESSAGE(listener_closed_, "Peers destroyed before close() and the loop's end");
    for (auto& peer : peers_) CHECK(peer->closed);
  }
  Peers(const Peers&) = delete;
  Peers& operator=(const Peers&) = delete;

  uint16_t port() const { return port_; }
  sockaddr_in address() const { return loopback(port_); }
  size_t size() const { return peers_.size(); }
  Peer& operator[](size_t i) { return *peers_[i]; }
  Peer& back() { return *peers_.back(); }

  // Accepted peers read from the start, unless this says otherwise.
  bool read_on_accept = true;
  // Called for each accepted peer, after it reads (or not).
  std::function<void(Peer&)> on_accept;

  // A client connection to addr; connect_status tells how it went.
  Peer& connect(const sockaddr_in& addr) {
    Peer& peer = add();
    peer.connect_.data = &peer;
    uv_tcp_connect(&peer.connect_, &peer.tcp_, reinterpret_cast<const sockaddr*>(&addr),
                   [](uv_connect_t* req, int status) {
                     static_cast<Peer*>(req->data)->connect_status = status;
                   });
    return peer;
  }

  void close() {
    if (listener_open_) {
      listener_open_ = false;
      uv_close(reinterpret_cast<uv_handle_t*>(&listener_),
               [](uv_handle_t* h) { static_cast<Peers*>(h->data)->listener_closed_ = true; });
    }
    for (auto& peer : peers_) peer->close();
  }

 private:
  Peer& add() {
    peers_.push_back(std::make_unique<Peer>());
    Peer& peer = *peers_.back();
    uv_tcp_init(loop_, &peer.tcp_);
    peer.tcp_.data = &peer;
    return peer;
  }
  static void on_connection(uv_stream_t* server, int status) {
    auto* self = static_cast<Peers*>(server->data);
    if (status != 0) return;
    Peer& peer = self->add();
    if (uv_accept(server, peer.stream()) != 0) {
      peer.close();
      return;
    }
    if (self->read_on_accept) peer.start_reading();
    if (self->on_accept) self->on_accept(peer);
  }

  uv_loop_t* loop_;
  uv_tcp_t listener_;
  bool listener_open_ = false;
  bool listener_closed_ = false;
  uint16_t port_ = 0;
  std::vector<std::unique_ptr<Peer>> peers_;
};

}  // namespace ssegw::test
