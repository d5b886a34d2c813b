// Usage accounting (docs/protocol.md "Usage", docs/operations.md "Usage records"): the counts
// each provider format reports, the estimate when it reports none, the include_usage round trip,
// the usage record's log line and series, trace context, and the latency histograms. Each test
// runs its own ssegw-mock-llm and ssegw on port 0.
//
// The mock's default answer of n tokens is "tok0 ", "tok1 ", ...: 5 characters each while n <= 10,
// so the estimate of n tokens is ceil(5n / 4). Its prompt count is the number of
// whitespace-separated words of the request body.
#include <cmath>
#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

const std::string kRoutes =
    "routes:\n"
    "  - {path: /v1/chat/completions, upstream: llm}\n"
    "  - {path: /v1/responses, upstream: llm}\n"
    "  - {path: /v1/messages, upstream: llm}\n"
    "  - {path: /api/chat, upstream: llm}\n";

std::string upstream_yaml(const MockLlm& mock) {
  return "upstreams:\n  llm: {url: \"" + mock.url() + "\"}\n";
}

// A chat body of 5 words (the mock's prompt count); the gateway's estimate of a prompt is the
// body's bytes / 4, rounded up.
const std::string kChatBody =
    R"({"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"one two three four five"}]})";

long estimate(const std::string& body) {
  return static_cast<long>((body.size() + 3) / 4);
}

// ssegw_llm_tokens_total of one route, kind and source (key anonymous, upstream llm).
std::string tokens_series(const std::string& route, const std::string& kind,
                          const std::string& source, const std::string& key = "anonymous",
                          const std::string& upstream = "llm") {
  return "ssegw_llm_tokens_total{key=\"" + key + "\",kind=\"" + kind + "\",route=\"" + route +
         "\",source=\"" + source + "\",upstream=\"" + upstream + "\"}";
}

std::string requests_series(const std::string& route, const std::string& outcome,
                            const std::string& key = "anonymous",
                            const std::string& upstream = "llm") {
  return "ssegw_llm_requests_total{key=\"" + key + "\",outcome=\"" + outcome + "\",route=\"" +
         route + "\",upstream=\"" + upstream + "\"}";
}

}  // namespace

TEST_CASE("usage: estimated from the content, per format, when the upstream reports no counts") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + kRoutes);
  struct Case {
    std::string route, body;
  };
  // 7 tokens of 5 characters: ceil(35 / 4) = 9 completion tokens each.
  const std::vector<Case> cases = {
      {"/v1/chat/completions", kChatBody},
      {"/v1/responses", R"({"model":"m","input":"abcdefghi"})"},
      {"/v1/messages", R"({"stream":true,"messages":[{"role":"user","content":"abcd"}]})"},
      {"/api/chat", R"({"model":"m","messages":[{"role":"user","content":"abcde"}]})"},
  };
  for (const Case& c : cases) {
    INFO("route ", c.route);
    Response r =
        http(gw.port(), post_request(c.route + "?tokens=7&interval_ms=1&no_usage=1", c.body));
    CHECK(r.status == 200);
    CHECK(wait_metric(gw.port(), requests_series(c.route, "completed"), 1) == 1);
    CHECK(read_metric(gw.port(), tokens_series(c.route, "completion", "estimated")) == 9);
    CHECK(read_metric(gw.port(), tokens_series(c.route, "prompt", "estimated")) ==
          estimate(c.body));
    CHECK_FALSE(read_metric(gw.port(), tokens_series(c.route, "completion", "reported")));
  }
}

TEST_CASE("usage: a client that leaves is charged what it was sent, as an estimate") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + kRoutes);
  // Three tokens, then the upstream stalls; the client reads them and hangs up.
  SseStream s = SseStream::raw(
      gw.port(),
      post_request("/v1/chat/completions?tokens=20&interval_ms=1&stall_after=3&stall_ms=60000",
                   kChatBody));
  CHECK(s.wait_head().status == 200);
  for (int i = 0; i < 3; ++i) s.expect_event();
  s.close();
  const std::string route = "/v1/chat/completions";
  CHECK(wait_metric(gw.port(), requests_series(route, "cancelled"), 1) == 1);
  CHECK(read_metric(gw.port(), tokens_series(route, "completion", "estimated")) == 4);  // 15 / 4
  // OpenAI reports the prompt only in the last chunk, which never came.
  CHECK(read_metric(gw.port(), tokens_series(route, "prompt", "estimated")) == estimate(kChatBody));
  CHECK(mock.wait_stat("cancelled", 1) == 1);
}

