#include "gateway/hub/replay_planner.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "gateway/hub/history.hpp"
#include "gateway/metrics/metrics.hpp"

using namespace ssegw;

using hub::EventId;
using hub::History;
using hub::ReplayPlan;

namespace {

hub::HistoryLimits limits(uint32_t max_events, uint64_t max_bytes, uint64_t ttl_ms) {
  hub::HistoryLimits l;
  l.max_events = max_events;
  l.max_bytes = max_bytes;
  l.ttl_ms = ttl_ms;
  return l;
}

void append(History& h, uint64_t ms) {
  h.append({EventId{ms, 0}, 0, base::Frame::copy_of("e" + std::to_string(ms))});
}

std::vector<uint64_t> ids(const History& h) {
  std::vector<uint64_t> out;
  for (size_t i = 0; i < h.size(); ++i) out.push_back(h.at(i).id.ms);
  return out;
}

// Where a subscriber resuming after `last` starts in h (nullopt: an unparseable id).
ReplayPlan resume_point(const History& h, const std::optional<EventId>& last) {
  hub::ResumeRequest resume{true, last ? last->str() : std::string("not-an-id")};
  hub::ReplayContext context;
  context.known_before = h.last_evicted();
  return hub::ReplayPlanner::plan(resume, context, h.size(), [&](size_t i) { return h.at(i).id; });
}

// A plan over ids 1-0 .. n-0 with the given context and request.
ReplayPlan plan_over(size_t n, const hub::ResumeRequest& resume,
                     const hub::ReplayContext& context) {
  return hub::ReplayPlanner::plan(resume, context, n, [](size_t i) { return EventId{i + 1, 0}; });
}

}  // namespace

TEST_CASE("hub/replay_planner: resume") {
  // Ids 10..50 appended with a limit of 3: 30, 40, 50 retained, 20 the last evicted.
  History h(limits(3, 1 << 20, 1000000));
  for (uint64_t ms : {10, 20, 30, 40, 50}) append(h, ms);
  REQUIRE(ids(h) == std::vector<uint64_t>{30, 40, 50});

  auto check = [&](std::optional<EventId> last, size_t start, bool gap) {
    CAPTURE(last.has_value() ? last->str() : std::string("nullopt"));
    auto p = resume_point(h, last);
    CHECK(p.start == start);
    CHECK(p.gap == gap);
  };
  SUBCASE("unparseable: gap, from the start") {
    check(std::nullopt, 0, true);
  }
  SUBCASE("exact retained ids: no gap") {
    check(EventId{30, 0}, 1, false);
    check(EventId{40, 0}, 2, false);
    check(EventId{50, 0}, 3, false);
  }
  SUBCASE("the last evicted id: no gap, from the start") {
    check(EventId{20, 0}, 0, false);
  }
  SUBCASE("older than the last evicted id: gap") {
    check(EventId{10, 0}, 0, true);
    check(EventId{19, 5}, 0, true);
    check(EventId{0, 0}, 0, true);
  }
  SUBCASE("between the last evicted and the first retained: gap") {
    check(EventId{25, 0}, 0, true);
    check(EventId{20, 1}, 0, true);
  }
  SUBCASE("between two retained ids: gap, starting after it") {
    check(EventId{35, 0}, 1, true);
    check(EventId{30, 1}, 1, true);
    check(EventId{45, 7}, 2, true);
  }
  SUBCASE("newer than the last: gap, start == size") {
    check(EventId{50, 1}, 3, true);
    check(EventId{UINT64_MAX, UINT64_MAX}, 3, true);
  }
}

TEST_CASE("hub/replay_planner: resume with nothing evicted") {
  History h(limits(10, 1 << 20, 1000000));
  for (uint64_t ms : {10, 20}) append(h, ms);
  auto p = resume_point(h, EventId{5, 0});
  CHECK(p.start == 0);
  CHECK(p.gap);
  p = resume_point(h, EventId{10, 0});
  CHECK(p.start == 1);
  CHECK_FALSE(p.gap);
}

