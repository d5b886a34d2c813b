// Retry and fallback before the first byte (docs/protocol.md "Retry and fallback"): a route with
// several upstreams moves on while no 2xx head has come, and never after. The primary's faults
// come from one ssegw-mock-llm through config headers (X-Mock-Status, X-Mock-Head-Delay-Ms,
// X-Mock-Drop-After replace the client's), or from a bound port that does not listen.
#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

const std::string kRoute = "/v1/chat/completions";
const std::string kBody = R"({"model":"m","stream":true,"messages":[{"content":"a b c"}]})";

// primary: `primary_url` with `primary_extra` flow-map keys; backup: the mock as it is.
std::string fallback_yaml(const std::string& primary_url, const std::string& primary_extra,
                          const MockLlm& mock, const std::string& route_extra = "") {
  return "upstreams:\n"
         "  primary: {url: \"" +
         primary_url + "\"" + primary_extra +
         "}\n"
         "  backup: {url: \"" +
         mock.url() +
         "\"}\n"
         "routes:\n"
         "  - {path: " +
         kRoute + ", upstreams: [primary, backup]" + route_extra + "}\n";
}

std::string retries_series(const std::string& upstream, const std::string& reason) {
  return "ssegw_upstream_retries_total{reason=\"" + reason + "\",route=\"" + kRoute +
         "\",upstream=\"" + upstream + "\"}";
}

std::string requests_series(const std::string& upstream, const std::string& outcome) {
  return "ssegw_llm_requests_total{key=\"anonymous\",outcome=\"" + outcome + "\",route=\"" +
         kRoute + "\",upstream=\"" + upstream + "\"}";
}

// The backup's whole answer of 3 tokens: the tokens, the finishing chunk, [DONE].
void check_backup_answer(const Response& r) {
  INFO("response: ", printable(r.raw));
  REQUIRE(r.status == 200);
  std::vector<SseEvent> events = parse_sse(r.body);
  REQUIRE(events.size() == 5);
  for (int i = 0; i < 3; ++i)
    CHECK(events[i].data.find("\"content\":\"tok" + std::to_string(i) + " \"") !=
          std::string::npos);
  CHECK(events[4].data == "[DONE]");
}

}  // namespace

TEST_CASE("fallback: a primary that refuses connections is skipped for the backup") {
  MockLlm mock;
  const ReservedPort refusing;  // bound, never listening: every connect is refused
  Gateway gw(fallback_yaml("http://127.0.0.1:" + std::to_string(refusing.port()), "", mock));
  check_backup_answer(http(gw.port(), post_request(kRoute + "?tokens=3&interval_ms=1", kBody)));
  CHECK(read_metric(gw.port(), retries_series("primary", "connect_error")) == 1);
  CHECK(wait_metric(gw.port(), requests_series("backup", "completed"), 1) == 1);
  // The backup got the body as it was sent (3 words: its prompt count).
  CHECK(read_metric(gw.port(), "ssegw_llm_tokens_total{key=\"anonymous\",kind=\"prompt\",route=\"" +
                                   kRoute + "\",source=\"reported\",upstream=\"backup\"}") == 3);
  CHECK(mock.stat(kRoute) == 1);
}

TEST_CASE("fallback: a 5xx or 429 from the primary moves on to the backup") {
  MockLlm mock;
  for (const char* status : {"500", "503", "429"}) {
    INFO("primary answers ", status);
    Gateway gw(fallback_yaml(mock.url(),
                             std::string(", headers: {X-Mock-Status: \"") + status + "\"}", mock));
    check_backup_answer(http(gw.port(), post_request(kRoute + "?tokens=3&interval_ms=1", kBody)));
    const std::string reason = std::string(status) == "429" ? "429" : "5xx";
    CHECK(read_metric(gw.port(), retries_series("primary", reason)) == 1);
    CHECK(read_metric(gw.port(), "ssegw_upstream_requests_total{code=\"" + std::string(status) +
                                     "\",upstream=\"primary\"}") == 1);
  }
  CHECK(mock.stat(kRoute) == 6);  // each primary once, each backup once
}

TEST_CASE("fallback: a primary without a first byte within first_byte_timeout is skipped") {
  MockLlm mock;
  Gateway gw(fallback_yaml(
      mock.url(), ", first_byte_timeout: 300ms, headers: {X-Mock-Head-Delay-Ms: \"10000\"}", mock));
  check_backup_answer(http(gw.port(), post_request(kRoute + "?tokens=3&interval_ms=1", kBody)));
  CHECK(read_metric(gw.port(), retries_series("primary", "first_byte_timeout")) == 1);
  // The primary's request was given up: its connection is closed.
  CHECK(mock.wait_stat("active", 0) == 0);
  CHECK(mock.stat(kRoute) == 2);
}

