// Small copied bytes waiting in a connection's output queue (HTTP/2 frame headers, a
// subscriber's own prefix before a shared frame): they are taken and given back in the same
// order, so they live in a FIFO of blocks that are reused once written, and a warm connection
// copies them without allocating.
//
// Rules:
// - Pieces are released in the order they were taken (the output queue is FIFO); a block is
//   freed once every piece in it is released, except the newest, which is kept (emptied) for
//   the next pieces.
// - A piece's address never changes until it is released: blocks never move or grow.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace ssegw::net {

class ByteArena {
 public:
  struct Block;
  struct Piece {
    Block* block;
    const char* data;
  };

  ByteArena() = default;
  ByteArena(const ByteArena&) = delete;
  ByteArena& operator=(const ByteArena&) = delete;
  ~ByteArena();

  // A copy of bytes, valid until release(piece.block).
  Piece copy(std::string_view bytes);
  // Gives back the oldest piece still held, which lives in `block`.
  void release(Block* block);

  // Bytes of memory held in blocks, for tests and accounting.
  size_t capacity() const { return capacity_; }

 private:
  static constexpr uint32_t kMinBlock = 256;
  static constexpr uint32_t kMaxBlock = 16 * 1024;

  Block* head_ = nullptr;  // oldest block
  Block* tail_ = nullptr;  // newest block: new pieces go here
  size_t capacity_ = 0;
};

}  // namespace ssegw::net
