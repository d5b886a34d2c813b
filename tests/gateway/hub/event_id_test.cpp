#include "gateway/hub/event_id.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ssegw;

using hub::EventId;

TEST_CASE("hub/event_id: parse valid ids") {
  auto check = [](std::string_view text, uint64_t ms, uint64_t seq) {
    CAPTURE(text);
    std::optional<EventId> id = EventId::parse(text);
    REQUIRE(id.has_value());
    CHECK(id->ms == ms);
    CHECK(id->seq == seq);
  };
  check("1-2", 1, 2);
  check("0-0", 0, 0);
  check("1700000000000-42", 1700000000000, 42);
  check("18446744073709551615-0", UINT64_MAX, 0);
  check("0-18446744073709551615", 0, UINT64_MAX);
  check("18446744073709551615-18446744073709551615", UINT64_MAX, UINT64_MAX);
  // Twenty digits with leading zeros still fit.
  check("00000000000000000001-007", 1, 7);
}

TEST_CASE("hub/event_id: parse invalid ids") {
  for (std::string_view text : {"",
                                "1",
                                "1-",
                                "-1",
                                "-",
                                "a-1",
                                "1-a",
                                "1-2-3",
                                "1--2",
                                "+1-2",
                                "1-+2",
                                " 1-2",
                                "1-2 ",
                                "1 -2",
                                "1- 2",
                                "0x1-2",
                                "1.5-2",
                                "1-2\n",
                                "18446744073709551616-0",
                                "0-18446744073709551616",
                                "99999999999999999999-0",
                                "000000000000000000001-0",
                                "0-000000000000000000001",
                                "1_2"}) {
    CAPTURE(text);
    CHECK_FALSE(EventId::parse(text).has_value());
  }
  // An embedded NUL is not a digit.
  CHECK_FALSE(EventId::parse(std::string_view("1-2\0", 4)).has_value());
}

TEST_CASE("hub/event_id: ordering is by ms, then seq") {
  CHECK(EventId{1, 5} < EventId{2, 0});
  CHECK(EventId{2, 0} < EventId{2, 1});
  CHECK(EventId{2, 1} == EventId{2, 1});
  CHECK(EventId{2, 1} != EventId{2, 2});
  CHECK(EventId{3, 0} > EventId{2, UINT64_MAX});
  CHECK(EventId{0, 0} < EventId{0, 1});
}

TEST_CASE("hub/event_id: str round trip") {
  for (EventId id : {EventId{0, 0}, EventId{1, 2}, EventId{1700000000000, 99},
                     EventId{UINT64_MAX, UINT64_MAX}, EventId{10, 0}, EventId{0, 10}}) {
    std::string text = id.str();
    CAPTURE(text);
    std::optional<EventId> back = EventId::parse(text);
    REQUIRE(back.has_value());
    CHECK(*back == id);
  }
  CHECK(EventId{1, 2}.str() == "1-2");
  CHECK(EventId{1700000000000, 0}.str() == "1700000000000-0");
  std::string longest = EventId{UINT64_MAX, UINT64_MAX}.str();
  CHECK(longest == "18446744073709551615-18446744073709551615");
  CHECK(longest.size() == EventId::kMaxLength);
}

TEST_CASE("hub/event_id: format writes the same bytes as str") {
  char buf[EventId::kMaxLength];
  EventId id{123, 456};
  size_t n = id.format(buf);
  CHECK(std::string(buf, n) == "123-456");
}

TEST_CASE("hub/event_id: next") {
  EventId id{1000, 3};
  SUBCASE("the clock moves forward: new ms, seq 0") {
    CHECK(id.next(1001) == EventId{1001, 0});
    CHECK(id.next(5000) == EventId{5000, 0});
  }
  SUBCASE("the clock stands still: same ms, seq + 1") {
    CHECK(id.next(1000) == EventId{1000, 4});
  }
  SUBCASE("the clock goes backwards: same ms, seq + 1") {
    CHECK(id.next(999) == EventId{1000, 4});
    CHECK(id.next(0) == EventId{1000, 4});
  }
  SUBCASE("a sequence is strictly increasing whatever the clock does") {
    EventId last{};
    for (uint64_t now : {100, 100, 101, 50, 50, 101, 102, 0, 103}) {
      EventId next = last.next(now);
      CHECK(next > last);
      last = next;
    }
    CHECK(last == EventId{103, 0});
  }
  SUBCASE("from the zero id") {
    CHECK(EventId{}.next(0) == EventId{0, 1});
  }
}
