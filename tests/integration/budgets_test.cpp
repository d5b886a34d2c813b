// Spend budgets per key and per JWT subject (docs/protocol.md#budgets): a request over its key's
// tokens, requests or running answers is refused before it reaches the upstream, with 429 and an
// honest Retry-After; a running answer's slot comes back however the answer ends; with Redis the
// counts are shared by every instance.
//
// The windows are wall-clock minutes. The window's turn is proven in the unit tests
// (tests/gateway/api/budgets_test.cpp, with a fake clock) and once end to end here ("served again
// after the window", which waits for the minute to turn: 30 s on average). Elsewhere Retry-After
// is checked against the seconds left in the minute. A test whose counts must all fall in one
// minute first waits out the minute's last few seconds (wait_minute_room).
#include <chrono>
#include <string>
#include <thread>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/jwt_tokens.hpp"
#include "tests/integration/redis_server.hpp"

using namespace itest;

namespace {

const std::string kToken = "team-token-0123456789";
const std::string kAuth = "Authorization: Bearer " + kToken + "\r\n";
const std::string kChat = "/v1/chat/completions";
const std::string kBody = R"({"stream":true,"messages":[{"role":"user","content":"hi"}]})";

uint64_t unix_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// The Retry-After of a minute-window refusal at unix_ms: the whole seconds to the minute's end.
long seconds_to_minute_end(uint64_t ms) {
  return static_cast<long>((60000 - ms % 60000 + 999) / 1000);
}

// Waits until at least `seconds` of the current minute are left, so that a test's requests all
// count in one window. The time is the point here: the window is the wall clock's minute.
void wait_minute_room(long seconds) {
  uint64_t ms = unix_ms();
  if (60000 - ms % 60000 < static_cast<uint64_t>(seconds) * 1000)
    std::this_thread::sleep_for(Ms(60000 - ms % 60000 + 50));
}

// A key "team" (kToken) granted every /v1/ route, with `limits` (a YAML flow-map tail, e.g.
// ", tokens_per_minute: 500").
std::string key_yaml(const std::string& limits) {
  return "auth:\n  keys:\n    - {name: team, token: \"" + kToken + "\", routes: [\"/v1/*\"]" +
         limits + "}\n";
}

std::string mock_yaml(const MockLlm& mock, const std::string& routes_extra = "") {
  return "upstreams:\n  llm: {url: \"" + mock.url() + "\"}\nroutes:\n  - {path: " + kChat +
         ", upstream: llm" + routes_extra + "}\n";
}

// A chat answer of `tokens` tokens whose usage chunk reports `prompt` prompt tokens.
std::string chat(long tokens, long prompt, const std::string& extra = "",
                 const std::string& headers = kAuth) {
  return post_request(kChat + "?interval_ms=0&tokens=" + std::to_string(tokens) +
                          "&prompt_tokens=" + std::to_string(prompt) + extra,
                      kBody, headers);
}

// The exact refusal: 429, the code and message, and Retry-After.
void check_refusal(const Response& r, const std::string& code, const std::string& message) {
  check_error(r, 429, code);
  CHECK(json_body(r) == "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" + message + "\"}}");
  CHECK(r.has("retry-after"));
}

std::string running(const std::string& key = "team") {
  return "ssegw_budget_running{key=\"" + key + "\"}";
}
std::string refusals(const std::string& reason, const std::string& key = "team") {
  return "ssegw_budget_refusals_total{key=\"" + key + "\",reason=\"" + reason + "\"}";
}
std::string charged(const std::string& key = "team") {
  return "ssegw_budget_tokens_charged_total{key=\"" + key + "\"}";
}

}  // namespace

TEST_CASE("budgets: a key with tokens_per_minute 500 is refused once its answers used 500") {
  MockLlm mock;
  Gateway gw(key_yaml(", tokens_per_minute: 500") + mock_yaml(mock));
  wait_minute_room(10);
  // Two answers of 200 completion and 50 prompt tokens each, as the mock's usage chunk says
  // (the gateway asks for it upstream, and strips it from what this client, who did not, gets).
  for (int i = 0; i < 2; ++i) REQUIRE(http(gw.port(), chat(200, 50)).status == 200);
  CHECK(wait_metric(gw.port(), charged(), 500) == 500);
  const uint64_t before = unix_ms();
  Response refused = http(gw.port(), chat(200, 50));
  const uint64_t after = unix_ms();
  check_refusal(refused, "token_budget_exhausted",
                "this key has used its tokens_per_minute for this minute");
  // Honest: the seconds left in the minute, so that a client retrying then is served.
  const long retry_after = std::stol(refused.header("retry-after"));
  INFO("Retry-After: ", retry_after, ", request at ", before % 60000, " ms into the minute");
  CHECK(retry_after <= seconds_to_minute_end(before));
  CHECK(retry_after >= seconds_to_minute_end(after));
  // Refused before the upstream: the mock saw two requests.
  CHECK(mock.stat(kChat) == 2);
  CHECK(read_metric(gw.port(), refusals("token_budget_exhausted")) == 1);
  CHECK(read_metric(gw.port(), refusals("rate_limited")) == 0);
  CHECK(read_metric(gw.port(), running()) == 0);
  CHECK(read_metric(gw.port(), "ssegw_http_requests_total{code=\"429\",route=\"" + kChat + "\"}") ==
        1);
  // The refusal is a usage record too: rejected, under the key.
  CHECK(read_metric(gw.port(),
                    "ssegw_llm_requests_total{key=\"team\",outcome=\"rejected\","
                    "route=\"" +
                        kChat + "\",upstream=\"llm\"}") == 1);
  CHECK(read_metric(gw.port(),
                    "ssegw_llm_requests_total{key=\"team\",outcome=\"completed\","
                    "route=\"" +
                        kChat + "\",upstream=\"llm\"}") == 2);
}

