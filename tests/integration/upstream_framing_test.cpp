// Upstream framing and failures on routes (issue: findings 9, 13 and 14): interim answers, answers
// without a body (HEAD, 204, 304), what a client learns of a failed upstream, and clients that
// stop reading. Exact bytes on the wire; keep-alive proven by a next request on the same client
// connection and by the mock's connection count.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

std::string upstream_yaml(const MockLlm& mock) {
  return "upstreams:\n  llm: {url: \"" + mock.url() + "\"}\n";
}

std::string route_yaml(const std::string& path, const std::string& extra = "") {
  return "  - {path: " + path + ", upstream: llm" + extra + "}\n";
}

const std::string kChat = "/v1/chat/completions";
const std::string kStreamBody =
    "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
const std::string kPlainBody = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

// Reads from c until its buffer holds a whole response head; returns the head and leaves what
// follows it in the buffer, where the next read_response() starts.
std::string take_head(Conn& c, Ms timeout = kTimeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    size_t end = c.buffer().find("\r\n\r\n");
    if (end != std::string::npos) {
      std::string head = c.buffer().substr(0, end + 4);
      c.buffer().erase(0, end + 4);
      return head;
    }
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    if (left <= 0ms) throw std::runtime_error("no head in time: \"" + printable(c.buffer()) + "\"");
    if (read_some(c.fd(), c.buffer(), left) == ReadStatus::kEof)
      throw std::runtime_error("closed before a head: \"" + printable(c.buffer()) + "\"");
  }
}

// "HEAD path HTTP/1.1" with a Host.
std::string head_request(const std::string& path, const std::string& extra_headers = "") {
  return "HEAD " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + "\r\n";
}

// The connections the gateway opened to the mock (since its last reset).
long upstream_connections(const MockLlm& mock) {
  return mock.stat("api_connections");
}

// Checks a whole answer of the mock: n padded tokens, the finishing chunk, [DONE].
void check_tokens(const std::vector<SseEvent>& events, int n) {
  REQUIRE(events.size() == static_cast<size_t>(n) + 2);
  int bad = -1;
  for (int i = 0; i < n && bad < 0; ++i)
    if (events[i].data.find("\"content\":\"tok" + std::to_string(i)) == std::string::npos) bad = i;
  CHECK_MESSAGE(bad == -1, "token ", bad, " is wrong");
  CHECK(events.back().data == "[DONE]");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Interim answers

TEST_CASE(
    "upstream framing: a 103 before the final answer is dropped, the final one goes through") {
  MockLlm mock;
  // Straight from the mock: the interim head, then the answer.
  {
    Conn direct(mock.port());
    direct.send(post_request(kChat + "?interim=103&tokens=3&interval_ms=1", kStreamBody));
    CHECK(take_head(direct) ==
          "HTTP/1.1 103 Early Hints\r\nLink: </mock.css>; rel=preload\r\n\r\n");
    CHECK(take_head(direct).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  }
  const Response plain = http(mock.port(), post_request(kChat + "?tokens=3", kPlainBody));
  const Response stream =
      http(mock.port(), post_request(kChat + "?tokens=3&interval_ms=1", kStreamBody));
  REQUIRE(plain.status == 200);
  REQUIRE(stream.status == 200);
  mock.reset();

  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml(kChat));
  Conn c(gw.port());
  // A complete JSON answer: the exact head, the mock's body, one chunk, the end.
  Response a = c.request(post_request(kChat + "?interim=103&tokens=3", kPlainBody));
  CHECK(a.raw ==
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n" +
            chunk(plain.body) + "0\r\n\r\n");
  // A stream: the same bytes as without the interim answer.
  Response b = c.request(post_request(kChat + "?interim=103&tokens=3&interval_ms=1", kStreamBody));
  INFO("stream: \"", printable(b.raw), "\"");
  CHECK(b.head ==
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        "X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n");
  CHECK(b.body == stream.body);
  CHECK(b.raw.find("103") == std::string::npos);
  // Both answers over one upstream connection.
  CHECK(mock.stat("completed") == 1);
  CHECK(upstream_connections(mock) == 1);
  CHECK(read_metric(gw.port(), "ssegw_upstream_requests_total{code=\"200\",upstream=\"llm\"}") ==
        2);
}

TEST_CASE("upstream framing: a 101 from the upstream is a protocol failure, answered 502") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml(kChat));
  Conn c(gw.port());
  Response r = c.request(post_request(kChat + "?interim=101&tokens=3", kPlainBody));
  CHECK(r.raw ==
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n" +
            chunk("{\"error\":{\"code\":\"upstream_unavailable\",\"message\":\"the upstream sent "
                  "an invalid answer (protocol)\"}}\n") +
            "0\r\n\r\n");
  CHECK(wait_log_line(gw, {"\"failure\":\"protocol\"", "101 Switching Protocols"}) != "");
  // The client connection goes on; the upstream connection that switched protocols does not.
  Response next = c.request(post_request(kChat + "?tokens=2", kPlainBody));
  CHECK(next.status == 200);
  CHECK(upstream_connections(mock) == 2);
}

