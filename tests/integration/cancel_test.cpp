// The cancel API (docs/protocol.md#cancel-a-generation): DELETE /v1/generations/{gen} stops a
// running generation on whichever worker or instance runs it. In every case the mock sees its
// stream closed (its "cancelled" stat), and every subscriber gets the exact error event and the
// end of its stream.
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/redis_server.hpp"

using namespace itest;

namespace {

const std::string kChatBody =
    "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
// Long enough never to end by itself within a test: only a cancel stops it.
const std::string kLongChat = "/v1/chat/completions?tokens=5000&interval_ms=10";
const std::string kCancelled =
    "{\"error\":{\"type\":\"cancelled\",\"message\":\"the generation was cancelled\"}}";

std::string route_yaml(const MockLlm& mock) {
  return "upstreams:\n  llm: {url: \"" + mock.url() +
         "\"}\nroutes:\n  - {path: /v1/chat/completions, upstream: llm, resumable: true}\n";
}

std::string redis_yaml(const RedisServer& redis) {
  return "backplane: {type: redis, url: \"" + redis.url() +
         "\", key_prefix: \"tc:\", lease_ttl: 1s}\n";
}

// Starts a detached generation (Prefer: respond-async) and returns its name.
std::string start_detached(uint16_t port, const std::string& headers = "") {
  Response r =
      http(port, post_request(kLongChat, kChatBody, "Prefer: respond-async\r\n" + headers));
  INFO("POST: \"", printable(r.raw), "\"");
  REQUIRE(r.status == 202);
  std::string gen = r.header("sse-channel");
  REQUIRE(gen.rfind("gen-", 0) == 0);
  return gen;
}

std::string delete_request(const std::string& gen, const std::string& headers = "") {
  return "DELETE /v1/generations/" + gen + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + "\r\n";
}

Response cancel(uint16_t port, const std::string& gen, const std::string& headers = "") {
  return http(port, delete_request(gen, headers));
}

void check_accepted(const Response& r, const std::string& gen) {
  INFO("DELETE: \"", printable(r.raw), "\"");
  CHECK(r.status == 202);
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.body == "{\"channel\":\"" + gen + "\"}\n");
}

// A subscriber of the generation that has seen its first token: the answer is streaming.
std::unique_ptr<SseStream> follow(uint16_t port, const std::string& gen,
                                  const std::string& headers = "") {
  auto s = std::make_unique<SseStream>(port, gen, SseStream::Options{.extra_headers = headers});
  s->expect_ok();
  std::optional<SseEvent> first = s->next_event(5s);
  REQUIRE(first);
  CHECK(first->event.empty());
  return s;
}

// The stream ends with exactly the cancelled error event, then the terminal chunk.
void check_cancelled(SseStream& s) {
  std::vector<SseEvent> rest = read_until_finished(s, 5s);
  INFO("subscriber body tail: \"", printable(s.body().substr(s.body().size() - 200)), "\"");
  REQUIRE(!rest.empty());
  const SseEvent& last = rest.back();
  CHECK(last.event == "error");
  CHECK(last.data == kCancelled);
  REQUIRE(last.id);
  CHECK(s.body().ends_with(sse_frame(*last.id, kCancelled, "error")));
  CHECK(s.wire().ends_with(chunk(sse_frame(*last.id, kCancelled, "error")) + "0\r\n\r\n"));
  for (size_t i = 0; i + 1 < rest.size(); ++i) CHECK(rest[i].event.empty());
}

}  // namespace

TEST_CASE("cancel: DELETE stops a detached generation, every subscriber's stream ends") {
  MockLlm mock;
  Gateway gw(route_yaml(mock));
  const uint16_t port = gw.port();
  const std::string gen = start_detached(port);
  auto a = follow(port, gen);
  auto b = follow(port, gen);
  CHECK(mock.stat("active") == 1);
  CHECK(read_metric(port, "ssegw_generations_running") == 1);

  check_accepted(cancel(port, gen), gen);
  check_cancelled(*a);
  check_cancelled(*b);
  CHECK(mock.wait_stat("cancelled", 1) == 1);
  CHECK(mock.wait_stat("active", 0) == 0);
  CHECK(mock.stat("completed") == 0);
  CHECK(wait_metric(port, "ssegw_generations_running", 0) == 0);
  CHECK(read_metric(port, "ssegw_generations_cancelled_total") == 1);
  // The usage record says so (its completion tokens are estimated from what streamed).
  CHECK(wait_metric(port,
                    "ssegw_llm_requests_total{key=\"anonymous\",outcome=\"cancelled\","
                    "route=\"/v1/chat/completions\",upstream=\"llm\"}",
                    1) == 1);
  CHECK(read_metric(
            port, "ssegw_http_requests_total{code=\"202\",route=\"/v1/generations/{gen}\"}") == 1);

  // A late subscriber replays the answer up to the same end.
  SseStream late(port, gen);
  late.expect_ok();
  check_cancelled(late);

  // Finished: 404, as for a name that never ran; a malformed name is a 404 too.
  check_error(cancel(port, gen), 404, "not_found");
  check_error(cancel(port, "gen-0123456789abcdef0123456789abcdef"), 404, "not_found");
  check_error(cancel(port, "chat.1"), 404, "not_found");
  Response get = http(port, get_request("/v1/generations/" + gen));
  check_error(get, 405, "method_not_allowed");
  CHECK(get.header("allow") == "DELETE, OPTIONS");
  CHECK(read_metric(port, "ssegw_generations_cancelled_total") == 1);
}

