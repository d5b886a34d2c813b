// Holds every thread of libuv's thread pool until release(): work queued meanwhile (a lookup)
// cannot start. The pool is the process's, shared by every test of the run, so the test releases
// it before anything can throw (CHECK, not REQUIRE, in between), and the destructor releases it
// too and waits for the blockers to finish.
#pragma once

#include <uv.h>

#include <atomic>
#include <vector>

namespace ssegw::test {

class ThreadPoolBlocker {
 public:
  static constexpr int kBlockers = 128;  // more than any UV_THREADPOOL_SIZE a test run sets

  explicit ThreadPoolBlocker(uv_loop_t* loop) : loop_(loop), works_(kBlockers) {
    released() = false;
    for (uv_work_t& work : works_) {
      work.data = this;
      uv_queue_work(
          loop, &work, [](uv_work_t*) { released().wait(false); },
          [](uv_work_t* w, int) { ++static_cast<ThreadPoolBlocker*>(w->data)->done_; });
    }
  }
  ~ThreadPoolBlocker() {
    release();
    while (!all_done()) uv_run(loop_, UV_RUN_ONCE);  // their memory is ours until then
  }
  ThreadPoolBlocker(const ThreadPoolBlocker&) = delete;
  ThreadPoolBlocker& operator=(const ThreadPoolBlocker&) = delete;

  void release() {
    released() = true;
    released().notify_all();
  }
  // Every blocker has finished, and the loop has heard it.
  bool all_done() const { return done_ == kBlockers; }
  int done() const { return done_; }

 private:
  static std::atomic<bool>& released() {
    static std::atomic<bool> flag{false};
    return flag;
  }
  uv_loop_t* loop_;
  std::vector<uv_work_t> works_;
  int done_ = 0;
};

}  // namespace ssegw::test
