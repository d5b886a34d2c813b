// Client and protocol errors (docs/protocol.md#errors): each status, its JSON body and exact code.
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

TEST_CASE("errors: 404 not_found for unknown paths") {
  Gateway gw;
  Conn c(gw.port());
  for (const char* path : {"/nope", "/v1/channels", "/v1/channels/a/events/more",
                           "/v1/channels/a/b", "/healthz/x", "/v2/channels/a/events"}) {
    CAPTURE(path);
    check_error(c.request(get_request(path)), 404, "not_found");
  }
  // The connection stays open after a 404.
  CHECK(c.request(get_request("/healthz")).status == 200);
}

TEST_CASE("errors: 405 method_not_allowed with Allow") {
  Gateway gw;
  Conn c(gw.port());
  Response r =
      c.request("PUT /v1/channels/a/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  check_error(r, 405, "method_not_allowed");
  auto allow = split_list(r.header("allow"));
  INFO("Allow: ", r.header("allow"));
  CHECK(allow.count("GET") == 1);
  CHECK(allow.count("POST") == 1);
  CHECK(allow.count("PUT") == 0);
  for (auto& m : allow) CHECK((m == "GET" || m == "HEAD" || m == "POST" || m == "OPTIONS"));
  // The body was consumed: the next request on the connection is answered.
  CHECK(c.request(get_request("/healthz")).status == 200);

  r = c.request("DELETE /v1/channels/a HTTP/1.1\r\nHost: x\r\n\r\n");
  check_error(r, 405, "method_not_allowed");
  CHECK(split_list(r.header("allow")).count("GET") == 1);
  CHECK(split_list(r.header("allow")).count("POST") == 0);

  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    CAPTURE(path);
    r = c.request(post_request(path, ""));
    check_error(r, 405, "method_not_allowed");
    CHECK(split_list(r.header("allow")).count("GET") == 1);
  }
}

