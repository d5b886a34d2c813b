// The lifetime rule of every libuv handle in ssegw (after Node's handle_wrap.h, uvw's
// handle.hpp).
//
// Rules:
// - Every uv handle has exactly one owner object, and the handle is a member of it: a Handle<>
//   base (Listener, Timer, Async, Signal, the Loop's own hooks, TcpStream). Nothing else in
//   gateway/ or upstream/ calls uv_close; the one handle outside this rule is the uv_poll_t of
//   hiredis's libuv adapter, which hiredis owns and frees (backplane/redis_connection.hpp).
// - The owner keeps an explicit state. kClosed until uv_*_init succeeds, then kOpen; close()
//   moves it to kClosing and starts uv_close; the static close callback moves it to kClosed and
//   then, last, calls the owner's closed() hook. close() is safe to call any number of times, in
//   any state: only the first call on an open handle does anything.
// - The handle's memory is the owner's: the owner is destroyed only in state kClosed, never
//   between close() and the close callback. The destructor checks it (SSEGW_CHECK: a handle freed
//   while libuv still links it into the loop is the classic use-after-free of libuv code).
//   Owners that are members of a longer-lived object (a Worker's timers) are closed, then the
//   loop runs to its end (Loop::finish), then they go. Owners that delete themselves
//   (TcpStream) do so in closed(), the last thing the close callback does: never from inside
//   another callback of theirs.
// - After close(), the owner hears nothing more but closed(): libuv stops timers, asyncs, signals,
//   listeners and reads at uv_close, and the owners drop the completions of requests that were in
//   flight (a write or a connect ends with UV_ECANCELED, before the close callback, so it still
//   finds the owner alive; see tcp_stream.hpp).
// - Every asynchronous operation completes exactly once: its callback runs with the result, or
//   with an error when the handle closes first (pending ones fail on close). An owner that cancels
//   an operation (Resolve::cancel, Exchange::cancel) has said it wants to hear nothing more, and
//   hears nothing.
// - A loop ends with no handle left: Loop::finish() returns uv_loop_close()'s 0, and a worker that
//   gets anything else reports the open handles and makes the process exit non-zero.
// - Handles are created at start-up or on the loop's thread, and used on the loop's thread only;
//   the one exception is Async::send(), which any thread may call until the loop stops.
#pragma once

#include <uv.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "gateway/base/check.hpp"

namespace ssegw::net {

// Owner is the derived class (CRTP): the close callback reaches its closed() without a virtual
// call. UvHandle is the libuv handle type (uv_timer_t, uv_tcp_t, ...).
template <typename Owner, typename UvHandle>
class Handle {
 public:
  enum class State : uint8_t { kOpen, kClosing, kClosed };

  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  State state() const { return state_; }
  bool is_open() const { return state_ == State::kOpen; }

  // Starts closing; the close callback finishes it. Safe twice.
  void close() {
    if (state_ != State::kOpen) return;
    state_ = State::kClosing;
    uv_close(uv_handle(), on_close);
  }

 protected:
  Handle() = default;
  ~Handle() {
    // Freeing a handle libuv still holds corrupts the loop: checked in Release too.
    SSEGW_CHECK(state_ == State::kClosed);
  }

  UvHandle* uv() { return &handle_; }
  const UvHandle* uv() const { return &handle_; }
  uv_handle_t* uv_handle() { return reinterpret_cast<uv_handle_t*>(&handle_); }
  const uv_handle_t* uv_handle() const { return reinterpret_cast<const uv_handle_t*>(&handle_); }

  // Call with what uv_*_init returned. The handles are made at start-up, where an error is an
  // exception; uv_tcp_init and uv_timer_init cannot fail at all.
  void opened(int init_result, const char* what) {
    if (init_result != 0)
      throw std::runtime_error(std::string(what) + ": " + uv_strerror(init_result));
    handle_.data = static_cast<Owner*>(this);
    state_ = State::kOpen;
  }

  // The owner of a handle, in a static libuv callback.
  static Owner* owner(const void* handle) {
    return static_cast<Owner*>(static_cast<const UvHandle*>(handle)->data);
  }

  // The last call of the close callback: the state is kClosed, and the owner may now delete
  // itself. Owners hide it to hear the close (and befriend Handle when theirs is private).
  void closed() {}

 private:
  static void on_close(uv_handle_t* handle) {
    Owner* self = owner(handle);
    static_cast<Handle*>(self)->state_ = State::kClosed;
    self->closed();  // may delete self: nothing after it
  }

  UvHandle handle_;
  State state_ = State::kClosed;
};

}  // namespace ssegw::net
