// Multi-channel streams (docs/protocol.md "Multi-channel streams"): GET /v1/events?channel=...
// carries every listed channel's events in one SSE stream, each channel in its order, under the
// event type "<channel>[:<type>]" and an id that is a cursor naming each channel's last id. A
// reconnect with that cursor resumes every channel exactly, in memory, across workers and with
// the Redis backplane.
//
// The cursor is decoded here by a reader of its own (not the gateway's), from the documented
// grammar, and every event's cursor entry for its channel must be that event's own id.
#include <signal.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/h2_client.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/redis_server.hpp"

using namespace itest;

namespace {

std::string events_path(const std::vector<std::string>& channels, const std::string& extra = "") {
  std::string path = "/v1/events?";
  for (size_t i = 0; i < channels.size(); ++i) {
    if (i) path += '&';
    path += "channel=" + channels[i];
  }
  if (!extra.empty()) path += "&" + extra;
  return path;
}

SseStream open_multi(uint16_t port, const std::vector<std::string>& channels,
                     const std::string& last_event_id = "", const std::string& headers = "") {
  std::string extra = headers;
  if (!last_event_id.empty()) extra += "Last-Event-ID: " + last_event_id + "\r\n";
  return SseStream::raw(port, get_request(events_path(channels), extra));
}

// The smallest millisecond of the ids that are not "x", if any.
std::optional<uint64_t> smallest_ms(const std::vector<std::string>& ids) {
  std::optional<uint64_t> base;
  for (const std::string& id : ids)
    if (id != "x") base = std::min(base.value_or(UINT64_MAX), parse_id(id)->ms);
  return base;
}

// The documented cursor: base, then per channel "_" and "x" or (ms - base)["-" seq]. Without a
// base, the smallest (as a cursor written from scratch has it).
std::string encode_cursor(const std::vector<std::string>& ids,
                          std::optional<uint64_t> base = std::nullopt) {
  if (!base) base = smallest_ms(ids);
  std::string out = std::to_string(base.value_or(0));
  for (const std::string& id : ids) {
    out += '_';
    if (id == "x") {
      out += 'x';
      continue;
    }
    EventId e = *parse_id(id);
    out += std::to_string(e.ms - *base);
    if (e.seq) out += "-" + std::to_string(e.seq);
  }
  return out;
}

// The cursors one stream writes, event after event: its base is the smallest entry's when it is
// first written, and stays while no entry goes below it (and within a day of it, more than any
// test runs).
struct CursorWriter {
  std::optional<uint64_t> base;
  std::string operator()(const std::vector<std::string>& ids) {
    std::optional<uint64_t> smallest = smallest_ms(ids);
    if (smallest && (!base || *smallest < *base)) base = smallest;
    return encode_cursor(ids, base.value_or(0));
  }
};

// Each channel's id ("x": none) in a cursor; empty when it is not one.
std::vector<std::string> decode_cursor(const std::string& cursor) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t sep = cursor.find('_', start);
    parts.push_back(cursor.substr(start, sep - start));
    if (sep == std::string::npos) break;
    start = sep + 1;
  }
  if (parts.size() < 2) return {};
  uint64_t base = std::stoull(parts[0]);
  std::vector<std::string> ids;
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (p == "x") {
      ids.push_back("x");
      continue;
    }
    size_t dash = p.find('-');
    uint64_t ms = base + std::stoull(p.substr(0, dash));
    std::string seq = dash == std::string::npos ? "0" : p.substr(dash + 1);
    ids.push_back(std::to_string(ms) + "-" + seq);
  }
  return ids;
}

// Channel names that the gateway's workers own: with workers: 2, first one of worker 0's, then
// one of worker 1's (the gateway picks the owner as std::hash of the name modulo the workers, the
// same function here), then any.
std::vector<std::string> spread_channels(const std::string& prefix, size_t n) {
  std::vector<std::string> out;
  for (size_t want = 0, i = 0; out.size() < n; ++i) {
    std::string name = prefix + std::to_string(i);
    if (out.size() < 2 && std::hash<std::string_view>{}(name) % 2 != want) continue;
    out.push_back(name);
    want = 1;
  }
  return out;
}

const std::string kMultiHead = kHead11;  // the same head as one channel's stream

