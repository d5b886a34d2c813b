// HTTP/2 attacks that a review found (docs/security.md "HTTP/2"), as raw frames: trailers that
// would join the request's headers, memory pinned by HPACK references behind a shut window, and
// resets the server itself sends ("MadeYouReset", CVE-2025-8671).
#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/h2_client.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

constexpr uint8_t kEndStream = 0x1, kEndHeaders = 0x4;

const std::string kChatBody =
    "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

}  // namespace

TEST_CASE("http2 hardening: a trailer's Authorization does not authenticate the request") {
  Gateway gw(
      "auth:\n  anonymous_subscribe: false\n  keys:\n"
      "    - {name: web, token: \"web-key-0123456789\", subscribe: [\"*\"]}\n");
  RawH2 c(gw.port());
  c.send(h2_frame(kHeaders, kEndHeaders, 1,
                  h2_headers_block({{":method", "GET"},
                                    {":scheme", "http"},
                                    {":authority", "127.0.0.1"},
                                    {":path", "/v1/channels/t/events"}})));
  c.send(h2_frame(kHeaders, kEndHeaders | kEndStream, 1,
                  h2_headers_block({{"authorization", "Bearer web-key-0123456789"}})));
  REQUIRE(c.until([&](const auto&) { return !c.body(1).empty(); }));
  INFO("body: ", c.body(1));
  CHECK(c.body(1).find("\"code\":\"unauthorized\"") != std::string::npos);
  CHECK(c.ended(1));
}

TEST_CASE("http2 hardening: trailer fields never reach the upstream") {
  MockLlm mock;
  Gateway gw("upstreams:\n  llm: {url: \"" + mock.url() +
             "\"}\nroutes:\n  - {path: /v1/chat/completions, upstream: llm}\n");
  RawH2 c(gw.port());
  c.send(h2_frame(kHeaders, kEndHeaders, 1,
                  h2_headers_block({{":method", "POST"},
                                    {":scheme", "http"},
                                    {":authority", "127.0.0.1"},
                                    {":path", "/v1/chat/completions?tokens=2&interval_ms=1"},
                                    {"content-type", "application/json"}})));
  c.send(h2_frame(kData, 0, 1, kChatBody));
  // Passed on, X-Mock-Status would make the mock answer 500 instead of streaming.
  c.send(h2_frame(kHeaders, kEndHeaders | kEndStream, 1,
                  h2_headers_block({{"x-mock-status", "500"},
                                    {"x-forwarded-for", "203.0.113.9"},
                                    {"cookie", "session=stolen"}})));
  REQUIRE(c.until([&](const auto&) { return c.ended(1); }));
  INFO("body: ", printable(c.body(1)));
  CHECK(c.body(1).ends_with("data: [DONE]\n\n"));
  CHECK(c.body(1).find("tok1 ") != std::string::npos);
  CHECK(mock.wait_stat("completed", 1) == 1);
}
