// limits.max_sources: the upstream sources open at once, all workers together. A subscribe that
// would open one more gets 503 too_many_sources; a source waiting out its idle_close still
// counts, and is reused when its channel is watched again.
//
// Without the cap, subscribing to 500 feed.* names and hanging up left 500 upstream requests
// open for idle_close each.
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

std::string sources_yaml(const MockLlm& mock, int workers) {
  return "workers: " + std::to_string(workers) +
         "\nlimits:\n  max_sources: 3\nupstreams:\n  llm: {url: \"" + mock.url() +
         "\"}\nsources:\n  - {channels: \"feed.*\", upstream: llm, path: "
         "\"/feed/{channel}?interval_ms=20\", idle_close: 1s}\n";
}

// Opens a subscriber and waits for its first event: its source runs.
std::unique_ptr<SseStream> streaming(uint16_t port, const std::string& channel) {
  auto s = std::make_unique<SseStream>(port, channel);
  s->expect_ok();
  SseEvent e = s->expect_event();
  CHECK(e.data.find("\"feed\":\"" + channel + "\"") != std::string::npos);
  return s;
}

void check_refused(uint16_t port, const std::string& channel) {
  CAPTURE(channel);
  Response r = http(port, get_request("/v1/channels/" + channel + "/events"));
  check_error(r, 503, "too_many_sources");
  CHECK(r.body ==
        "{\"error\":{\"code\":\"too_many_sources\",\"message\":\"the gateway is at "
        "limits.max_sources\"}}\n");
}

void check_source_cap(int workers) {
  MockLlm mock;
  Gateway gw(sources_yaml(mock, workers));
  const uint16_t port = gw.port();
  std::vector<std::unique_ptr<SseStream>> open;
  for (const char* ch : {"feed.a", "feed.b", "feed.c"}) open.push_back(streaming(port, ch));
  CHECK(read_metric(port, "ssegw_sources_active") == 3);
  CHECK(mock.stat("feeds_active") == 3);

  // Each on a fresh connection, so that with two workers some land on the worker that does not
  // own the channel, and the refusal comes back through the owner's mailbox.
  constexpr int kRefused = 12;
  for (int i = 0; i < kRefused; ++i) check_refused(port, "feed.x" + std::to_string(i));
  CHECK(read_metric(port, "ssegw_sources_refused_total") == kRefused);
  CHECK(read_metric(port, "ssegw_sources_active") == 3);
  CHECK(mock.stat("feeds_active") == 3);
  CHECK(mock.stats().find("feed.x") == std::string::npos);  // never requested upstream
  // A refusal leaves nothing behind: no channel, no subscriber.
  CHECK(read_metric(port, "ssegw_channels_active") == 3);
  CHECK(read_metric(port, "ssegw_subscribers_active") == 3);

  // At the cap, a channel that has its source already, and one that needs none, are served.
  auto second_a = streaming(port, "feed.a");
  SseStream plain(port, "plain");
  plain.expect_ok();
  second_a.reset();

  // A source waiting out its idle_close still counts, and is reused when watched again.
  open[1].reset();  // feed.b
  CHECK(wait_subscribers(port, "feed.b", 0) == 0);
  check_refused(port, "feed.y");
  open[1] = streaming(port, "feed.b");
  CHECK(read_metric(port, "ssegw_sources_active") == 3);
  CHECK(mock.stat("/feed/feed.b") == 1);  // the same upstream request goes on

  // Once feed.c's source has closed (idle_close after its last subscriber), a new one starts.
  open[2].reset();
  CHECK(wait_metric(port, "ssegw_sources_active", 2, 5s) == 2);
  CHECK(mock.wait_stat("feeds_active", 2) == 2);
  open.push_back(streaming(port, "feed.d"));
  CHECK(read_metric(port, "ssegw_sources_active") == 3);
  CHECK(mock.stat("feeds_active") == 3);
  check_refused(port, "feed.z");
  CHECK(read_metric(port, "ssegw_sources_refused_total") == kRefused + 2);
  CHECK(mock.stat("feeds_active") <= 3);
}

}  // namespace

TEST_CASE("source limits: past limits.max_sources a subscribe gets 503 too_many_sources") {
  check_source_cap(1);
}

TEST_CASE("source limits: limits.max_sources holds across workers: 2") {
  check_source_cap(2);
}

// A source's upstream request takes a slot of upstreams.NAME.max_concurrent like a route's: at
// the cap it waits (and retries with backoff) instead of opening one more.
TEST_CASE("source limits: a source waits for a slot of its upstream's max_concurrent") {
  MockLlm mock;
  Gateway gw("upstreams:\n  llm: {url: \"" + mock.url() +
             "\", max_concurrent: 1}\nsources:\n  - {channels: \"feed.*\", upstream: llm, path: "
             "\"/feed/{channel}?interval_ms=20\", idle_close: 200ms, reconnect_min: 50ms, "
             "reconnect_max: 200ms}\n");
  const uint16_t port = gw.port();
  auto a = streaming(port, "feed.a");
  SseStream b(port, "feed.b");
  b.expect_ok();  // subscribed; its source waits for the upstream's only slot
  CHECK(wait_metric_at_least(port, "ssegw_upstream_busy_total{upstream=\"llm\"}", 1) >= 1);
  CHECK(mock.stat("feeds_active") == 1);
  CHECK(read_metric(port, "ssegw_upstream_requests_active{upstream=\"llm\"}") == 1);
  CHECK_FALSE(b.next_event(200ms).has_value());
  a.reset();  // feed.a's source closes after idle_close, and feed.b's takes the slot
  SseEvent e = b.expect_event(5s);
  CHECK(e.data.find("\"feed\":\"feed.b\"") != std::string::npos);
  CHECK(mock.wait_stat("feeds_active", 1) == 1);
}