// One channel's events as a stream carries them: the id is checked to be that event's own in
// the cursor; returns the channel's events (id, data) in order.
struct Got {
  std::vector<std::string> ids, data, types;
};

// Sorts a multi stream's events by channel, checking that each one names its channel and that
// its cursor names its own id for that channel. Gap notices (no id) go to `notices`.
void sort_events(const std::vector<SseEvent>& events, const std::vector<std::string>& channels,
                 std::map<std::string, Got>& got, std::vector<SseEvent>* notices = nullptr,
                 std::string* last_cursor = nullptr) {
  for (const SseEvent& e : events) {
    if (!e.id) {
      REQUIRE(notices);
      notices->push_back(e);
      continue;
    }
    std::string channel = e.event.substr(0, e.event.find(':'));
    std::string type = e.event.size() > channel.size() ? e.event.substr(channel.size() + 1) : "";
    auto it = std::find(channels.begin(), channels.end(), channel);
    REQUIRE_MESSAGE(it != channels.end(), "event type ", e.event);
    std::vector<std::string> ids = decode_cursor(*e.id);
    REQUIRE_MESSAGE(ids.size() == channels.size(), "cursor ", *e.id);
    // Written exactly as documented, with a base at or below every entry.
    uint64_t base = std::stoull(e.id->substr(0, e.id->find('_')));
    REQUIRE(encode_cursor(ids, base) == *e.id);
    const std::string& id = ids[static_cast<size_t>(it - channels.begin())];
    got[channel].ids.push_back(id);
    got[channel].data.push_back(e.data);
    got[channel].types.push_back(type);
    if (last_cursor) *last_cursor = *e.id;
  }
}

// Reads events until pred(events so far) holds.
std::vector<SseEvent> read_until(SseStream& s, const std::function<bool(size_t)>& enough,
                                 Ms timeout = 10s) {
  std::vector<SseEvent> events;
  auto deadline = Clock::now() + timeout;
  while (!enough(events.size())) {
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    std::optional<SseEvent> e = s.next_event(std::max(left, Ms(1)));
    if (!e) {
      FAIL_CHECK("stream ended or timed out after ", events.size(), " events: \"",
                 printable(s.body().substr(s.body().size() > 2000 ? s.body().size() - 2000 : 0)),
                 "\"");
      break;
    }
    events.push_back(*e);
  }
  return events;
}

// A stream of three busy channels and a quiet one is cut while a publisher keeps going, and
// resumed with its last cursor (on `resume_port`, another instance with Redis): per channel, the
// events of both streams together are exactly what was published, with no gap notice. The quiet
// channel had sent nothing before the cut, and gets what was published to it meanwhile.
void check_resume_under_load(uint16_t port, uint16_t resume_port,
                             const std::vector<std::string>& channels) {
  REQUIRE(channels.size() == 4);
  const std::vector<std::string> busy(channels.begin(), channels.begin() + 3);
  const std::string& quiet = channels[3];
  SseStream first = open_multi(port, channels);
  first.expect_ok();
  for (const std::string& ch : channels) REQUIRE(wait_subscribers(port, ch, 1) == 1);

  constexpr int kRounds = 80;
  std::map<std::string, Got> published;
  std::atomic<bool> failed{false};
  std::atomic<int> rounds{0};
  std::thread publisher([&] {
    try {
      Publisher pub(port);
      for (int i = 0; i < kRounds; ++i) {
        for (const std::string& ch : busy) {
          std::string data = ch + " #" + std::to_string(i);
          std::string id = pub.publish(ch, data);
          published[ch].ids.push_back(id);
          published[ch].data.push_back(data);
        }
        rounds = i + 1;
      }
    } catch (const std::exception&) {
      failed = true;
    }
  });

  std::map<std::string, Got> got;
  std::string cursor;
  sort_events(read_until(first, [](size_t n) { return n >= 40; }), channels, got, nullptr, &cursor);
  first.close();
  // While nobody listens: the quiet channel's first events.
  for (int i = 0; i < 2; ++i) {
    std::string data = quiet + " #" + std::to_string(i);
    published[quiet].ids.push_back(publish(port, quiet, data));
    published[quiet].data.push_back(data);
  }
  REQUIRE(decode_cursor(cursor).at(3) == "x");  // nothing of the quiet channel yet

  SseStream second = open_multi(resume_port, channels, cursor);
  second.expect_ok();
  publisher.join();
  REQUIRE_FALSE(failed);
  size_t total = 0;
  for (const std::string& ch : channels) total += published[ch].ids.size();
  size_t before = 0;
  for (auto& [ch, g] : got) before += g.ids.size();
  std::vector<SseEvent> notices;
  sort_events(read_until(second, [&](size_t n) { return before + n >= total; }), channels, got,
              &notices);
  CHECK(notices.empty());
  for (const std::string& ch : channels) {
    CAPTURE(ch);
    check_same_ids(got[ch].ids, published[ch].ids, "channel " + ch);
    CHECK(got[ch].data == published[ch].data);
  }
  // Nothing more comes: no duplicate after the last event either.
  CHECK_FALSE(second.next_event(200ms));
}

}  // namespace