TEST_CASE("cancel: a resumable answer's own client gets the error event and its stream ends") {
  MockLlm mock;
  Gateway gw(route_yaml(mock));
  const uint16_t port = gw.port();
  SseStream client = SseStream::raw(port, post_request(kLongChat, kChatBody));
  client.expect_ok();
  const std::string gen = client.head().header("sse-channel");
  REQUIRE(gen.rfind("gen-", 0) == 0);
  REQUIRE(client.next_event(5s));
  auto watcher = follow(port, gen);

  check_accepted(cancel(port, gen), gen);
  check_cancelled(client);
  check_cancelled(*watcher);
  CHECK(mock.wait_stat("cancelled", 1) == 1);
  CHECK(wait_metric(port, "ssegw_generations_running", 0) == 0);
  check_error(cancel(port, gen), 404, "not_found");
}

TEST_CASE("cancel: the starter's key and publish rights may cancel, others get 404 or 403") {
  MockLlm mock;
  Gateway gw(route_yaml(mock) +
             "cors: {allow_origins: [\"https://app.example\"]}\n"
             "auth:\n  keys:\n"
             "    - {name: web, token: \"web-key-0123456789\", routes: [\"/v1/chat/*\"]}\n"
             "    - {name: other, token: \"other-key-0123456789\", routes: [\"/v1/chat/*\"]}\n"
             "    - {name: watcher, token: \"watch-key-0123456789\", subscribe: [\"gen-*\"]}\n"
             "    - {name: ops, token: \"ops-key-0123456789\", publish: [\"gen-*\"]}\n"
             "  publish_tokens: [\"publish-token-0123456789\"]\n");
  const uint16_t port = gw.port();
  auto bearer = [](const std::string& token) { return "Authorization: Bearer " + token + "\r\n"; };
  const std::string web = bearer("web-key-0123456789");

  const std::string first = start_detached(port, web);
  REQUIRE(mock.wait_stat("active", 1) == 1);
  check_error(cancel(port, first), 401, "unauthorized");
  // Another key that cannot even subscribe to it cannot tell that it runs: 404.
  check_error(cancel(port, first, bearer("other-key-0123456789")), 404, "not_found");
  // A key that may subscribe to it could see it: 403.
  check_error(cancel(port, first, bearer("watch-key-0123456789")), 403, "forbidden");
  CHECK(mock.stat("active") == 1);
  CHECK(mock.stat("cancelled") == 0);
  // Publish rights on the channel stop anyone's generation.
  check_accepted(cancel(port, first, bearer("ops-key-0123456789")), first);
  CHECK(mock.wait_stat("cancelled", 1) == 1);

  // The starter itself, and a publish token.
  const std::string second = start_detached(port, web);
  REQUIRE(mock.wait_stat("active", 1) == 1);  // the mock is streaming: it sees the close
  check_accepted(cancel(port, second, web), second);
  CHECK(mock.wait_stat("cancelled", 2) == 2);
  const std::string third = start_detached(port, web);
  REQUIRE(mock.wait_stat("active", 1) == 1);
  check_accepted(cancel(port, third, bearer("publish-token-0123456789")), third);
  CHECK(mock.wait_stat("cancelled", 3) == 3);
  CHECK(wait_metric(port, "ssegw_generations_running", 0) == 0);
  CHECK(read_metric(port, "ssegw_generations_cancelled_total") == 3);

  // A browser may send the DELETE: the preflight allows it for a configured origin.
  Response preflight =
      http(port, "OPTIONS /v1/generations/" + third +
                     " HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://app.example\r\n"
                     "Access-Control-Request-Method: DELETE\r\n\r\n");
  INFO("preflight: \"", printable(preflight.raw), "\"");
  CHECK(preflight.status == 204);
  CHECK(split_list(preflight.header("access-control-allow-methods")).count("DELETE") == 1);
  CHECK(preflight.header("access-control-allow-origin") == "https://app.example");
}

