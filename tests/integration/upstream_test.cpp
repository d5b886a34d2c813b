// Upstreams (docs/protocol.md): routes proxying the mock LLM, sources bound to channels, resumable
// generations. Every test runs its own ssegw-mock-llm and ssegw on port 0 and compares what the
// gateway sends with what the mock sends directly, or with what the mock's /mock/stats saw.
//
// What the mock cannot show: it echoes neither request headers nor the body. The tests prove
// that they reach it through their effects instead: X-Mock-* headers are knobs, and the body's
// word count is the prompt_tokens the mock reports. Headers without an effect on the mock
// (Authorization, X-Test) cannot be observed there.
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/h2_client.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

// The upstreams: block with the mock as "llm"; extra is more flow-map keys (", idle_timeout: 1s").
std::string upstream_yaml(const MockLlm& mock, const std::string& extra = "") {
  return "upstreams:\n  llm: {url: \"" + mock.url() + "\"" + extra + "}\n";
}

std::string route_yaml(const std::string& path, const std::string& extra = "") {
  return "  - {path: " + path + ", upstream: llm" + extra + "}\n";
}

// A chat request body of exactly `words` whitespace-separated words (the mock's prompt_tokens).
std::string chat_body(int words) {
  std::string content;
  for (int i = 2; i < words; ++i) content += " w" + std::to_string(i);
  return "{\"stream\":true, \"messages\":[{\"role\":\"user\",\"content\":\"hi" + content + "\"}]}";
}

// "tok0 tok1 ... tok<n-1> ": the mock's default answer of n tokens.
std::string full_answer(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += "tok" + std::to_string(i) + " ";
  return out;
}

// Reads a response that may end without its terminal chunk (an upstream fault): everything
// until the server closes. The body is de-chunked as far as it is well framed.
SseStream read_all(uint16_t port, const std::string& raw_request, Ms timeout = kTimeout) {
  SseStream s = SseStream::raw(port, raw_request);
  if (!s.read_until_closed(timeout)) throw std::runtime_error("response did not end in time");
  return s;
}

// The JSON error the gateway answers for an upstream failure before any response head:
// {"error":{"code":"<code>","message":"..."}}\n as application/json.
void check_upstream_error(const Response& r, int status, const std::string& code,
                          const std::string& message_part) {
  INFO("response: \"", printable(r.raw), "\"");
  CHECK(r.status == status);
  CHECK(r.header("content-type") == "application/json");
  const std::string prefix = "{\"error\":{\"code\":\"" + code + "\",\"message\":\"";
  CHECK(r.body.rfind(prefix, 0) == 0);
  CHECK(r.body.find(message_part) != std::string::npos);
  REQUIRE(r.body.size() >= 4);
  CHECK(r.body.substr(r.body.size() - 4) == "\"}}\n");
}

// The error event (SSE) or line (NDJSON) that ends a truncated stream, up to the message text.
const std::string kSseTruncated =
    "event: error\ndata: {\"error\":{\"type\":\"upstream_disconnected\",\"message\":\"";
const std::string kNdjsonTruncated =
    "{\"error\":{\"type\":\"upstream_disconnected\",\"message\":\"";

// Checks that suffix is exactly one truncation notice: prefix + message + "\"}}" + end.
void check_truncation_notice(const std::string& suffix, const std::string& prefix,
                             const std::string& end, const std::string& message_part) {
  INFO("after the upstream's bytes: \"", printable(suffix), "\"");
  CHECK(suffix.rfind(prefix, 0) == 0);
  CHECK(suffix.size() > prefix.size() + end.size() + 3);
  if (suffix.size() >= end.size() + 3)
    CHECK(suffix.substr(suffix.size() - end.size() - 3) == "\"}}" + end);
  CHECK(suffix.find(message_part) != std::string::npos);
  // One notice: the prefix occurs once and the end marker once, at the end.
  CHECK(suffix.find(prefix, 1) == std::string::npos);
  CHECK(suffix.find(end) == suffix.size() - end.size());
}

// Byte-for-byte passthrough of one streaming API: the same request straight to the mock and
// through the gateway gives the same status, type and body; the gateway re-frames it chunked and
// adds X-Accel-Buffering: no to SSE.
void check_passthrough(const std::string& path, const std::string& body, bool sse,
                       const std::string& last_event) {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml(path));
  const std::string req =
      post_request(path + "?tokens=7&interval_ms=5", body, "Content-Type: application/json\r\n");
  Response direct = http(mock.port(), req);
  Response via = http(gw.port(), req);
  INFO("direct: \"", printable(direct.raw), "\"");
  INFO("via the gateway: \"", printable(via.raw), "\"");
  REQUIRE(direct.status == 200);
  CHECK(via.status == 200);
  CHECK(via.reason == direct.reason);
  CHECK(via.header("content-type") == direct.header("content-type"));
  CHECK(via.header("content-type") == (sse ? "text/event-stream" : "application/x-ndjson"));
  CHECK(via.header("cache-control") == direct.header("cache-control"));
  CHECK(via.chunked);
  CHECK(via.header("transfer-encoding") == "chunked");
  CHECK_FALSE(via.has("content-length"));
  CHECK(via.has("x-accel-buffering") == sse);
  if (sse) CHECK(via.header("x-accel-buffering") == "no");
  CHECK(via.body == direct.body);
  // The answer is complete: it ends with the protocol's terminator and no error notice.
  CHECK(via.body.size() > last_event.size());
  CHECK(via.body.substr(via.body.size() - std::min(via.body.size(), last_event.size())) ==
        last_event);
  CHECK(via.body.find("upstream_disconnected") == std::string::npos);
  CHECK(mock.stat(path) == 2);
  CHECK(mock.stat("completed") == 2);
  CHECK(mock.stat("faulted") == 0);
  CHECK(mock.stat("cancelled") == 0);
  CHECK(read_metric(gw.port(), "ssegw_upstream_requests_total{code=\"200\",upstream=\"llm\"}") ==
        1);
}