TEST_CASE("multi-channel: a reconnect with the cursor resumes every channel exactly") {
  Gateway gw;
  check_resume_under_load(gw.port(), gw.port(), {"r.a", "r.b", "r.c", "r.quiet"});
}

TEST_CASE("multi-channel: resume across workers: channels owned by both workers") {
  Gateway gw("workers: 2\n");
  check_resume_under_load(gw.port(), gw.port(), spread_channels("w.", 4));
}

TEST_CASE("multi-channel: resume with the Redis backplane, on another instance") {
  RedisServer redis;
  const std::string yaml =
      "workers: 2\nbackplane: {type: redis, url: \"" + redis.url() + "\", key_prefix: \"mc:\"}\n";
  Gateway a(yaml), b(yaml);
  for (Gateway* gw : {&a, &b})
    REQUIRE(wait_until([&] { return http_get(gw->port(), "/readyz").status == 200; }, 10s));
  check_resume_under_load(a.port(), b.port(), spread_channels("rd.", 4));
}

TEST_CASE("multi-channel: a per-channel gap notice, and a cursor that is not one") {
  Gateway gw("history: { max_events: 2 }\n");
  const uint16_t port = gw.port();
  std::vector<std::string> a_ids;
  for (int i = 0; i < 4; ++i) a_ids.push_back(publish(port, "a", "a" + std::to_string(i)));
  const std::string b_id = publish(port, "b", "b0");
  // a's entry names its first event, evicted since: a gap for a, then a's retained events; b
  // resumes exactly (nothing after b0).
  SseStream s = open_multi(port, {"a", "b"}, encode_cursor({a_ids[0], b_id}));
  s.expect_ok();
  std::vector<SseEvent> events = read_until(s, [](size_t n) { return n >= 3; });
  std::string expected = "retry: 2000\n\n";
  CursorWriter written;
  expected += "event: a:gap\ndata: {\"last_event_id\":\"" + a_ids[0] + "\",\"first_available\":\"" +
              a_ids[2] + "\"}\n\n";
  expected += "id: " + written({a_ids[2], b_id}) + "\nevent: a\ndata: a2\n\n";
  expected += "id: " + written({a_ids[3], b_id}) + "\nevent: a\ndata: a3\n\n";
  CHECK(s.body() == expected);
  CHECK_FALSE(s.next_event(100ms));

  // Not a cursor of these two channels (three entries; a bare id; garbage): an unknown id for
  // each channel, so a gap notice for each, then everything retained.
  for (const std::string& bad :
       {encode_cursor({a_ids[3], b_id, b_id}), a_ids[3], std::string("garbage")}) {
    CAPTURE(bad);
    SseStream r = open_multi(port, {"a", "b"}, bad);
    r.expect_ok();
    read_until(r, [](size_t n) { return n >= 5; });
    const std::string echoed = parse_id(bad) ? "(malformed)" : bad;
    std::string want = "retry: 2000\n\n";
    CursorWriter cursor;
    want += "event: a:gap\ndata: {\"last_event_id\":\"" + echoed + "\",\"first_available\":\"" +
            a_ids[2] + "\"}\n\n";
    want += "id: " + cursor({a_ids[2], "x"}) + "\nevent: a\ndata: a2\n\n";
    want += "id: " + cursor({a_ids[3], "x"}) + "\nevent: a\ndata: a3\n\n";
    want += "event: b:gap\ndata: {\"last_event_id\":\"" + echoed + "\",\"first_available\":\"" +
            b_id + "\"}\n\n";
    want += "id: " + cursor({a_ids[3], b_id}) + "\nevent: b\ndata: b0\n\n";
    CHECK(r.body() == want);
  }
}

