// Proxied routes over HTTP/2 (docs/protocol.md "HTTP/2", "Routes"): the streaming proxy, the
// cancel of the upstream when the client resets its stream, and a detached answer
// (Prefer: respond-async) followed on another stream of the same connection.
#include <string>

#include "tests/integration/checks.hpp"
#include "tests/integration/h2_client.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

std::string gateway_yaml(const MockLlm& mock, bool resumable = false) {
  return "upstreams:\n  llm: {url: \"" + mock.url() +
         "\"}\nroutes:\n  - {path: /v1/chat/completions, upstream: llm" +
         (resumable ? ", resumable: true" : "") + "}\n";
}

const std::string kChatBody =
    "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}";
const HeaderPairs kJson = {{"content-type", "application/json"}};

std::string header(const H2Client::Stream& s, const std::string& name) {
  for (const auto& [n, v] : s.headers)
    if (n == name) return v;
  return "";
}

}  // namespace

TEST_CASE("http2 routes: a proxied answer streams over a stream, as over HTTP/1.1") {
  MockLlm mock;
  Gateway gw(gateway_yaml(mock));
  Response h1 = http(gw.port(), post_request("/v1/chat/completions?tokens=3&interval_ms=1",
                                             kChatBody, "Content-Type: application/json\r\n"));
  REQUIRE(h1.status == 200);
  H2Client c(gw.port());
  H2Client::Stream& s =
      c.finish(c.submit("POST", "/v1/chat/completions?tokens=3&interval_ms=1", kJson, kChatBody));
  CHECK(s.status == 200);
  CHECK(header(s, "content-type") == h1.header("content-type"));
  CHECK(!s.reset);
  INFO("body: \"", printable(s.body), "\"");
  CHECK(s.body.ends_with("data: [DONE]\n\n"));
  for (int i = 0; i < 3; ++i)
    CHECK(s.body.find("\"content\":\"tok" + std::to_string(i) + " \"") != std::string::npos);
  // The same events as over HTTP/1.1, but for the ids and timestamps the mock makes per answer.
  CHECK(parse_sse(s.body).size() == parse_sse(h1.body).size());
  CHECK(mock.stat("completed") == 2);
}

TEST_CASE("http2 routes: RST_STREAM of a proxied answer cancels the upstream, not the others") {
  MockLlm mock;
  Gateway gw(gateway_yaml(mock));
  H2Client c(gw.port());
  int32_t sub = c.get("/v1/channels/side/events");
  // Three tokens, then the mock stalls: only the reset can end the upstream request in time.
  int32_t chat = c.submit(
      "POST", "/v1/chat/completions?tokens=100&interval_ms=10&stall_after=3&stall_ms=60000", kJson,
      kChatBody);
  REQUIRE(c.pump_until([&] { return c.stream(chat).events() >= 3; }));
  CHECK(mock.stat("active") == 1);
  c.reset(chat);
  CHECK(mock.wait_stat("cancelled", 1) == 1);
  CHECK(mock.stat("active") == 0);
  CHECK(mock.stat("completed") == 0);
  CHECK(wait_metric(gw.port(), "ssegw_upstream_cancelled_total{upstream=\"llm\"}", 1) == 1);
  // The subscription on the same connection goes on.
  std::string id = publish(gw.port(), "side", "still here");
  const std::string expected = "retry: 2000\n\n" + sse_frame(id, "still here");
  REQUIRE(c.pump_until([&] { return c.stream(sub).body.size() >= expected.size(); }));
  CHECK(c.stream(sub).body == expected);
  CHECK(!c.stream(sub).closed);
}

TEST_CASE("http2 routes: Prefer: respond-async, then the generation on another stream") {
  MockLlm mock;
  Gateway gw(gateway_yaml(mock, /*resumable=*/true));
  H2Client c(gw.port());
  HeaderPairs headers = kJson;
  headers.emplace_back("prefer", "respond-async");
  H2Client::Stream& accepted =
      c.finish(c.submit("POST", "/v1/chat/completions?tokens=3&interval_ms=5", headers, kChatBody));
  CHECK(accepted.status == 202);
  std::string channel = header(accepted, "sse-channel");
  REQUIRE(channel.rfind("gen-", 0) == 0);
  CHECK(accepted.body == "{\"channel\":\"" + channel + "\"}\n");
  // The generation's channel replays from its start and ends with the answer (END_STREAM).
  H2Client::Stream& gen = c.finish(c.get("/v1/channels/" + channel + "/events"));
  CHECK(gen.status == 200);
  CHECK(!gen.reset);
  INFO("body: \"", printable(gen.body), "\"");
  for (int i = 0; i < 3; ++i)
    CHECK(gen.body.find("tok" + std::to_string(i) + " ") != std::string::npos);
}

TEST_CASE("http2 routes: DELETE /v1/generations/{gen} over a stream stops the generation") {
  MockLlm mock;
  Gateway gw(gateway_yaml(mock, /*resumable=*/true));
  H2Client c(gw.port());
  HeaderPairs headers = kJson;
  headers.emplace_back("prefer", "respond-async");
  H2Client::Stream& accepted = c.finish(
      c.submit("POST", "/v1/chat/completions?tokens=1000&interval_ms=20", headers, kChatBody));
  REQUIRE(accepted.status == 202);
  const std::string gen = header(accepted, "sse-channel");
  int32_t follow = c.get("/v1/channels/" + gen + "/events");
  REQUIRE(c.pump_until([&] { return c.stream(follow).events() >= 2; }));
  H2Client::Stream& cancelled = c.finish(c.submit("DELETE", "/v1/generations/" + gen));
  CHECK(cancelled.status == 202);
  CHECK(cancelled.body == "{\"channel\":\"" + gen + "\"}\n");
  CHECK(mock.wait_stat("cancelled", 1) == 1);
  // The follower's stream ends cleanly with the generation.
  H2Client::Stream& f = c.finish(follow);
  CHECK(!f.reset);
  CHECK(read_metric(gw.port(), "ssegw_generations_cancelled_total") == 1);
}
