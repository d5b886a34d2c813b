#include "gateway/net/send_batch.hpp"

#include <liburing.h>
#include <sys/socket.h>

#include <cerrno>

namespace ssegw::net {
namespace {

// Submission queue entries per io_uring_submit: a pass with more sends submits in rounds.
constexpr unsigned kEntries = 512;

}  // namespace

std::unique_ptr<SendBatch> SendBatch::create() {
  auto ring = std::make_unique<io_uring>();
  if (io_uring_queue_init(kEntries, ring.get(), 0) != 0) return nullptr;
  return std::unique_ptr<SendBatch>(new SendBatch(std::move(ring)));
}

SendBatch::SendBatch(std::unique_ptr<io_uring> ring) : ring_(std::move(ring)) {}

SendBatch::~SendBatch() {
  io_uring_queue_exit(ring_.get());
}

void SendBatch::add(int fd, const iovec* bufs, size_t count) {
  sends_.push_back({fd, iovecs_.size(), count});
  iovecs_.insert(iovecs_.end(), bufs, bufs + count);
}

void SendBatch::clear() {
  sends_.clear();
  iovecs_.clear();
  results_.clear();
}

void SendBatch::run() {
  results_.assign(sends_.size(), -EAGAIN);
  messages_.assign(sends_.size(), msghdr{});  // iovecs_ stops growing: its addresses hold now
  size_t next = 0;
  while (next < sends_.size()) {
    const size_t start = next;
    unsigned round = 0;
    for (; next < sends_.size() && round < kEntries; ++next, ++round) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
      msghdr& message = messages_[next];
      message.msg_iov = &iovecs_[sends_[next].first];
      message.msg_iovlen = sends_[next].count;
      // MSG_DONTWAIT: a full socket completes with -EAGAIN at once instead of waiting in the
      // ring, so that nothing is left in flight after the pass.
      io_uring_prep_sendmsg(sqe, sends_[next].fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
      io_uring_sqe_set_data64(sqe, next);
    }
    int submitted = io_uring_submit_and_wait(ring_.get(), round);
    if (submitted < static_cast<int>(round)) {
      // What was not submitted stays -EAGAIN (libuv writes it), and the ring, with entries
      // prepared and never submitted, is not used again; what was (the first ones), is waited
      // for below.
      broken_ = true;
      if (submitted <= 0) return;
      round = static_cast<unsigned>(submitted);
      next = sends_.size();  // no further round
    }
    reaped_.assign(round, 0);
    for (unsigned seen = 0; seen < round; ++seen) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_wait_cqe(ring_.get(), &cqe) != 0) {
        // Sends whose outcome is unknown may have gone out: their connections close (-EIO)
        // rather than send the same bytes twice.
        for (unsigned i = 0; i < round; ++i)
          if (!reaped_[i]) results_[start + i] = -EIO;
        broken_ = true;
        return;
      }
      uint64_t index = io_uring_cqe_get_data64(cqe);
      if (index >= start && index - start < round) {
        results_[index] = cqe->res;
        reaped_[index - start] = 1;
      }
      io_uring_cqe_seen(ring_.get(), cqe);
    }
  }
}

}  // namespace ssegw::net