// ---------------------------------------------------------------------------------------------
// Answers without a body

TEST_CASE("upstream framing: 204 and 304 go out without body framing, keep-alive on both sides") {
  MockLlm mock;
  Conn direct(mock.port());
  direct.send(post_request(kChat + "?status=304", kPlainBody));
  const Response direct304 = parse_head(take_head(direct));
  direct.close();
  const std::string error_body = "{\"error\":{\"message\":\"mock status\",\"type\":\"mock\"}}";
  REQUIRE(direct304.status == 304);
  REQUIRE(direct304.header("content-length") == std::to_string(error_body.size()));
  mock.reset();

  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml(kChat));
  Conn c(gw.port());
  c.send(post_request(kChat + "?status=204", kPlainBody));
  CHECK(take_head(c) == "HTTP/1.1 204 No Content\r\n\r\n");
  c.send(post_request(kChat + "?status=304", kPlainBody));
  // The Content-Length of a 304 describes the representation: it stays.
  CHECK(take_head(c) == "HTTP/1.1 304 " + direct304.reason +
                            "\r\netag: \"mock\"\r\ncontent-type: application/json\r\n"
                            "content-length: " +
                            std::to_string(error_body.size()) + "\r\n\r\n");
  // Nothing followed either head: the next answer starts right after them.
  Response next = c.request(post_request(kChat + "?tokens=2&interval_ms=1", kStreamBody));
  INFO("next: \"", printable(next.raw), "\"");
  CHECK(next.status == 200);
  CHECK(next.body.find("data: [DONE]\n\n") != std::string::npos);
  CHECK(upstream_connections(mock) == 1);
  CHECK(read_metric(gw.port(), "ssegw_upstream_requests_total{code=\"204\",upstream=\"llm\"}") ==
        1);
  CHECK(read_metric(gw.port(), "ssegw_upstream_requests_total{code=\"304\",upstream=\"llm\"}") ==
        1);
}

TEST_CASE("upstream framing: HEAD gets the head at once, with its Content-Length, and keep-alive") {
  MockLlm mock;
  Conn direct(mock.port());
  direct.send(head_request(kChat));
  const Response direct_plain = parse_head(take_head(direct));
  direct.close();
  REQUIRE(direct_plain.status == 200);
  const std::string length = direct_plain.header("content-length");
  REQUIRE(!length.empty());
  mock.reset();

  // An idle_timeout far beyond the test's reads: an answer that waited for a body would stall.
  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml(kChat) + route_yaml("/v1/responses"));
  Conn c(gw.port());
  c.send(head_request(kChat));
  CHECK(take_head(c) == "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: " +
                            length + "\r\n\r\n");
  // A stream's head: the mock says chunked, the gateway adds nothing and sends no body.
  c.send(head_request("/v1/responses"));
  CHECK(take_head(c) ==
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        "X-Accel-Buffering: no\r\n\r\n");
  Response next = c.request(post_request(kChat + "?tokens=2&interval_ms=1", kStreamBody));
  INFO("next: \"", printable(next.raw), "\"");
  CHECK(next.status == 200);
  CHECK(next.body.find("data: [DONE]\n\n") != std::string::npos);
  CHECK(upstream_connections(mock) == 1);
}

// ---------------------------------------------------------------------------------------------
// What a client learns of a failed upstream

TEST_CASE("upstream framing: a 502 names no upstream address, the log line does") {
  const ReservedPort down;  // bound, never listening: connections to it are refused
  const std::string port_text = std::to_string(down.port());
  Gateway gw("upstreams:\n  llm: {url: \"http://127.0.0.1:" + port_text +
             "\", connect_timeout: 2s}\nroutes:\n" + route_yaml(kChat));
  Conn c(gw.port());
  Response r = c.request(post_request(kChat, kPlainBody));
  INFO("response: \"", printable(r.raw), "\"");
  CHECK(r.status == 502);
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.body ==
        "{\"error\":{\"code\":\"upstream_unavailable\",\"message\":\"the upstream could not be "
        "reached (connect)\"}}\n");
  CHECK(r.raw.find("127.0.0.1") == std::string::npos);
  CHECK(r.raw.find(port_text) == std::string::npos);
  const std::string line =
      wait_log_line(gw, {"upstream request failed", "\"failure\":\"connect\""});
  INFO("log line: ", line);
  CHECK(line.find("\"level\":\"warn\"") != std::string::npos);
  CHECK(line.find("\"upstream\":\"llm\"") != std::string::npos);
  CHECK(line.find("\"route\":\"/v1/chat/completions\"") != std::string::npos);
  CHECK(line.find("127.0.0.1:" + port_text) != std::string::npos);
  // An answer to HEAD carries no body, not even an error's; the connection goes on.
  c.send(head_request(kChat));
  CHECK(take_head(c) == "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n\r\n");
  CHECK(c.request(get_request("/healthz")).status == 200);
}

// ---------------------------------------------------------------------------------------------
// Clients that stop reading

