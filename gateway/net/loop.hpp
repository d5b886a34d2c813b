// One libuv event loop and the per-loop state that streams share.
//
// Rules:
// - Streams do not write as soon as a frame arrives: they mark themselves dirty, and the loop
//   flushes every dirty stream once per turn. Frames that arrive in the same turn then leave in
//   one writev. Two handles do the flushing: uv_check right after I/O callbacks, and uv_prepare
//   right before the loop blocks in poll, which catches what timer and close callbacks wrote
//   (they run outside the I/O phase; without it their bytes would wait for the next wake-up).
// - Answers go first: a stream marked dirty with `first` (a request's answer) is flushed ahead of
//   the streams already waiting in that turn (a fan-out's subscribers), so that a publisher
//   hears back before the kernel has taken the event to every subscriber.
// - A stream that closes removes itself from the dirty list (forget()).
// - The end-of-turn hook runs in each flush pass that follows a request_end_of_turn(), before the
//   writes (so that what it queues leaves in the same pass, and other threads start on what it
//   hands them while this one writes), and again after them if they asked for it. The worker
//   sends its coalesced batches and its cross-worker wake-ups there: one wake-up per target per
//   turn, however many messages the turn posted.
// - With a SendBatch (fanout.io_uring), a pass with two or more streams to flush sends them in
//   one io_uring submission (send_batch.hpp); each stream then finishes its flush with what its
//   send took, the usual way, with its callbacks.
// - The loop's own two handles follow handle.hpp like every other: close() closes them, and
//   finish() runs the loop until every handle has closed, then closes the loop. A loop that still
//   has a handle then is a leak: finish() returns UV_EBUSY and open_handles() names them.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gateway/net/handle.hpp"
#include "gateway/net/send_batch.hpp"

namespace ssegw::net {

class TcpStream;

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* uv() { return &loop_.loop; }
  void run() { uv_run(uv(), UV_RUN_DEFAULT); }
  // Closes the loop's own handles; run() then returns once every other handle has closed.
  void close();
  // Runs the loop to its end, then uv_loop_close(): 0 when no handle was left open, else
  // UV_EBUSY (and the loop stays open: open_handles() tells what is left).
  int finish();
  // The handles still in the loop, by type ("timer, tcp (closing)"), and the requests in flight.
  std::string open_handles();

  uint64_t now_ms() const { return uv_now(&loop_.loop); }

  // Flush passes send through one io_uring submission (fanout.io_uring). False when this
  // kernel refuses io_uring: the loop then writes as without it.
  bool use_send_batch();
  bool send_batch_enabled() const { return send_batch_ != nullptr; }

  void mark_dirty(TcpStream* stream, bool first = false) {
    if (first)
      dirty_.insert(dirty_.begin(), stream);  // rare: answers, not deliveries
    else
      dirty_.push_back(stream);
  }
  void forget(TcpStream* stream);

  void set_end_of_turn(std::function<void()> hook) { end_of_turn_ = std::move(hook); }
  void request_end_of_turn() { end_of_turn_due_ = true; }

  // One read buffer per loop: reads are handled synchronously, so streams can share it.
  char* read_buffer() { return read_buffer_; }
  static constexpr size_t kReadBufferSize = 64 * 1024;

 private:
  // uv_loop_init before the hooks are made on it.
  struct UvLoop {
    UvLoop();
    uv_loop_t loop;
  };
  // A uv_check_t or uv_prepare_t that flushes the dirty streams; unreferenced, so that it alone
  // does not keep the loop running.
  template <typename UvHook>
  class FlushHook : public Handle<FlushHook<UvHook>, UvHook> {
   public:
    explicit FlushHook(Loop& loop);

   private:
    static void on_run(UvHook* handle);
    Loop& loop_;
  };

  void flush_dirty();
  void flush_batched();
  void run_end_of_turn() {
    if (!end_of_turn_due_) return;
    end_of_turn_due_ = false;
    end_of_turn_();
  }

  UvLoop loop_;
  FlushHook<uv_check_t> check_;
  FlushHook<uv_prepare_t> prepare_;
  std::vector<TcpStream*> dirty_;
  std::vector<TcpStream*> flushing_;
  std::function<void()> end_of_turn_;
  bool end_of_turn_due_ = false;
  std::unique_ptr<SendBatch> send_batch_;
  std::vector<TcpStream*> batched_;    // in the batch being sent, in its order
  std::vector<TcpStream*> unbatched_;  // flushed the usual way after it
  char read_buffer_[kReadBufferSize];
};

}  // namespace ssegw::net
