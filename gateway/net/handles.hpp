// Owners of the long-lived libuv handles of a worker: listener, timer, async wake-up.
//
// Rules:
// - Each object owns one handle and is a member of an object that outlives its loop's run():
//   close() starts uv_close, and the memory goes when the owner is destroyed after the loop has
//   run to completion (Loop::finish), so the close callback never touches freed memory.
// - close() is safe to call twice.
#pragma once

#include <uv.h>

#include <functional>
#include <string>

namespace ssegw::net {

class Loop;

class Listener {
 public:
  using OnConnection = std::function<void(uv_stream_t* server)>;
  Listener(Loop& loop, OnConnection on_connection);
  // Takes over a bound socket and starts listening on it.
  int listen_fd(int fd, int backlog);
  void close();

 private:
  static void on_connection(uv_stream_t* server, int status);
  uv_tcp_t handle_;
  OnConnection on_connection_;
  bool open_ = false;
};

class Timer {
 public:
  Timer(Loop& loop, std::function<void()> callback);
  void start(uint64_t timeout_ms, uint64_t repeat_ms);
  void stop();
  void close();

 private:
  static void on_timer(uv_timer_t* handle);
  uv_timer_t handle_;
  std::function<void()> callback_;
  bool closed_ = false;
};

// Wakes a loop from another thread.
class Async {
 public:
  Async(Loop& loop, std::function<void()> callback);
  void send() { uv_async_send(&handle_); }
  void close();

 private:
  static void on_async(uv_async_t* handle);
  uv_async_t handle_;
  std::function<void()> callback_;
  bool closed_ = false;
};

// Opens a bound, listening TCP socket. With reuse_port (several workers), SO_REUSEPORT lets each
// worker bind the same address. Returns the fd, or -errno with `error` filled in.
int open_listen_socket(const std::string& host, uint16_t port, bool reuse_port, std::string& error);
// "host:port" of a bound socket ("[v6]:port" for IPv6).
std::string local_address(int fd, uint16_t* port = nullptr);

}  // namespace ssegw::net
