// Helpers shared by the fuzz targets: checks that survive NDEBUG, and the ways an input is cut
// into the pieces a socket might deliver.
//
// Rules:
// - Every plan is a pure function of the input bytes, so that a crash reproduces from its file
//   alone (libFuzzer, the replay test and a debugger all see the same splits).
// - Each piece is fed from its own exact-size heap copy that dies right after the call, so ASan
//   catches a parser that reads past a piece or keeps a pointer into one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

// assert() is compiled out in RelWithDebInfo; a fuzz invariant must hold in every build.
#define FUZZ_CHECK(cond)                                                                     \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace fuzz {

// splitmix64: small, good enough to pick split points.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n) for n > 0.
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

// FNV-1a over the first bytes: the split points change when the fuzzer mutates the start of the
// input, and not on every mutation further in (which keeps coverage feedback stable).
inline uint64_t prefix_seed(std::string_view input, size_t prefix = 8) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < input.size() && i < prefix; ++i) {
    h ^= static_cast<unsigned char>(input[i]);
    h *= 0x100000001b3ull;
  }
  return h ^ input.size();
}

// Piece lengths summing to `size`, none of them 0 (unless size is 0: then one empty piece).
using Plan = std::vector<size_t>;

// The plans every target runs: all at once, one byte at a time (for inputs small enough that it
// stays fast), and three random plans seeded from the first bytes: small pieces (CR|LF and
// CR|LF-across-feeds cases), medium pieces, and a few large pieces.
inline std::vector<Plan> split_plans(std::string_view input, size_t bytewise_limit = 1024) {
  const size_t size = input.size();
  std::vector<Plan> plans;
  plans.push_back({size});
  if (size == 0) return plans;
  if (size <= bytewise_limit) plans.push_back(Plan(size, 1));
  Rng rng{prefix_seed(input)};
  const size_t max_piece[3] = {1 + rng.below(7), 1 + rng.below(64), 1 + size / 3};
  for (size_t cap : max_piece) {
    Plan plan;
    for (size_t left = size; left > 0;) {
      size_t n = 1 + rng.below(cap < left ? cap : left);
      plan.push_back(n);
      left -= n;
    }
    plans.push_back(std::move(plan));
  }
  return plans;
}

// Calls feed(std::string_view piece) for each piece of `plan`, each from its own heap copy.
template <typename Feed>
void feed_plan(std::string_view input, const Plan& plan, Feed&& feed) {
  size_t offset = 0;
  for (size_t n : plan) {
    std::vector<char> copy(input.begin() + static_cast<std::ptrdiff_t>(offset),
                           input.begin() + static_cast<std::ptrdiff_t>(offset + n));
    feed(std::string_view(copy.data(), copy.size()));
    offset += n;
  }
}

// SSEGW_FUZZ_DEBUG=1 prints each input's outcome (for checking what a seed exercises).
inline bool debug() {
  static const bool on = std::getenv("SSEGW_FUZZ_DEBUG") != nullptr;
  return on;
}

// Prints two differing outcomes before the caller aborts.
inline void report_mismatch(const char* what, const std::string& a, const std::string& b) {
  std::fprintf(stderr, "fuzz: %s differ\n--- all at once:\n%s\n--- in pieces:\n%s\n", what,
               a.c_str(), b.c_str());
}

// "[<len>:<bytes>]", so that logs compare exactly and print readably.
inline void append_field(std::string& out, std::string_view bytes) {
  out += '[';
  out += std::to_string(bytes.size());
  out += ':';
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  out += ']';
}

}  // namespace fuzz