// Opens a streaming POST through the gateway without waiting.
SseStream post_stream(uint16_t port, const std::string& target, const std::string& body,
                      const std::string& headers = "", int rcvbuf = 0) {
  return SseStream::raw(port, post_request(target, body, headers), rcvbuf);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Routes: passthrough

TEST_CASE("upstream: route passes an OpenAI chat completions stream through byte for byte") {
  check_passthrough("/v1/chat/completions", chat_body(5), true, "data: [DONE]\n\n");
}

TEST_CASE("upstream: route passes an OpenAI Responses stream through byte for byte") {
  check_passthrough("/v1/responses", "{\"model\":\"m\",\"input\":\"say something\"}", true,
                    "}}}\n\n");
}

TEST_CASE("upstream: route passes an Anthropic messages stream through byte for byte") {
  check_passthrough("/v1/messages", "{\"model\":\"m\",\"stream\":true,\"messages\":[]}", true,
                    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

TEST_CASE("upstream: route passes an Ollama NDJSON chat stream through byte for byte") {
  check_passthrough("/api/chat", "{\"model\":\"m\",\"messages\":[]}", false, "\"eval_count\":7}\n");
}

TEST_CASE("upstream: route streams each upstream chunk as it arrives") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml("/v1/chat/completions"));
  // Answer k stops for a minute after its k-th token, so its first k tokens reach the client only
  // if the gateway passes each chunk on as it arrives, without waiting for the next one or for a
  // buffer to fill. (How fast: bench/llm_latency.sh measures each chunk's latency, workload W4.)
  std::vector<SseStream> answers;
  for (int k = 1; k <= 3; ++k)
    answers.push_back(post_stream(gw.port(),
                                  "/v1/chat/completions?tokens=4&interval_ms=5&stall_after=" +
                                      std::to_string(k) + "&stall_ms=60000",
                                  chat_body(3)));
  for (int k = 1; k <= 3; ++k) {
    CAPTURE(k);
    for (int i = 0; i < k; ++i) {
      SseEvent e = answers[k - 1].expect_event();
      CHECK(json_string(e.data, "content") == "tok" + std::to_string(i) + " ");
    }
  }
  // Every answer is still in its stall: the client got all that the upstream sent, and no more.
  CHECK(mock.stat("tokens_sent") == 1 + 2 + 3);
  CHECK(mock.stat("active") == 3);
  for (SseStream& s : answers) {
    s.pump();
    CHECK(s.pending().empty());
    CHECK_FALSE(s.finished());
    s.close();
  }
  CHECK(mock.wait_stat("cancelled", 3) == 3);
}

TEST_CASE("upstream: route forwards the body, the query and end-to-end headers, not hop-by-hop") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml("/v1/chat/completions"));
  const std::string path = "/v1/chat/completions";

  SUBCASE("body and X-Mock-Tokens header") {
    // 13 words in the body come back as prompt_tokens; X-Mock-Tokens: 4 sets the token count.
    Response r = http(gw.port(), post_request(path, chat_body(13),
                                              "X-Mock-Tokens: 4\r\nX-Test: 1\r\n"
                                              "Authorization: Bearer sk-test\r\n"));
    INFO("response: \"", printable(r.raw), "\"");
    CHECK(r.status == 200);
    auto events = parse_sse(r.body);
    REQUIRE(events.size() == 6);  // 4 tokens, the finishing chunk, [DONE]
    CHECK(events[3].data.find("\"content\":\"tok3 \"") != std::string::npos);
    // The client did not ask for usage, so the usage the gateway asked for stays behind.
    CHECK(events[4].data.find("\"finish_reason\":\"stop\"") != std::string::npos);
    CHECK(r.body.find("usage") == std::string::npos);
    CHECK(events[5].data == "[DONE]");
    CHECK(mock.stat(path) == 1);
    CHECK(read_metric(gw.port(),
                      "ssegw_llm_tokens_total{key=\"anonymous\",kind=\"prompt\","
                      "route=\"/v1/chat/completions\",source=\"reported\","
                      "upstream=\"llm\"}") == 13);
  }
  SUBCASE("query string") {
    Response r = http(gw.port(), post_request(path + "?tokens=2&interval_ms=1", chat_body(3)));
    CHECK(r.status == 200);
    CHECK(parse_sse(r.body).size() == 4);
  }
  SUBCASE("a header named in Connection is hop-by-hop and stays behind") {
    Response r = http(gw.port(), post_request(path + "?interval_ms=1", chat_body(3),
                                              "Connection: keep-alive, X-Mock-Tokens\r\n"
                                              "X-Mock-Tokens: 4\r\n"));
    CHECK(r.status == 200);
    CHECK(parse_sse(r.body).size() == 22);  // the mock's default of 20 tokens
  }
  CHECK(mock.stat(path) == 1);
}

TEST_CASE("upstream: upstream headers from the config replace the client's") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock, ", headers: {X-Mock-Tokens: \"3\"}") + "routes:\n" +
             route_yaml("/v1/chat/completions"));
  Response r = http(gw.port(), post_request("/v1/chat/completions?interval_ms=1", chat_body(3),
                                            "X-Mock-Tokens: 9\r\n"));
  INFO("response: \"", printable(r.raw), "\"");
  CHECK(r.status == 200);
  CHECK(r.body.find("data: [DONE]") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Routes: upstream errors

TEST_CASE("upstream: route passes 429 and 500 answers through unchanged") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml("/v1/chat/completions"));
  for (int status : {429, 500, 503}) {
    CAPTURE(status);
    const std::string req =
        post_request("/v1/chat/completions?status=" + std::to_string(status), chat_body(3));
    Response direct = http(mock.port(), req);
    Response via = http(gw.port(), req);
    INFO("direct: \"", printable(direct.raw), "\"");
    INFO("via the gateway: \"", printable(via.raw), "\"");
    REQUIRE(direct.status == status);
    CHECK(via.status == status);
    CHECK(via.reason == direct.reason);
    CHECK(via.header("content-type") == "application/json");
    CHECK(via.header("retry-after") == direct.header("retry-after"));
    if (status == 429) CHECK(via.header("retry-after") == "1");
    CHECK_FALSE(via.has("x-accel-buffering"));
    CHECK(via.body == direct.body);
    CHECK(via.body == "{\"error\":{\"message\":\"mock status\",\"type\":\"mock\"}}");
    CHECK(read_metric(gw.port(), "ssegw_upstream_requests_total{code=\"" + std::to_string(status) +
                                     "\",upstream=\"llm\"}") == 1);
  }
  // The connection stays usable: a later request on it streams normally.
  Conn c(gw.port());
  Response a = c.request(post_request("/v1/chat/completions?status=429", chat_body(3)));
  CHECK(a.status == 429);
  Response b = c.request(post_request("/v1/chat/completions?tokens=2&interval_ms=1", chat_body(3)));
  CHECK(b.status == 200);
  CHECK(parse_sse(b.body).size() == 4);
}

// ---------------------------------------------------------------------------------------------
// Routes: truncation

