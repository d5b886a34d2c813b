// Fan-out to many subscribers in one thread over poll(); slow consumers (docs/protocol.md).
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

void crowd(const std::string& config) {
  constexpr size_t kSubscribers = 1000;
  constexpr size_t kEvents = 50;
  REQUIRE(raise_fd_limit() >= kSubscribers + 100);
  Gateway gw(config);
  const uint16_t port = gw.port();

  std::vector<std::unique_ptr<SseStream>> subs;
  std::vector<SseStream*> all;
  for (size_t i = 0; i < kSubscribers; ++i) {
    subs.push_back(std::make_unique<SseStream>(port, "crowd"));
    all.push_back(subs.back().get());
  }
  bool heads = pump_all(
      all,
      [&] {
        for (auto* s : all)
          if (!s->head_received() || !s->retry()) return false;
        return true;
      },
      15s);
  REQUIRE(heads);
  size_t ok = 0;
  for (auto* s : all)
    if (s->head().status == 200 && s->head().head == kHead11 && s->retry() == 2000) ++ok;
  REQUIRE(ok == kSubscribers);
  REQUIRE(wait_subscribers(port, "crowd", kSubscribers, 10s) == static_cast<long>(kSubscribers));

  std::vector<std::string> ids;
  {
    Publisher pub(port);
    for (size_t i = 0; i < kEvents; ++i) {
      ids.push_back(pub.publish("crowd", "event " + std::to_string(i) + "\nof the crowd"));
      CHECK(json_number(pub.last().body, "subscribers") == static_cast<long>(kSubscribers));
    }
  }
  CHECK(pump_until_events(all, kEvents, 20s));

  size_t complete = 0, closed = 0, framing = 0;
  bool reported = false;
  for (size_t k = 0; k < kSubscribers; ++k) {
    SseStream& s = *subs[k];
    if (s.closed()) ++closed;
    if (!s.framing_error().empty()) ++framing;
    std::vector<std::string> got;
    bool data_ok = true;
    for (size_t i = 0; i < s.pending().size(); ++i) {
      got.push_back(s.pending()[i].id.value_or("(no id)"));
      if (s.pending()[i].data != "event " + std::to_string(i) + "\nof the crowd") data_ok = false;
    }
    if (got == ids && data_ok) {
      ++complete;
    } else if (!reported) {
      // Report the first offender in detail.
      reported = true;
      CHECK(data_ok);
      check_same_ids(got, ids, "subscriber " + std::to_string(k));
    }
  }
  CHECK(closed == 0);
  CHECK(framing == 0);
  CHECK(complete == kSubscribers);
  CHECK(wait_metric(port, "ssegw_events_delivered_total", kSubscribers * kEvents) ==
        kSubscribers * kEvents);

  subs.clear();
  all.clear();
  CHECK(wait_subscribers(port, "crowd", 0, 10s) == 0);
  CHECK(wait_metric(port, "ssegw_subscribers_active", 0) == 0);
  CHECK(wait_metric(port, "ssegw_connections_active", 1) == 1);
}

}  // namespace

TEST_CASE("fanout: 1000 concurrent subscribers receive every event in order") {
  crowd("");
}

// Issue 15: each loop turn's writes as one io_uring submission, on two workers (mirrors).
TEST_CASE("fanout: with fanout.io_uring, 1000 subscribers on 2 workers get every event in order") {
  crowd("workers: 2\nfanout: { io_uring: true }\n");
}

// Issue 15: fanout.coalesce. The crowd's publisher sends each publish after the last one's
// answer, so events come faster than the 10 ms window: batches across both workers (the owner
// sends a batch, its mirrors get it as one run of forwards), every event once and in order.
TEST_CASE("fanout: with fanout.coalesce, 1000 subscribers on 2 workers get every event in order") {
  crowd("workers: 2\nfanout: { coalesce: 10ms }\n");
}