TEST_CASE("cancel: cancels share the per-address publish rate limit") {
  Gateway gw("limits: {publish_rate_per_ip: 1, publish_burst_per_ip: 2}\n");
  const std::string gen = "gen-0123456789abcdef0123456789abcdef";
  check_error(cancel(gw.port(), gen), 404, "not_found");
  check_error(cancel(gw.port(), gen), 404, "not_found");
  Response limited = cancel(gw.port(), gen);
  check_error(limited, 429, "rate_limited");
  CHECK(!limited.header("retry-after").empty());
}

// One DELETE connection stays on one worker; generations are started on fresh connections, so
// that their names (owned by the worker that starts them) fall on both workers. The loop ends
// once a cancel has been relayed to the other worker and one has run where it arrived.
TEST_CASE("workers: a cancel reaches a generation that runs on the other worker") {
  MockLlm mock;
  Gateway gw("workers: 2\n" + route_yaml(mock));
  const uint16_t port = gw.port();
  Conn deleter(port);
  int cancelled = 0;
  double relayed = 0;
  for (int i = 0; i < 40 && (relayed == 0 || relayed == cancelled); ++i) {
    const std::string gen = start_detached(port);
    auto sub = follow(port, gen);
    check_accepted(deleter.request(delete_request(gen)), gen);
    ++cancelled;
    check_cancelled(*sub);
    CHECK(mock.wait_stat("cancelled", cancelled) == cancelled);
    relayed = read_metric(port, "ssegw_generation_cancels_relayed_total{via=\"worker\"}").value();
  }
  CHECK(relayed >= 1);
  CHECK(relayed < cancelled);
  CHECK(mock.wait_stat("active", 0) == 0);
  CHECK(wait_metric(port, "ssegw_generations_running", 0) == 0);
  CHECK(read_metric(port, "ssegw_generations_cancelled_total") == cancelled);
  // Finished generations, on either worker: 404 through the same connection.
  Response again = deleter.request(delete_request("gen-0123456789abcdef0123456789abcdef"));
  check_error(again, 404, "not_found");
}

TEST_CASE("cancel: a generation on another instance is cancelled through Redis") {
  MockLlm mock;
  RedisServer redis;
  const std::string yaml =
      redis_yaml(redis) + route_yaml(mock) +
      "auth:\n  anonymous_subscribe: true\n  keys:\n"
      "    - {name: web, token: \"web-key-0123456789\", routes: [\"/v1/chat/*\"]}\n"
      "    - {name: other, token: \"other-key-0123456789\", routes: [\"/v1/chat/*\"]}\n";
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", a.log());
  INFO("gateway B log:\n", b.log());
  REQUIRE(wait_metric(a.port(), "ssegw_backplane_links_up", 1, 10s) == 1);
  REQUIRE(wait_metric(b.port(), "ssegw_backplane_links_up", 1, 10s) == 1);
  const std::string web = "Authorization: Bearer web-key-0123456789\r\n";

  const std::string gen = start_detached(a.port(), web);
  auto on_a = follow(a.port(), gen);
  auto on_b = follow(b.port(), gen);
  // Another key may see it (anonymous_subscribe) but not stop it: 403 from B, from Redis's record.
  check_error(cancel(b.port(), gen, "Authorization: Bearer other-key-0123456789\r\n"), 403,
              "forbidden");
  CHECK(mock.stat("cancelled") == 0);

  check_accepted(cancel(b.port(), gen, web), gen);
  check_cancelled(*on_a);
  check_cancelled(*on_b);
  CHECK(mock.wait_stat("cancelled", 1) == 1);
  CHECK(read_metric(b.port(), "ssegw_generation_cancels_relayed_total{via=\"backplane\"}") == 1);
  CHECK(read_metric(a.port(), "ssegw_generations_cancelled_total") == 1);
  CHECK(wait_metric(a.port(), "ssegw_generations_running", 0) == 0);
  // Its Redis record went with it: 404 from both instances.
  check_error(cancel(b.port(), gen, web), 404, "not_found");
  check_error(cancel(a.port(), gen, web), 404, "not_found");
}

