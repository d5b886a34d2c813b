// HTTP/2 to clients (docs/protocol.md "HTTP/2"): h2c with prior knowledge on the plain listener,
// with real clients (nghttp, curl) and with nghttp2's client session (h2_client.hpp) for many
// streams on one connection, per-stream flow control, resets and the graceful drain.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/h2_client.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

// A client program whose stdout the test reads as it comes (a stream socket: read_some works on
// it). The destructor kills and reaps it.
class Program {
 public:
  explicit Program(std::vector<std::string> argv) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) fail_errno("socketpair");
    Fd child(pair[1]);
    out_ = Fd(pair[0]);
    ::fcntl(out_.get(), F_SETFL, ::fcntl(out_.get(), F_GETFL) | O_NONBLOCK);
    pid_ = spawn_process(std::move(argv), -1, child.get(), 2);
  }
  ~Program() {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  // Reads stdout until it holds `bytes` bytes, the program closes it, or timeout.
  const std::string& read_until(size_t bytes, Ms timeout = kTimeout) {
    auto deadline = Clock::now() + timeout;
    while (output_.size() < bytes && Clock::now() < deadline)
      if (read_some(out_.get(), output_, 20ms) == ReadStatus::kEof) break;
    return output_;
  }

 private:
  pid_t pid_ = -1;
  Fd out_;
  std::string output_;
};

std::string header(const H2Client::Stream& s, const std::string& name) {
  for (const auto& [n, v] : s.headers)
    if (n == name) return v;
  return "";
}

const std::string kRetry = "retry: 2000\n\n";

}  // namespace

TEST_CASE("http2: nghttp and curl --http2-prior-knowledge subscribe and publish") {
  Gateway gw;
  const std::string base = "http://127.0.0.1:" + std::to_string(gw.port());
  Program nghttp({"/usr/bin/nghttp", base + "/v1/channels/h2/events"});
  Program curl(
      {"/usr/bin/curl", "-sN", "--http2-prior-knowledge", base + "/v1/channels/h2/events"});
  REQUIRE(wait_subscribers(gw.port(), "h2", 2) == 2);

  std::vector<std::string> ids;
  for (const char* data : {"one", "two"}) {
    ProcessResult r = run_process({"/usr/bin/curl", "-s", "--http2-prior-knowledge", "-d", data,
                                   base + "/v1/channels/h2/events"});
    REQUIRE(r.status == 0);
    std::string id = extract_id(r.output);
    REQUIRE(!id.empty());
    CHECK(r.output == "{\"id\":\"" + id + "\",\"channel\":\"h2\",\"subscribers\":2}\n");
    ids.push_back(id);
  }
  const std::string expected = kRetry + sse_frame(ids[0], "one") + sse_frame(ids[1], "two");
  CHECK(curl.read_until(expected.size()) == expected);
  // Every request counted as over HTTP/1.1, and both subscribers on HTTP/2 connections.
  CHECK(read_metric(
            gw.port(),
            "ssegw_http_requests_total{code=\"200\",route=\"/v1/channels/{channel}/events\"}") ==
        4);
  CHECK(read_metric(gw.port(), "ssegw_http2_streams_active") == 2);
  CHECK(read_metric(gw.port(), "ssegw_http2_connections_active") == 2);
  // nghttp writes the body when its stream ends: the drain ends it cleanly (END_STREAM).
  gw.signal(SIGTERM);
  CHECK(nghttp.read_until(SIZE_MAX) == expected);
  CHECK(gw.wait_exit(10s) == 0);
}

TEST_CASE("http2: answers carry the HTTP/1.1 head's fields, without hop-by-hop ones") {
  Gateway gw;
  H2Client c(gw.port());
  int32_t health = c.get("/healthz");
  int32_t missing = c.get("/nope");
  int32_t sub = c.get("/v1/channels/heads/events");
  H2Client::Stream& h = c.finish(health);
  CHECK(h.status == 200);
  CHECK(h.body == "{\"status\":\"ok\"}\n");
  CHECK(h.headers == HeaderPairs{{":status", "200"},
                                 {"content-type", "application/json"},
                                 {"content-length", "16"}});
  H2Client::Stream& m = c.finish(missing);
  CHECK(m.status == 404);
  CHECK(m.body == "{\"error\":{\"code\":\"not_found\",\"message\":\"no route for this path\"}}\n");
  REQUIRE(c.pump_until([&] { return c.stream(sub).body.size() >= kRetry.size(); }));
  CHECK(c.stream(sub).headers == HeaderPairs{{":status", "200"},
                                             {"content-type", "text/event-stream; charset=utf-8"},
                                             {"cache-control", "no-cache, no-transform"},
                                             {"x-accel-buffering", "no"}});
  CHECK(c.stream(sub).body == kRetry);
}