TEST_CASE("upstream: a truncated SSE stream ends with an upstream_disconnected error event") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml("/v1/chat/completions") +
             route_yaml("/v1/messages") + route_yaml("/v1/responses"));
  struct Case {
    std::string path, body;
  };
  for (const Case& c :
       {Case{"/v1/chat/completions", chat_body(4)}, Case{"/v1/messages", "{\"stream\":true}"},
        Case{"/v1/responses", "{\"input\":\"x\"}"}}) {
    CAPTURE(c.path);
    const std::string req = post_request(c.path + "?tokens=10&interval_ms=5&drop_after=3", c.body);
    // Straight from the mock: 3 tokens, then the connection closes with no terminal chunk.
    SseStream direct = read_all(mock.port(), req);
    INFO("direct: \"", printable(direct.wire()), "\"");
    REQUIRE(direct.head_received());
    CHECK_FALSE(direct.finished());
    CHECK(direct.body().find("tok2 ") != std::string::npos);
    CHECK(direct.body().find("tok3 ") == std::string::npos);
    // Through the gateway: the same bytes, one error event, then a clean end of the body.
    SseStream via =
        post_stream(gw.port(), c.path + "?tokens=10&interval_ms=5&drop_after=3", c.body);
    auto events = read_until_finished(via);
    INFO("via the gateway: \"", printable(via.wire()), "\"");
    CHECK(via.head().status == 200);
    CHECK(via.framing_error() == "");
    REQUIRE(via.body().size() > direct.body().size());
    CHECK(via.body().substr(0, direct.body().size()) == direct.body());
    check_truncation_notice(via.body().substr(direct.body().size()), kSseTruncated, "\n\n",
                            "disconnected");
    // An SSE client sees it as one error event.
    REQUIRE(!events.empty());
    CHECK(events.back().event == "error");
    CHECK(events.back().data.rfind("{\"error\":{\"type\":\"upstream_disconnected\"", 0) == 0);
  }
  CHECK(mock.stat("faulted") == 6);
}

TEST_CASE("upstream: a truncated NDJSON stream ends with an upstream_disconnected error line") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml("/api/chat"));
  const std::string target = "/api/chat?tokens=10&interval_ms=5&drop_after=2";
  const std::string req = post_request(target, "{\"model\":\"m\"}");
  SseStream direct = read_all(mock.port(), req);
  REQUIRE(direct.head_received());
  CHECK_FALSE(direct.finished());
  SseStream via = post_stream(gw.port(), target, "{\"model\":\"m\"}");
  read_until_finished(via);
  INFO("direct: \"", printable(direct.wire()), "\"");
  INFO("via the gateway: \"", printable(via.wire()), "\"");
  CHECK(via.head().status == 200);
  CHECK(via.head().header("content-type") == "application/x-ndjson");
  REQUIRE(via.body().size() > direct.body().size());
  CHECK(via.body().substr(0, direct.body().size()) == direct.body());
  CHECK(std::count(direct.body().begin(), direct.body().end(), '\n') == 2);
  check_truncation_notice(via.body().substr(direct.body().size()), kNdjsonTruncated, "\n",
                          "disconnected");
}

// ---------------------------------------------------------------------------------------------
// Routes: cancel

TEST_CASE("upstream: a client disconnect cancels the upstream while it is silent") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml("/v1/chat/completions"));
  // Three tokens, then the mock stalls for a minute: the close happens while the upstream is
  // silent, so only the gateway reading the client's EOF (not a failed write) can notice it, and
  // the mock seeing its request go within this test's timeouts shows that it did.
  SseStream s = post_stream(
      gw.port(), "/v1/chat/completions?tokens=100&interval_ms=10&stall_after=3&stall_ms=60000",
      chat_body(3));
  for (int i = 0; i < 3; ++i) s.expect_event();
  CHECK(mock.stat("tokens_sent") == 3);
  CHECK(mock.stat("active") == 1);
  const uint64_t closed_at = monotonic_ms();
  s.close();
  CHECK(mock.wait_stat("cancelled", 1) == 1);
  const long seen_at = mock.stat("last_cancel_at_ms");
  INFO("client closed at ", closed_at, " ms, the mock saw the upstream go at ", seen_at, " ms");
  CHECK(seen_at >= static_cast<long>(closed_at));
  CHECK(mock.stat("active") == 0);
  CHECK(mock.stat("completed") == 0);
  CHECK(mock.stat("tokens_sent") == 3);  // no write after the close was needed to notice it
  CHECK(wait_metric(gw.port(), "ssegw_upstream_cancelled_total{upstream=\"llm\"}", 1) == 1);
}

// ---------------------------------------------------------------------------------------------
// Routes: backpressure

namespace {

// Checks a complete chat answer of n padded tokens (token_bytes=8192): tok0xxx..., tok1xxx...,
// the finishing chunk, [DONE].
void check_padded_answer(const std::vector<SseEvent>& events, int n) {
  REQUIRE(events.size() == static_cast<size_t>(n) + 2);
  int bad = -1;
  for (int i = 0; i < n && bad < 0; ++i)
    if (events[i].data.find("\"content\":\"tok" + std::to_string(i) + "xxx") == std::string::npos)
      bad = i;
  CHECK_MESSAGE(bad == -1, "token ", bad,
                " is wrong: ", events[bad < 0 ? 0 : bad].data.substr(0, 200));
  CHECK(events.back().data == "[DONE]");
}

}  // namespace

TEST_CASE("upstream: a long fast stream reaches a client that reads it, whole") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml("/v1/chat/completions"));
  // 2000 tokens of 8 KiB as fast as the mock can (16 MB): more than the client and the kernel
  // take at once, so the gateway's backpressure pauses and resumes the upstream many times.
  SseStream s = post_stream(
      gw.port(), "/v1/chat/completions?tokens=2000&interval_ms=0&token_bytes=8192", chat_body(3));
  std::vector<SseEvent> events;
  try {
    events = read_until_finished(s, 30s);
  } catch (const std::exception& e) {
    FAIL_CHECK("the stream stopped: received ", s.body().size(),
               " body bytes in 8 s; mock "
               "tokens_sent ",
               mock.stat("tokens_sent"), ", blocked_now ", mock.stat("blocked_now"), "; ",
               std::string(e.what()).substr(0, 120));
    return;
  }
  CHECK(s.framing_error() == "");
  check_padded_answer(events, 2000);
  CHECK(mock.wait_stat("completed", 1) == 1);
}