TEST_CASE("usage: a truncated Anthropic answer keeps its reported prompt, estimates the rest") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + kRoutes);
  // message_start reports the prompt (3 words); the connection drops after 4 tokens.
  SseStream s = SseStream::raw(gw.port(),
                               post_request("/v1/messages?tokens=10&interval_ms=1&drop_after=4",
                                            R"({"stream":true,"messages":[{"content":"a b c"}]})"));
  std::vector<SseEvent> events = read_until_finished(s);
  REQUIRE_FALSE(events.empty());
  CHECK(events.back().event == "error");  // the gateway's own end of a truncated answer
  const std::string route = "/v1/messages";
  CHECK(wait_metric(gw.port(), requests_series(route, "truncated"), 1) == 1);
  CHECK(read_metric(gw.port(), tokens_series(route, "prompt", "reported")) == 3);
  CHECK(read_metric(gw.port(), tokens_series(route, "completion", "estimated")) == 5);  // 20 / 4
  CHECK_FALSE(read_metric(gw.port(), tokens_series(route, "prompt", "estimated")));
}

TEST_CASE("usage: include_usage is asked for upstream and taken out, byte for byte") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + kRoutes);
  const std::string target = "/v1/chat/completions?tokens=5&interval_ms=1";

  SUBCASE("a client that did not ask gets exactly the upstream's answer without usage") {
    Response direct = http(mock.port(), post_request(target, kChatBody));
    Response via = http(gw.port(), post_request(target, kChatBody));
    REQUIRE(direct.status == 200);
    REQUIRE(via.status == 200);
    CHECK(direct.body.find("usage") == std::string::npos);
    CHECK(via.body == direct.body);
    // ... while the gateway had the counts: the upstream reported them.
    CHECK(wait_metric(gw.port(), tokens_series("/v1/chat/completions", "prompt", "reported"), 5) ==
          5);
    CHECK(read_metric(gw.port(), tokens_series("/v1/chat/completions", "completion", "reported")) ==
          5);
  }
  SUBCASE("a client that asked gets the usage chunk and the null usages unchanged") {
    const std::string body =
        R"({"stream":true,"stream_options":{"include_usage":true},"messages":[{"content":"x y"}]})";
    Response direct = http(mock.port(), post_request(target, body));
    Response via = http(gw.port(), post_request(target, body));
    REQUIRE(via.status == 200);
    CHECK(direct.body.find(R"("usage":null)") != std::string::npos);
    CHECK(direct.body.find(R"("choices":[],"usage":{"prompt_tokens":2,"completion_tokens":5,)") !=
          std::string::npos);
    CHECK(via.body == direct.body);
    CHECK(wait_metric(gw.port(), tokens_series("/v1/chat/completions", "prompt", "reported"), 2) ==
          2);
  }
}

TEST_CASE("usage: include_usage: false leaves the request alone, and the counts are estimated") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) +
             "routes:\n  - {path: /v1/chat/completions, upstream: llm, include_usage: false}\n");
  const std::string route = "/v1/chat/completions";
  Response via = http(gw.port(), post_request(route + "?tokens=5&interval_ms=1", kChatBody));
  CHECK(via.status == 200);
  CHECK(via.body.find("usage") == std::string::npos);
  CHECK(wait_metric(gw.port(), requests_series(route, "completed"), 1) == 1);
  CHECK(read_metric(gw.port(), tokens_series(route, "completion", "estimated")) == 7);  // 25 / 4
  CHECK(read_metric(gw.port(), tokens_series(route, "prompt", "estimated")) == estimate(kChatBody));
}