TEST_CASE("http2: 100 SSE streams on one connection all receive every event") {
  Gateway gw;
  H2Client c(gw.port());
  std::vector<int32_t> streams;
  for (int i = 0; i < 100; ++i) streams.push_back(c.get("/v1/channels/many/events"));
  REQUIRE(c.pump_until([&] {
    for (int32_t id : streams)
      if (c.stream(id).status != 200) return false;
    return true;
  }));
  REQUIRE(wait_subscribers(gw.port(), "many", 100) == 100);
  CHECK(read_metric(gw.port(), "ssegw_http2_streams_active") == 100);
  CHECK(read_metric(gw.port(), "ssegw_http2_connections_active") == 1);
  CHECK(read_metric(gw.port(), "ssegw_connections_active") == 2);  // and the scrape's

  Publisher pub(gw.port());
  std::string expected = kRetry;
  for (int i = 0; i < 20; ++i) {
    std::string data = "event " + std::to_string(i);
    expected += sse_frame(pub.publish("many", data), data);
  }
  REQUIRE(c.pump_until([&] {
    for (int32_t id : streams)
      if (c.stream(id).body.size() < expected.size()) return false;
    return true;
  }));
  for (int32_t id : streams) CHECK(c.stream(id).body == expected);
}

TEST_CASE("http2: a stream that never reads holds back only itself, then is cut") {
  // The stalled stream's window (the client's 65535 bytes) fills; the gateway then queues its
  // events, and past slow_consumer.max_queued_bytes resets that stream alone.
  Gateway gw("slow_consumer: {max_queued_bytes: 64KiB}\n");
  H2Client c(gw.port(), {.stalled = {1}});
  int32_t stalled = c.get("/v1/channels/slow/events");
  int32_t reader = c.get("/v1/channels/slow/events");
  REQUIRE(stalled == 1);
  REQUIRE(wait_subscribers(gw.port(), "slow", 2) == 2);

  Publisher pub(gw.port());
  const std::string data(4000, 'x');
  std::string expected = kRetry;
  for (int i = 0; i < 50; ++i) {  // 200 KB: the window and the queue limit, and more
    expected += sse_frame(pub.publish("slow", data), data);
    // The reader keeps up as events come: the stalled stream does not delay it.
    REQUIRE(c.pump_until([&] { return c.stream(reader).body.size() == expected.size(); }));
  }
  CHECK(c.stream(reader).body == expected);
  REQUIRE(c.pump_until([&] { return c.stream(stalled).closed; }));
  CHECK(c.stream(stalled).reset);
  CHECK(c.stream(stalled).error_code == 8);  // CANCEL
  CHECK(c.stream(stalled).body.size() <= 65535);
  CHECK(read_metric(gw.port(), "ssegw_slow_consumer_disconnects_total") == 1);
  CHECK(!c.stream(reader).closed);
  CHECK(wait_subscribers(gw.port(), "slow", 1) == 1);
}

TEST_CASE("http2: RST_STREAM ends one subscription and leaves the others") {
  Gateway gw;
  H2Client c(gw.port());
  int32_t a = c.get("/v1/channels/rst/events");
  int32_t b = c.get("/v1/channels/rst/events");
  REQUIRE(wait_subscribers(gw.port(), "rst", 2) == 2);
  c.reset(a);
  CHECK(wait_subscribers(gw.port(), "rst", 1) == 1);
  CHECK(wait_metric(gw.port(), "ssegw_http2_streams_active", 1) == 1);
  std::string id = publish(gw.port(), "rst", "after");
  std::string expected = kRetry + sse_frame(id, "after");
  REQUIRE(c.pump_until([&] { return c.stream(b).body.size() >= expected.size(); }));
  CHECK(c.stream(b).body == expected);
  CHECK(!c.stream(b).closed);
}

TEST_CASE("http2: a drain ends every stream with END_STREAM, then GOAWAY") {
  Gateway gw;
  H2Client c(gw.port());
  int32_t a = c.get("/v1/channels/drain/events");
  int32_t b = c.get("/v1/channels/drain2/events");
  REQUIRE(wait_subscribers(gw.port(), "drain", 1) == 1);
  REQUIRE(wait_subscribers(gw.port(), "drain2", 1) == 1);
  gw.signal(SIGTERM);
  REQUIRE(c.pump_until([&] { return c.stream(a).closed && c.stream(b).closed && c.goaway(); }));
  CHECK(!c.stream(a).reset);
  CHECK(c.stream(a).error_code == 0);
  CHECK(!c.stream(b).reset);
  CHECK(c.stream(a).body == kRetry);
  CHECK(c.goaway_error() == 0);  // NO_ERROR
  CHECK(c.pump_until([&] { return c.eof(); }));
  CHECK(gw.wait_exit(10s) == 0);
}