TEST_CASE("upstream: a slow client makes the gateway stop reading the upstream, memory bounded") {
  MockLlm mock;
  Gateway gw(
      upstream_yaml(mock) + "routes:\n" +
      route_yaml("/v1/chat/completions", ", high_water_bytes: 16KiB, low_water_bytes: 4KiB"));
  const auto rss0 = read_metric(gw.port(), "process_resident_memory_bytes");
  REQUIRE(rss0);
  // 5000 tokens of 8 KiB, as fast as the mock can: about 41 MB in total. A gateway that kept
  // reading would hold most of it (the kernel's socket buffers take some 10 MB at most).
  constexpr int kTokens = 5000;
  SseStream s =
      post_stream(gw.port(), "/v1/chat/completions?tokens=5000&interval_ms=0&token_bytes=8192",
                  chat_body(3), "", /*rcvbuf=*/4096);
  s.wait_head();
  REQUIRE(s.head().status == 200);
  // The client reads nothing more. The mock gets blocked: its send queue passes 64 KiB. It may
  // be let go a few times while the buffers between it and the client fill up; then it stays.
  CHECK(mock.wait_stat("blocked_now", 1) == 1);
  long sent1 = -1;
  CHECK(wait_until(
      [&] {
        const long before = std::exchange(sent1, mock.stat("tokens_sent"));
        return before == sent1 && mock.stat("blocked_now") == 1;
      },
      20s, 200ms));
  const long blocked1 = mock.stat("blocked_ms");
  // The window is the point: for 600 ms the client reads nothing, and neither may the gateway.
  std::this_thread::sleep_for(600ms);
  const long sent2 = mock.stat("tokens_sent");
  const long blocked2 = mock.stat("blocked_ms");
  INFO("tokens sent: ", sent1, " then ", sent2, "; blocked_ms: ", blocked1, " then ", blocked2);
  CHECK(sent2 == sent1);  // the gateway reads nothing while its client does not
  CHECK(sent1 < kTokens / 2);
  CHECK(blocked2 - blocked1 >= 500);
  CHECK(mock.stat("blocked_now") == 1);
  CHECK(mock.stat("max_send_queue_bytes") > 64 * 1024);
  const auto rss1 = read_metric(gw.port(), "process_resident_memory_bytes");
  REQUIRE(rss1);
  INFO("gateway RSS: ", *rss0 / 1048576, " MiB before, ", *rss1 / 1048576, " MiB while blocked");
  CHECK(*rss1 - *rss0 < 16.0 * 1048576);

  // The client reads again: the gateway resumes and the whole answer arrives intact.
  const long sent_before = mock.stat("tokens_sent");
  std::vector<SseEvent> events;
  try {
    events = read_until_finished(s, 30s);
  } catch (const std::exception& e) {
    FAIL_CHECK("the stream did not complete once the client read again: received ", s.body().size(),
               " bytes; mock tokens_sent ", sent_before,
               " when the client "
               "started reading, ",
               mock.stat("tokens_sent"), " now; blocked_now ", mock.stat("blocked_now"));
    return;
  }
  CHECK(s.framing_error() == "");
  check_padded_answer(events, kTokens);
  CHECK(mock.wait_stat("completed", 1) == 1);
  CHECK(mock.stat("tokens_sent") == kTokens);
  const auto rss2 = read_metric(gw.port(), "process_resident_memory_bytes");
  REQUIRE(rss2);
  // Under ASan freed memory waits in the quarantine, so RSS says nothing there; the mock's
  // blocked sender above is the proof in every build.
  if (!gateway_sanitized()) CHECK(*rss2 - *rss0 < 16.0 * 1048576);
}

// ---------------------------------------------------------------------------------------------
// Routes: timeouts and keep-alive comments

TEST_CASE("upstream: first_byte_timeout answers 504 upstream_timeout") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock, ", first_byte_timeout: 300ms") + "routes:\n" +
             route_yaml("/v1/chat/completions"));
  auto t0 = Clock::now();
  Response r =
      http(gw.port(), post_request("/v1/chat/completions?head_delay_ms=3000", chat_body(3)));
  auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0);
  INFO("answered after ", took.count(), " ms");
  // Before the mock's head (3 s), as the code says; not before first_byte_timeout either.
  check_upstream_error(r, 504, "upstream_timeout", "first_byte_timeout");
  CHECK(took >= 280ms);
  // The gateway gave up on the upstream request: the mock sees it go.
  CHECK(mock.wait_stat("cancelled", 1) == 1);
  CHECK(read_metric(
            gw.port(),
            "ssegw_upstream_requests_total{code=\"first_byte_timeout\",upstream=\"llm\"}") == 1);
}

// A model that thinks longer than limits.owner_timeout before its first byte: the route's own
// first_byte_timeout decides, not the answer timeout meant for channel owners (it answered 503
// owner_timeout before), over HTTP/1.1 and, on the same gateway, for a keep-alive request after it.
TEST_CASE("upstream: a route waits past limits.owner_timeout for a slow first byte") {
  MockLlm mock;
  Gateway gw("limits: { owner_timeout: 1s }\n" + upstream_yaml(mock) + "routes:\n" +
             route_yaml("/v1/chat/completions"));
  auto t0 = Clock::now();
  Response r =
      http(gw.port(), post_request("/v1/chat/completions?head_delay_ms=2000", chat_body(3)));
  auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0);
  INFO("answered after ", took.count(), " ms");
  CHECK(r.status == 200);
  CHECK(took >= 1900ms);
  CHECK(r.body.find("data: [DONE]") != std::string::npos);
  CHECK(read_metric(gw.port(), "ssegw_owner_timeouts_total") == 0);
}

TEST_CASE("upstream: over HTTP/2 too, a route waits past limits.owner_timeout") {
  MockLlm mock;
  Gateway gw("limits: { owner_timeout: 1s }\n" + upstream_yaml(mock) + "routes:\n" +
             route_yaml("/v1/chat/completions"));
  H2Client client(gw.port());
  int32_t id = client.submit("POST", "/v1/chat/completions?head_delay_ms=2000",
                             {{"content-type", "application/json"}}, chat_body(3));
  H2Client::Stream& s = client.finish(id, 10s);
  CHECK(s.status == 200);
  CHECK(s.body.find("data: [DONE]") != std::string::npos);
  CHECK(read_metric(gw.port(), "ssegw_owner_timeouts_total") == 0);
}

TEST_CASE("upstream: an upstream that refuses the connection answers 502 upstream_unavailable") {
  const ReservedPort down;  // bound, never listening: connections to it are refused
  // A refusal is answered at once: waiting for connect_timeout (a minute) would be a 504, after
  // this request's own timeout.
  Gateway gw("upstreams:\n  llm: {url: \"http://127.0.0.1:" + std::to_string(down.port()) +
             "\", connect_timeout: 60s}\nroutes:\n" + route_yaml("/v1/chat/completions"));
  Response r = http(gw.port(), post_request("/v1/chat/completions", chat_body(3)));
  check_upstream_error(r, 502, "upstream_unavailable", "(connect)");
  CHECK(read_metric(gw.port(),
                    "ssegw_upstream_requests_total{code=\"connect\",upstream=\"llm\"}") == 1);
}