TEST_CASE("budgets: an exhausted key is served again once the window turns, as Retry-After said") {
  MockLlm mock;
  Gateway gw(key_yaml(", tokens_per_minute: 500") + mock_yaml(mock));
  wait_minute_room(5);
  REQUIRE(http(gw.port(), chat(450, 50)).status == 200);
  CHECK(wait_metric(gw.port(), charged(), 500) == 500);
  Response refused = http(gw.port(), chat(10, 5));
  check_refusal(refused, "token_budget_exhausted",
                "this key has used its tokens_per_minute for this minute");
  const long retry_after = std::stol(refused.header("retry-after"));
  REQUIRE(retry_after >= 1);
  REQUIRE(retry_after <= 60);
  // Waiting on the clock is the point: the window is the wall clock's minute.
  std::this_thread::sleep_for(std::chrono::seconds(retry_after));
  Response again = http(gw.port(), chat(10, 5));
  CHECK(again.status == 200);
  CHECK(mock.stat(kChat) == 2);
  CHECK(wait_metric(gw.port(), charged(), 515) == 515);
}

TEST_CASE("budgets: requests_per_minute and max_concurrent refuse rate_limited, too_many_streams") {
  MockLlm mock;
  Gateway gw(key_yaml(", requests_per_minute: 3, max_concurrent: 1") + mock_yaml(mock));
  wait_minute_room(10);
  // One answer that waits: the key's only slot.
  SseStream held = SseStream::raw(gw.port(), chat(100, 5, "&stall_after=1&stall_ms=60000"));
  held.expect_event();
  CHECK(wait_metric(gw.port(), running(), 1) == 1);
  Response busy = http(gw.port(), chat(1, 5));
  check_refusal(busy, "too_many_streams", "this key already runs its max_concurrent answers");
  CHECK(busy.header("retry-after") == "1");
  held.close();
  CHECK(wait_metric(gw.port(), running(), 0) == 0);
  // Refused requests are not counted: two more make three.
  CHECK(http(gw.port(), chat(1, 5)).status == 200);
  CHECK(http(gw.port(), chat(1, 5)).status == 200);
  const uint64_t before = unix_ms();
  Response limited = http(gw.port(), chat(1, 5));
  check_refusal(limited, "rate_limited",
                "this key has made its requests_per_minute for this minute");
  CHECK(std::stol(limited.header("retry-after")) <= seconds_to_minute_end(before));
  CHECK(mock.stat(kChat) == 3);
  CHECK(read_metric(gw.port(), refusals("too_many_streams")) == 1);
  CHECK(read_metric(gw.port(), refusals("rate_limited")) == 1);
}

TEST_CASE("budgets: a key without limits, and other principals, are never refused by a budget") {
  MockLlm mock;
  Gateway gw("auth:\n  keys:\n    - {name: team, token: \"" + kToken +
             "\", routes: [\"/v1/*\"]}\n    - {name: capped, token: \"capped-token-0123456789\", "
             "routes: [\"/v1/*\"], requests_per_minute: 1}\n" +
             mock_yaml(mock));
  for (int i = 0; i < 3; ++i) CHECK(http(gw.port(), chat(1, 5)).status == 200);
  // Only keys with a budget have series: no label for "team".
  CHECK_FALSE(read_metric(gw.port(), running("team")));
  CHECK(read_metric(gw.port(), running("capped")) == 0);
}