TEST_CASE("hub/replay_planner: resume on an empty history") {
  History h(limits(3, 1000, 1000));
  auto p = resume_point(h, EventId{1, 0});
  CHECK(p.start == 0);
  CHECK(p.gap);
  p = resume_point(h, std::nullopt);
  CHECK(p.start == 0);
  CHECK(p.gap);
}

TEST_CASE("hub/replay_planner: no resume asked: live only, or the whole generation") {
  hub::ReplayContext plain;
  CHECK(plan_over(3, {}, plain).kind == ReplayPlan::Kind::kLiveOnly);
  hub::ReplayContext generation;
  generation.replay_from_start = true;
  ReplayPlan p = plan_over(3, {}, generation);
  CHECK(p.kind == ReplayPlan::Kind::kReplay);
  CHECK(p.start == 0);
  CHECK_FALSE(p.gap);
  hub::ReplayContext finished;
  finished.finished = true;
  finished.final_id = EventId{3, 0};
  CHECK(plan_over(3, {}, finished).kind == ReplayPlan::Kind::kReplay);
}

TEST_CASE("hub/replay_planner: a finished channel answers 204 to its final id, only") {
  hub::ReplayContext finished;
  finished.finished = true;
  finished.final_id = EventId{3, 0};
  CHECK(plan_over(3, {true, "3-0"}, finished).kind == ReplayPlan::Kind::kNoContent);
  ReplayPlan behind = plan_over(3, {true, "2-0"}, finished);
  CHECK(behind.kind == ReplayPlan::Kind::kReplay);
  CHECK(behind.start == 2);
  CHECK_FALSE(behind.gap);
  // An unparseable id never matches the final one, even on a channel without events.
  hub::ReplayContext empty;
  empty.finished = true;
  ReplayPlan garbage = plan_over(0, {true, "x"}, empty);
  CHECK(garbage.kind == ReplayPlan::Kind::kReplay);
  CHECK(garbage.gap);
}

TEST_CASE("hub/replay_planner: the gap notice echoes a bounded prefix of the id") {
  std::string sent(300, 'a');
  ReplayPlan p = plan_over(2, {true, sent}, {});
  CHECK(p.gap);
  CHECK(p.requested.size() == hub::ReplayPlanner::kMaxEchoedId);
  metrics::Metrics metrics;
  auto frames = hub::ReplayPlanner::frames(
      p, 2, [](size_t i) { return base::Frame::copy_of("e" + std::to_string(i)); }, EventId{1, 0},
      metrics);
  REQUIRE(frames.size() == 3);
  CHECK(frames[0]->raw() == "event: gap\ndata: {\"last_event_id\":\"" + std::string(128, 'a') +
                                "\",\"first_available\":\"1-0\"}\n\n");
  CHECK(frames[1]->raw() == "e0");
  CHECK(frames[2]->raw() == "e1");
}

TEST_CASE(
    "hub/replay_planner: a stream cursor's \"nothing yet\" is the start, while nothing went") {
  hub::ResumeRequest before_first{true, "0-0", true};
  hub::ReplayContext context;
  ReplayPlan p = plan_over(3, before_first, context);
  CHECK(p.kind == ReplayPlan::Kind::kReplay);
  CHECK(p.start == 0);
  CHECK_FALSE(p.gap);
  p = plan_over(0, before_first, context);  // nothing published meanwhile
  CHECK(p.kind == ReplayPlan::Kind::kReplay);
  CHECK_FALSE(p.gap);
  // An event was evicted: the client may have missed it.
  context.known_before = EventId{0, 7};
  p = plan_over(3, before_first, context);
  CHECK(p.start == 0);
  CHECK(p.gap);
  CHECK(p.requested == "0-0");
  // A client's own 0-0 is only an id older than the history.
  hub::ReplayContext fresh;
  p = plan_over(3, hub::ResumeRequest{true, "0-0"}, fresh);
  CHECK(p.gap);
}