TEST_CASE("http2: publish, info, ops and errors answer as over HTTP/1.1") {
  Gateway gw("limits: {max_event_bytes: 1000}\ndemo: {enabled: true}\n");
  H2Client c(gw.port());
  H2Client::Stream& p = c.finish(c.submit("POST", "/v1/channels/ops/events", {}, "hello"));
  CHECK(p.status == 200);
  std::string id = extract_id(p.body);
  CHECK(p.body == "{\"id\":\"" + id + "\",\"channel\":\"ops\",\"subscribers\":0}\n");
  H2Client::Stream& i = c.finish(c.get("/v1/channels/ops"));
  CHECK(i.body == "{\"channel\":\"ops\",\"subscribers\":0,\"retained\":1,\"first_id\":\"" + id +
                      "\",\"last_id\":\"" + id + "\"}\n");
  H2Client::Stream& big =
      c.finish(c.submit("POST", "/v1/channels/ops/events", {}, std::string(1001, 'x')));
  CHECK(big.status == 413);
  CHECK(big.body ==
        "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"body exceeds 1000 bytes\"}}\n");
  H2Client::Stream& ready = c.finish(c.get("/readyz"));
  CHECK(ready.body == "{\"status\":\"ready\"}\n");
  H2Client::Stream& metrics = c.finish(c.get("/metrics"));
  CHECK(header(metrics, "content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(metrics.body.find("ssegw_http2_streams_active") != std::string::npos);
  H2Client::Stream& demo = c.finish(c.get("/"));
  CHECK(demo.status == 200);
  CHECK(header(demo, "content-type") == "text/html; charset=utf-8");
  CHECK(demo.body.find("EventSource") != std::string::npos);
  // The connection is still good after the refused publish.
  H2Client::Stream& again = c.finish(c.get("/healthz"));
  CHECK(again.status == 200);
}

TEST_CASE("http2: with workers: 2, streams of one connection follow channels of both workers") {
  Gateway gw("workers: 2\n");
  H2Client c(gw.port());
  // Channel names hash to either worker; eight of them cover both with near certainty (1/128).
  std::vector<int32_t> streams;
  for (int i = 0; i < 8; ++i)
    streams.push_back(c.get("/v1/channels/w" + std::to_string(i) + "/events"));
  for (int i = 0; i < 8; ++i) REQUIRE(wait_subscribers(gw.port(), "w" + std::to_string(i), 1) == 1);
  std::vector<std::string> expected;
  for (int i = 0; i < 8; ++i) {
    std::string ch = "w" + std::to_string(i);
    expected.push_back(kRetry + sse_frame(publish(gw.port(), ch, "to " + ch), "to " + ch));
  }
  REQUIRE(c.pump_until([&] {
    for (int i = 0; i < 8; ++i)
      if (c.stream(streams[i]).body.size() < expected[i].size()) return false;
    return true;
  }));
  for (int i = 0; i < 8; ++i) CHECK(c.stream(streams[i]).body == expected[i]);
}

TEST_CASE("http2: heartbeats go to each quiet stream") {
  Gateway gw("heartbeat: 200ms\n");
  H2Client c(gw.port());
  int32_t a = c.get("/v1/channels/hb1/events");
  int32_t b = c.get("/v1/channels/hb2/events");
  const std::string two_beats = kRetry + ":\n\n:\n\n";
  REQUIRE(c.pump_until([&] {
    return c.stream(a).body.size() >= two_beats.size() &&
           c.stream(b).body.size() >= two_beats.size();
  }));
  CHECK(c.stream(a).body.substr(0, two_beats.size()) == two_beats);
  CHECK(c.stream(b).body.substr(0, two_beats.size()) == two_beats);
}

TEST_CASE("http2: bodies larger than the window arrive whole, several at once") {
  // 200 KB each, over windows of 64 KiB: the gateway opens them again as it reads, and holds at
  // most four bodies' worth before it waits for one to complete.
  Gateway gw("limits: {max_event_bytes: 256KiB}\n");
  H2Client c(gw.port());
  std::vector<int32_t> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(c.submit("POST", "/v1/channels/big" + std::to_string(i) + "/events", {},
                           std::string(200000, static_cast<char>('a' + i))));
  for (int i = 0; i < 6; ++i) {
    H2Client::Stream& s = c.finish(ids[i]);
    CHECK(s.status == 200);
    H2Client::Stream& info = c.finish(c.get("/v1/channels/big" + std::to_string(i)));
    CHECK(json_number(info.body, "retained") == 1);
  }
}
