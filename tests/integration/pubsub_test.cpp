// Publish and subscribe, real binary: the exact bytes of docs/protocol.md#subscribe and #publish.
#include <chrono>
#include <ctime>
#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

uint64_t unix_ms_now() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string publish_answer(const std::string& id, const std::string& ch, long subscribers) {
  return "{\"id\":\"" + id + "\",\"channel\":\"" + ch +
         "\",\"subscribers\":" + std::to_string(subscribers) + "}\n";
}

}  // namespace

TEST_CASE("pubsub: exact bytes on the wire") {
  Gateway gw;
  CHECK(gw.first_line().find("\"workers\":1") != std::string::npos);
  SseStream s(gw.port(), "wire");
  s.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), "wire", 1) == 1);

  struct Ev {
    std::string data, type;
  };
  const std::vector<Ev> evs = {
      {"hello", ""},
      {"first\nsecond\rthird\r\nfourth", "update"},
      {"", ""},
      {"explicit default type", "message"},
      {"ends with a newline\n", "a.b:c-d_e"},
      {"\r\n\n\r", ""},
      {"lf then cr\n\rsplits twice", ""},
      {"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80", ""},
      {"data: looks like a field\nid: 1-1", ""},
  };
  Publisher pub(gw.port());
  std::vector<std::string> ids;
  const uint64_t before = unix_ms_now();
  for (auto& ev : evs) {
    std::string id = pub.publish("wire", ev.data, ev.type);
    INFO("publish answer: ", printable(pub.last().raw));
    CHECK(pub.last().header("content-type") == "application/json");
    CHECK(pub.last().body == publish_answer(id, "wire", 1));
    auto parsed = parse_id(id);
    REQUIRE(parsed.has_value());
    CHECK(parsed->ms + 1000 >= before);
    CHECK(parsed->ms <= unix_ms_now() + 1000);
    if (!ids.empty()) CHECK(*parse_id(ids.back()) < *parsed);
    ids.push_back(id);
  }

  std::string want = kHead11 + chunk("retry: 2000\n\n");
  for (size_t i = 0; i < evs.size(); ++i) {
    SseEvent e = s.expect_event();
    CHECK(e.id == ids[i]);
    CHECK(e.event == (evs[i].type == "message" ? "" : evs[i].type));
    CHECK(e.data == normalize_newlines(evs[i].data));
    want += chunk(sse_frame(ids[i], evs[i].data, evs[i].type));
  }
  CHECK(s.retry() == 2000);
  CHECK(s.framing_error().empty());
  // Each event is its own chunk, after the retry chunk.
  CHECK(s.chunks().size() == evs.size() + 1);
  INFO("got:  \"", printable(s.wire()), "\"");
  INFO("want: \"", printable(want), "\"");
  CHECK(s.wire() == want);
}

TEST_CASE("pubsub: HTTP/1.0 subscriber gets a raw stream and Connection: close") {
  Gateway gw;
  SseStream s(gw.port(), "old", {.version = "HTTP/1.0"});
  s.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), "old", 1) == 1);
  std::string id1 = publish(gw.port(), "old", "one\ntwo");
  std::string id2 = publish(gw.port(), "old", "three", "kind");
  CHECK(s.expect_event().id == id1);
  CHECK(s.expect_event().id == id2);
  CHECK_FALSE(s.head().chunked);
  std::string want =
      kHead10 + "retry: 2000\n\n" + sse_frame(id1, "one\ntwo") + sse_frame(id2, "three", "kind");
  INFO("got: \"", printable(s.wire()), "\"");
  CHECK(s.wire() == want);
}

TEST_CASE("pubsub: retry and heartbeat come from the config") {
  Gateway gw("heartbeat: 1s\nretry: 750ms\n");
  auto t0 = Clock::now();  // before the subscribe: no heartbeat period can start earlier
  SseStream s(gw.port(), "beat");
  s.expect_ok();
  REQUIRE(s.wait_comments(1, kTimeout));
  auto first = Clock::now() - t0;
  CHECK(first >= 800ms);  // not before a second without events
  CHECK(s.wire() == kHead11 + chunk("retry: 750\n\n") + chunk(":\n\n"));

  REQUIRE(s.wait_comments(2, kTimeout));
  auto second = Clock::now() - t0;
  CHECK(second >= 1800ms);  // nor the next before another second

  std::string id = publish(gw.port(), "beat", "after the beats");
  SseEvent e = s.expect_event();
  CHECK(e.id == id);
  // Two comments at least (a slow test may have let a third through before the publish), each a
  // chunk of its own, then the event.
  CHECK(s.comments() >= 2);
  std::string beats;
  for (int i = 0; i < s.comments(); ++i) beats += chunk(":\n\n");
  CHECK(s.wire() ==
        kHead11 + chunk("retry: 750\n\n") + beats + chunk(sse_frame(id, "after the beats")));
}