// Every way an answer can end gives its slot back: with max_concurrent 1, the next request of
// the key is served only if it did.
TEST_CASE("budgets: a concurrency slot comes back on every ending of an answer") {
  MockLlm mock;
  ReservedPort dead;  // an upstream that refuses connections
  Gateway gw(key_yaml(", max_concurrent: 1") + "upstreams:\n  llm: {url: \"" + mock.url() +
             "\"}\n  slow: {url: \"" + mock.url() +
             "\", first_byte_timeout: 300ms, idle_timeout: 300ms}\n"
             "  dead: {url: \"http://127.0.0.1:" +
             std::to_string(dead.port()) +
             "\"}\nroutes:\n"
             "  - {path: /v1/chat/completions, upstream: llm, high_water_bytes: 16KiB, "
             "low_water_bytes: 4KiB, stall_timeout: 1s}\n"
             "  - {path: /v1/responses, upstream: slow}\n"
             "  - {path: /v1/messages, upstream: dead}\n");
  const std::string responses_body = R"({"stream":true,"input":"hi"})";
  auto slot_back = [&](const char* ending) {
    INFO("after ", ending);
    CHECK(wait_metric(gw.port(), running(), 0) == 0);
    // Served again: the slot is free.
    CHECK(http(gw.port(), chat(2, 5)).status == 200);
    CHECK(wait_metric(gw.port(), running(), 0) == 0);
  };

  // Completion.
  CHECK(http(gw.port(), chat(3, 5)).status == 200);
  slot_back("completion");

  // The client hangs up mid-answer.
  {
    SseStream s = SseStream::raw(gw.port(), chat(100, 5, "&stall_after=2&stall_ms=60000"));
    s.expect_event();
    CHECK(wait_metric(gw.port(), running(), 1) == 1);
    CHECK(http(gw.port(), chat(1, 5)).status == 429);  // held while it runs
    s.close();
    CHECK(mock.wait_stat("cancelled", 1) == 1);
  }
  slot_back("client cancel");

  // The upstream answers an error status.
  CHECK(http(gw.port(), chat(3, 5, "&status=500")).status == 500);
  slot_back("upstream 500");

  // The upstream refuses the connection.
  CHECK(http(gw.port(), post_request("/v1/messages", kBody, kAuth)).status == 502);
  slot_back("connection refused");

  // first_byte_timeout: no head within 300 ms.
  CHECK(http(gw.port(), post_request("/v1/responses?head_delay_ms=3000", responses_body, kAuth))
            .status == 504);
  slot_back("first_byte_timeout");

  // idle_timeout: the upstream goes silent after its head and two tokens.
  {
    SseStream s = SseStream::raw(
        gw.port(), post_request("/v1/responses?interval_ms=0&stall_after=2&stall_ms=5000",
                                responses_body, kAuth));
    read_until_finished(s);
    CHECK(s.body().find("idle_timeout") != std::string::npos);
  }
  slot_back("idle_timeout");

  // Truncation: the upstream drops the connection after 3 tokens.
  {
    SseStream s = SseStream::raw(gw.port(), chat(10, 5, "&drop_after=3"));
    read_until_finished(s);
    CHECK(s.body().find("upstream_disconnected") != std::string::npos);
  }
  slot_back("truncation");

  // stall_timeout: the client takes nothing while the upstream waits for it.
  {
    SseStream s = SseStream::raw(gw.port(), chat(5000, 5, "&token_bytes=8192"), /*rcvbuf=*/4096);
    s.wait_head();
    REQUIRE(s.head().status == 200);
    CHECK(wait_metric(gw.port(), "ssegw_upstream_stalls_total{upstream=\"llm\"}", 1, 20s) == 1);
  }
  slot_back("stall_timeout");
  CHECK(read_metric(gw.port(), refusals("too_many_streams")) == 1);
}

TEST_CASE("budgets: a detached answer (Prefer: respond-async) holds its slot until it ends") {
  MockLlm mock;
  Gateway gw(key_yaml(", max_concurrent: 1") + mock_yaml(mock, ", resumable: true"));
  Response accepted = http(gw.port(), post_request(kChat + "?tokens=3&interval_ms=300", kBody,
                                                   kAuth + "Prefer: respond-async\r\n"));
  REQUIRE(accepted.status == 202);
  CHECK(read_metric(gw.port(), running()) == 1);
  CHECK(mock.wait_stat("completed", 1, 10s) == 1);
  CHECK(wait_metric(gw.port(), running(), 0) == 0);
  CHECK(http(gw.port(), chat(1, 5)).status == 200);
}