// A quiet channel's event leaves with its own loop turn (the answer to its publish comes after
// the window opened); the next two, published before the 50 ms window ends, wait for its end and
// leave together, in order. How many waited depends on this test's own speed: when it sent them
// well inside the window (it measures that), both must have waited.
TEST_CASE("fanout: with fanout.coalesce, a quiet channel's first event is not held") {
  Gateway gw("fanout: { coalesce: 50ms }\n");
  const uint16_t port = gw.port();
  SseStream sub(port, "burst");
  sub.expect_ok();
  REQUIRE(wait_subscribers(port, "burst", 1) == 1);
  Conn conn(port);
  conn.send(post_request("/v1/channels/burst/events", "e1"));
  CHECK(conn.read_response().status == 200);
  auto answered = std::chrono::steady_clock::now();
  conn.send(post_request("/v1/channels/burst/events", "e2") +
            post_request("/v1/channels/burst/events", "e3"));
  bool inside_window = std::chrono::steady_clock::now() - answered < 25ms;
  for (int i = 0; i < 2; ++i) CHECK(conn.read_response().status == 200);
  for (const char* data : {"e1", "e2", "e3"}) CHECK(sub.expect_event().data == data);
  CHECK(wait_metric(port, "ssegw_events_delivered_total", 3) == 3);
  // Counted when they were held, so before they arrived.
  std::optional<double> held = read_metric(port, "ssegw_fanout_coalesced_events_total");
  REQUIRE(held);
  if (inside_window)
    CHECK(*held == 2);
  else
    CHECK(*held <= 2);
}

TEST_CASE("fanout: a non-reading subscriber is disconnected while a reading one gets everything") {
  Gateway gw("slow_consumer: {max_queued_bytes: 64KiB}\n");
  const uint16_t port = gw.port();
  // The slow one reads its response head, then never reads again.
  SseStream slow(port, "fast-and-slow", {.rcvbuf = 4096});
  slow.expect_ok();
  SseStream fast(port, "fast-and-slow");
  fast.expect_ok();
  REQUIRE(wait_subscribers(port, "fast-and-slow", 2) == 2);

  struct Got {
    std::vector<std::string> ids;
    size_t bad_data = 0;
    std::string error;
  } got;
  std::thread reader([&] {
    try {
      for (;;) {
        SseEvent e = fast.expect_event(10s);
        if (e.event == "end") break;
        size_t i = got.ids.size();
        if (e.data != std::string(16384, static_cast<char>('a' + i % 26))) ++got.bad_data;
        got.ids.push_back(e.id.value_or("(no id)"));
      }
    } catch (const std::exception& e) {
      got.error = e.what();
    }
  });

  // Publish 16 KiB events until the slow subscriber is cut. The kernel's socket buffers on
  // loopback absorb a few MiB first, so the amount needed depends on the machine; stop at 64 MiB.
  std::vector<std::string> ids;
  size_t published_bytes = 0;
  std::optional<double> cut;
  {
    Publisher pub(port);
    const size_t kMax = 64u << 20;
    while (published_bytes < kMax) {
      size_t i = ids.size();
      ids.push_back(
          pub.publish("fast-and-slow", std::string(16384, static_cast<char>('a' + i % 26))));
      published_bytes += 16384;
      if (published_bytes % (1u << 20) == 0 && published_bytes >= (4u << 20)) {
        cut = read_metric(port, "ssegw_slow_consumer_disconnects_total");
        if (cut == 1) break;
      }
    }
    // The reader keeps receiving after the cut.
    for (int k = 0; k < 16; ++k) {
      size_t i = ids.size();
      ids.push_back(
          pub.publish("fast-and-slow", std::string(16384, static_cast<char>('a' + i % 26))));
      CHECK(json_number(pub.last().body, "subscribers") == 1);
    }
    pub.publish("fast-and-slow", "", "end");
  }
  reader.join();
  INFO("published ", published_bytes >> 20, " MiB before the cut");
  CHECK(cut == 1);
  CHECK(got.error == "");
  CHECK(got.bad_data == 0);
  check_same_ids(got.ids, ids, "reading subscriber");
  CHECK(read_metric(port, "ssegw_slow_consumer_disconnects_total") == 1);
  CHECK(wait_subscribers(port, "fast-and-slow", 1) == 1);
  CHECK(wait_metric(port, "ssegw_subscribers_active", 1) == 1);

  // The slow socket holds a clean prefix of the stream, then the close.
  CHECK(slow.read_until_closed(10s));
  CHECK(slow.framing_error() == "");
  std::vector<std::string> prefix;
  while (!slow.pending().empty()) {
    prefix.push_back(slow.pending().front().id.value_or("(no id)"));
    slow.pending().pop_front();
  }
  CHECK(prefix.size() < ids.size());
  CHECK(std::equal(prefix.begin(), prefix.end(), ids.begin()));
  // Some of it, not all of it, was delivered before the cut.
  CHECK_FALSE(slow.finished());
}
