#include "gateway/hub/history.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gateway/hub/replay_planner.hpp"

using namespace ssegw;

using hub::EventId;
using hub::History;
using hub::HistoryLimits;

namespace {

// Where a subscriber resuming after `last` starts in h (nullopt: an unparseable id), as the
// ReplayPlanner decides it from the history's window.
hub::ReplayPlan resume_point(const History& h, const std::optional<EventId>& last) {
  hub::ResumeRequest resume{true, last ? last->str() : std::string("not-an-id")};
  hub::ReplayContext state;
  state.known_before = h.last_evicted();
  return hub::ReplayPlanner::plan(resume, state, h.size(), [&](size_t i) { return h.at(i).id; });
}

HistoryLimits limits(uint32_t max_events, uint64_t max_bytes, uint64_t ttl_ms) {
  HistoryLimits l;
  l.max_events = max_events;
  l.max_bytes = max_bytes;
  l.ttl_ms = ttl_ms;
  return l;
}

// Appends an event with id <ms>-0 whose frame is `size` bytes, published at monotonic time `at`.
void append(History& h, uint64_t ms, size_t size = 10, uint64_t at = 0) {
  h.append({EventId{ms, 0}, at, base::Frame::copy_of(std::string(size, 'x'))});
}

std::vector<uint64_t> ids(const History& h) {
  std::vector<uint64_t> out;
  for (size_t i = 0; i < h.size(); ++i) {
    CHECK(h.at(i).id.seq == 0);
    out.push_back(h.at(i).id.ms);
  }
  return out;
}

}  // namespace

TEST_CASE("hub/history: empty") {
  History h(limits(3, 1000, 1000));
  CHECK(h.empty());
  CHECK(h.size() == 0);
  CHECK(h.bytes() == 0);
  CHECK_FALSE(h.first_id().has_value());
  CHECK_FALSE(h.last_id().has_value());
}

TEST_CASE("hub/history: count limit") {
  History h(limits(3, 1 << 20, 1000000));
  append(h, 1, 10);
  append(h, 2, 20);
  append(h, 3, 30);
  CHECK(ids(h) == std::vector<uint64_t>{1, 2, 3});
  CHECK(h.bytes() == 60);
  append(h, 4, 40);
  CHECK(ids(h) == std::vector<uint64_t>{2, 3, 4});
  CHECK(h.bytes() == 90);
  append(h, 5, 50);
  CHECK(ids(h) == std::vector<uint64_t>{3, 4, 5});
  CHECK(h.bytes() == 120);
  CHECK(h.first_id() == EventId{3, 0});
  CHECK(h.last_id() == EventId{5, 0});
  CHECK(h.at(2).frame->size() == 50);
}

TEST_CASE("hub/history: byte limit") {
  History h(limits(1000, 100, 1000000));
  append(h, 1, 40);
  append(h, 2, 40);
  CHECK(ids(h) == std::vector<uint64_t>{1, 2});
  CHECK(h.bytes() == 80);
  append(h, 3, 20);  // exactly at the limit: kept
  CHECK(ids(h) == std::vector<uint64_t>{1, 2, 3});
  CHECK(h.bytes() == 100);
  append(h, 4, 1);  // one byte over: the oldest goes
  CHECK(ids(h) == std::vector<uint64_t>{2, 3, 4});
  CHECK(h.bytes() == 61);
  append(h, 5, 80);  // evicts until it fits
  CHECK(ids(h) == std::vector<uint64_t>{4, 5});
  CHECK(h.bytes() == 81);

  SUBCASE("a single event bigger than max_bytes is kept until the next arrives") {
    append(h, 6, 150);
    CHECK(ids(h) == std::vector<uint64_t>{6});
    CHECK(h.bytes() == 150);
    append(h, 7, 10);
    CHECK(ids(h) == std::vector<uint64_t>{7});
    CHECK(h.bytes() == 10);
    // Its id is now the last evicted one: resuming from it is continuous.
    auto p = resume_point(h, EventId{6, 0});
    CHECK(p.start == 0);
    CHECK_FALSE(p.gap);
  }
  SUBCASE("two oversized events in a row") {
    append(h, 6, 150);
    append(h, 7, 200);
    CHECK(ids(h) == std::vector<uint64_t>{7});
    CHECK(h.bytes() == 200);
  }
}

TEST_CASE("hub/history: TTL expire") {
  History h(limits(1000, 1 << 20, 1000));
  append(h, 1, 10, 0);
  append(h, 2, 10, 500);
  append(h, 3, 10, 1000);
  h.expire(999);
  CHECK(ids(h) == std::vector<uint64_t>{1, 2, 3});
  h.expire(1000);  // exactly ttl old: gone
  CHECK(ids(h) == std::vector<uint64_t>{2, 3});
  CHECK(h.bytes() == 20);
  h.expire(1499);
  CHECK(ids(h) == std::vector<uint64_t>{2, 3});
  h.expire(1500);
  CHECK(ids(h) == std::vector<uint64_t>{3});
  h.expire(100000);
  CHECK(h.empty());
  CHECK(h.bytes() == 0);
  CHECK_FALSE(h.first_id().has_value());
  // Everything expired: the last expired id still resumes without a gap, an older one does not.
  auto p = resume_point(h, EventId{3, 0});
  CHECK(p.start == 0);
  CHECK_FALSE(p.gap);
  p = resume_point(h, EventId{2, 0});
  CHECK(p.start == 0);
  CHECK(p.gap);
}

TEST_CASE("hub/history: retained frames are shared, not copied") {
  History h(limits(3, 1000, 1000));
  base::FrameRef frame = base::Frame::copy_of("payload");
  h.append({EventId{1, 0}, 0, frame});
  CHECK(h.at(0).frame.get() == frame.get());
  for (uint64_t ms : {2, 3, 4}) append(h, ms);  // evicts the shared frame
  CHECK(frame->raw() == "payload");
}