TEST_CASE("errors: 400 bad_request for malformed HTTP then close") {
  Gateway gw;
  for (const std::string& garbage :
       {std::string("\x01\x02\x03 garbage\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
        std::string("POST /v1/channels/a/events HTTP/1.1\r\nHost: x\r\n"
                    "Transfer-Encoding: chunked\r\n\r\nzz\r\n")}) {
    CAPTURE(printable(garbage));
    Conn c(gw.port());
    c.send(garbage);
    check_error(c.read_response(), 400, "bad_request");
    CHECK(c.wait_closed(2s));
    CHECK(c.buffer().empty());
  }
  // After a bad request on one connection the server still answers others.
  CHECK(http_get(gw.port(), "/healthz").status == 200);
}

TEST_CASE("errors: 400 invalid_channel") {
  Gateway gw;
  const std::string too_long(201, 'a');
  for (const std::string& name :
       {std::string("bad%20name"), too_long, std::string("a!b"), std::string("a%2Fb"),
        std::string("caf%C3%A9"), std::string("a$b")}) {
    CAPTURE(name);
    check_error(http_get(gw.port(), "/v1/channels/" + name + "/events"), 400, "invalid_channel");
    check_error(http(gw.port(), post_request("/v1/channels/" + name + "/events", "x")), 400,
                "invalid_channel");
    check_error(http_get(gw.port(), "/v1/channels/" + name), 400, "invalid_channel");
  }
  // 200 characters of the whole alphabet are fine.
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@~-";
  std::string longest;
  while (longest.size() < 200) longest += alphabet[longest.size() % alphabet.size()];
  std::string id = publish(gw.port(), longest, "x");
  CHECK(json_body(http_get(gw.port(), "/v1/channels/" + longest)) ==
        info_json(longest, 0, 1, id, id));
  // "0-0" is older than anything retained: a gap, then the event.
  SseStream s(gw.port(), longest, {.last_event_id = "0-0"});
  s.expect_ok();
  CHECK(s.expect_event().event == "gap");
  CHECK(s.expect_event().id == id);
}

TEST_CASE("errors: 400 invalid_event_type") {
  Gateway gw;
  for (const std::string& type : {std::string("bad!type"), std::string(65, 't'), std::string(""),
                                  std::string("a%20b"), std::string("a@b")}) {
    CAPTURE(type);
    check_error(http(gw.port(), post_request("/v1/channels/a/events?event=" + type, "x")), 400,
                "invalid_event_type");
  }
  const std::string longest(64, 't');
  Response r = http(gw.port(), post_request("/v1/channels/a/events?event=" + longest, "x"));
  CHECK(r.status == 200);
  SseStream s(gw.port(), "a", {.last_event_id = "0-0"});
  s.expect_ok();
  CHECK(s.expect_event().event == "gap");
  SseEvent e = s.expect_event();
  CHECK(e.event == longest);
  // Rejected events were not stored.
  CHECK(json_body(http_get(gw.port(), "/v1/channels/a")) ==
        info_json("a", 1, 1, extract_id(r.body), extract_id(r.body)));
}

TEST_CASE("errors: 400 invalid_utf8") {
  Gateway gw;
  for (const std::string& body :
       {std::string("\xff"), std::string("\xc3\x28"), std::string("abc\xe2\x82"),
        std::string("\xc0\xaf"), std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80")}) {
    CAPTURE(printable(body));
    check_error(http(gw.port(), post_request("/v1/channels/u/events", body)), 400, "invalid_utf8");
  }
  CHECK(http(gw.port(), post_request("/v1/channels/u/events", "\xf0\x9f\x98\x80 ok")).status ==
        200);
  CHECK(json_number(http_get(gw.port(), "/v1/channels/u").body, "retained") == 1);
}

TEST_CASE("errors: 413 payload_too_large") {
  Gateway gw("limits: {max_event_bytes: 1KiB}\n");
  CHECK(http(gw.port(), post_request("/v1/channels/big/events", std::string(1024, 'x'))).status ==
        200);
  check_error(http(gw.port(), post_request("/v1/channels/big/events", std::string(1025, 'x'))), 413,
              "payload_too_large");

  // A declared length over the limit is refused without waiting for the body.
  Conn c(gw.port());
  c.send("POST /v1/channels/big/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n");
  check_error(c.read_response(3s), 413, "payload_too_large");

  // A chunked body is counted as it arrives.
  std::string half(600, 'y');
  Response r = http(gw.port(),
                    "POST /v1/channels/big/events HTTP/1.1\r\nHost: x\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n258\r\n" +
                        half + "\r\n258\r\n" + half + "\r\n0\r\n\r\n");
  check_error(r, 413, "payload_too_large");
  CHECK(json_number(http_get(gw.port(), "/v1/channels/big").body, "retained") == 1);
}

TEST_CASE("errors: 431 headers_too_large then close") {
  Gateway gw("limits: {max_header_bytes: 1KiB}\n");
  CHECK(
      http(gw.port(), get_request("/healthz", "X-Pad: " + std::string(500, 'p') + "\r\n")).status ==
      200);
  Conn c(gw.port());
  c.send(get_request("/healthz", "X-Pad: " + std::string(2000, 'p') + "\r\n"));
  check_error(c.read_response(), 431, "headers_too_large");
  CHECK(c.wait_closed(2s));
  // Many small headers count too.
  std::string many;
  for (int i = 0; i < 100; ++i) many += "X-H" + std::to_string(i) + ": 0123456789\r\n";
  Conn d(gw.port());
  d.send(get_request("/healthz", many));
  check_error(d.read_response(), 431, "headers_too_large");
  CHECK(d.wait_closed(2s));
}

TEST_CASE("errors: 408 request_timeout for slow headers then close") {
  Gateway gw("limits: {header_timeout: 1s}\n");
  {
    auto t0 = Clock::now();  // before the connect: the header timeout cannot start earlier
    Conn c(gw.port());
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    Response r = c.read_response();
    auto took = Clock::now() - t0;
    check_error(r, 408, "request_timeout");
    CHECK(took >= 800ms);  // header_timeout (1 s), not earlier
    CHECK(c.wait_closed(2s));
  }
  {
    // Slowloris: a byte every 200 ms does not extend the deadline. The 408 comes while the bytes
    // still trickle in (all of them would take 13 s).
    Conn c(gw.port());
    const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(40, 's');
    size_t sent = 0;
    std::string got;
    while (got.empty() && sent < req.size()) {
      try {
        c.send(req.substr(sent++, 1));
      } catch (const std::exception&) {
        break;  // closed after the answer
      }
      read_some(c.fd(), got, 200ms);  // the pace of the trickle
    }
    c.buffer() = got;
    INFO(sent, " of ", req.size(), " bytes sent");
    check_error(c.read_response(), 408, "request_timeout");
    CHECK(sent < req.size());
  }
}

TEST_CASE("errors: idle_timeout closes an idle keep-alive connection but not a subscriber") {
  Gateway gw("limits: {idle_timeout: 1s, header_timeout: 1s}\nheartbeat: 10s\n");
  SseStream s(gw.port(), "idle");
  s.expect_ok();
  Conn c(gw.port());
  auto t0 = Clock::now();  // before the request: the idle time starts after its answer
  CHECK(c.request(get_request("/healthz")).status == 200);
  CHECK(c.wait_closed(kTimeout));
  auto took = Clock::now() - t0;
  CHECK(took >= 800ms);     // idle_timeout (1 s), not earlier
  CHECK(c.buffer() == "");  // closed silently, no response to a request never made

  // The subscriber has now been quiet for longer than both timeouts (the wait is the point: it
  // must outlast them without being cut).
  std::this_thread::sleep_until(t0 + 2500ms);
  std::string id = publish(gw.port(), "idle", "still here");
  SseEvent e = s.expect_event();
  CHECK(e.id == id);
  CHECK_FALSE(s.closed());
}

TEST_CASE("errors: 503 too_many_connections") {
  Gateway gw("limits: {max_connections: 2}\n");
  Conn a(gw.port()), b(gw.port());
  CHECK(a.request(get_request("/healthz")).status == 200);
  CHECK(b.request(get_request("/healthz")).status == 200);

  Conn c(gw.port());
  // The server may answer at accept time; send the request only if nothing came.
  if (read_some(c.fd(), c.buffer(), 300ms) == ReadStatus::kTimeout) c.send(get_request("/healthz"));
  check_error(c.read_response(), 503, "too_many_connections");
  CHECK(c.wait_closed(2s));
  c.close();  // until the client closes too, the server may keep the slot while lingering

  // The two accepted connections still work, and a freed slot is reused.
  CHECK(a.request(get_request("/healthz")).status == 200);
  b.close();
  int status = 0;
  CHECK(wait_until(
      [&] {
        Conn d(gw.port());
        std::string got;
        // A refusal comes at accept time: still full, the close of b was not seen yet.
        if (read_some(d.fd(), got, 100ms) != ReadStatus::kTimeout) return false;
        status = d.request(get_request("/healthz")).status;
        return status == 200;
      },
      kTimeout, 20ms));
  CHECK(status == 200);
}

TEST_CASE("errors: 503 too_many_channels") {
  Gateway gw("limits: {max_channels: 2}\n");
  publish(gw.port(), "c1", "x");
  publish(gw.port(), "c2", "x");
  check_error(http(gw.port(), post_request("/v1/channels/c3/events", "x")), 503,
              "too_many_channels");
  check_error(http_get(gw.port(), "/v1/channels/c4/events"), 503, "too_many_channels");
  // Existing channels keep working, and information on an unknown one creates nothing.
  publish(gw.port(), "c1", "y");
  CHECK(json_body(http_get(gw.port(), "/v1/channels/c5")) == info_json("c5", 0, 0, "", ""));
  CHECK(read_metric(gw.port(), "ssegw_channels_active") == 2);
}

TEST_CASE("errors: 401 unauthorized without the publish token") {
  {
    Gateway gw("auth: {publish_tokens: [s3cret, other]}\n");
    const std::string path = "/v1/channels/sec/events";
    check_error(http(gw.port(), post_request(path, "x")), 401, "unauthorized");
    for (const char* header :
         {"Authorization: Bearer wrong\r\n", "Authorization: Bearer s3cre\r\n",
          "Authorization: Bearer s3cret2\r\n", "Authorization: Basic s3cret\r\n",
          "Authorization: s3cret\r\n", "Authorization: Bearer\r\n"}) {
      CAPTURE(header);
      check_error(http(gw.port(), post_request(path, "x", header)), 401, "unauthorized");
    }
    CHECK(json_number(http_get(gw.port(), "/v1/channels/sec").body, "retained") == 0);
    Response ok = http(gw.port(), post_request(path, "x", "Authorization: Bearer s3cret\r\n"));
    CHECK(ok.status == 200);
    CHECK(http(gw.port(), post_request(path, "x", "Authorization: Bearer other\r\n")).status ==
          200);
    // Subscribing and reading stay open.
    SseStream s(gw.port(), "sec", {.last_event_id = extract_id(ok.body)});
    s.expect_ok();
    CHECK(s.expect_event().data == "x");
    CHECK(http_get(gw.port(), "/v1/channels/sec").status == 200);
  }
  {
    // Tokens may come from the environment.
    ::setenv("SSEGW_ITEST_TOKEN", "from-env", 1);
    Gateway gw("auth: {publish_tokens: [\"${SSEGW_ITEST_TOKEN}\"]}\n");
    ::unsetenv("SSEGW_ITEST_TOKEN");
    CHECK(http(gw.port(),
               post_request("/v1/channels/e/events", "x", "Authorization: Bearer from-env\r\n"))
              .status == 200);
    check_error(http(gw.port(), post_request("/v1/channels/e/events", "x",
                                             "Authorization: Bearer ${SSEGW_ITEST_TOKEN}\r\n")),
                401, "unauthorized");
  }
}

TEST_CASE("errors: random bytes crash nothing and leak no connection") {
  Gateway gw("limits: {header_timeout: 1s}\n");
  std::mt19937 rng(42);
  const std::vector<std::string> seeds = {
      post_request("/v1/channels/f/events?event=t", "payload\r\nline"),
      get_request("/v1/channels/f/events", "Last-Event-ID: 1-1\r\n"),
      "POST /v1/channels/f/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
      "\r\n",
      get_request("/v1/channels/f?x=%zz"),
      "OPTIONS /v1/channels/f/events HTTP/1.1\r\nOrigin: http://x\r\n\r\n",
  };
  std::vector<Conn> open;
  for (int i = 0; i < 300; ++i) {
    std::string msg = seeds[rng() % seeds.size()];
    int mutations = 1 + static_cast<int>(rng() % 8);
    for (int m = 0; m < mutations && !msg.empty(); ++m) {
      size_t at = rng() % msg.size();
      switch (rng() % 4) {
        case 0:
          msg[at] = static_cast<char>(rng() & 0xff);
          break;
        case 1:
          msg.erase(at, 1 + rng() % 8);
          break;
        case 2:
          msg.insert(at, std::string(1 + rng() % 4, static_cast<char>(rng() & 0xff)));
          break;
        default:
          msg += msg.substr(at);
          break;
      }
    }
    Conn c(gw.port());
    try {
      c.send(msg);
    } catch (const std::exception&) {
      // closed under us: fine
    }
    // Keep a few open and drop the rest right away (a reset may race with the answer).
    if (i % 10 == 0) open.push_back(std::move(c));
  }
  open.clear();
  CHECK_FALSE(gw.wait_exit(0ms).has_value());
  CHECK(http_get(gw.port(), "/healthz").status == 200);
  // Every connection is eventually closed: only the /metrics request itself remains.
  CHECK(wait_metric(gw.port(), "ssegw_connections_active", 1, 5s) == 1);
  CHECK(wait_metric(gw.port(), "ssegw_subscribers_active", 0, 5s) == 0);
}
