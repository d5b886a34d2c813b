// A FIFO of the bytes a connection is to write: pieces of shared frames (a reference each, no
// copy) and small copied pieces (kept in a ByteArena). It reuses its storage: after warm-up,
// pushing and popping never allocate, which keeps the per-event, per-subscriber cost at a
// pointer store and a count.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <new>
#include <string_view>

#include "gateway/base/check.hpp"
#include "gateway/base/frame.hpp"
#include "gateway/net/byte_arena.hpp"

namespace ssegw::net {

class FrameQueue {
 public:
  struct Entry {
    const void* owner;  // the shared frame the bytes are in, or a copied piece's arena block
    const char* data;
    uint32_t length;
    bool copied;
    std::string_view bytes() const { return {data, length}; }
    const base::Frame* frame() const {
      return copied ? nullptr : static_cast<const base::Frame*>(owner);
    }
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

  // The whole frame: its raw bytes, or the chunk-framed view of them.
  void push(base::FrameRef frame, bool chunked) {
    std::string_view bytes = chunked ? frame->chunked() : frame->raw();
    push_view(std::move(frame), bytes);
  }
  // Bytes that lie within the frame's memory (raw() or chunked(), or a piece of either).
  void push_view(base::FrameRef frame, std::string_view bytes) {
    push_entry({frame.release(), bytes.data(), static_cast<uint32_t>(bytes.size()), false});
  }
  // A copy of bytes.
  void push_copy(std::string_view bytes) {
    ByteArena::Piece piece = arena_.copy(bytes);
    push_entry({piece.block, piece.data, static_cast<uint32_t>(bytes.size()), true});
  }
  void pop() {
    SSEGW_CHECK(size_ > 0);  // else it would release a frame it no longer holds
    Entry& entry = entries_[head_];
    if (entry.copied)
      arena_.release(static_cast<ByteArena::Block*>(const_cast<void*>(entry.owner)));
    else
      entry.frame()->release();
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
  }
  void clear() {
    while (size_) pop();
  }
  size_t arena_capacity() const { return arena_.capacity(); }

 private:
  void push_entry(const Entry& entry) {
    if (size_ == capacity_) grow();
    entries_[(head_ + size_) & (capacity_ - 1)] = entry;
    ++size_;
  }
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
  ByteArena arena_;
};

}  // namespace ssegw::net
