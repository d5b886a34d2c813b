#include "gateway/net/byte_arena.hpp"

#include <doctest/doctest.h>

#include <deque>
#include <string>

using namespace ssegw;

TEST_CASE("net/byte_arena: pieces keep their bytes until released, in order") {
  net::ByteArena arena;
  std::deque<std::pair<net::ByteArena::Piece, std::string>> held;
  unsigned state = 7;
  size_t most = 0;
  for (int step = 0; step < 20000; ++step) {
    state = state * 1103515245u + 12345u;
    bool take = held.empty() || (state >> 16) % 5 < 3;
    if (take && held.size() < 200) {
      std::string bytes((state >> 8) % 700 + 1, static_cast<char>('a' + step % 26));
      held.emplace_back(arena.copy(bytes), bytes);
    } else {
      auto& [piece, bytes] = held.front();
      REQUIRE(std::string(piece.data, bytes.size()) == bytes);
      arena.release(piece.block);
      held.pop_front();
    }
    most = std::max(most, arena.capacity());
  }
  while (!held.empty()) {
    arena.release(held.front().first.block);
    held.pop_front();
  }
  // Bounded by what was held at once (200 pieces of at most 700 bytes), and once empty only the
  // newest block stays.
  CHECK(most <= 200 * 700 + 3 * 16 * 1024);
  CHECK(arena.capacity() <= 16 * 1024);
}

TEST_CASE("net/byte_arena: an empty arena reuses its block, and replaces it when too small") {
  net::ByteArena arena;
  auto a = arena.copy("abc");
  CHECK(arena.capacity() == 256);
  arena.release(a.block);
  auto b = arena.copy("def");
  CHECK(b.data == a.data);  // the same block, emptied
  arena.release(b.block);
  std::string big(1000, 'x');
  auto c = arena.copy(big);
  CHECK(std::string(c.data, big.size()) == big);
  CHECK(arena.capacity() == 1000);  // the small empty block went
  arena.release(c.block);
}
