// For the tests of the streaming parsers (sse_parser, ndjson_parser): a parser must give the same
// outcome however its input is cut into feed() calls. Each test file supplies a `run` that feeds
// the pieces it is given to a fresh parser and returns an Outcome with == and an operator<< that
// ADL finds (for the failure messages).
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

namespace feed_splits {

using Pieces = std::vector<std::string_view>;

// Calls feed(copy) for each piece, in order, where copy lives in a heap buffer of its own that
// dies right after the call: ASan then catches a parser that keeps a pointer into fed bytes.
template <class Feed>
void feed_copies(const Pieces& pieces, const Feed& feed) {
  for (std::string_view piece : pieces) {
    std::string copy(piece);
    feed(std::string_view(copy));
  }
}

// Runs stream whole, in two feeds split at every point, and one byte at a time; every run must
// give the same outcome, which is returned.
template <class Run>
auto same_at_every_split(std::string_view stream, const Run& run) {
  auto whole = run(Pieces{stream});
  for (size_t k = 0; k <= stream.size(); ++k) {
    auto split = run(Pieces{stream.substr(0, k), stream.substr(k)});
    if (!(split == whole)) {
      FAIL_CHECK("split at " << k << " gives " << split << " instead of " << whole);
      break;
    }
  }
  Pieces bytes;
  for (size_t i = 0; i < stream.size(); ++i) bytes.push_back(stream.substr(i, 1));
  CHECK(run(bytes) == whole);
  return whole;
}

// Three feeds, split at every pair of points: catches state carried across two boundaries (a BOM
// in three pieces, a CR at the end of a one-byte feed).
template <class Run>
auto same_at_every_two_splits(std::string_view stream, const Run& run) {
  auto whole = run(Pieces{stream});
  for (size_t i = 0; i <= stream.size(); ++i) {
    for (size_t j = i; j <= stream.size(); ++j) {
      auto split = run(Pieces{stream.substr(0, i), stream.substr(i, j - i), stream.substr(j)});
      if (!(split == whole)) {
        FAIL_CHECK("splits at " << i << "," << j << " give " << split << " instead of " << whole);
        return whole;
      }
    }
  }
  return whole;
}

}  // namespace feed_splits