TEST_CASE("usage: one record per request, as a log line and under the key's name") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + kRoutes +
             "auth:\n  keys:\n    - {name: team-a, token: \"team-a-key-0123456789\", "
             "routes: [\"/v1/*\"]}\n"
             "    - {name: other, token: \"other-key-0123456789\", routes: [\"/api/*\"]}\n");
  const std::string key = "Authorization: Bearer team-a-key-0123456789\r\n";
  const std::string trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  Response r =
      http(gw.port(), post_request("/v1/chat/completions?tokens=7&interval_ms=1&echo_trace=1",
                                   kChatBody, key + "traceparent: " + trace + "\r\n"));
  CHECK(r.status == 200);
  // The client's traceparent went upstream unchanged (the mock echoes it).
  CHECK(r.header("x-mock-traceparent") == trace);
  std::string line = wait_log_line(
      gw, {"\"msg\":\"usage\"", "\"route\":\"/v1/chat/completions\"", "\"upstream\":\"llm\"",
           "\"key\":\"team-a\"", "\"model\":\"gpt-test\"", "\"status\":200",
           "\"outcome\":\"completed\"", "\"prompt_tokens\":5", "\"completion_tokens\":7",
           "\"estimated\":false", "\"traceparent\":\"" + trace + "\"",
           "\"ttft_ms\":", "\"duration_ms\":", "\"time\":"});
  CHECK_FALSE(line.empty());
  CHECK(read_metric(gw.port(), requests_series("/v1/chat/completions", "completed", "team-a")) ==
        1);
  CHECK(read_metric(gw.port(), tokens_series("/v1/chat/completions", "completion", "reported",
                                             "team-a")) == 7);

  SUBCASE("no traceparent, or a broken one: a new one is made, sent and recorded") {
    for (const std::string& sent : {std::string(), std::string("traceparent: 00-zz\r\n")}) {
      Response a =
          http(gw.port(), post_request("/v1/chat/completions?tokens=1&interval_ms=1&echo_trace=1",
                                       kChatBody, key + sent));
      CHECK(a.status == 200);
      std::string made = a.header("x-mock-traceparent");
      INFO("sent: ", sent, " made: ", made);
      REQUIRE(made.size() == 55);
      CHECK(made.starts_with("00-"));
      CHECK(made.ends_with("-01"));
      CHECK(made != trace);
      CHECK_FALSE(
          wait_log_line(gw, {"\"msg\":\"usage\"", "\"traceparent\":\"" + made + "\""}).empty());
    }
  }
  SUBCASE("one traceparent goes up: the first, a later version's ids as version 00") {
    const std::string later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
    Response a =
        http(gw.port(), post_request("/v1/chat/completions?tokens=1&echo_trace=1", kChatBody,
                                     key + "traceparent: " + later + "\r\ntraceparent: junk\r\n"));
    CHECK(a.status == 200);
    CHECK(a.header("x-mock-traceparent") == "00" + trace.substr(2));
  }
  SUBCASE("a refused request is a rejected record with no tokens, logged once it has a key") {
    Response anonymous = http(gw.port(), post_request("/v1/chat/completions", kChatBody));
    CHECK(anonymous.status == 401);
    Response other =
        http(gw.port(), post_request("/v1/chat/completions", kChatBody,
                                     "Authorization: Bearer other-key-0123456789\r\n"));
    CHECK(other.status == 403);
    CHECK(wait_metric(gw.port(), requests_series("/v1/chat/completions", "rejected"), 1) == 1);
    CHECK(wait_metric(gw.port(), requests_series("/v1/chat/completions", "rejected", "other"), 1) ==
          1);
    CHECK_FALSE(wait_log_line(gw, {"\"msg\":\"usage\"", "\"key\":\"other\"", "\"status\":403",
                                   "\"outcome\":\"rejected\"", "\"prompt_tokens\":0",
                                   "\"completion_tokens\":0"})
                    .empty());
    // Without a token, a client could write the log as fast as it sends: counted, not logged.
    CHECK(gw.log().find("\"status\":401") == std::string::npos);
    CHECK(mock.stat("/v1/chat/completions") == 1);  // only the first request reached it
  }
}

TEST_CASE("usage: log.access: false writes no record, and the metrics still count") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + kRoutes + "log: {access: false}\n");
  CHECK(http(gw.port(), post_request("/v1/chat/completions?tokens=2&interval_ms=1", kChatBody))
            .status == 200);
  CHECK(wait_metric(gw.port(), requests_series("/v1/chat/completions", "completed"), 1) == 1);
  CHECK(gw.stop_and_wait() == 0);
  CHECK(gw.log().find("\"msg\":\"usage\"") == std::string::npos);
}