TEST_CASE("upstream: connect_timeout answers 504 upstream_timeout") {
  // A listener with a full accept queue that never accepts: further SYNs are dropped, so a
  // connect neither succeeds nor fails until the gateway's connect_timeout.
  const LoopbackSocket listener = bind_loopback(/*backlog=*/0);
  Fd filler = connect_to(listener.port);  // completed: it fills the one-entry accept queue
  Fd dropped(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(listener.port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::connect(dropped.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  Gateway gw("upstreams:\n  llm: {url: \"http://127.0.0.1:" + std::to_string(listener.port) +
             "\", connect_timeout: 300ms}\nroutes:\n" + route_yaml("/v1/chat/completions"));
  auto t0 = Clock::now();
  Response r = http(gw.port(), post_request("/v1/chat/completions", chat_body(3)));
  auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0);
  INFO("answered after ", took.count(), " ms");
  check_upstream_error(r, 504, "upstream_timeout", "connect_timeout");
  CHECK(took >= 280ms);
}

TEST_CASE("upstream: idle_timeout after the head ends the stream with an error event") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock, ", idle_timeout: 300ms") + "routes:\n" +
             route_yaml("/v1/chat/completions"));
  // Two tokens, then 5 s of silence.
  const std::string target = "/v1/chat/completions?tokens=5&interval_ms=5";
  SseStream direct = read_all(mock.port(), post_request(target + "&drop_after=2", chat_body(3)));
  REQUIRE(direct.head_received());
  const auto t0 = Clock::now();  // before the request: no silence can have started earlier
  SseStream via = post_stream(gw.port(), target + "&stall_after=2&stall_ms=5000", chat_body(3));
  for (int i = 0; i < 2; ++i) via.expect_event();
  read_until_finished(via);
  auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0);
  INFO("via the gateway: \"", printable(via.wire()), "\"; the error came after ", took.count(),
       " ms");
  // Not before idle_timeout; the message below says it was that, not the end of the mock's 5 s
  // silence.
  CHECK(took >= 280ms);
  REQUIRE(via.body().size() > direct.body().size());
  CHECK(via.body().substr(0, direct.body().size()) == direct.body());
  check_truncation_notice(via.body().substr(direct.body().size()), kSseTruncated, "\n\n",
                          "idle_timeout");
  CHECK(mock.wait_stat("cancelled", 1) == 1);  // the gateway closed the silent upstream
}

TEST_CASE("upstream: keep-alive comments flow while the upstream is silent") {
  MockLlm mock;
  Gateway gw("heartbeat: 1s\n" + upstream_yaml(mock) + "routes:\n" +
             route_yaml("/v1/chat/completions"));
  Response direct =
      http(mock.port(), post_request("/v1/chat/completions?tokens=3&interval_ms=5", chat_body(3)));
  REQUIRE(direct.status == 200);
  // The first token, then 2.5 s of silence (stall_after defaults to 1), then the rest.
  const auto t0 = Clock::now();
  SseStream via = post_stream(
      gw.port(), "/v1/chat/completions?tokens=3&interval_ms=5&stall_ms=2500", chat_body(3));
  SseEvent first = via.expect_event();
  CHECK(json_string(first.data, "content") == "tok0 ");
  read_until_finished(via);
  // The whole answer took this long, the silence no longer: one comment per second of it at most.
  const auto took = Clock::now() - t0;
  INFO("via the gateway: \"", printable(via.body()), "\"");
  CHECK(via.comments() >= 1);
  CHECK(via.comments() <= took / 1s + 1);
  // The comments sit between events; without them the bytes are the upstream's.
  std::string stripped = via.body();
  for (size_t p; (p = stripped.find("\n\n:\n\n")) != std::string::npos;) stripped.erase(p + 2, 3);
  CHECK(stripped == direct.body);
  // The first comment came in the silence, right after the first event.
  const size_t first_end = via.body().find("\n\n") + 2;
  CHECK(via.body().compare(first_end, 3, ":\n\n") == 0);
}

TEST_CASE("upstream: metrics count requests, first bytes, cancels and tokens") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml("/v1/chat/completions") +
             route_yaml("/v1/messages") + route_yaml("/v1/responses") + route_yaml("/api/chat"));
  const uint16_t port = gw.port();
  struct Req {
    std::string target, body;
    int prompt, completion;
  };
  // Bodies of 5, 1, 2 and 3 words; 7, 4, 6 and 5 tokens.
  const std::vector<Req> reqs = {
      {"/v1/chat/completions?tokens=7&interval_ms=1", chat_body(5), 5, 7},
      {"/v1/messages?tokens=4&interval_ms=1", "{\"stream\":true}", 1, 4},
      {"/v1/responses?tokens=6&interval_ms=1", "{\"input\": \"x\"}", 2, 6},
      {"/api/chat?tokens=5&interval_ms=1", "{\"model\": \"m\", \"x\":1}", 3, 5},
  };
  int prompt = 0, completion = 0;
  for (const Req& r : reqs) {
    Response a = http(port, post_request(r.target, r.body));
    CHECK(a.status == 200);
    prompt += r.prompt;
    completion += r.completion;
  }
  CHECK(mock.stat("tokens_sent") == completion);
  Response m = http_get(port, "/metrics");
  INFO("metrics:\n", m.body);
  CHECK(metric_value(m.body, "ssegw_upstream_requests_total{code=\"200\",upstream=\"llm\"}") == 4);
  CHECK(metric_value(m.body, "ssegw_upstream_time_to_first_byte_seconds_count{upstream=\"llm\"}") ==
        4);
  CHECK(metric_value(m.body, "ssegw_upstream_inter_chunk_seconds_count{upstream=\"llm\"}") > 0);
  CHECK(metric_value(m.body, "ssegw_upstream_cancelled_total{upstream=\"llm\"}") == 0);
  // Each dialect's own counts, under its route, reported by the upstream.
  for (const Req& r : reqs) {
    std::string route = r.target.substr(0, r.target.find('?'));
    std::string labels = "key=\"anonymous\",kind=\"%\",route=\"" + route +
                         "\",source=\"reported\",upstream=\"llm\"}";
    auto series = [&](const char* kind) {
      std::string l = labels;
      l.replace(l.find('%'), 1, kind);
      return "ssegw_llm_tokens_total{" + l;
    };
    INFO("route ", route);
    CHECK(metric_value(m.body, series("prompt")) == r.prompt);
    CHECK(metric_value(m.body, series("completion")) == r.completion);
    CHECK(metric_value(m.body,
                       "ssegw_llm_requests_total{key=\"anonymous\",outcome=\"completed\","
                       "route=\"" +
                           route + "\",upstream=\"llm\"}") == 1);
  }
  CHECK(prompt == 11);
  CHECK(completion == 22);
  // An error answer counts under its code and as an upstream_error, and adds no tokens.
  Response e = http(port, post_request("/v1/chat/completions?status=500", chat_body(3)));
  CHECK(e.status == 500);
  Response m2 = http_get(port, "/metrics");
  CHECK(metric_value(m2.body, "ssegw_upstream_requests_total{code=\"500\",upstream=\"llm\"}") == 1);
  CHECK(metric_value(m2.body, "ssegw_upstream_requests_total{code=\"200\",upstream=\"llm\"}") == 4);
  CHECK(metric_value(m2.body,
                     "ssegw_llm_requests_total{key=\"anonymous\",outcome=\"upstream_error\","
                     "route=\"/v1/chat/completions\",upstream=\"llm\"}") == 1);
  CHECK(metric_value(m2.body,
                     "ssegw_llm_tokens_total{key=\"anonymous\",kind=\"completion\","
                     "route=\"/v1/chat/completions\",source=\"reported\","
                     "upstream=\"llm\"}") == 7);
}

