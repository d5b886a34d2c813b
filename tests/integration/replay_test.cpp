// Last-Event-ID replay, the gap event, and replay racing live publishes (docs/protocol.md#resume).
#include <atomic>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

std::vector<std::string> publish_n(uint16_t port, const std::string& ch, int n,
                                   const std::string& prefix = "e") {
  Publisher pub(port);
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(pub.publish(ch, prefix + std::to_string(i)));
  return ids;
}

}  // namespace

TEST_CASE("replay: Last-Event-ID header replays what followed then goes live") {
  Gateway gw;
  auto ids = publish_n(gw.port(), "r", 5);
  SseStream s(gw.port(), "r", {.last_event_id = ids[1]});
  s.expect_ok();
  for (int i = 2; i < 5; ++i) {
    SseEvent e = s.expect_event();
    CHECK(e.id == ids[i]);
    CHECK(e.data == "e" + std::to_string(i));
  }
  CHECK_FALSE(s.next_event(200ms).has_value());
  std::string live = publish(gw.port(), "r", "live");
  CHECK(s.expect_event().id == live);

  std::string want = kHead11 + chunk("retry: 2000\n\n");
  for (int i = 2; i < 5; ++i) want += chunk(sse_frame(ids[i], "e" + std::to_string(i)));
  want += chunk(sse_frame(live, "live"));
  INFO("got: \"", printable(s.wire()), "\"");
  CHECK(s.wire() == want);
  CHECK(wait_metric(gw.port(), "ssegw_replayed_events_total", 3) == 3);
  CHECK(read_metric(gw.port(), "ssegw_replay_gaps_total") == 0);
}

TEST_CASE("replay: last_event_id query parameter and header precedence") {
  Gateway gw;
  auto ids = publish_n(gw.port(), "q", 5);

  SseStream by_query(gw.port(), "q", {.query = "last_event_id=" + ids[2]});
  by_query.expect_ok();
  CHECK(by_query.expect_event().id == ids[3]);
  CHECK(by_query.expect_event().id == ids[4]);

  // The header wins over the query parameter.
  SseStream both(gw.port(), "q", {.last_event_id = ids[3], .query = "last_event_id=" + ids[0]});
  both.expect_ok();
  CHECK(both.expect_event().id == ids[4]);

  // The newest id: nothing to replay, the next event is live.
  SseStream newest(gw.port(), "q", {.last_event_id = ids[4]});
  newest.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), "q", 3) == 3);
  CHECK_FALSE(by_query.next_event(100ms).has_value());
  CHECK_FALSE(both.next_event(0ms).has_value());
  CHECK_FALSE(newest.next_event(0ms).has_value());

  std::string live = publish(gw.port(), "q", "live");
  CHECK(by_query.expect_event().id == live);
  CHECK(both.expect_event().id == live);
  CHECK(newest.expect_event().id == live);
  CHECK(newest.body() == "retry: 2000\n\n" + sse_frame(live, "live"));
  CHECK(read_metric(gw.port(), "ssegw_replay_gaps_total") == 0);
}

TEST_CASE("replay: gap event for an unparseable id") {
  Gateway gw("history: {max_events: 5}\n");
  auto ids = publish_n(gw.port(), "g", 3);

  SseStream s(gw.port(), "g", {.last_event_id = "garbage"});
  s.expect_ok();
  SseEvent gap = s.expect_event();
  CHECK_FALSE(gap.id.has_value());
  CHECK(gap.event == "gap");
  CHECK(gap.data == "{\"last_event_id\":\"garbage\",\"first_available\":\"" + ids[0] + "\"}");
  for (int i = 0; i < 3; ++i) CHECK(s.expect_event().id == ids[i]);
  std::string want = kHead11 + chunk("retry: 2000\n\n") + chunk(gap_frame("garbage", ids[0]));
  for (int i = 0; i < 3; ++i) want += chunk(sse_frame(ids[i], "e" + std::to_string(i)));
  INFO("got: \"", printable(s.wire()), "\"");
  CHECK(s.wire() == want);

  // Nothing retained: first_available is null, then the stream goes live.
  SseStream empty(gw.port(), "g.empty", {.query = "last_event_id=nope"});
  empty.expect_ok();
  SseEvent gap2 = empty.expect_event();
  CHECK_FALSE(gap2.id.has_value());
  CHECK(gap2.event == "gap");
  CHECK(gap2.data == "{\"last_event_id\":\"nope\",\"first_available\":null}");
  REQUIRE(wait_subscribers(gw.port(), "g.empty", 1) == 1);
  std::string live = publish(gw.port(), "g.empty", "live");
  CHECK(empty.expect_event().id == live);
  CHECK(empty.wire() == kHead11 + chunk("retry: 2000\n\n") + chunk(gap_frame("nope", "")) +
                            chunk(sse_frame(live, "live")));

  CHECK(wait_metric(gw.port(), "ssegw_replay_gaps_total", 2) == 2);
  CHECK(read_metric(gw.port(), "ssegw_replayed_events_total") == 3);
}

