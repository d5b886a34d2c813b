#include "gateway/hub/stream_cursor.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace ssegw;

using hub::EventId;

namespace {

std::string cursor(const std::vector<EventId>& positions) {
  std::string out;
  hub::append_stream_cursor(out, positions.data(), positions.size());
  return out;
}

std::string cursor_of(const std::vector<EventId>& positions) {
  return cursor(positions);
}

}  // namespace

TEST_CASE("hub/stream_cursor: each channel's id, relative to the smallest") {
  CHECK(cursor({{1733140000123, 0}, {1733140000456, 2}, {}}) == "1733140000123_0_333-2_x");
  CHECK(cursor({{1733140000456, 2}, {1733140000123, 0}}) == "1733140000123_333-2_0");
  CHECK(cursor({{5, 0}}) == "5_0");
  CHECK(cursor({{}, {}}) == "0_x_x");
  CHECK(cursor({{18446744073709551615u, 18446744073709551615u}, {1, 0}}) ==
        "1_18446744073709551614-18446744073709551615_0");
  // Appends: the stream builds its prefix around it.
  std::string out = "id: ";
  EventId one{7, 1};
  hub::append_stream_cursor(out, &one, 1);
  CHECK(out == "id: 7_0-1");
}

TEST_CASE("hub/stream_cursor: parse gives back what was written") {
  std::vector<std::vector<EventId>> cases = {
      {{1733140000123, 0}, {1733140000456, 2}, {}},
      {{1, 1}},
      {{}, {}, {}},
      {{18446744073709551615u, 0}, {0, 1}},
  };
  for (const auto& positions : cases) {
    std::string text = cursor(positions);
    CAPTURE(text);
    auto parsed = hub::parse_stream_cursor(text, positions.size());
    REQUIRE(parsed.has_value());
    CHECK(*parsed == positions);
  }
}

TEST_CASE("hub/stream_cursor: anything else is not a cursor") {
  auto bad = [](std::string_view text, size_t count) {
    CAPTURE(text);
    CHECK_FALSE(hub::parse_stream_cursor(text, count).has_value());
  };
  bad("1733140000123_0_333-2_x", 2);  // three entries for two channels
  bad("1733140000123_0_333-2_x", 4);
  bad("1733140000123_0", 0);
  bad("", 1);
  bad("5", 1);        // no entry
  bad("_0", 1);       // no base
  bad("5_", 1);       // empty entry
  bad("5__0", 2);     // empty entry
  bad("5_0_", 1);     // trailing separator
  bad("5_0-", 1);     // empty sequence
  bad("5_-1", 1);     // no delta
  bad("5_1-2-3", 1);  // two sequences
  bad("5_xx", 1);     // x is the whole entry
  bad("5_x1", 1);
  bad("+5_0", 1);  // digits only
  bad("5_+0", 1);
  bad("5_0 ", 1);
  bad(" 5_0", 1);
  bad("0_0", 1);                      // 0-0 is written x
  bad("1733140000123-0", 1);          // a single channel's id is not a cursor
  bad("123456789012345678901_0", 1);  // 21 digits
  bad("18446744073709551615_1", 1);   // base + delta overflows
  bad("1_18446744073709551616", 1);   // over 64 bits
  bad("1_0-18446744073709551616", 1);
  bad(std::string(10000, '1'), 3);  // longer than any cursor of 3 channels
}

TEST_CASE("hub/stream_cursor: StreamCursor keeps the text of its positions, entry by entry") {
  // Random moves (forward mostly, now and then back to an older id or to none): the text always
  // names exactly the positions; written from scratch, it is the reference writer's.
  uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (size_t count : {size_t{1}, size_t{2}, size_t{5}, size_t{64}}) {
    CAPTURE(count);
    hub::StreamCursor cursor(count);
    std::vector<EventId> positions(count);
    CHECK(cursor.text() == cursor_of(positions));
    size_t rewrites = 0;
    std::string base_before;
    for (int step = 0; step < 2000; ++step) {
      size_t i = next() % count;
      EventId id = positions[i];
      switch (next() % 10) {
        case 0:
          id = {};
          break;
        case 1:
          id = {1700000000000 + next() % 100000, next() % 3};
          break;
        default:
          id = id == EventId{} ? EventId{1700000000000 + next() % 1000, 0}
                               : EventId{id.ms + next() % 50, next() % 4};
      }
      positions[i] = id;
      cursor.set(i, id);
      if (next() % 3 == 0) continue;  // several moves between two reads, now and then
      std::string text(cursor.text());
      CAPTURE(text);
      REQUIRE(hub::parse_stream_cursor(text, count) == positions);
      REQUIRE(text.size() <= hub::max_stream_cursor_length(count));
      std::string base = text.substr(0, text.find('_'));
      rewrites += base != base_before;
      base_before = base;
    }
    // Moves within a day of base rewrite one entry: base changes far less often than once a
    // move (the ids here go back below it now and then, on purpose).
    CHECK(rewrites < 2000 / 4);
    cursor.assign(std::vector<EventId>(count, EventId{5, 1}));  // from scratch
    CHECK(cursor.text() == cursor_of(std::vector<EventId>(count, EventId{5, 1})));
    CHECK(cursor[0] == EventId{5, 1});
  }
}
