// A FIFO of frame references that reuses its storage: after warm-up, pushing and popping never
// allocate, which keeps the per-event, per-subscriber cost at a pointer store and a count.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <new>
#include <string_view>

#include "gateway/base/check.hpp"
#include "gateway/base/frame.hpp"

namespace ssegw::net {

class FrameQueue {
 public:
  struct Entry {
    const base::Frame* frame;
    bool chunked;  // write the chunk-framed view of the frame
    std::string_view bytes() const { return chunked ? frame->chunked() : frame->raw(); }
  };

  FrameQueue() = default;
  FrameQueue(const FrameQueue&) = delete;
  FrameQueue& operator=(const FrameQueue&) = delete;
  ~FrameQueue() {
    clear();
    std::free(entries_);
  }

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  const Entry& at(size_t i) const { return entries_[(head_ + i) & (capacity_ - 1)]; }
  const Entry& front() const { return at(0); }

  void push(base::FrameRef frame, bool chunked) {
    if (size_ == capacity_) grow();
    entries_[(head_ + size_) & (capacity_ - 1)] = Entry{frame.release(), chunked};
    ++size_;
  }
  void pop() {
    SSEGW_CHECK(size_ > 0);  // else it would release a frame it no longer holds
    entries_[head_].frame->release();
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
  }
  void clear() {
    while (size_) pop();
  }

 private:
  void grow() {
    uint32_t capacity = capacity_ ? capacity_ * 2 : 4;
    auto* entries = static_cast<Entry*>(std::malloc(capacity * sizeof(Entry)));
    if (!entries) throw std::bad_alloc();
    for (uint32_t i = 0; i < size_; ++i) entries[i] = at(i);
    std::free(entries_);
    entries_ = entries;
    capacity_ = capacity;
    head_ = 0;
  }

  Entry* entries_ = nullptr;
  uint32_t capacity_ = 0;  // a power of two
  uint32_t head_ = 0;
  uint32_t size_ = 0;
};

}  // namespace ssegw::net