TEST_CASE("replay: gap event for an id older than the history") {
  Gateway gw("history: {max_events: 5}\n");
  auto ids = publish_n(gw.port(), "old", 8);
  CHECK(json_body(http_get(gw.port(), "/v1/channels/old")) ==
        info_json("old", 0, 5, ids[3], ids[7]));

  for (const std::string& requested : {ids[1], std::string("1-0")}) {
    CAPTURE(requested);
    SseStream s(gw.port(), "old", {.last_event_id = requested});
    s.expect_ok();
    SseEvent gap = s.expect_event();
    CHECK_FALSE(gap.id.has_value());
    CHECK(gap.event == "gap");
    std::string want = kHead11 + chunk("retry: 2000\n\n") + chunk(gap_frame(requested, ids[3]));
    for (int i = 3; i < 8; ++i) {
      CHECK(s.expect_event().id == ids[i]);
      want += chunk(sse_frame(ids[i], "e" + std::to_string(i)));
    }
    CHECK_FALSE(s.next_event(100ms).has_value());
    INFO("got: \"", printable(s.wire()), "\"");
    CHECK(s.wire() == want);
  }

  // An id inside the retained window replays without a gap.
  SseStream in_window(gw.port(), "old", {.last_event_id = ids[4]});
  in_window.expect_ok();
  for (int i = 5; i < 8; ++i) CHECK(in_window.expect_event().id == ids[i]);
  CHECK(in_window.body() == "retry: 2000\n\n" + sse_frame(ids[5], "e5") + sse_frame(ids[6], "e6") +
                                sse_frame(ids[7], "e7"));
  CHECK(wait_metric(gw.port(), "ssegw_replay_gaps_total", 2) == 2);
  CHECK(read_metric(gw.port(), "ssegw_replayed_events_total") == 5 + 5 + 3);
}

TEST_CASE("replay: history is bounded by bytes and by ttl") {
  Gateway gw("history: {max_events: 100, max_bytes: 1KiB, ttl: 1s}\n");
  // Each event serialises to about 330 bytes: three fit in 1 KiB, four do not.
  Publisher pub(gw.port());
  std::vector<std::string> ids;
  // Taken before the publish of events 7 (the oldest that stays) and 9 (the newest): each event
  // expires ttl after its publish, so not before ttl after these.
  Clock::time_point before_7, before_9;
  for (int i = 0; i < 10; ++i) {
    if (i == 7) before_7 = Clock::now();
    if (i == 9) before_9 = Clock::now();
    ids.push_back(pub.publish("hb", std::string(300, 'a' + i)));
  }
  CHECK(json_body(http_get(gw.port(), "/v1/channels/hb")) == info_json("hb", 0, 3, ids[7], ids[9]));
  {
    SseStream s(gw.port(), "hb", {.last_event_id = ids[0]});
    s.expect_ok();
    SseEvent gap = s.expect_event();
    CHECK(gap.event == "gap");
    CHECK(gap.data ==
          "{\"last_event_id\":\"" + ids[0] + "\",\"first_available\":\"" + ids[7] + "\"}");
    for (int i = 7; i < 10; ++i) CHECK(s.expect_event().id == ids[i]);
  }

  // Not expired early, but gone after the ttl: the first of the three goes no sooner than ttl
  // after its publish, and the last as well.
  auto retained = [&] {
    return json_number(http_get(gw.port(), "/v1/channels/hb").body, "retained").value_or(-1);
  };
  CHECK(wait_until([&] { return retained() < 3; }, kTimeout, 20ms));
  const auto first_gone = Clock::now();
  CHECK(wait_until([&] { return retained() == 0; }, kTimeout, 20ms));
  const auto all_gone = Clock::now();
  INFO("the first event expired ", std::chrono::duration_cast<Ms>(first_gone - before_7).count(),
       " ms after it was published, the last ",
       std::chrono::duration_cast<Ms>(all_gone - before_9).count(), " ms after");
  CHECK(first_gone - before_7 >= 900ms);
  CHECK(all_gone - before_9 >= 900ms);
  CHECK(json_body(http_get(gw.port(), "/v1/channels/hb")) == info_json("hb", 0, 0, "", ""));
  // A channel with no subscriber and no event is freed.
  CHECK(wait_metric(gw.port(), "ssegw_channels_active", 0) == 0);

  SseStream late(gw.port(), "hb", {.last_event_id = ids[2]});
  late.expect_ok();
  SseEvent gap = late.expect_event();
  CHECK(gap.event == "gap");
  CHECK(gap.data == "{\"last_event_id\":\"" + ids[2] + "\",\"first_available\":null}");
  CHECK_FALSE(late.next_event(100ms).has_value());
}

