#include "gateway/net/byte_arena.hpp"

#include <algorithm>
#include <cstring>
#include <new>

#include "gateway/base/check.hpp"

namespace ssegw::net {

struct ByteArena::Block {
  Block* next;
  uint32_t capacity;
  uint32_t used;
  uint32_t pieces;  // taken and not yet released
  char* data() { return reinterpret_cast<char*>(this + 1); }
};

ByteArena::~ByteArena() {
  while (head_) {
    Block* next = head_->next;
    std::free(head_);
    head_ = next;
  }
}

ByteArena::Piece ByteArena::copy(std::string_view bytes) {
  auto length = static_cast<uint32_t>(bytes.size());
  if (tail_ && tail_->pieces == 0 && tail_->capacity < length) {
    // Empty, hence the only block (older ones went as their pieces did), and too small.
    capacity_ -= tail_->capacity;
    std::free(tail_);
    head_ = tail_ = nullptr;
  }
  if (!tail_ || tail_->capacity - tail_->used < length) {
    // Each new block doubles the last (bounded), so that a busy connection settles on a few.
    uint32_t previous = tail_ ? tail_->capacity : kMinBlock / 2;
    uint32_t capacity = std::max(length, std::min(kMaxBlock, previous * 2));
    auto* block = static_cast<Block*>(std::malloc(sizeof(Block) + capacity));
    if (!block) throw std::bad_alloc();
    *block = Block{nullptr, capacity, 0, 0};
    capacity_ += capacity;
    if (tail_)
      tail_->next = block;
    else
      head_ = block;
    tail_ = block;
  }
  char* data = tail_->data() + tail_->used;
  std::memcpy(data, bytes.data(), bytes.size());
  tail_->used += length;
  ++tail_->pieces;
  return {tail_, data};
}

void ByteArena::release(Block* block) {
  // FIFO: the oldest piece is in the oldest block that still holds any.
  SSEGW_CHECK(block == head_ && block->pieces > 0);
  if (--block->pieces > 0) return;
  if (block == tail_) {
    block->used = 0;  // kept for the next pieces
    return;
  }
  head_ = block->next;
  capacity_ -= block->capacity;
  std::free(block);
}

}  // namespace ssegw::net