TEST_CASE("upstream framing: a client that stops reading is cut after stall_timeout") {
  MockLlm mock;
  Gateway gw(
      upstream_yaml(mock) + "routes:\n" +
      route_yaml(kChat, ", high_water_bytes: 16KiB, low_water_bytes: 4KiB, stall_timeout: 1s"));
  // 5000 tokens of 8 KiB as fast as the mock can: far more than the sockets hold.
  SseStream s = SseStream::raw(
      gw.port(), post_request(kChat + "?tokens=5000&interval_ms=0&token_bytes=8192", kStreamBody),
      /*rcvbuf=*/4096);
  s.wait_head();
  REQUIRE(s.head().status == 200);
  // The client reads nothing more. The gateway pauses the upstream, then gives up on the client.
  CHECK(wait_metric(gw.port(), "ssegw_upstream_stalls_total{upstream=\"llm\"}", 1, 20s) == 1);
  CHECK(mock.wait_stat("cancelled", 1) == 1);  // the upstream request went with it
  CHECK(mock.stat("completed") == 0);
  CHECK(mock.stat("active") == 0);
  CHECK(read_metric(gw.port(), "ssegw_upstream_cancelled_total{upstream=\"llm\"}") == 1);
  const std::string line = wait_log_line(gw, {"client stalled", "\"upstream\":\"llm\""});
  CHECK(line.find("\"route\":\"/v1/chat/completions\"") != std::string::npos);
  // The client's connection was dropped: what the kernel held, then the end, unterminated.
  CHECK(s.read_until_closed(10s));
  CHECK_FALSE(s.finished());
  CHECK(s.framing_error() == "");
}

TEST_CASE("upstream framing: a client that reads slowly but steadily is never cut") {
  MockLlm mock;
  // The client takes 16 KiB every 10 ms, some 1.5 MB/s. Once the kernel's socket buffers are
  // full (a few MB), each pause of the upstream lasts until 2 MiB have gone: more than a second,
  // over twice stall_timeout, with the client taking bytes all along. Neither whole writes nor
  // the socket taking more (in steps of half its send buffer) happen that often: only the
  // client's acknowledgements show its progress in time.
  Gateway gw(
      upstream_yaml(mock) + "routes:\n" +
      route_yaml(kChat, ", high_water_bytes: 2MiB, low_water_bytes: 4KiB, stall_timeout: 500ms"));
  constexpr int kTokens = 800;  // 6.6 MB
  Fd fd = connect_to(gw.port(), kTimeout, /*rcvbuf=*/65536);
  send_all(fd.get(),
           post_request(kChat + "?tokens=800&interval_ms=0&token_bytes=8192", kStreamBody));
  std::string wire;
  bool closed = false;
  const auto t0 = Clock::now();
  while (!closed && !wire.ends_with("\r\n0\r\n\r\n") && Clock::now() - t0 < 60s) {
    char buf[16384];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) wire.append(buf, static_cast<size_t>(n));
    closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    std::this_thread::sleep_for(10ms);  // the client's pace, which the test is about
  }
  const auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0);
  INFO("read ", wire.size(), " bytes in ", took.count(), " ms; closed: ", closed);
  size_t head_end = wire.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  CHECK(wire.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  std::string rest = wire.substr(head_end + 4), body;
  Dechunker dechunker;
  dechunker.feed(rest, body);
  CHECK(dechunker.error() == "");
  REQUIRE(dechunker.done());
  std::vector<SseEvent> events;
  for (size_t pos = 0; (pos = body.find("data: ", pos)) != std::string::npos;) {
    size_t eol = body.find('\n', pos);
    events.push_back({std::nullopt, "", body.substr(pos + 6, eol - pos - 6), 1});
    pos = eol;
  }
  check_tokens(events, kTokens);
  CHECK(mock.wait_stat("completed", 1) == 1);
  CHECK(mock.stat("cancelled") == 0);
  CHECK(read_metric(gw.port(), "ssegw_upstream_stalls_total{upstream=\"llm\"}") == 0);
}

TEST_CASE(
    "upstream framing: a stalled client of an on_disconnect: continue route is cut, the "
    "answer runs on") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + "routes:\n" +
             route_yaml(kChat,
                        ", resumable: true, on_disconnect: continue, high_water_bytes: 16KiB, "
                        "low_water_bytes: 4KiB, stall_timeout: 1s"));
  SseStream s = SseStream::raw(
      gw.port(), post_request(kChat + "?tokens=500&interval_ms=0&token_bytes=8192", kStreamBody),
      /*rcvbuf=*/4096);
  s.wait_head();
  REQUIRE(s.head().status == 200);
  REQUIRE(s.head().has("sse-channel"));
  CHECK(wait_metric(gw.port(), "ssegw_upstream_stalls_total{upstream=\"llm\"}", 1, 20s) == 1);
  // Without its client the answer is read to its end, into the channel.
  CHECK(mock.wait_stat("completed", 1, 20s) == 1);
  CHECK(mock.stat("cancelled") == 0);
  CHECK(read_metric(gw.port(), "ssegw_upstream_cancelled_total{upstream=\"llm\"}") == 0);
  CHECK(s.read_until_closed(10s));
  CHECK_FALSE(s.finished());
}
