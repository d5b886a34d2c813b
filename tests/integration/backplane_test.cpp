// The Redis Streams backplane (issue 7): several ssegw instances share channels, history, sources
// and resumable generations through one Redis.
//
// Every test starts its own redis-server on a free loopback port (RedisServer, no persistence)
// and its own gateways on port 0, and uses a key prefix of its own. The gateways are declared
// after the RedisServer and the MockLlm so that they stop first: their graceful exit (status 0)
// is checked by Gateway's destructor while Redis and the upstream are still there.
//
// Events are compared exactly: ids are the ones the publishes answered, data is byte for byte,
// and the de-chunked body is rebuilt frame by frame, so that a duplicate, a gap event or any
// stray event fails the test.
#include <signal.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/redis_server.hpp"

using namespace itest;

namespace {

// ---------------------------------------------------------------------------------------------
// Configuration

// The backplane block for gateways sharing redis under key_prefix. lease_ttl is short so that a
// source moves to another instance within a second when its owner dies.
std::string backplane_yaml(const RedisServer& redis, const std::string& prefix) {
  return "backplane: {type: redis, url: \"" + redis.url() + "\", key_prefix: \"" + prefix +
         "\", lease_ttl: 1s}\n";
}

std::string upstream_yaml(const MockLlm& mock) {
  return "upstreams:\n  llm: {url: \"" + mock.url() + "\"}\n";
}

// The end of a long text, for failure messages (a gateway log can be long).
std::string tail(const std::string& text, size_t n = 3000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

// ---------------------------------------------------------------------------------------------
// Probes

// Polls GET /readyz until it answers want. Returns the last status seen.
int wait_readyz(uint16_t port, int want, Ms timeout) {
  int status = 0;
  wait_until([&] { return (status = http_get(port, "/readyz").status) == want; }, timeout, 20ms);
  return status;
}

// A gateway on Redis may take a moment to connect; nothing is published before it is ready.
void require_ready(const Gateway& gw, const std::string& name) {
  INFO("gateway ", name, " log:\n", tail(gw.log()));
  REQUIRE(wait_readyz(gw.port(), 200, 10s) == 200);
}

// Every key in the test's own Redis carries the configured prefix (streams, leases, ...), and
// there is at least one.
void check_keys_prefixed(const RedisServer& redis, const std::string& prefix) {
  const std::string all = redis.command({"KEYS", "*"});
  const std::string mine = redis.command({"KEYS", prefix + "*"});
  INFO("KEYS * answered ", all, ", KEYS ", prefix, "* answered ", mine);
  CHECK(all != "*0");
  CHECK(mine == all);
}

// ---------------------------------------------------------------------------------------------
// Publishing and reading

struct Published {
  std::vector<std::string> ids, data;
};

// Publishes n events "<prefix><i>" over one keep-alive connection. Each must answer 200 with an
// id of the form <ms>-<seq>, greater than the one before (and than after, when given).
Published publish_n(uint16_t port, const std::string& ch, int n, const std::string& prefix,
                    const std::string& after = "") {
  Publisher pub(port);
  Published out;
  std::string prev = after;
  for (int i = 0; i < n; ++i) {
    std::string data = prefix + std::to_string(i);
    std::string id = pub.publish(ch, data);
    INFO("publish ", i, " answered: ", printable(pub.last().body));
    REQUIRE(parse_id(id));
    if (!prev.empty()) REQUIRE(parse_id(prev) < parse_id(id));
    prev = id;
    out.ids.push_back(id);
    out.data.push_back(data);
  }
  return out;
}

Published operator+(Published a, const Published& b) {
  a.ids.insert(a.ids.end(), b.ids.begin(), b.ids.end());
  a.data.insert(a.data.end(), b.data.begin(), b.data.end());
  return a;
}

// Reads exactly n events (the next ones) from s. Throws when they do not all arrive in time.
std::vector<SseEvent> read_events(SseStream& s, size_t n, Ms timeout = 10s) {
  auto deadline = Clock::now() + timeout;
  std::vector<SseEvent> out;
  while (out.size() < n) {
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    auto e = s.next_event(std::max(left, Ms(0)));
    if (!e) {
      const std::string& b = s.body();
      throw std::runtime_error(
          std::to_string(out.size()) + " of " + std::to_string(n) + " events, then " +
          (s.closed() ? "the stream closed" : "nothing in time") + "; body ending: \"" +
          printable(b.substr(b.size() - std::min<size_t>(b.size(), 600))) + "\"");
    }
    out.push_back(std::move(*e));
  }
  return out;
}

// Checks that got is exactly the published events: same ids in the same order, same data, the
// default type.
void check_events(const std::vector<SseEvent>& got, const Published& want, const std::string& who) {
  std::vector<std::string> ids;
  for (const SseEvent& e : got) ids.push_back(e.id.value_or("<no id: " + e.event + ">"));
  check_same_ids(ids, want.ids, who);
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; i < got.size() && i < want.data.size(); ++i) {
    if (got[i].data == want.data[i] && got[i].event.empty()) continue;
    if (bad++ == 0) first_bad = i;
  }
  INFO(who, ": ", bad, " events with the wrong data or type, the first at ", first_bad);
  CHECK(bad == 0);
}

// The exact body of a subscription that received want (after an optional gap frame).
std::string expected_body(const Published& want, const std::string& gap = "") {
  std::string body = "retry: 2000\n\n" + gap;
  for (size_t i = 0; i < want.ids.size(); ++i) body += sse_frame(want.ids[i], want.data[i]);
  return body;
}

// Nothing more arrives on s for a while, and the stream is still open.
void check_quiet_and_open(SseStream& s, const std::string& who, Ms wait = 300ms) {
  auto extra = s.next_event(wait);
  INFO(who, ": unexpected event ", extra ? extra->id.value_or("-") + " " + extra->data : "");
  CHECK_FALSE(extra.has_value());
  CHECK_FALSE(s.closed());
  CHECK_FALSE(s.finished());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The helper itself: the restart test below relies on these properties.

TEST_CASE("backplane: the RedisServer helper restarts on the same port and comes back empty") {
  RedisServer redis;
  INFO("redis log:\n", tail(redis.log()));
  CHECK(redis.command({"PING"}) == "+PONG");
  CHECK(redis.command({"SET", "k", "v"}) == "+OK");
  CHECK(redis.command({"EXISTS", "k"}) == ":1");
  const uint16_t port = redis.port();
  redis.kill();
  CHECK_FALSE(redis.running());
  CHECK_THROWS(redis.command({"PING"}, 500ms));
  redis.restart();
  CHECK(redis.running());
  CHECK(redis.port() == port);
  CHECK(redis.command({"EXISTS", "k"}) == ":0");  // no persistence
}

// ---------------------------------------------------------------------------------------------
// Channels shared by two instances

TEST_CASE("backplane: two instances share a channel, every subscriber gets every event once") {
  RedisServer redis;
  const std::string yaml = backplane_yaml(redis, "t1:");
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", tail(a.log()));
  INFO("gateway B log:\n", tail(b.log()));
  require_ready(a, "A");
  require_ready(b, "B");

  // Three subscribers on B, one on A; the 200 head means the subscription is in effect.
  std::vector<SseStream> subs;
  subs.emplace_back(a.port(), "fan");
  for (int i = 0; i < 3; ++i) subs.emplace_back(b.port(), "fan");
  for (SseStream& s : subs) s.expect_ok();
  const std::vector<std::string> who = {"A's subscriber", "B's subscriber 1", "B's subscriber 2",
                                        "B's subscriber 3"};

  // 200 events published on A: the ids are Redis stream ids, strictly increasing.
  const Published on_a = publish_n(a.port(), "fan", 200, "from-a-");
  for (size_t k = 0; k < subs.size(); ++k) check_events(read_events(subs[k], 200), on_a, who[k]);

  // And the other way: published on B, received on A as well.
  const Published on_b = publish_n(b.port(), "fan", 20, "from-b-", on_a.ids.back());
  for (size_t k = 0; k < subs.size(); ++k) check_events(read_events(subs[k], 20), on_b, who[k]);

  // Nothing else came: no duplicate, no gap event, no stray frame.
  for (size_t k = 0; k < subs.size(); ++k) {
    check_quiet_and_open(subs[k], who[k], k == 0 ? 300ms : 0ms);
    CHECK(subs[k].body() == expected_body(on_a + on_b));
  }
  check_keys_prefixed(redis, "t1:");
}

// With workers: 2 a channel is owned by one worker per instance: subscribers on the other worker
// are mirrors fed by the owner, and a subscriber on the owner joins at once. Connections land on
// either worker (SO_REUSEPORT), so eight subscribers per channel cover both paths. Also run under
// ThreadSanitizer (make test-tsan).
TEST_CASE("backplane: on workers 2, every subscriber of every channel gets every event once") {
  RedisServer redis;
  const std::string yaml = backplane_yaml(redis, "tw:") + "workers: 2\n";
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", tail(a.log()));
  INFO("gateway B log:\n", tail(b.log()));
  require_ready(a, "A");
  require_ready(b, "B");

  const std::vector<std::string> channels = {"w0", "w1", "w2", "w3"};
  struct Sub {
    std::string channel;
    SseStream stream;
  };
  std::vector<Sub> subs;
  for (const std::string& ch : channels)
    for (int i = 0; i < 8; ++i) subs.push_back({ch, SseStream(i % 2 ? a.port() : b.port(), ch)});
  for (Sub& s : subs) s.stream.expect_ok();

  // Published on both instances, each channel over its own connection; then a late subscriber
  // on each instance resumes from the 10th event of its channel.
  std::map<std::string, Published> sent;
  for (size_t c = 0; c < channels.size(); ++c)
    sent[channels[c]] = publish_n(c % 2 ? a.port() : b.port(), channels[c], 30, "ev-");
  for (Sub& s : subs) {
    INFO("channel ", s.channel);
    check_events(read_events(s.stream, 30), sent[s.channel], "subscriber of " + s.channel);
  }
  for (const std::string& ch : channels) {
    for (uint16_t port : {a.port(), b.port()}) {
      SseStream late(port, ch, {.last_event_id = sent[ch].ids[9]});
      late.expect_ok();
      Published rest;
      rest.ids.assign(sent[ch].ids.begin() + 10, sent[ch].ids.end());
      rest.data.assign(sent[ch].data.begin() + 10, sent[ch].data.end());
      check_events(read_events(late, 20), rest, "late subscriber of " + ch);
    }
  }
  for (Sub& s : subs) {
    check_quiet_and_open(s.stream, "subscriber of " + s.channel, 0ms);
    CHECK(s.stream.body() == expected_body(sent[s.channel]));
  }
}

TEST_CASE("backplane: a subscriber resumes on another instance with exactly the missed events") {
  RedisServer redis;
  const std::string yaml = backplane_yaml(redis, "t2:");
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", tail(a.log()));
  INFO("gateway B log:\n", tail(b.log()));
  require_ready(a, "A");
  require_ready(b, "B");

  // A subscriber on A reads 10 of 30 events and drops; 20 more are published while it is away.
  SseStream first(a.port(), "resume");
  first.expect_ok();
  const Published p1 = publish_n(a.port(), "resume", 30, "e");
  std::vector<SseEvent> got = read_events(first, 10);
  first.close();
  const Published p2 = publish_n(a.port(), "resume", 20, "f", p1.ids.back());
  const Published all = p1 + p2;
  Published seen, missed;
  seen.ids.assign(all.ids.begin(), all.ids.begin() + 10);
  seen.data.assign(all.data.begin(), all.data.begin() + 10);
  missed.ids.assign(all.ids.begin() + 10, all.ids.end());
  missed.data.assign(all.data.begin() + 10, all.data.end());
  check_events(got, seen, "the first subscriber");

  // It reconnects to B with the id of the 10th event: events 11 to 50, no gap event, then live.
  SseStream resumed(b.port(), "resume", {.last_event_id = seen.ids.back()});
  resumed.expect_ok();
  check_events(read_events(resumed, missed.ids.size()), missed, "the resumed subscriber");
  check_quiet_and_open(resumed, "the resumed subscriber");
  const Published live = publish_n(a.port(), "resume", 1, "live", all.ids.back());
  check_events(read_events(resumed, 1), live, "the resumed subscriber (live)");
  CHECK(resumed.body() == expected_body(missed + live));

  // The newest id, resumed on B right after A wrote it: nothing to replay, no gap event, and the
  // next event is live.
  const Published newest = publish_n(a.port(), "resume", 1, "newest", live.ids.back());
  SseStream at_end(b.port(), "resume", {.last_event_id = newest.ids.back()});
  at_end.expect_ok();
  check_quiet_and_open(at_end, "the subscriber at the newest id", 200ms);
  const Published next = publish_n(a.port(), "resume", 1, "next", newest.ids.back());
  check_events(read_events(at_end, 1), next, "the subscriber at the newest id (live)");
  CHECK(at_end.body() == expected_body(next));

  // An id older than the stream's first entry: a gap event, then everything retained.
  const Published retained = all + live + newest + next;
  SseStream old(b.port(), "resume", {.last_event_id = "1-0"});
  old.expect_ok();
  SseEvent gap = old.expect_event();
  CHECK_FALSE(gap.id.has_value());
  CHECK(gap.event == "gap");
  CHECK(gap.data == "{\"last_event_id\":\"1-0\",\"first_available\":\"" + all.ids[0] + "\"}");
  check_events(read_events(old, retained.ids.size()), retained, "the subscriber from 1-0");
  check_quiet_and_open(old, "the subscriber from 1-0", 0ms);
  CHECK(old.body() == expected_body(retained, gap_frame("1-0", all.ids[0])));
}

// ---------------------------------------------------------------------------------------------
// Sources

namespace {

// The n of a feed tick {"feed":"...","n":N}; -1 when absent.
long feed_n(const SseEvent& e) {
  return json_number(e.data, "n").value_or(-1);
}

// Reads from s until an event with n >= until has arrived, appending to events.
void read_ticks_until(SseStream& s, std::vector<SseEvent>& events, long until, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  while (events.empty() || feed_n(events.back()) < until) {
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    auto e = s.next_event(std::max(left, Ms(0)));
    if (!e)
      throw std::runtime_error("no tick up to n=" + std::to_string(until) + " in time; last n " +
                               std::to_string(events.empty() ? -1 : feed_n(events.back())) +
                               (s.closed() ? ", the stream closed" : ""));
    events.push_back(std::move(*e));
  }
}

// Checks that events are ticks of feed ch with consecutive n, and that each n has the same
// gateway id as for every other subscriber (id_of_n collects them).
void check_ticks(const std::vector<SseEvent>& events, const std::string& ch,
                 std::map<long, std::string>& id_of_n, const std::string& who) {
  size_t bad = 0;
  std::string first_bad;
  long prev = -1;
  for (const SseEvent& e : events) {
    const long n = feed_n(e);
    const std::string id = e.id.value_or("");
    bool good = e.event == "tick" && !id.empty() && (prev < 0 || n == prev + 1) &&
                e.data == "{\"feed\":\"" + ch + "\",\"n\":" + std::to_string(n) + "}";
    auto [it, fresh] = id_of_n.emplace(n, id);
    if (!fresh && it->second != id) good = false;
    if (!good && bad++ == 0)
      first_bad = "after n=" + std::to_string(prev) + ": " + id + " " + e.event + " " + e.data;
    prev = n;
  }
  INFO(who, ": ", events.size(), " ticks, ", bad, " bad, the first ", first_bad);
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("backplane: a source is opened once across instances and moves when its owner dies") {
  MockLlm mock;
  RedisServer redis;
  const std::string yaml = backplane_yaml(redis, "t3:") + upstream_yaml(mock) +
                           "sources:\n  - {channels: \"feed.*\", upstream: llm, path: "
                           "\"/feed/{channel}?interval_ms=20\","
                           " idle_close: 1s, reconnect_min: 50ms, reconnect_max: 200ms}\n";
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", tail(a.log()));
  INFO("gateway B log:\n", tail(b.log()));
  require_ready(a, "A");
  require_ready(b, "B");

  // A's subscriber comes first, so A most likely takes the source; B's then reads the stream.
  SseStream sa(a.port(), "feed.x");
  sa.expect_ok();
  std::vector<SseEvent> ev_a{sa.expect_event()};
  SseStream sb(b.port(), "feed.x");
  sb.expect_ok();
  std::vector<SseEvent> ev_b{sb.expect_event()};

  // About a second of ticks on both (50 at 20 ms), up to the same n.
  const long until = std::max(feed_n(ev_a.back()), feed_n(ev_b.back())) + 50;
  read_ticks_until(sa, ev_a, until, 5s);
  read_ticks_until(sb, ev_b, until, 5s);
  {
    const std::string stats = mock.stats();
    INFO("mock stats: ", stats);
    CHECK(json_number(stats, "/feed/feed.x") == 1);  // one upstream request in total
    CHECK(json_number(stats, "requests") == 1);
    CHECK(json_number(stats, "feeds_active") == 1);
  }
  std::map<long, std::string> id_of_n;
  check_ticks(ev_a, "feed.x", id_of_n, "A's subscriber");
  check_ticks(ev_b, "feed.x", id_of_n, "B's subscriber");
  check_keys_prefixed(redis, "t3:");

  // Kill A. If it held the source, the lease lapses within lease_ttl (1 s) and B takes over;
  // either way B's subscriber keeps getting ticks, the next n after the last it saw: a new owner
  // resumes the upstream with the Last-Event-ID of the last tick in the stream, as a source does
  // after a drop (docs/protocol.md#sources: no gap, no duplicate).
  while (auto e = sb.next_event(0ms)) ev_b.push_back(std::move(*e));
  const long last_before = feed_n(ev_b.back());
  a.signal(SIGKILL);
  REQUIRE(a.wait_exit(5s) == 128 + SIGKILL);
  const auto killed = Clock::now();
  read_ticks_until(sb, ev_b, last_before + 10, 5s);
  INFO("B's subscriber got 10 more ticks ",
       std::chrono::duration_cast<Ms>(Clock::now() - killed).count(), " ms after A died");
  check_ticks(ev_b, "feed.x", id_of_n, "B's subscriber, across A's death");

  // 2: A owned the source and B took it over; 1: B owned it from the start (A's subscriber came
  // first, so that is unusual, and the takeover went untested this time).
  const long requests = mock.stat("/feed/feed.x");
  if (requests == 1) MESSAGE("B owned the source from the start: no takeover to check");
  CHECK((requests == 1 || requests == 2));
  // Never two upstream requests at once.
  CHECK(mock.wait_stat("feeds_active", 1, 3s) == 1);
  CHECK_FALSE(sb.closed());
}

TEST_CASE("backplane: the source stays with its owner while another instance still watches") {
  MockLlm mock;
  RedisServer redis;
  const std::string yaml = backplane_yaml(redis, "t5:") + upstream_yaml(mock) +
                           "sources:\n  - {channels: \"feed.*\", upstream: llm, path: "
                           "\"/feed/{channel}?interval_ms=20\", idle_close: 300ms}\n";
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", tail(a.log()));
  INFO("gateway B log:\n", tail(b.log()));
  require_ready(a, "A");
  require_ready(b, "B");

  // A's subscriber makes A the owner (the lease is taken at once); then B's joins.
  SseStream sa(a.port(), "feed.y");
  sa.expect_ok();
  sa.expect_event();
  SseStream sb(b.port(), "feed.y");
  sb.expect_ok();
  std::vector<SseEvent> ev_b{sb.expect_event()};
  REQUIRE(mock.stat("/feed/feed.y") == 1);

  // A's subscriber leaves. B still watches (its interest key), so A keeps renewing the lease
  // and runs the source on, past idle_close and several lease periods: B sees consecutive
  // ticks for 2.5 s at least (125 at 20 ms), and the upstream saw one request only.
  sa.close();
  read_ticks_until(sb, ev_b, feed_n(ev_b.back()) + 125, 10s);
  std::map<long, std::string> id_of_n;
  check_ticks(ev_b, "feed.y", id_of_n, "B's subscriber");
  CHECK(mock.stat("/feed/feed.y") == 1);
  CHECK(mock.wait_stat("feeds_active", 1, 1s) == 1);

  // B's subscriber leaves too: nobody is interested, the lease is released and the source
  // closes (idle_close after the release).
  sb.close();
  CHECK(mock.wait_stat("feeds_active", 0, 5s) == 0);
}

// ---------------------------------------------------------------------------------------------
// Losing Redis

TEST_CASE("backplane: Redis restarted mid-stream: readiness flips, no gap and no duplicate") {
  RedisServer redis;
  const std::string yaml = backplane_yaml(redis, "t4:");
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", tail(a.log()));
  INFO("gateway B log:\n", tail(b.log()));
  INFO("redis log:\n", tail(redis.log(), 1500));
  require_ready(a, "A");
  require_ready(b, "B");

  SseStream sa(a.port(), "r"), sb(b.port(), "r");
  sa.expect_ok();
  sb.expect_ok();
  std::vector<SseStream*> subs = {&sa, &sb};
  const std::vector<std::string> who = {"A's subscriber", "B's subscriber"};

  // 50 events, delivered everywhere before Redis dies (it comes back empty: nothing else could
  // deliver them afterwards).
  const Published p1 = publish_n(a.port(), "r", 50, "before-");
  std::vector<std::vector<SseEvent>> got(subs.size());
  for (size_t k = 0; k < subs.size(); ++k) got[k] = read_events(*subs[k], 50);

  redis.kill();
  CHECK(wait_readyz(a.port(), 503, 5s) == 503);
  CHECK(wait_readyz(b.port(), 503, 5s) == 503);
  for (const Gateway* gw : {&a, &b}) {
    Response r = http(gw->port(), post_request("/v1/channels/r/events", "refused"));
    check_error(r, 503, "backplane_unavailable");
  }
  // Subscribers stay connected through the outage, and get nothing meanwhile.
  for (size_t k = 0; k < subs.size(); ++k) check_quiet_and_open(*subs[k], who[k]);

  redis.restart();
  CHECK(wait_readyz(a.port(), 200, 10s) == 200);
  CHECK(wait_readyz(b.port(), 200, 10s) == 200);
  const Published p2 = publish_n(a.port(), "r", 50, "after-", p1.ids.back());
  for (size_t k = 0; k < subs.size(); ++k) {
    std::vector<SseEvent> more = read_events(*subs[k], 50);
    got[k].insert(got[k].end(), more.begin(), more.end());
    check_events(got[k], p1 + p2, who[k]);
    check_quiet_and_open(*subs[k], who[k], k == 0 ? 300ms : 0ms);
    CHECK(subs[k]->body() == expected_body(p1 + p2));
  }

  for (const Gateway* gw : {&a, &b}) {
    const Response m = http_get(gw->port(), "/metrics");
    INFO("metrics of the gateway on port ", gw->port(), ":\n", m.body);
    CHECK(metric_value(m.body, "ssegw_backplane_reconnects_total") >= 1);
    CHECK(metric_value(m.body, "ssegw_backplane_errors_total") >= 1);
  }
}

// Redis stops answering but keeps its connections open: nothing tells the gateway but its
// watchdog's unanswered PING. Whatever was waiting on Redis then is answered 503 (a publish, a
// resuming subscriber's read of the stream, a channel's information), once each. With workers:
// 2, the requests land on either worker (SO_REUSEPORT): those on the channel's other worker are
// answered through the owner's messages.
TEST_CASE("backplane: on workers 2, Redis frozen: waiting requests get 503, streams stay open") {
  RedisServer redis;
  const std::string yaml = backplane_yaml(redis, "t7:") + "workers: 2\n";
  Gateway a(yaml);
  INFO("gateway log:\n", tail(a.log()));
  require_ready(a, "A");

  SseStream live(a.port(), "cold");
  live.expect_ok();
  const Published p1 = publish_n(a.port(), "cold", 3, "before-");
  std::vector<SseEvent> got = read_events(live, 3);

  redis.freeze();
  const auto frozen = Clock::now();
  Conn pub(a.port()), sub(a.port()), info(a.port());
  pub.send(post_request("/v1/channels/cold/events", "while-frozen"));
  sub.send(get_request("/v1/channels/cold/events", "Last-Event-ID: " + p1.ids[0] + "\r\n"));
  info.send(get_request("/v1/channels/cold"));
  // The watchdog answers them within about 3.5 s (its PING timeout and period); 8 s is this
  // test's bound, not a latency claim.
  auto left = [&] {
    return std::max(Ms(0), 8000ms - std::chrono::duration_cast<Ms>(Clock::now() - frozen));
  };
  for (Conn* c : {&pub, &sub, &info}) {
    Response r = c->read_response(left());
    check_error(r, 503, "backplane_unavailable");
    CHECK(r.header("retry-after") == "1");
  }
  MESSAGE("answered ", std::chrono::duration_cast<Ms>(Clock::now() - frozen).count(),
          " ms after Redis froze");
  CHECK(wait_readyz(a.port(), 503, kTimeout) == 503);
  // New requests are refused at once, the open stream stays open and quiet.
  check_error(http(a.port(), post_request("/v1/channels/cold/events", "refused")), 503,
              "backplane_unavailable");
  check_error(http_get(a.port(), "/v1/channels/cold/events"), 503, "backplane_unavailable");
  check_quiet_and_open(live, "the live subscriber");

  redis.thaw();
  CHECK(wait_readyz(a.port(), 200, 15s) == 200);
  const Published p2 = publish_n(a.port(), "cold", 3, "after-", p1.ids.back());
  // The refused publish may still have been stored: Redis ran what it had read once it woke up
  // (a 503 after a timeout cannot say it was not). If it was, it comes once, between the two.
  Published want = p1;
  for (;;) {
    got.push_back(read_events(live, 1).front());
    if (got.back().id == p2.ids.back()) break;
  }
  if (got.size() == p1.ids.size() + p2.ids.size() + 1) {
    INFO("the refused publish was stored: ", got[3].id.value_or("?"));
    CHECK(got[3].data == "while-frozen");
    want.ids.push_back(got[3].id.value_or(""));
    want.data.push_back("while-frozen");
  }
  want = want + p2;
  check_events(got, want, "the live subscriber");
  check_quiet_and_open(live, "the live subscriber");
  CHECK(live.body() == expected_body(want));

  // And a resuming subscriber reads the stream again.
  SseStream resumed(a.port(), "cold", {.last_event_id = want.ids[0]});
  resumed.expect_ok();
  Published rest;
  rest.ids.assign(want.ids.begin() + 1, want.ids.end());
  rest.data.assign(want.data.begin() + 1, want.data.end());
  check_events(read_events(resumed, rest.ids.size()), rest, "the resumed subscriber");

  const Response m = http_get(a.port(), "/metrics");
  INFO("metrics:\n", m.body);
  CHECK(metric_value(m.body, "ssegw_backplane_reconnects_total") >= 1);
  CHECK(metric_value(m.body, "ssegw_backplane_errors_total") >= 1);
}

// Publishes call the script by its SHA1, loaded when the gateway connects. SCRIPT FLUSH (an
// operator, a failover to a fresh server) unloads it: the next publish fails, and the gateway
// connects again, which loads it again.
TEST_CASE("backplane: after SCRIPT FLUSH the gateway loads the publish script again") {
  RedisServer redis;
  Gateway a(backplane_yaml(redis, "t12:"));
  INFO("gateway log:\n", tail(a.log()));
  require_ready(a, "A");
  const Published p1 = publish_n(a.port(), "f", 2, "before-");
  REQUIRE(redis.command({"SCRIPT", "FLUSH"}) == "+OK");
  check_error(http(a.port(), post_request("/v1/channels/f/events", "refused")), 503,
              "backplane_unavailable");
  CHECK(wait_readyz(a.port(), 200, 10s) == 200);
  const Published p2 = publish_n(a.port(), "f", 2, "after-", p1.ids.back());
  SseStream all(a.port(), "f", {.last_event_id = "1-0"});
  all.expect_ok();
  CHECK(all.expect_event().event == "gap");
  check_events(read_events(all, 4), p1 + p2, "the subscriber from 1-0");
}

// The final close at stop fails what is still waiting on Redis: stopped while Redis is frozen
// and publishes wait on both workers, the gateway exits cleanly (status 0; in the ASan build, no
// report), well before the watchdog would have given up on Redis.
TEST_CASE("backplane: on workers 2, a gateway stopped while Redis is frozen exits cleanly") {
  RedisServer redis;
  Gateway a(backplane_yaml(redis, "t13:") + "workers: 2\nshutdown_grace: 100ms\n");
  INFO("gateway log:\n", tail(a.log()));
  require_ready(a, "A");
  redis.freeze();
  std::vector<std::unique_ptr<Conn>> waiting;
  for (int i = 0; i < 8; ++i) {
    waiting.push_back(std::make_unique<Conn>(a.port()));
    waiting.back()->send(post_request("/v1/channels/s" + std::to_string(i) + "/events", "x"));
  }
  // Each has reached its owner's backplane: its command is written to Redis, unanswered.
  REQUIRE(wait_metric(a.port(), "ssegw_events_published_total", 8) == 8);
  CHECK(a.stop_and_wait(10s) == 0);  // by itself: a SIGKILL after 10 s would be 137
  // The final close failed them, not the watchdog giving up on Redis (3 s without a PING
  // answer): it never logged the backplane as unavailable.
  CHECK_FALSE(wait_log_line(a, {"\"msg\":\"stopped\""}).empty());
  CHECK(a.log().find("backplane unavailable") == std::string::npos);
}

TEST_CASE("backplane: with Redis unreachable the gateway runs but is not ready") {
  // Nothing listens on port 1.
  Gateway gw("backplane: {type: redis, url: \"redis://127.0.0.1:1/0\", key_prefix: \"t6:\"}\n");
  INFO("gateway log:\n", tail(gw.log()));
  CHECK(wait_readyz(gw.port(), 503, 5s) == 503);
  CHECK(http_get(gw.port(), "/healthz").status == 200);
  check_error(http(gw.port(), post_request("/v1/channels/x/events", "data")), 503,
              "backplane_unavailable");
  check_error(http_get(gw.port(), "/v1/channels/x/events"), 503, "backplane_unavailable");
  // Still not ready after it tried again (it keeps trying, and keeps failing).
  const double errors = read_metric(gw.port(), "ssegw_backplane_errors_total").value_or(-1);
  CHECK(wait_metric_at_least(gw.port(), "ssegw_backplane_errors_total", errors + 1, 10s) >=
        errors + 1);
  CHECK(http_get(gw.port(), "/readyz").status == 503);
}

// ---------------------------------------------------------------------------------------------
// Resumable generations

namespace {

// A chat request body; the mock answers tok0 tok1 ... whatever it says.
const std::string kChatBody =
    "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}";

std::vector<std::string> ids_of(const std::vector<SseEvent>& events) {
  std::vector<std::string> ids;
  for (const SseEvent& e : events) ids.push_back(e.id.value_or("<no id>"));
  return ids;
}

}  // namespace

TEST_CASE("backplane: a resumable answer started on one instance resumes on another") {
  MockLlm mock;
  RedisServer redis;
  const std::string yaml = backplane_yaml(redis, "t5:") + upstream_yaml(mock) +
                           "routes:\n  - {path: /v1/chat/completions, upstream: llm, resumable: "
                           "true, on_disconnect: continue}\n";
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", tail(a.log()));
  INFO("gateway B log:\n", tail(b.log()));
  require_ready(a, "A");
  require_ready(b, "B");

  // The client starts the answer on A, reads 10 events and loses the connection; the answer
  // goes on being recorded (on_disconnect: continue).
  constexpr int kTokens = 30;
  const std::string target = "/v1/chat/completions?tokens=30&interval_ms=15";
  SseStream first = SseStream::raw(a.port(), post_request(target, kChatBody));
  first.wait_head();
  INFO("head on A: \"", printable(first.head().head), "\"");
  REQUIRE(first.head().status == 200);
  const std::string ch = first.head().header("sse-channel");
  REQUIRE(ch.rfind("gen-", 0) == 0);
  std::vector<SseEvent> events = read_events(first, 10);
  first.close();

  // It comes back on B with the last id it read: the rest of the answer, then the end.
  SseStream resumed(b.port(), ch, {.last_event_id = events.back().id.value_or("")});
  resumed.expect_ok();
  std::vector<SseEvent> rest = read_until_finished(resumed, 10s);
  INFO("resumed on B: \"", printable(resumed.body()), "\"");
  CHECK(rest.size() == kTokens - 10 + 2);  // the other tokens, the finishing chunk, [DONE]
  REQUIRE(!rest.empty());
  CHECK(rest.back().data == "[DONE]");
  CHECK(resumed.body().ends_with("data: [DONE]\n\n"));
  events.insert(events.end(), rest.begin(), rest.end());
  const std::vector<std::string> ids = ids_of(events);
  for (size_t i = 1; i < ids.size(); ++i)
    if (!(parse_id(ids[i - 1]) < parse_id(ids[i])))
      FAIL_CHECK("ids do not increase at event ", i, ": ", ids[i - 1], " then ", ids[i]);

  // The answer is over: resuming at its final id gets 204, which stops an EventSource.
  Response done = http(b.port(), get_request("/v1/channels/" + ch + "/events",
                                             "Last-Event-ID: " + ids.back() + "\r\n"));
  INFO("resume at the final id: \"", printable(done.raw), "\"");
  CHECK(done.status == 204);
  CHECK(done.body.empty());

  // Without Last-Event-ID, B replays the whole answer from the start, then ends.
  SseStream replay(b.port(), ch);
  replay.expect_ok();
  std::vector<SseEvent> replayed = read_until_finished(replay, 10s);
  check_same_ids(ids_of(replayed), ids, "the replay on B");

  // The upstream ran to its end once, with nobody connected for most of it.
  CHECK(mock.wait_stat("completed", 1) == 1);
  CHECK(mock.stat("cancelled") == 0);
  CHECK(mock.stat("tokens_sent") == kTokens);
  CHECK(mock.stat("/v1/chat/completions") == 1);

  // The events are the upstream's own, one for one (the mock's answer is deterministic).
  Response direct = http(mock.port(), post_request(target, kChatBody));
  REQUIRE(direct.status == 200);
  const auto upstream = parse_sse(direct.body);
  REQUIRE(upstream.size() == static_cast<size_t>(kTokens + 2));
  REQUIRE(events.size() == upstream.size());
  REQUIRE(replayed.size() == upstream.size());
  for (size_t i = 0; i < upstream.size(); ++i) {
    CAPTURE(i);
    CHECK(events[i].event == upstream[i].event);
    CHECK(events[i].data == upstream[i].data);
    CHECK(replayed[i].data == upstream[i].data);
  }
}

// ---------------------------------------------------------------------------------------------
// Limits: limits.max_channels and history.max_events / max_bytes hold in Redis as in memory

namespace {

// The size of an event's frame as the gateway serialises it (default type, one data line):
// what history.max_bytes counts.
size_t frame_size(const std::string& id, const std::string& data) {
  return sse_frame(id, data).size();
}

// The newest events of p that fit in max_events and max_bytes together (at least the newest).
Published retained_suffix(const Published& p, size_t max_events, size_t max_bytes) {
  size_t start = p.ids.size(), bytes = 0;
  while (start > 0) {
    size_t next = bytes + frame_size(p.ids[start - 1], p.data[start - 1]);
    size_t count = p.ids.size() - start + 1;
    if (start < p.ids.size() && (next > max_bytes || count > max_events)) break;
    bytes = next;
    --start;
  }
  Published out;
  out.ids.assign(p.ids.begin() + static_cast<long>(start), p.ids.end());
  out.data.assign(p.data.begin() + static_cast<long>(start), p.data.end());
  return out;
}

std::string channel_info(uint16_t port, const std::string& ch) {
  const Response r = http_get(port, "/v1/channels/" + ch);
  INFO("GET /v1/channels/", ch, ": ", printable(r.raw));
  CHECK(r.status == 200);
  return json_body(r);
}

}  // namespace

TEST_CASE("backplane: limits.max_channels holds across instances, an expired channel frees room") {
  RedisServer redis;
  const std::string yaml =
      backplane_yaml(redis, "t8:") + "limits: {max_channels: 3}\nhistory: {ttl: 1500ms}\n";
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", tail(a.log()));
  INFO("gateway B log:\n", tail(b.log()));
  require_ready(a, "A");
  require_ready(b, "B");

  publish(a.port(), "c1", "one");
  publish(b.port(), "c2", "two");
  publish(a.port(), "c3", "three");
  for (const Gateway* gw : {&a, &b}) {
    const Response r = http(gw->port(), post_request("/v1/channels/c4/events", "over"));
    check_error(r, 503, "too_many_channels");
    CHECK_FALSE(r.has("retry-after"));  // not Redis trouble: retrying soon will not help
  }
  CHECK(redis.command({"ZCARD", "t8:channels"}) == ":3");
  CHECK(redis.command({"EXISTS", "t8:ch:c4"}) == ":0");
  // The channels there take more events, on either instance.
  publish(b.port(), "c1", "one more");
  publish(a.port(), "c2", "two more");

  // A subscription stores nothing in Redis: it is served (limits.max_channels bounds this
  // process's subscribed channels, as in memory), and gives no right to publish.
  SseStream watcher(a.port(), "c9");
  watcher.expect_ok();
  check_error(http(b.port(), post_request("/v1/channels/c9/events", "over")), 503,
              "too_many_channels");

  // c3 expires history.ttl after its last event, while c1 and c2 are kept alive; then one new
  // channel fits, and only one.
  Publisher pa(a.port()), pb(b.port());
  REQUIRE(wait_until(
      [&] {
        pa.publish("c1", "keep");
        pb.publish("c2", "keep");
        return redis.command({"EXISTS", "t8:ch:c3"}) == ":0";
      },
      10s, 100ms));
  publish(b.port(), "c4", "four");
  check_error(http(a.port(), post_request("/v1/channels/c5/events", "over")), 503,
              "too_many_channels");
  CHECK(redis.command({"ZCARD", "t8:channels"}) == ":3");
  check_quiet_and_open(watcher, "the subscriber of c9", 0ms);
}

TEST_CASE("backplane: history.max_bytes and max_events trim the stream exactly") {
  RedisServer redis;
  // 40 events of about 150 bytes: max_bytes keeps the newest 6 or so, max_events would keep 30.
  const size_t kMaxBytes = 1000;
  const std::string yaml = backplane_yaml(redis, "t9:") +
                           "history: {max_events: 30, max_bytes: " + std::to_string(kMaxBytes) +
                           "B}\n";
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", tail(a.log()));
  INFO("gateway B log:\n", tail(b.log()));
  require_ready(a, "A");
  require_ready(b, "B");

  const Published all = publish_n(a.port(), "big", 40, std::string(120, 'x') + "-");
  const Published kept = retained_suffix(all, 30, kMaxBytes);
  REQUIRE(kept.ids.size() > 1);
  REQUIRE(kept.ids.size() < 10);
  CHECK(redis.command({"XLEN", "t9:ch:big"}) == ":" + std::to_string(kept.ids.size()));
  CHECK(channel_info(b.port(), "big") ==
        info_json("big", 0, static_cast<long>(kept.ids.size()), kept.ids.front(), kept.ids.back()));

  // Resuming from the first event: a gap (it is gone), then exactly what is retained.
  SseStream resumed(b.port(), "big", {.last_event_id = all.ids[0]});
  resumed.expect_ok();
  SseEvent gap = resumed.expect_event();
  CHECK(gap.event == "gap");
  check_events(read_events(resumed, kept.ids.size()), kept, "the resumed subscriber");
  check_quiet_and_open(resumed, "the resumed subscriber");
  CHECK(resumed.body() == expected_body(kept, gap_frame(all.ids[0], kept.ids[0])));
  resumed.close();

  // One event larger than max_bytes is kept alone until the next one comes.
  const Published huge = publish_n(a.port(), "big", 1, std::string(2000, 'h'), all.ids.back());
  CHECK(redis.command({"XLEN", "t9:ch:big"}) == ":1");
  CHECK(channel_info(a.port(), "big") == info_json("big", 0, 1, huge.ids[0], huge.ids[0]));
  const Published small = publish_n(a.port(), "big", 3, "s", huge.ids.back());
  CHECK(redis.command({"XLEN", "t9:ch:big"}) == ":3");

  // max_events alone: small events, 30 exactly (not MAXLEN ~'s whole nodes).
  const Published many = publish_n(b.port(), "many", 50, "m");
  CHECK(redis.command({"XLEN", "t9:ch:many"}) == ":30");
  SseStream from_start(a.port(), "many", {.last_event_id = "1-0"});
  from_start.expect_ok();
  const Published last30 = retained_suffix(many, 30, kMaxBytes * 100);
  REQUIRE(last30.ids.size() == 30);
  CHECK(from_start.expect_event().event == "gap");
  check_events(read_events(from_start, 30), last30, "the subscriber from 1-0");
  check_quiet_and_open(from_start, "the subscriber from 1-0");
}

TEST_CASE("backplane: a replay over many pages returns every retained event once, in order") {
  RedisServer redis;
  const std::string yaml = backplane_yaml(redis, "t10:");
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", tail(a.log()));
  INFO("gateway B log:\n", tail(b.log()));
  require_ready(a, "A");
  require_ready(b, "B");

  // 150 events: the replay reads them 32 at a time. A subscriber on B joins first, so that B's
  // cursor is at the newest event when the others resume.
  SseStream watching(b.port(), "pages");
  watching.expect_ok();
  const Published all = publish_n(a.port(), "pages", 150, "p");
  check_events(read_events(watching, 150), all, "the live subscriber");
  for (size_t from : {size_t{0}, size_t{31}, size_t{32}, size_t{100}, size_t{149}}) {
    SseStream resumed(b.port(), "pages", {.last_event_id = all.ids[from]});
    resumed.expect_ok();
    Published rest;
    rest.ids.assign(all.ids.begin() + static_cast<long>(from) + 1, all.ids.end());
    rest.data.assign(all.data.begin() + static_cast<long>(from) + 1, all.data.end());
    const std::string who = "resumed after event " + std::to_string(from);
    check_events(read_events(resumed, rest.ids.size()), rest, who);
    check_quiet_and_open(resumed, who, 0ms);
    CHECK(resumed.body() == expected_body(rest));
  }
  // Live after the replay, without a duplicate.
  SseStream resumed(b.port(), "pages", {.last_event_id = all.ids[10]});
  resumed.expect_ok();
  const Published more = publish_n(a.port(), "pages", 5, "q", all.ids.back());
  Published rest;
  rest.ids.assign(all.ids.begin() + 11, all.ids.end());
  rest.data.assign(all.data.begin() + 11, all.data.end());
  check_events(read_events(resumed, rest.ids.size() + 5), rest + more, "resumed, then live");
  check_quiet_and_open(resumed, "resumed, then live");
}

// A stream holding more than the limits (written by an older gateway with MAXLEN ~, or before
// the limits were lowered): the replay keeps the newest within them, and reports the rest as a
// gap, instead of buffering it all.
TEST_CASE("backplane: a replay of a stream over the history limits keeps the newest within them") {
  RedisServer redis;
  const std::string yaml = backplane_yaml(redis, "t11:") + "history: {max_events: 10}\n";
  for (int i = 1; i <= 50; ++i)
    REQUIRE(redis
                .command({"XADD", "t11:ch:old", "1-" + std::to_string(i), "data",
                          "old" + std::to_string(i)})
                .rfind("$", 0) == 0);
  Gateway a(yaml);
  INFO("gateway log:\n", tail(a.log()));
  require_ready(a, "A");

  SseStream resumed(a.port(), "old", {.last_event_id = "1-5"});
  resumed.expect_ok();
  SseEvent gap = resumed.expect_event();
  CHECK(gap.event == "gap");
  CHECK(gap.data == "{\"last_event_id\":\"1-5\",\"first_available\":\"1-41\"}");
  Published want;
  for (int i = 41; i <= 50; ++i) {
    want.ids.push_back("1-" + std::to_string(i));
    want.data.push_back("old" + std::to_string(i));
  }
  check_events(read_events(resumed, 10), want, "the resumed subscriber");
  check_quiet_and_open(resumed, "the resumed subscriber");

  // Resuming right at the newest entry the replay dropped is no gap.
  SseStream at_edge(a.port(), "old", {.last_event_id = "1-40"});
  at_edge.expect_ok();
  check_events(read_events(at_edge, 10), want, "the subscriber at 1-40");
  check_quiet_and_open(at_edge, "the subscriber at 1-40");
  CHECK(at_edge.body() == expected_body(want));
}

// ---------------------------------------------------------------------------------------------
// Configuration

TEST_CASE("backplane: --check-config rejects a bad backplane and accepts a redis one") {
  struct Case {
    std::string yaml;
    int status;
  };
  const std::vector<Case> cases = {
      {"backplane: {type: redis}\n", 2},                     // no url
      {"backplane: {type: bogus}\n", 2},                     // unknown type
      {"backplane: {type: redis, url: \"http://x\"}\n", 2},  // not a redis:// URL
      {"backplane: {type: redis, url: \"redis://127.0.0.1:6379/0\", key_prefix: \"app:\", "
       "lease_ttl: 2s}\n",
       0},
  };
  for (const Case& c : cases) {
    const std::string path = write_temp_file("listen: 127.0.0.1:0\n" + c.yaml);
    ProcessResult r = run_ssegw({"--check-config", path});
    ::unlink(path.c_str());
    CAPTURE(c.yaml);
    INFO("output: ", r.output);
    CHECK(r.status == c.status);
    if (c.status != 0) CHECK(r.output.find("backplane") != std::string::npos);
  }
}

// limits.max_sources holds per instance with Redis too: an instance at its cap takes no further
// lease, so a channel's source waits (or runs on another instance) rather than opening one more.
TEST_CASE("backplane: an instance at limits.max_sources takes no further source lease") {
  MockLlm mock;
  RedisServer redis;
  Gateway gw(backplane_yaml(redis, "ms:") + upstream_yaml(mock) +
             "limits: {max_sources: 1}\n"
             "sources:\n  - {channels: \"feed.*\", upstream: llm, path: "
             "\"/feed/{channel}?interval_ms=20\", idle_close: 200ms}\n");
  INFO("gateway log:\n", tail(gw.log()));
  require_ready(gw, "gw");
  auto a = std::make_unique<SseStream>(gw.port(), "feed.a");
  a->expect_ok();
  a->expect_event();
  SseStream b(gw.port(), "feed.b");
  b.expect_ok();  // subscribed; its source may not start while feed.a's holds the only room
  CHECK_FALSE(b.next_event(1500ms).has_value());  // more than one lease period (1 s)
  CHECK(mock.stat("feeds_active") == 1);
  CHECK(read_metric(gw.port(), "ssegw_sources_active") == 1);
  a.reset();  // feed.a's lease is released, its source closes, and feed.b's may take the room
  SseEvent e = b.expect_event(5s);
  CHECK(e.data.find("\"feed\":\"feed.b\"") != std::string::npos);
  CHECK(mock.wait_stat("feeds_active", 1) == 1);
}