TEST_CASE("budgets: each JWT subject has its own budget, counted under the label jwt") {
  MockLlm mock;
  Gateway gw("auth:\n  jwt: { alg: HS256, secret: \"" + kJwtSecret +
             "\", subject_limits: {requests_per_minute: 1} }\n" + mock_yaml(mock));
  wait_minute_room(10);
  auto bearer = [](const std::string& sub) {
    std::string claims = "{\"ssegw\":{\"routes\":[\"/v1/*\"]}";
    if (!sub.empty()) claims += ",\"sub\":\"" + sub + "\"";
    return "Authorization: Bearer " + token(claims + "}") + "\r\n";
  };
  CHECK(http(gw.port(), chat(1, 5, "", bearer("alice"))).status == 200);
  CHECK(http(gw.port(), chat(1, 5, "", bearer("bob"))).status == 200);
  check_refusal(http(gw.port(), chat(1, 5, "", bearer("alice"))), "rate_limited",
                "this subject has made its requests_per_minute for this minute");
  // A token without sub cannot be charged: refused rather than sharing one account.
  check_error(http(gw.port(), chat(1, 5, "", bearer(""))), 403, "forbidden");
  CHECK(read_metric(gw.port(), refusals("rate_limited", "jwt")) == 1);
  CHECK(wait_metric(gw.port(), charged("jwt"), 12) == 12);  // (1 + 5) tokens, twice
  CHECK(read_metric(gw.port(), "ssegw_budget_subjects") == 2);
  // No subject ever becomes a label.
  Response metrics = http_get(gw.port(), "/metrics");
  CHECK(metrics.body.find("alice") == std::string::npos);
  CHECK(mock.stat(kChat) == 2);
}

// ---------------------------------------------------------------------------------------------
// Redis

namespace {

const std::string kLinksUp = "ssegw_backplane_links_up";

// Redis under a key prefix of its own; lease_ttl short, so that slots of a dead instance go soon.
std::string redis_yaml(const RedisServer& redis) {
  return "backplane: {type: redis, url: \"" + redis.url() +
         "\", key_prefix: \"b:\", lease_ttl: 1s}\n";
}

}  // namespace

TEST_CASE("budgets: two instances on one Redis share a key's budget") {
  RedisServer redis;
  MockLlm mock;
  const std::string yaml =
      redis_yaml(redis) + key_yaml(", tokens_per_minute: 500, max_concurrent: 1") + mock_yaml(mock);
  Gateway a(yaml), b(yaml);
  for (const Gateway* gw : {&a, &b}) REQUIRE(wait_metric(gw->port(), kLinksUp, 1) == 1);
  wait_minute_room(15);
  CHECK(http(a.port(), chat(200, 50)).status == 200);
  CHECK(wait_metric(a.port(), charged(), 250) == 250);
  CHECK(http(b.port(), chat(200, 50)).status == 200);
  CHECK(wait_metric(b.port(), charged(), 250) == 250);
  // 500 used, half on each: both refuse now.
  // b's charge went to Redis before its metric moved, maybe not yet through: wait for it (a
  // request served meanwhile would show in the mock's count below).
  const uint64_t before = unix_ms();
  Response ra;
  CHECK(wait_until([&] {
    ra = http(a.port(), chat(1, 5));
    return ra.status == 429;
  }));
  check_refusal(ra, "token_budget_exhausted",
                "this key has used its tokens_per_minute for this minute");
  CHECK(std::stol(ra.header("retry-after")) <= seconds_to_minute_end(before));
  check_refusal(http(b.port(), chat(1, 5)), "token_budget_exhausted",
                "this key has used its tokens_per_minute for this minute");
  CHECK(mock.stat(kChat) == 2);
}

TEST_CASE("budgets: two instances on one Redis share max_concurrent, Redis down refuses 503") {
  RedisServer redis;
  MockLlm mock;
  const std::string yaml = redis_yaml(redis) + key_yaml(", max_concurrent: 1") + mock_yaml(mock);
  Gateway a(yaml), b(yaml);
  for (const Gateway* gw : {&a, &b}) REQUIRE(wait_metric(gw->port(), kLinksUp, 1) == 1);
  {
    SseStream held = SseStream::raw(a.port(), chat(100, 5, "&stall_after=1&stall_ms=60000"));
    held.expect_event();
    CHECK(read_metric(a.port(), running()) == 1);
    Response busy = http(b.port(), chat(1, 5));
    check_refusal(busy, "too_many_streams", "this key already runs its max_concurrent answers");
    CHECK(read_metric(b.port(), refusals("too_many_streams")) == 1);
    held.close();
    CHECK(wait_metric(a.port(), running(), 0) == 0);
  }
  // The slot went back to Redis: the other instance is served.
  CHECK(wait_until([&] { return http(b.port(), chat(1, 5)).status == 200; }));
  // Without Redis the counts cannot be checked: fail closed (docs/protocol.md#budgets).
  redis.kill();
  CHECK(wait_metric(a.port(), kLinksUp, 0) == 0);
  Response down = http(a.port(), chat(1, 5));
  check_error(down, 503, "backplane_unavailable");
  CHECK(down.header("retry-after") == "1");
  CHECK(read_metric(a.port(), refusals("backplane_unavailable")) == 1);
}
