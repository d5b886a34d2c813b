// One libuv event loop and the per-loop state that streams share.
//
// Rules:
// - Streams do not write as soon as a frame arrives: they mark themselves dirty, and the loop
//   flushes every dirty stream once per turn. Frames that arrive in the same turn then leave in
//   one writev. Two handles do the flushing: uv_check right after I/O callbacks, and uv_prepare
//   right before the loop blocks in poll, which catches what timer and close callbacks wrote
//   (they run outside the I/O phase; without it their bytes would wait for the next wake-up).
// - A stream that closes removes itself from the dirty list (forget()).
#pragma once

#include <uv.h>

#include <cstdint>
#include <vector>

namespace ssegw::net {

class TcpStream;

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* uv() { return &loop_; }
  void run() { uv_run(&loop_, UV_RUN_DEFAULT); }
  // Closes the loop's own handles; run() then returns once every other handle has closed.
  void close();
  // uv_loop_close(): 0 when no handle was left open.
  int finish();

  uint64_t now_ms() const { return uv_now(const_cast<uv_loop_t*>(&loop_)); }

  void mark_dirty(TcpStream* stream) { dirty_.push_back(stream); }
  void forget(TcpStream* stream);

  // One read buffer per loop: reads are handled synchronously, so streams can share it.
  char* read_buffer() { return read_buffer_; }
  static constexpr size_t kReadBufferSize = 64 * 1024;

 private:
  static void on_check(uv_check_t* handle);
  static void on_prepare(uv_prepare_t* handle);
  static void on_handle_closed(uv_handle_t*) {}
  void flush_dirty();

  uv_loop_t loop_;
  uv_check_t check_;
  uv_prepare_t prepare_;
  std::vector<TcpStream*> dirty_;
  std::vector<TcpStream*> flushing_;
  char read_buffer_[kReadBufferSize];
};

}  // namespace ssegw::net