// ---------------------------------------------------------------------------------------------
// Sources

namespace {

std::string source_yaml(const MockLlm& mock, const std::string& path,
                        const std::string& idle_close = "1s") {
  return upstream_yaml(mock) + "sources:\n  - {channels: \"feed.*\", upstream: llm, path: \"" +
         path + "\", idle_close: " + idle_close + ", reconnect_min: 50ms, reconnect_max: 200ms}\n";
}

// The n of a feed event's data {"feed":"...","n":N}; -1 when absent.
long feed_n(const SseEvent& e) {
  return json_number(e.data, "n").value_or(-1);
}

void check_fanout_from_one_upstream(int workers, size_t subscribers) {
  REQUIRE(raise_fd_limit() >= subscribers + 100);
  MockLlm mock;
  Gateway gw("workers: " + std::to_string(workers) + "\n" +
             source_yaml(mock, "/feed/{channel}?interval_ms=20"));
  const uint16_t port = gw.port();
  std::vector<std::unique_ptr<SseStream>> subs;
  std::vector<SseStream*> all;
  for (size_t i = 0; i < subscribers; ++i) {
    subs.push_back(std::make_unique<SseStream>(port, "feed.a"));
    all.push_back(subs.back().get());
  }
  REQUIRE(pump_all(
      all,
      [&] {
        for (auto* s : all)
          if (s->pending().empty()) return false;
        return true;
      },
      20s));
  // Everybody has an event; from the latest first one, collect 10 more.
  long start = 0;
  for (auto* s : all) start = std::max(start, feed_n(s->pending().front()));
  const long until = start + 10;
  bool done = pump_all(
      all,
      [&] {
        for (auto* s : all)
          if (s->closed() || s->pending().empty() || feed_n(s->pending().back()) < until)
            return false;
        return true;
      },
      20s);
  CHECK(done);

  // Each subscriber saw consecutive n values in order, and the same event (same gateway id)
  // for each n as every other subscriber.
  std::map<long, std::string> id_of_n;
  size_t ok = 0;
  bool reported = false;
  for (size_t k = 0; k < subs.size(); ++k) {
    SseStream& s = *subs[k];
    bool good = s.head().status == 200 && !s.pending().empty();
    long prev = -1;
    for (const SseEvent& e : s.pending()) {
      long n = feed_n(e);
      if (e.event != "tick" || !e.id || (prev >= 0 && n != prev + 1) ||
          e.data != "{\"feed\":\"feed.a\",\"n\":" + std::to_string(n) + "}")
        good = false;
      auto [it, fresh] = id_of_n.emplace(n, e.id.value_or(""));
      if (!fresh && it->second != e.id.value_or("")) good = false;
      prev = n;
    }
    if (good) {
      ++ok;
    } else if (!reported) {
      reported = true;
      std::string got;
      for (const SseEvent& e : s.pending())
        got += e.id.value_or("-") + " " + e.event + " " + e.data + "\n";
      INFO("subscriber ", k, " got:\n", got);
      CHECK(good);
    }
  }
  CHECK(ok == subscribers);
  // One upstream request for all of them.
  std::string stats = mock.stats();
  INFO("mock stats: ", stats);
  CHECK(json_number(stats, "feeds_active") == 1);
  CHECK(json_number(stats, "/feed/feed.a") == 1);
  CHECK(json_number(stats, "requests") == 1);
  CHECK(json_number(stats, "connections_total") <= 2);  // the gateway's, and this stats request
}

}  // namespace

TEST_CASE("upstream: a source feeds 500 subscribers from exactly one upstream request") {
  check_fanout_from_one_upstream(1, 500);
}

TEST_CASE("upstream: a source on workers: 2 feeds every subscriber from one upstream request") {
  check_fanout_from_one_upstream(2, 100);
}

TEST_CASE("upstream: a source reconnects with Last-Event-ID, no gap and no duplicate") {
  MockLlm mock;
  // The mock drops the feed after every 5 events; the source resumes after the last id it saw.
  Gateway gw(source_yaml(mock, "/feed/{channel}?drop_after=5&interval_ms=20"));
  SseStream s(gw.port(), "feed.r");
  s.expect_ok();
  std::vector<long> ns;
  std::set<std::string> ids;
  while (ns.size() < 23) {
    SseEvent e = s.expect_event(3s);
    CHECK(e.event == "tick");
    ns.push_back(feed_n(e));
    CHECK(ids.insert(e.id.value_or("")).second);
  }
  std::string seq;
  for (long n : ns) seq += std::to_string(n) + " ";
  INFO("n values: ", seq);
  for (size_t i = 0; i < ns.size(); ++i) CHECK(ns[i] == static_cast<long>(i) + 1);
  // 23 events = 4 drops and 5 upstream requests.
  CHECK(mock.stat("/feed/feed.r") >= 5);
  CHECK(mock.stat("faulted") >= 4);
  auto reconnects = read_metric(gw.port(), "ssegw_upstream_reconnects_total{upstream=\"llm\"}");
  CHECK(reconnects >= 4);
  // Never two at once (it may be between two connections right now: the feed drops every 5).
  CHECK(mock.stat("feeds_active") <= 1);
}

