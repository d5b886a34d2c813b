// Owners of the long-lived libuv handles of a loop: listener, timer, async wake-up, signal.
//
// Rules:
// - Each is a Handle (handle.hpp): made at start-up, closed with close() (safe twice), and
//   destroyed only once its close callback has run, which means after Loop::finish(). The
//   destructor checks that.
// - After close(), no callback reaches the owner's function any more.
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <string>

#include "gateway/net/handle.hpp"

namespace ssegw::net {

class Loop;

class Listener : public Handle<Listener, uv_tcp_t> {
 public:
  using OnConnection = std::function<void(uv_stream_t* server)>;
  Listener(Loop& loop, OnConnection on_connection);
  // Takes over a bound socket and starts listening on it.
  int listen_fd(int fd, int backlog);

 private:
  static void on_connection(uv_stream_t* server, int status);
  OnConnection on_connection_;
};

class Timer : public Handle<Timer, uv_timer_t> {
 public:
  Timer(Loop& loop, std::function<void()> callback);
  void start(uint64_t timeout_ms, uint64_t repeat_ms);
  void stop();

 private:
  static void on_timer(uv_timer_t* handle);
  std::function<void()> callback_;
};

// Wakes a loop from another thread: an eventfd that the loop polls, written at most once until
// the loop has run the callback. Not uv_async_t: libuv 1.44's (Debian 12's) makes the woken loop
// spin, then sched_yield(), until the sender has left uv_async_send(). When the two threads
// share a core, the eventfd write wakes the reader, which preempts the sender still inside the
// call, and every wake-up then costs a spin and two more context switches (bench/RESULTS.md,
// "W3 with workers: 2": 13 % of the gateway's CPU).
class Async : public Handle<Async, uv_poll_t> {
 public:
  Async(Loop& loop, std::function<void()> callback);
  ~Async();
  // Any thread, until the owning loop's thread closes the handle (it reads no state: the caller
  // makes sure of that, as Worker::send_wakes does with drained_reported()).
  void send();

 private:
  static void on_readable(uv_poll_t* handle, int status, int events);
  std::function<void()> callback_;
  int fd_ = -1;
  // Set by the first send() after the callback began: later ones need no write.
  std::atomic<bool> pending_{false};
};

// A POSIX signal, delivered on the loop's thread.
class Signal : public Handle<Signal, uv_signal_t> {
 public:
  Signal(Loop& loop, std::function<void(int signum)> callback);
  int start(int signum);
  void stop();

 private:
  static void on_signal(uv_signal_t* handle, int signum);
  std::function<void(int)> callback_;
};

// Opens a bound, listening TCP socket. With reuse_port (several workers), SO_REUSEPORT lets each
// worker bind the same address. Returns the fd, or -errno with `error` filled in.
int open_listen_socket(const std::string& host, uint16_t port, bool reuse_port, std::string& error);
// "host:port" of a bound socket ("[v6]:port" for IPv6).
std::string local_address(int fd, uint16_t* port = nullptr);

}  // namespace ssegw::net
