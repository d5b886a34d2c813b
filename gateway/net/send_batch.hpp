// The sends of one flush pass as one io_uring submission (fanout.io_uring, off by default).
//
// A fan-out flushes many connections in one loop turn, each with one writev(2) system call. Here
// the pass instead prepares one non-blocking sendmsg per connection, submits them all at once
// and takes every completion before it returns: nothing stays in flight past the pass, so the
// connections' lifetimes and libuv's own write path are untouched. What a send could not take
// (a full socket: EAGAIN, or a partial send) goes on through libuv as before.
//
// Rules:
// - Used only by its Loop, on that loop's thread; run() waits for every completion.
// - The iovecs point into the connections' queues, which do not change during run().
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <vector>

struct io_uring;

namespace ssegw::net {

class SendBatch {
 public:
  // Null when this kernel refuses io_uring (the caller then writes as without it).
  static std::unique_ptr<SendBatch> create();
  ~SendBatch();
  SendBatch(const SendBatch&) = delete;
  SendBatch& operator=(const SendBatch&) = delete;

  // One sendmsg of bufs on fd; its result is results()[the count of earlier adds].
  void add(int fd, const iovec* bufs, size_t count);
  size_t size() const { return sends_.size(); }
  // Submits every send added since the last run and waits for all of them. results()[i] is the
  // bytes the i-th send wrote, or -errno.
  void run();
  const std::vector<int>& results() const { return results_; }
  void clear();
  // The ring failed (io_uring_enter refused a submission): its owner drops it after this pass.
  bool broken() const { return broken_; }

 private:
  struct Send {
    int fd;
    size_t first;  // in iovecs_
    size_t count;
  };
  explicit SendBatch(std::unique_ptr<io_uring> ring);

  std::unique_ptr<io_uring> ring_;
  std::vector<Send> sends_;
  std::vector<iovec> iovecs_;
  std::vector<msghdr> messages_;
  std::vector<int> results_;
  std::vector<char> reaped_;  // of the round being waited for
  bool broken_ = false;
};

}  // namespace ssegw::net