TEST_CASE("multi-channel: a finished generation ends its channel, the others go on") {
  MockLlm mock;
  Gateway gw("upstreams:\n  llm: {url: \"" + mock.url() +
             "\"}\nroutes:\n  - {path: /v1/chat/completions, upstream: llm, resumable: true}\n");
  const uint16_t port = gw.port();
  Response accepted =
      http(port, post_request("/v1/chat/completions?tokens=3&interval_ms=20&first_token_ms=300",
                              "{\"stream\":true,\"messages\":[{\"role\":\"user\","
                              "\"content\":\"hi\"}]}",
                              "Prefer: respond-async\r\n"));
  REQUIRE(accepted.status == 202);
  const std::string gen = accepted.header("sse-channel");
  const std::vector<std::string> channels = {"news", gen};
  SseStream s = open_multi(port, channels);
  s.expect_ok();
  // The answer: 3 tokens, the finishing chunk and [DONE], then the channel's end notice.
  std::vector<SseEvent> events = read_until(s, [](size_t n) { return n >= 6; });
  std::map<std::string, Got> got;
  std::vector<SseEvent> notices;
  sort_events(events, channels, got, &notices);
  REQUIRE(got[gen].data.size() == 5);
  CHECK(got[gen].data.back() == "[DONE]");
  REQUIRE(notices.size() == 1);
  CHECK(notices[0].event == gen + ":end");
  CHECK(notices[0].data == "{\"channel\":\"" + gen + "\"}");
  // news goes on.
  const std::string news_id = publish(port, "news", "still here");
  SseEvent e = s.expect_event();
  CHECK(e.event == "news");
  CHECK(e.data == "still here");
  CHECK(decode_cursor(*e.id) == std::vector<std::string>{news_id, got[gen].ids.back()});
  s.close();

  // Resumed with that cursor: the generation is complete and the client has it all (its end
  // notice again, nothing else), news goes on live.
  SseStream r = open_multi(port, channels, *e.id);
  r.expect_ok();
  SseEvent end = r.expect_event();
  CHECK(end.event == gen + ":end");
  CHECK(wait_subscribers(port, "news", 1) == 1);
  publish(port, "news", "more");
  CHECK(r.expect_event().data == "more");

  // Only the generation: it is all there, so 204 tells EventSource to stop.
  Response done =
      http(port, get_request(events_path({gen}),
                             "Last-Event-ID: " + encode_cursor({got[gen].ids.back()}) + "\r\n"));
  CHECK(done.status == 204);
  // Without a cursor: the whole answer, its end, and the stream ends.
  SseStream whole = open_multi(port, {gen});
  whole.expect_ok();
  REQUIRE(whole.read_until_closed());
  std::vector<SseEvent> all = parse_sse(whole.body());
  REQUIRE(all.size() == 6);
  CHECK(all[5].event == gen + ":end");
  CHECK(whole.finished());
}

TEST_CASE("multi-channel: three channels interleave in one stream, each in order, exact bytes") {
  Gateway gw;
  const uint16_t port = gw.port();
  // b has an event before the stream opens: its entry starts at that id, a's and c's at "x".
  const std::string before = publish(port, "b", "old");
  SseStream s = open_multi(port, {"a", "b", "c"});
  s.expect_ok();
  CHECK(s.head().head == kMultiHead);
  for (const char* ch : {"a", "b", "c"}) CHECK(wait_subscribers(port, ch, 1) == 1);

  struct Pub {
    std::string channel, type, data;
  };
  const std::vector<Pub> pubs = {{"a", "tok", "a0"}, {"b", "", "b0"},     {"c", "", "c0\nmore"},
                                 {"a", "", "a1"},    {"c", "done", "c1"}, {"b", "message", "b1"}};
  std::map<std::string, std::string> last = {{"a", "x"}, {"b", before}, {"c", "x"}};
  std::string expected = "retry: 2000\n\n";
  CursorWriter written;
  Publisher publisher(port);
  for (const Pub& p : pubs) {
    last[p.channel] = publisher.publish(p.channel, p.data, p.type);
    expected += "id: " + written({last["a"], last["b"], last["c"]}) + "\n";
    expected += "event: " + p.channel;
    if (!p.type.empty() && p.type != "message") expected += ":" + p.type;
    expected += "\n";
    expected += p.data == "c0\nmore" ? "data: c0\ndata: more\n\n" : "data: " + p.data + "\n\n";
  }
  std::vector<SseEvent> events = read_until(s, [](size_t n) { return n >= 6; });
  CHECK(s.body() == expected);
  // Each event is one chunk: the prefix and the shared frame go out as one piece.
  std::vector<std::string> chunks = s.chunks();
  REQUIRE(chunks.size() == 7);
  CHECK(chunks[0] == "retry: 2000\n\n");
  CHECK(events[0].event == "a:tok");
  CHECK(events[5].event == "b");
  CHECK_FALSE(s.closed());
}