TEST_CASE("usage: time to the first content token and per output token") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + kRoutes);
  // The first token after 150 ms, then 4 more at least 20 ms apart.
  Response r = http(
      gw.port(),
      post_request("/v1/chat/completions?tokens=5&interval_ms=20&first_token_ms=150", kChatBody));
  CHECK(r.status == 200);
  const std::string labels = "{route=\"/v1/chat/completions\",upstream=\"llm\"}";
  CHECK(wait_metric(gw.port(), "ssegw_llm_time_to_first_token_seconds_count" + labels, 1) == 1);
  CHECK(read_metric(gw.port(), "ssegw_llm_time_per_output_token_seconds_count" + labels) == 1);
  const double ttft =
      read_metric(gw.port(), "ssegw_llm_time_to_first_token_seconds_sum" + labels).value_or(-1);
  const double per_token =
      read_metric(gw.port(), "ssegw_llm_time_per_output_token_seconds_sum" + labels).value_or(-1);

  // The gateway times what it reads, so a late read of the first token (a loaded machine) moves
  // time from the gaps to the first token. Their sum is the request's duration, which cannot be
  // shorter than the mock's timers: 150 ms + 4 x 20 ms.
  std::string line = wait_log_line(gw, {"\"msg\":\"usage\"", "\"ttft_ms\":", "\"duration_ms\":"});
  REQUIRE_FALSE(line.empty());
  auto field_ms = [&](const std::string& name) {
    const size_t at = line.find("\"" + name + "\":") + name.size() + 3;
    return std::stod(line.substr(at)) / 1000.0;
  };
  const double duration = field_ms("duration_ms");
  CHECK(ttft >= 0.15);
  CHECK(duration >= 0.23);
  CHECK(std::abs(ttft - field_ms("ttft_ms")) <= 0.001);  // the log rounds to whole ms
  CHECK(std::abs(per_token - (duration - ttft) / 4.0) <= 0.001);
}

TEST_CASE("usage: a route with usage: false is not read, and writes no record") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) +
             "routes:\n  - {path: /v1/chat/completions, upstream: llm, usage: false}\n");
  const std::string target = "/v1/chat/completions?tokens=3&interval_ms=1";
  Response direct = http(mock.port(), post_request(target, kChatBody));
  Response via = http(gw.port(), post_request(target, kChatBody));
  CHECK(via.status == 200);
  CHECK(via.body == direct.body);  // not asked for usage either
  CHECK(wait_metric(gw.port(), "ssegw_upstream_requests_total{code=\"200\",upstream=\"llm\"}", 1) ==
        1);
  CHECK(gw.stop_and_wait() == 0);
  CHECK(gw.log().find("\"msg\":\"usage\"") == std::string::npos);
  CHECK(mock.stat("/v1/chat/completions") == 2);
}

TEST_CASE("usage: a request that went out but got no head is charged its prompt estimate") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock) + kRoutes);
  // The upstream holds its head back; the client leaves meanwhile.
  SseStream s = SseStream::raw(gw.port(),
                               post_request("/v1/chat/completions?head_delay_ms=60000", kChatBody));
  CHECK(mock.wait_stat("requests", 1) == 1);  // the request is out
  s.close();
  const std::string route = "/v1/chat/completions";
  CHECK(wait_metric(gw.port(), requests_series(route, "cancelled"), 1) == 1);
  CHECK(read_metric(gw.port(), tokens_series(route, "prompt", "estimated")) == estimate(kChatBody));
  CHECK_FALSE(read_metric(gw.port(), tokens_series(route, "completion", "estimated")));
  // An upstream that could not be reached billed nothing.
  const ReservedPort refusing;  // bound, never listening
  Gateway unreachable("upstreams:\n  llm: {url: \"http://127.0.0.1:" +
                      std::to_string(refusing.port()) + "\"}\n" + kRoutes);
  CHECK(http(unreachable.port(), post_request(route, kChatBody)).status == 502);
  CHECK(wait_metric(unreachable.port(), requests_series(route, "upstream_error"), 1) == 1);
  CHECK_FALSE(read_metric(unreachable.port(), tokens_series(route, "prompt", "estimated")));
}