// The 503 is the truth: Redis's late answer to B's lookup (after the thaw) delivers no cancel. B's
// command connection answers in order, so by the time the second cancel's lookup is answered,
// the first one's has been, and a delivery it made would show in B's relay count (or, A being
// quicker, as a 404). The lease outlives the freeze, so that the late lookup finds the key.
TEST_CASE("cancel: Redis frozen: a cancel for another instance's generation gets 503 in time") {
  MockLlm mock;
  RedisServer redis;
  const std::string yaml = "backplane: {type: redis, url: \"" + redis.url() +
                           "\", key_prefix: \"tc:\", lease_ttl: 30s}\n" + route_yaml(mock) +
                           "limits: {owner_timeout: 1s}\n";
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", a.log());
  INFO("gateway B log:\n", b.log());
  REQUIRE(wait_metric(a.port(), "ssegw_backplane_links_up", 1, 10s) == 1);
  REQUIRE(wait_metric(b.port(), "ssegw_backplane_links_up", 1, 10s) == 1);
  const std::string gen = start_detached(a.port());
  REQUIRE(mock.wait_stat("active", 1) == 1);
  redis.freeze();  // the connections stay up, nothing is answered
  Conn c(b.port());
  Response r = c.request(delete_request(gen), 8s);
  redis.thaw();
  check_error(r, 503, "owner_timeout");
  CHECK(c.wait_closed(2s));
  // Redis back: the cancel goes through, delivered once: the one the 503 gave up was not. (A
  // freeze stretched past the PING watchdog would take the links down: both are up again first.)
  REQUIRE(wait_metric(a.port(), "ssegw_backplane_links_up", 1, 10s) == 1);
  REQUIRE(wait_metric(b.port(), "ssegw_backplane_links_up", 1, 10s) == 1);
  check_accepted(cancel(b.port(), gen), gen);
  CHECK(read_metric(b.port(), "ssegw_generation_cancels_relayed_total{via=\"backplane\"}") == 1);
  CHECK(mock.wait_stat("cancelled", 1) == 1);
  CHECK(read_metric(a.port(), "ssegw_generations_cancelled_total") == 1);
}

// A Redis that restarts has lost every key. The instance that runs a generation sets its key again
// as soon as it is reconnected, not a refresh period later (lease_ttl / 3: 20 s here), so that a
// cancel from another instance finds it. Twice: the first restart may come before A's first tick
// (the test is that quick), whose periodic refresh would bring the key back anyway; the second
// comes after a refresh, with the next periodic one 20 s away.
TEST_CASE("cancel: after Redis restarts, a running generation's key is back at once") {
  MockLlm mock;
  RedisServer redis;
  const std::string yaml = "backplane: {type: redis, url: \"" + redis.url() +
                           "\", key_prefix: \"tc:\", lease_ttl: 60s}\n" + route_yaml(mock);
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", a.log());
  INFO("gateway B log:\n", b.log());
  REQUIRE(wait_metric(a.port(), "ssegw_backplane_links_up", 1, 10s) == 1);
  REQUIRE(wait_metric(b.port(), "ssegw_backplane_links_up", 1, 10s) == 1);
  const std::string gen = start_detached(a.port());
  const std::string key = "tc:gen:" + gen;
  REQUIRE(wait_until([&] { return redis.command({"EXISTS", key}) == ":1"; }));
  for (long restarts = 1; restarts <= 2; ++restarts) {
    CAPTURE(restarts);
    redis.restart();  // empty: no persistence
    REQUIRE(wait_metric(a.port(), "ssegw_backplane_reconnects_total", restarts, 10s) == restarts);
    REQUIRE(wait_metric(b.port(), "ssegw_backplane_reconnects_total", restarts, 10s) == restarts);
    REQUIRE(wait_until([&] { return redis.command({"EXISTS", key}) == ":1"; }, 5s));
  }
  check_accepted(cancel(b.port(), gen), gen);
  CHECK(mock.wait_stat("cancelled", 1) == 1);
}

// With workers: 2 on both instances, each worker listens on its own cancel channel: a cancel from
// any worker of B reaches the worker of A that runs the generation. Several generations, started
// on fresh connections, fall on both of A's workers.
TEST_CASE("workers: on two instances sharing Redis, a cancel reaches the worker that runs it") {
  MockLlm mock;
  RedisServer redis;
  const std::string yaml = "workers: 2\n" + redis_yaml(redis) + route_yaml(mock);
  Gateway a(yaml), b(yaml);
  INFO("gateway A log:\n", a.log());
  INFO("gateway B log:\n", b.log());
  REQUIRE(wait_metric(a.port(), "ssegw_backplane_links_up", 2, 10s) == 2);
  REQUIRE(wait_metric(b.port(), "ssegw_backplane_links_up", 2, 10s) == 2);
  constexpr int kGenerations = 4;
  for (int i = 1; i <= kGenerations; ++i) {
    CAPTURE(i);
    const std::string gen = start_detached(a.port());
    auto on_b = follow(b.port(), gen);
    check_accepted(cancel(b.port(), gen), gen);
    check_cancelled(*on_b);
    CHECK(mock.wait_stat("cancelled", i) == i);
  }
  CHECK(read_metric(b.port(), "ssegw_generation_cancels_relayed_total{via=\"backplane\"}") ==
        kGenerations);
  CHECK(read_metric(a.port(), "ssegw_generations_cancelled_total") == kGenerations);
  CHECK(wait_metric(a.port(), "ssegw_generations_running", 0) == 0);
  CHECK(mock.wait_stat("active", 0) == 0);
}