TEST_CASE("fallback: a primary that fails after its first bytes is not retried") {
  MockLlm mock;
  Gateway gw(fallback_yaml(mock.url(), ", headers: {X-Mock-Drop-After: \"2\"}", mock));
  SseStream s = SseStream::raw(gw.port(), post_request(kRoute + "?tokens=5&interval_ms=1", kBody));
  std::vector<SseEvent> events = read_until_finished(s);
  REQUIRE(events.size() == 3);  // two tokens, then the gateway's error event
  CHECK(events[1].data.find("\"content\":\"tok1 \"") != std::string::npos);
  CHECK(events[2].event == "error");
  CHECK(wait_metric(gw.port(), requests_series("primary", "truncated"), 1) == 1);
  CHECK_FALSE(read_metric(gw.port(), retries_series("primary", "5xx")));
  CHECK_FALSE(read_metric(gw.port(), retries_series("primary", "connect_error")));
  CHECK(mock.stat(kRoute) == 1);
}

TEST_CASE("fallback: retry_on and max_attempts bound what is retried") {
  MockLlm mock;
  SUBCASE("retry_on: [] passes the primary's 500 through") {
    Gateway gw(
        fallback_yaml(mock.url(), ", headers: {X-Mock-Status: \"500\"}", mock, ", retry_on: []"));
    Response r = http(gw.port(), post_request(kRoute, kBody));
    CHECK(r.status == 500);
    CHECK(r.body.find("mock status") != std::string::npos);  // the upstream's own answer
    CHECK(wait_metric(gw.port(), requests_series("primary", "upstream_error"), 1) == 1);
    CHECK(mock.stat(kRoute) == 1);
  }
  SUBCASE("retry_on: [429] does not retry a 500") {
    Gateway gw(fallback_yaml(mock.url(), ", headers: {X-Mock-Status: \"500\"}", mock,
                             ", retry_on: [429]"));
    CHECK(http(gw.port(), post_request(kRoute, kBody)).status == 500);
    CHECK(mock.stat(kRoute) == 1);
  }
  SUBCASE("max_attempts: 3 on one failing upstream tries it three times, then answers its 500") {
    Gateway gw("upstreams:\n  only: {url: \"" + mock.url() +
               "\", headers: {X-Mock-Status: \"500\"}}\n"
               "routes:\n  - {path: " +
               kRoute + ", upstream: only, max_attempts: 3}\n");
    Response r = http(gw.port(), post_request(kRoute, kBody));
    CHECK(r.status == 500);
    CHECK(mock.stat(kRoute) == 3);
    CHECK(read_metric(gw.port(), "ssegw_upstream_retries_total{reason=\"5xx\",route=\"" + kRoute +
                                     "\",upstream=\"only\"}") == 2);
    CHECK(wait_metric(gw.port(),
                      "ssegw_llm_requests_total{key=\"anonymous\",outcome=\"upstream_error\","
                      "route=\"" +
                          kRoute + "\",upstream=\"only\"}",
                      1) == 1);
  }
  SUBCASE("max_attempts: 1 never moves on to the backup") {
    Gateway gw(fallback_yaml(mock.url(), ", headers: {X-Mock-Status: \"503\"}", mock,
                             ", max_attempts: 1"));
    CHECK(http(gw.port(), post_request(kRoute, kBody)).status == 503);
    CHECK(mock.stat(kRoute) == 1);
  }
}

TEST_CASE("fallback: a primary at its max_concurrent is skipped for the backup at once") {
  MockLlm mock;
  Gateway gw(fallback_yaml(mock.url(), ", max_concurrent: 1", mock));
  // The first answer holds the primary's only slot (its upstream stalls after one token).
  SseStream held = SseStream::raw(
      gw.port(),
      post_request(kRoute + "?tokens=5&interval_ms=1&stall_after=1&stall_ms=60000", kBody));
  CHECK(held.wait_head().status == 200);
  CHECK(wait_metric(gw.port(), "ssegw_upstream_requests_active{upstream=\"primary\"}", 1) == 1);
  check_backup_answer(http(gw.port(), post_request(kRoute + "?tokens=3&interval_ms=1", kBody)));
  CHECK(read_metric(gw.port(), retries_series("primary", "busy")) == 1);
  CHECK(wait_metric(gw.port(), requests_series("backup", "completed"), 1) == 1);
  held.close();
}

TEST_CASE("fallback: a 429 is retried on the same upstream no sooner than its Retry-After") {
  MockLlm mock;
  Gateway gw("upstreams:\n  only: {url: \"" + mock.url() +
             "\", headers: {X-Mock-Status: \"429\"}}\n"
             "routes:\n  - {path: " +
             kRoute + ", upstream: only, max_attempts: 2}\n");
  auto start = std::chrono::steady_clock::now();
  Response r = http(gw.port(), post_request(kRoute, kBody));
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(r.status == 429);  // both attempts refused: the client gets the last one's answer
  CHECK(r.header("retry-after") == "1");
  CHECK(mock.stat(kRoute) == 2);
  // The mock's Retry-After: 1 is longer than the 250 ms of a first retry: it wins.
  CHECK(elapsed >= std::chrono::milliseconds(1000));
}