TEST_CASE("pubsub: channel info") {
  Gateway gw("history: {max_events: 3}\n");
  Response r = http_get(gw.port(), "/v1/channels/nobody");
  CHECK(r.status == 200);
  CHECK(r.header("content-type") == "application/json");
  CHECK(json_body(r) == info_json("nobody", 0, 0, "", ""));

  SseStream a(gw.port(), "info"), b(gw.port(), "info");
  a.expect_ok();
  b.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), "info", 2) == 2);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(publish(gw.port(), "info", "e" + std::to_string(i)));
  r = http_get(gw.port(), "/v1/channels/info");
  CHECK(r.status == 200);
  CHECK(json_body(r) == info_json("info", 2, 3, ids[1], ids[3]));

  b.close();
  CHECK(wait_subscribers(gw.port(), "info", 1) == 1);
  CHECK(json_body(http_get(gw.port(), "/v1/channels/info")) ==
        info_json("info", 1, 3, ids[1], ids[3]));
  // Reading a channel does not create it.
  CHECK(json_body(http_get(gw.port(), "/v1/channels/nobody")) == info_json("nobody", 0, 0, "", ""));
}

TEST_CASE("pubsub: events reach only the subscribers of their channel") {
  Gateway gw;
  SseStream a(gw.port(), "ch.a"), b(gw.port(), "ch.b");
  a.expect_ok();
  b.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), "ch.a", 1) == 1);
  REQUIRE(wait_subscribers(gw.port(), "ch.b", 1) == 1);

  Publisher pub(gw.port());
  std::string to_b = pub.publish("ch.b", "for b");
  CHECK(pub.last().body == publish_answer(to_b, "ch.b", 1));
  std::string to_none = pub.publish("ch.c", "nobody listens");
  CHECK(pub.last().body == publish_answer(to_none, "ch.c", 0));
  std::string to_a = pub.publish("ch.a", "for a");

  SseEvent ea = a.expect_event();
  CHECK(ea.id == to_a);
  CHECK(ea.data == "for a");
  SseEvent eb = b.expect_event();
  CHECK(eb.id == to_b);
  CHECK_FALSE(b.next_event(200ms).has_value());
  CHECK_FALSE(a.next_event(0ms).has_value());
}

TEST_CASE("pubsub: keep-alive pipelining answers in order") {
  Gateway gw;
  Conn c(gw.port());
  // Two publishes and an info request in one send().
  c.send(post_request("/v1/channels/pipe/events", "one") +
         post_request("/v1/channels/pipe/events?event=two", "second") +
         get_request("/v1/channels/pipe"));
  Response r1 = c.read_response();
  Response r2 = c.read_response();
  Response r3 = c.read_response();
  CHECK(r1.status == 200);
  CHECK(r2.status == 200);
  CHECK(r3.status == 200);
  std::string id1 = extract_id(r1.body), id2 = extract_id(r2.body);
  REQUIRE(parse_id(id1).has_value());
  REQUIRE(parse_id(id2).has_value());
  CHECK(*parse_id(id1) < *parse_id(id2));
  CHECK(r1.body == publish_answer(id1, "pipe", 0));
  CHECK(r2.body == publish_answer(id2, "pipe", 0));
  CHECK(json_body(r3) == info_json("pipe", 0, 2, id1, id2));
  CHECK(c.buffer().empty());

  // The connection stays usable, and a subscribe pipelined after a publish works too.
  c.send(post_request("/v1/channels/pipe/events", "three") +
         get_request("/v1/channels/pipe/events", "Last-Event-ID: " + id2 + "\r\n"));
  Response r4 = c.read_response();
  CHECK(r4.status == 200);
  std::string id3 = extract_id(r4.body);
  CHECK(r4.body == publish_answer(id3, "pipe", 0));
  // What follows on the connection is the stream: head, retry, then the replayed third event.
  auto deadline = Clock::now() + 5s;
  std::string want = kHead11 + chunk("retry: 2000\n\n") + chunk(sse_frame(id3, "three"));
  while (c.buffer().size() < want.size() && Clock::now() < deadline)
    read_some(c.fd(), c.buffer(), 100ms);
  CHECK(c.buffer() == want);
}

TEST_CASE("pubsub: Connection close and HTTP/1.0 requests end the connection") {
  Gateway gw;
  for (const std::string& req :
       {get_request("/healthz", "Connection: close\r\n"),
        std::string("GET /healthz HTTP/1.0\r\n\r\n"),
        post_request("/v1/channels/cc/events", "x", "Connection: close\r\n")}) {
    CAPTURE(printable(req));
    Conn c(gw.port());
    Response r = c.request(req);
    CHECK(r.status == 200);
    CHECK(lower(r.header("connection")) == "close");
    CHECK(c.wait_closed(2s));
    CHECK(c.buffer() == "");
  }
  // HTTP/1.0 with keep-alive asked for explicitly may stay open; HTTP/1.1 stays open by default.
  Conn k(gw.port());
  CHECK(k.request(get_request("/healthz")).status == 200);
  CHECK_FALSE(k.wait_closed(200ms));
  CHECK(k.request(get_request("/healthz")).status == 200);
}

TEST_CASE("pubsub: request bodies in chunked encoding are accepted") {
  Gateway gw;
  SseStream s(gw.port(), "tc");
  s.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), "tc", 1) == 1);
  Response r = http(gw.port(),
                    "POST /v1/channels/tc/events HTTP/1.1\r\nHost: x\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n");
  CHECK(r.status == 200);
  std::string id = extract_id(r.body);
  SseEvent e = s.expect_event();
  CHECK(e.id == id);
  CHECK(e.data == "hello, world");
}