TEST_CASE("replay: racing with live publishing loses and repeats nothing") {
  Gateway gw("history: {max_events: 10000}\n");
  const uint16_t port = gw.port();
  constexpr size_t kEvents = 3000;
  constexpr int kSubscribers = 4;
  const std::string marker = publish(port, "race", "marker");

  std::mutex mu;
  std::vector<std::string> published;
  std::string publisher_error;
  std::atomic<bool> publishing{true};
  std::atomic<int> connects_while_publishing{0};
  std::thread publisher([&] {
    try {
      Publisher pub(port);
      for (size_t i = 0; i < kEvents; ++i) {
        std::string id = pub.publish("race", "n=" + std::to_string(i));
        std::lock_guard lock(mu);
        published.push_back(id);
      }
    } catch (const std::exception& e) {
      publisher_error = e.what();
    }
    publishing = false;
  });

  struct Seen {
    std::vector<std::string> ids, data;
    int connections = 0;
    std::string error;
  };
  std::vector<Seen> seen(kSubscribers);
  std::vector<std::thread> subscribers;
  for (int k = 0; k < kSubscribers; ++k) {
    subscribers.emplace_back([&, k] {
      Seen& me = seen[k];
      try {
        std::mt19937 rng(static_cast<unsigned>(k + 1));
        std::string last = marker;
        auto deadline = Clock::now() + 25s;
        while (me.ids.size() < kEvents) {
          if (Clock::now() > deadline) throw std::runtime_error("deadline passed");
          SseStream::Options o;
          if (rng() % 2 == 0) {
            o.last_event_id = last;
          } else {
            o.query = "last_event_id=" + last;
          }
          SseStream s(port, "race", o);
          ++me.connections;
          if (publishing) ++connects_while_publishing;
          s.expect_ok();
          // The last subscriber stays on one connection; the others reconnect every few events.
          size_t budget = k == kSubscribers - 1 ? kEvents : 1 + rng() % 120;
          while (budget-- > 0 && me.ids.size() < kEvents) {
            SseEvent e = s.expect_event(5s);
            if (!e.id)
              throw std::runtime_error("event without id after " + last + ": " + e.event + " " +
                                       e.data);
            me.ids.push_back(*e.id);
            me.data.push_back(e.data);
            last = *e.id;
          }
        }
      } catch (const std::exception& e) {
        me.error = e.what();
      }
    });
  }
  publisher.join();
  for (auto& t : subscribers) t.join();

  REQUIRE(publisher_error == "");
  // The race was on: subscribers resumed while events were being published.
  CHECK(connects_while_publishing >= 20);
  REQUIRE(published.size() == kEvents);
  for (int k = 0; k < kSubscribers; ++k) {
    CAPTURE(k);
    CAPTURE(seen[k].connections);
    CHECK(seen[k].error == "");
    check_same_ids(seen[k].ids, published, "subscriber " + std::to_string(k));
    size_t bad = 0;
    for (size_t i = 0; i < seen[k].data.size(); ++i)
      if (seen[k].data[i] != "n=" + std::to_string(i)) ++bad;
    CHECK(bad == 0);
  }
  CHECK(read_metric(port, "ssegw_replay_gaps_total") == 0);
}