TEST_CASE("multi-channel: auth per channel: one refused channel refuses the stream, naming it") {
  Gateway gw(
      "auth:\n  keys:\n"
      "    - {name: pub, token: \"pub-key-0123456789\", publish: [\"*\"]}\n"
      "    - {name: some, token: \"some-key-0123456789\", subscribe: [\"chat.*\"]}\n"
      "    - {name: all, token: \"all-key-0123456789\", subscribe: [\"chat.*\", \"news\"]}\n");
  const uint16_t port = gw.port();
  const std::vector<std::string> channels = {"chat.1", "news", "chat.2"};
  Response r = http(
      port, get_request(events_path(channels), "Authorization: Bearer some-key-0123456789\r\n"));
  CHECK(r.status == 403);
  CHECK(r.body ==
        "{\"error\":{\"code\":\"forbidden\",\"message\":\"the token does not allow subscribing to "
        "channel \\\"news\\\"\"}}\n");
  r = http(port, get_request(events_path(channels)));
  CHECK(r.status == 401);
  CHECK(r.header("www-authenticate") == "Bearer");
  // The token in the query, as EventSource can send it: covers all three.
  SseStream s =
      SseStream::raw(port, get_request(events_path(channels, "access_token=all-key-0123456789")));
  s.expect_ok();
  // The head goes out once every channel has joined: the next event of each is delivered.
  Publisher pub(port);
  for (const std::string& ch : channels) {
    pub.publish(ch, "to " + ch, "", "Authorization: Bearer pub-key-0123456789\r\n");
    SseEvent e = s.expect_event();
    CHECK(e.event == ch);
    CHECK(e.data == "to " + ch);
  }
}

TEST_CASE("multi-channel: limits: too many channels, duplicates, bad names, none") {
  Gateway gw("limits: { max_channels_per_stream: 3 }\n");
  const uint16_t port = gw.port();
  auto check = [&](const std::string& path, const std::string& body) {
    CAPTURE(path);
    Response r = http_get(port, path);
    CHECK(r.status == 400);
    CHECK(r.body == body);
  };
  check("/v1/events?channel=a&channel=b&channel=c&channel=d",
        "{\"error\":{\"code\":\"too_many_channels_per_stream\",\"message\":\"a stream may name at "
        "most limits.max_channels_per_stream (3) channels\"}}\n");
  check("/v1/events?channel=a&channel=b&channel=a",
        "{\"error\":{\"code\":\"duplicate_channel\",\"message\":\"the stream names channel "
        "\\\"a\\\" twice\"}}\n");
  check("/v1/events?channel=a&channel=b%2Fc",
        "{\"error\":{\"code\":\"invalid_channel\",\"message\":\"channel names are 1 to 200 "
        "characters of [A-Za-z0-9_.:@~-]\"}}\n");
  check("/v1/events?last_event_id=1-0",
        "{\"error\":{\"code\":\"missing_channel\",\"message\":\"a stream names its channels as "
        "channel= parameters, at least one\"}}\n");
  Response r = http(port, post_request("/v1/events?channel=a", "x"));
  CHECK(r.status == 405);
  CHECK(r.header("allow") == "GET, OPTIONS");
  SseStream three = SseStream::raw(port, get_request("/v1/events?channel=a&channel=b&channel=c"));
  three.expect_ok();
}