TEST_CASE("upstream: a source waits the upstream's retry: before reconnecting") {
  MockLlm mock;
  // retry: 800 from the upstream; our own backoff (50-200 ms) would reconnect much sooner.
  Gateway gw(source_yaml(mock, "/feed/{channel}?drop_after=2&interval_ms=10&retry_ms=800"));
  const auto t0 = Clock::now();  // before the subscribe, so before the source starts and drops
  SseStream s(gw.port(), "feed.retry");
  s.expect_ok();
  CHECK(feed_n(s.expect_event()) == 1);
  CHECK(feed_n(s.expect_event()) == 2);
  SseEvent third = s.expect_event();
  auto waited = std::chrono::duration_cast<Ms>(Clock::now() - t0);
  INFO("the third event came ", waited.count(), " ms after the subscribe");
  CHECK(feed_n(third) == 3);  // resumed with Last-Event-ID: 2
  CHECK(waited >= 750ms);     // the upstream's 800 ms, not the source's own 50-200 ms
}

TEST_CASE("upstream: routes reuse keep-alive upstream connections") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + "routes:\n" + route_yaml("/v1/chat/completions"));
  // The mock counts the test's own /mock/stats connections too: one per stat() call.
  const long before = mock.stat("connections_total");
  for (int i = 0; i < 5; ++i) {
    Response r = http(gw.port(), post_request("/v1/chat/completions?tokens=2&interval_ms=0",
                                              "{\"stream\":true}"));
    REQUIRE(r.status == 200);
    CHECK(r.body.ends_with("data: [DONE]\n\n"));
  }
  // Five answers, one after the other, over one pooled upstream connection.
  const long after = mock.stat("connections_total");
  CHECK(after - before - 1 == 1);
  CHECK(mock.stat("completed") == 5);
}

TEST_CASE("upstream: a source closes its upstream idle_close after the last subscriber leaves") {
  MockLlm mock;
  Gateway gw(source_yaml(mock, "/feed/{channel}?interval_ms=20", "2s"));
  {
    SseStream s(gw.port(), "feed.i");
    s.expect_ok();
    s.expect_event();
  }
  // The gap is the point: 300 ms without a subscriber, well within idle_close (2 s), over which
  // the same upstream request goes on.
  std::this_thread::sleep_for(300ms);
  CHECK(mock.stat("feeds_active") == 1);
  long last_n = 0;
  uint64_t left_ms = 0;
  {
    SseStream s(gw.port(), "feed.i");
    s.expect_ok();
    last_n = feed_n(s.expect_event());
    left_ms = monotonic_ms();  // just before the close: the gateway sees it later
  }
  CHECK(last_n > 10);  // the feed ran on through the first gap (20 ms per event)
  CHECK(mock.stat("/feed/feed.i") == 1);
  // Gone idle_close after the last subscriber left, and not before (the mock's clock is the
  // test's, CLOCK_MONOTONIC).
  CHECK(mock.wait_stat("feeds_active", 0) == 0);
  const long after = mock.stat("last_cancel_at_ms") - static_cast<long>(left_ms);
  INFO("the upstream closed ", after, " ms after the last subscriber left");
  CHECK(after >= 1900);
  CHECK(mock.stat("cancelled") == 1);
  CHECK(mock.stat("/feed/feed.i") == 1);
}

// ---------------------------------------------------------------------------------------------
// Resumable generations

namespace {

std::string resumable_yaml(const MockLlm& mock, const std::string& route_extra, int workers = 1) {
  return "workers: " + std::to_string(workers) + "\n" + upstream_yaml(mock) + "routes:\n" +
         route_yaml("/v1/chat/completions", ", resumable: true" + route_extra);
}

// Checks the head of a generated answer and returns its channel.
std::string generated_channel(const Response& head) {
  INFO("head: \"", printable(head.head), "\"");
  CHECK(head.status == 200);
  CHECK(head.header("content-type") == "text/event-stream; charset=utf-8");
  std::string ch = head.header("sse-channel");
  CHECK(ch.size() == 36);
  CHECK(ch.rfind("gen-", 0) == 0);
  return ch;
}

// The delta text of chat events; checks ids strictly increase and appends them to ids.
std::string delta_text(const std::vector<SseEvent>& events, std::vector<std::string>& ids) {
  std::string text;
  for (const SseEvent& e : events) {
    CHECK(e.id);
    if (e.id) {
      if (!ids.empty()) CHECK(parse_id(ids.back()) < parse_id(*e.id));
      ids.push_back(*e.id);
    }
    if (auto c = json_string(e.data, "content")) text += *c;
  }
  return text;
}

void check_resume(int workers) {
  MockLlm mock;
  Gateway gw(resumable_yaml(mock, ", on_disconnect: continue", workers));
  constexpr int kTokens = 30;
  SseStream first =
      post_stream(gw.port(), "/v1/chat/completions?tokens=30&interval_ms=15", chat_body(3));
  first.wait_head();
  const std::string ch = generated_channel(first.head());
  std::vector<SseEvent> part1;
  for (int i = 0; i < 10; ++i) part1.push_back(first.expect_event());
  first.close();
  // Tokens keep coming while the client is away.
  const long sent_at_close = mock.stat("tokens_sent");
  const long want_sent = std::min<long>(sent_at_close + 3, kTokens);
  CHECK(mock.wait_stat_at_least("tokens_sent", want_sent) >= want_sent);
  std::vector<std::string> ids;
  std::string text = delta_text(part1, ids);
  CHECK(text == full_answer(10));

  SseStream second(gw.port(), ch, {.last_event_id = ids.back()});
  second.expect_ok();
  std::vector<SseEvent> part2 = read_until_finished(second);
  INFO("resumed stream: \"", printable(second.body()), "\"");
  REQUIRE(!part2.empty());
  text += delta_text(part2, ids);
  CHECK(text == full_answer(kTokens));
  CHECK(part2.back().data == "[DONE]");
  CHECK(second.body().size() >= 14);
  CHECK(second.body().substr(second.body().size() - 14) == "data: [DONE]\n\n");
  CHECK(part2.size() == kTokens - 10 + 2);  // the rest, the finishing chunk, [DONE]

  // The generation is over: resuming at its final id gets 204.
  Response done = http(gw.port(), get_request("/v1/channels/" + ch + "/events",
                                              "Last-Event-ID: " + ids.back() + "\r\n"));
  CHECK(done.status == 204);
  CHECK(done.body.empty());
  // The upstream ran to the end with nobody connected.
  CHECK(mock.wait_stat("completed", 1) == 1);
  CHECK(mock.stat("cancelled") == 0);
  CHECK(mock.stat("tokens_sent") == kTokens);
}

}  // namespace

TEST_CASE("upstream: a resumable answer resumed with Last-Event-ID is the full answer exactly") {
  check_resume(1);
}

TEST_CASE("upstream: a resumable answer resumes on workers: 2") {
  check_resume(2);
}

TEST_CASE("upstream: a resumable answer streams ids, every event recorded in its channel") {
  MockLlm mock;
  Gateway gw(resumable_yaml(mock, ""));
  SseStream s = post_stream(gw.port(), "/v1/chat/completions?tokens=5&interval_ms=5", chat_body(3));
  std::vector<SseEvent> events = read_until_finished(s);
  const std::string ch = generated_channel(s.head());
  REQUIRE(events.size() == 7);
  std::vector<std::string> ids;
  CHECK(delta_text(events, ids) == full_answer(5));
  // The frames are the channel's: each "id: <id>\ndata: <upstream data>\n\n".
  Response direct =
      http(mock.port(), post_request("/v1/chat/completions?tokens=5&interval_ms=5", chat_body(3)));
  auto upstream_events = parse_sse(direct.body);
  REQUIRE(upstream_events.size() == events.size());
  std::string want;
  for (size_t i = 0; i < events.size(); ++i)
    want += sse_frame(ids[i], upstream_events[i].data, upstream_events[i].event);
  CHECK(s.body() == want);
  // The channel holds the same, from the start, for a subscriber without Last-Event-ID.
  SseStream again(gw.port(), ch);
  again.expect_ok();
  std::vector<SseEvent> replayed = read_until_finished(again);
  std::vector<std::string> ids2;
  CHECK(delta_text(replayed, ids2) == full_answer(5));
  CHECK(ids2 == ids);
}

TEST_CASE("upstream: a resumable route with on_disconnect cancel stops the upstream") {
  MockLlm mock;
  Gateway gw(resumable_yaml(mock, ""));
  SseStream s =
      post_stream(gw.port(), "/v1/chat/completions?tokens=100&interval_ms=20", chat_body(3));
  s.wait_head();
  const std::string ch = generated_channel(s.head());
  std::vector<SseEvent> part1;
  for (int i = 0; i < 3; ++i) part1.push_back(s.expect_event());
  s.close();
  CHECK(mock.wait_stat("cancelled", 1) == 1);
  CHECK(mock.stat("completed") == 0);
  CHECK(wait_metric(gw.port(), "ssegw_upstream_cancelled_total{upstream=\"llm\"}", 1) == 1);
  // The channel ends with an error event; a resume gets what was recorded after the last id
  // read, then that error, then the end of the stream.
  std::vector<std::string> ids;
  delta_text(part1, ids);
  SseStream resumed(gw.port(), ch, {.last_event_id = ids.back()});
  resumed.expect_ok();
  std::vector<SseEvent> rest = read_until_finished(resumed);
  INFO("resumed: \"", printable(resumed.body()), "\"");
  REQUIRE(!rest.empty());
  const SseEvent& last = rest.back();
  CHECK(last.event == "error");
  CHECK(last.data.rfind("{\"error\":{\"type\":\"cancelled\"", 0) == 0);
}

TEST_CASE("upstream: Prefer respond-async answers 202 and the channel gets the whole answer") {
  MockLlm mock;
  Gateway gw(resumable_yaml(mock, ""));
  // The answer stops for 1.5 s after its third token: the 202 comes at once, not after it.
  Response r =
      http(gw.port(), post_request("/v1/chat/completions?tokens=12&interval_ms=20&stall_after=3&"
                                   "stall_ms=1500",
                                   chat_body(3), "Prefer: respond-async\r\n"));
  INFO("response: \"", printable(r.raw), "\"");
  CHECK(mock.stat("completed") == 0);
  CHECK(r.status == 202);
  CHECK(r.header("content-type") == "application/json");
  const std::string ch = r.header("sse-channel");
  CHECK(ch.rfind("gen-", 0) == 0);
  CHECK(r.body == "{\"channel\":\"" + ch + "\"}\n");
  // A subscriber without Last-Event-ID gets the answer from its start, live, and the end.
  SseStream s(gw.port(), ch);
  s.expect_ok();
  std::vector<SseEvent> events = read_until_finished(s);
  std::vector<std::string> ids;
  CHECK(delta_text(events, ids) == full_answer(12));
  REQUIRE(!events.empty());
  CHECK(events.back().data == "[DONE]");
  CHECK(mock.wait_stat("completed", 1) == 1);
  CHECK(mock.stat("cancelled") == 0);
}

TEST_CASE("upstream: SSE-Channel tees a proxied answer into a named channel") {
  MockLlm mock;
  Gateway gw(resumable_yaml(mock, ""));
  const std::string target = "/v1/chat/completions?tokens=6&interval_ms=5";
  Response direct = http(mock.port(), post_request(target, chat_body(3)));
  REQUIRE(direct.status == 200);
  const auto upstream_events = parse_sse(direct.body);
  REQUIRE(upstream_events.size() == 8);

  for (const std::string how : {"header", "query"}) {
    CAPTURE(how);
    const std::string ch = how == "header" ? "mychan" : "mychan2";
    SseStream watcher(gw.port(), ch);  // an EventSource opened before the POST
    watcher.expect_ok();
    Response r =
        how == "header"
            ? http(gw.port(), post_request(target, chat_body(3), "SSE-Channel: mychan\r\n"))
            : http(gw.port(), post_request(target + "&channel=mychan2", chat_body(3)));
    INFO("POST answer: \"", printable(r.raw), "\"");
    // The POST client gets the upstream's own bytes, plus the channel name.
    CHECK(r.status == 200);
    CHECK(r.header("sse-channel") == ch);
    CHECK(r.header("content-type") == "text/event-stream");
    CHECK(r.body == direct.body);
    // The watcher gets every upstream event, with the channel's ids.
    std::vector<std::string> ids;
    for (size_t i = 0; i < upstream_events.size(); ++i) {
      SseEvent e = watcher.expect_event();
      CHECK(e.data == upstream_events[i].data);
      CHECK(e.event == upstream_events[i].event);
      REQUIRE(e.id);
      if (!ids.empty()) CHECK(parse_id(ids.back()) < parse_id(*e.id));
      ids.push_back(*e.id);
    }
    // A tee does not finish the channel: the watcher stays subscribed.
    CHECK_FALSE(watcher.next_event(200ms));
    CHECK_FALSE(watcher.closed());
  }
  CHECK(mock.stat("completed") == 3);
}