TEST_CASE("multi-channel: a channel refused at its join refuses the stream before its head") {
  Gateway gw("limits: { max_channels: 2 }\n");
  const uint16_t port = gw.port();
  publish(port, "kept", "x");  // one channel exists: room for one more
  Response r = http_get(port, events_path({"a", "b"}));
  CHECK(r.status == 503);
  CHECK(r.body ==
        "{\"error\":{\"code\":\"too_many_channels\",\"message\":\"the gateway is at "
        "limits.max_channels\"}}\n");
  // "a" joined before "b" was refused: it leaves with the connection, and its channel goes.
  CHECK(wait_metric(port, "ssegw_subscribers_active", 0) == 0);
  CHECK(wait_metric(port, "ssegw_channels_active", 1) == 1);
  SseStream ok = open_multi(port, {"kept", "a"});
  ok.expect_ok();
}

TEST_CASE("multi-channel: HTTP/1.0 gets the raw stream, and shutdown ends it cleanly") {
  Gateway gw;
  const uint16_t port = gw.port();
  SseStream s10 = SseStream::raw(
      port, "GET /v1/events?channel=a&channel=b HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  SseStream s11 = open_multi(port, {"a", "b"});
  s10.wait_head();
  CHECK(s10.head().head == kHead10);
  s11.expect_ok();
  const std::string id = publish(port, "b", "hi", "t");
  const std::string frame = "id: " + encode_cursor({"x", id}) + "\nevent: b:t\ndata: hi\n\n";
  SseEvent e = s10.expect_event();
  CHECK(s10.body() == "retry: 2000\n\n" + frame);
  s11.expect_event();
  CHECK(s11.body() == "retry: 2000\n\n" + frame);
  // Like a browser, each client reads the end of its stream and then closes its side.
  gw.signal(SIGTERM);
  REQUIRE(s11.read_until_closed());
  CHECK(s11.finished());  // the terminating chunk: a clean end, not a cut
  REQUIRE(s10.read_until_closed());
  s10.close();
  s11.close();
  CHECK(gw.wait_exit(10s) == 0);
}

TEST_CASE("multi-channel: a stream that stops reading is cut as a slow consumer, all channels") {
  Gateway gw("slow_consumer: {max_queued_bytes: 64KiB}\n");
  const uint16_t port = gw.port();
  SseStream slow = SseStream::raw(port, get_request(events_path({"s.a", "s.b"})), 4096);
  slow.expect_ok();
  // 16 KiB events to both channels until the cut; the kernel's buffers absorb a few MiB first.
  Publisher pub(port);
  const std::string data(16384, 'x');
  size_t published = 0;
  while (read_metric(port, "ssegw_slow_consumer_disconnects_total").value_or(0) < 1) {
    REQUIRE(published < (64u << 20));
    pub.publish(published % 2 ? "s.a" : "s.b", data);
    published += data.size();
  }
  // Both of its channels let it go.
  CHECK(wait_metric(port, "ssegw_subscribers_active", 0) == 0);
  CHECK(wait_log_line(gw, {"slow consumer disconnected", "max_queued_bytes", "\"channels\":2"}) !=
        "");
}

TEST_CASE("multi-channel: one heartbeat per stream, not one per channel") {
  Gateway gw("heartbeat: 300ms\n");
  SseStream s = open_multi(gw.port(), {"h.a", "h.b", "h.c"});
  s.expect_ok();
  // Heartbeats of one tick would arrive together; the next one is 300 ms later.
  for (int n = 1; n <= 2; ++n) {
    REQUIRE(s.wait_comments(n, 3s));
    CHECK(s.comments() == n);
  }
  CHECK(s.body() == "retry: 2000\n\n:\n\n:\n\n");
}

TEST_CASE("multi-channel: joins that do not answer within limits.owner_timeout get 503") {
  RedisServer redis;
  Gateway gw("limits: { owner_timeout: 500ms }\nbackplane: {type: redis, url: \"" + redis.url() +
             "\", key_prefix: \"mt:\"}\n");
  const uint16_t port = gw.port();
  REQUIRE(wait_until([&] { return http_get(port, "/readyz").status == 200; }, 10s));
  redis.freeze();
  Response r = http_get(port, events_path({"t.a", "t.b"}));
  CHECK(r.status == 503);
  CHECK(r.body ==
        "{\"error\":{\"code\":\"owner_timeout\",\"message\":\"the channel's owner did not answer "
        "within limits.owner_timeout\"}}\n");
  // Redis answers the joins late, to a stream that is gone: nothing stays attached.
  redis.thaw();
  SseStream s = open_multi(port, {"t.a", "t.b"});
  s.expect_ok();
  CHECK(wait_metric(port, "ssegw_subscribers_active", 2) == 2);
  const std::string id = publish(port, "t.b", "after");
  SseEvent e = s.expect_event();
  CHECK(e.data == "after");
  CHECK(decode_cursor(*e.id) == std::vector<std::string>{"x", id});
}

// Over HTTP/2 (h2c) the same stream rides on one connection beside others: it carries each
// channel's events in order, and a second stream on that connection resumes from its cursor.
TEST_CASE("multi-channel: over HTTP/2 a stream carries its channels and resumes from its cursor") {
  Gateway gw;
  const std::vector<std::string> channels = {"h2a", "h2b"};
  H2Client client(gw.port());
  int32_t first = client.get(events_path(channels));
  int32_t single = client.get("/v1/channels/h2a/events");  // beside it on the connection
  REQUIRE(wait_subscribers(gw.port(), "h2a", 2) == 2);
  REQUIRE(wait_subscribers(gw.port(), "h2b", 1) == 1);

  Publisher pub(gw.port());
  std::map<std::string, std::vector<std::string>> published;
  for (int i = 0; i < 3; ++i)
    for (const std::string& ch : channels)
      published[ch].push_back(pub.publish(ch, ch + " " + std::to_string(i)));
  REQUIRE(client.pump_until([&] {
    client.stream(first).events();
    client.stream(single).events();
    return client.stream(first).sse.events().size() == 6 &&
           client.stream(single).sse.events().size() == 3;
  }));
  CHECK(client.stream(first).status == 200);
  std::map<std::string, Got> got;
  std::string cursor_after_first_round;
  std::vector<SseEvent> events(client.stream(first).sse.events().begin(),
                               client.stream(first).sse.events().end());
  sort_events({events.begin(), events.begin() + 2}, channels, got, nullptr,
              &cursor_after_first_round);
  sort_events({events.begin() + 2, events.end()}, channels, got);
  for (const std::string& ch : channels) {
    CHECK(got[ch].ids == published[ch]);
    CHECK(got[ch].data == std::vector<std::string>{ch + " 0", ch + " 1", ch + " 2"});
  }

  // A reconnect after the first round, on the same connection: rounds 1 and 2 of each channel,
  // nothing before, nothing twice.
  int32_t resumed =
      client.get(events_path(channels), {{"last-event-id", cursor_after_first_round}});
  REQUIRE(client.pump_until([&] {
    client.stream(resumed).events();
    return client.stream(resumed).sse.events().size() == 4;
  }));
  std::map<std::string, Got> again;
  std::vector<SseEvent> replayed(client.stream(resumed).sse.events().begin(),
                                 client.stream(resumed).sse.events().end());
  sort_events(replayed, channels, again);
  for (const std::string& ch : channels)
    CHECK(again[ch].ids == std::vector<std::string>{published[ch][1], published[ch][2]});
  CHECK(read_metric(gw.port(), "ssegw_http2_streams_active") == 3);
}

TEST_CASE(
    "multi-channel: over HTTP/2 a refused stream's joined channels leave though its answer waits") {
  // The client's window stays shut: the 503's body never leaves, and the stream stays open.
  Gateway gw("limits: { max_channels: 2 }\n");
  const uint16_t port = gw.port();
  publish(port, "kept", "x");  // one channel exists: room for one more
  H2Client c(port, {.initial_window_size = 0});
  int32_t id = c.get(events_path({"a", "b"}));
  REQUIRE(c.pump_until([&] { return c.stream(id).status != 0; }));
  CHECK(c.stream(id).status == 503);
  CHECK(!c.stream(id).closed);
  // "a" joined before "b" was refused: it leaves at the next tick, and its channel goes.
  CHECK(wait_metric(port, "ssegw_subscribers_active", 0) == 0);
  CHECK(wait_metric(port, "ssegw_channels_active", 1) == 1);
  CHECK(!c.stream(id).closed);
}
