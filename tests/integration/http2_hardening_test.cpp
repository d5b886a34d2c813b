// HTTP/2 attacks that a review found (docs/security.md "HTTP/2"), as raw frames: trailers that
// would join the request's headers, memory pinned by HPACK references behind a shut window, and
// resets the server itself sends ("MadeYouReset", CVE-2025-8671).
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/h2_client.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

constexpr uint8_t kEndStream = 0x1, kEndHeaders = 0x4;

// How much the gateway's RSS may grow over an attack (as in http2_floods_test.cpp); under ASan
// freed memory waits in a quarantine first.
long max_growth_kib() {
  return gateway_sanitized() ? 32 * 1024 : 8 * 1024;
}

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

TEST_CASE(
    "http2 hardening: HPACK references behind a shut window pin no memory, stalled answers are "
    "reset") {
  Gateway gw("slow_consumer: {stall_timeout: 500ms}\n");
  {
    H2Client warm(gw.port());
    warm.finish(warm.get("/healthz"));
  }
  const long before = rss_kib(gw.pid());
  // SETTINGS_INITIAL_WINDOW_SIZE 0: no answer's DATA ever leaves. Each request holds 3200
  // one-byte references to a dynamic table entry of an empty field ("a": "").
  constexpr uint32_t kStreams = 128;
  std::vector<std::unique_ptr<RawH2>> conns;
  for (int k = 0; k < 2; ++k) {
    auto c = std::make_unique<RawH2>(gw.port(), /*start=*/false);
    std::string out(kH2Preface);
    out += h2_frame(kSettings, 0, 0, std::string("\x00\x04\x00\x00\x00\x00", 6));
    for (uint32_t i = 0; i < kStreams; ++i) {
      std::string block = h2_headers_block({{":method", "GET"},
                                            {":scheme", "http"},
                                            {":authority", "127.0.0.1"},
                                            {":path", "/nope"}});
      if (i == 0)
        block += std::string(
            "\x40\x01"
            "a\x00",
            4);  // incremental indexing: entry 62
      block.append(3200, '\xbe');
      out += h2_frame(kHeaders, kEndHeaders | kEndStream, 1 + 2 * i, block);
    }
    c->send(out);
    conns.push_back(std::move(c));
  }
  auto count = [](const std::vector<H2Frame>& frames, uint8_t type) {
    size_t n = 0;
    for (const H2Frame& f : frames) n += f.type == type;
    return n;
  };
  // Every request is answered (HEADERS go out; the body waits on the window).
  for (auto& c : conns)
    REQUIRE(c->until([&](const auto& frames) { return count(frames, kHeaders) == kStreams; }));
  const long after = rss_kib(gw.pid());
  INFO("RSS before ", before, " KiB, after ", after, " KiB");
  CHECK(after - before < max_growth_kib());
  // Their answers never move: each stream is reset after slow_consumer.stall_timeout.
  for (auto& c : conns) {
    REQUIRE(c->until([&](const auto& frames) { return count(frames, kRstStream) == kStreams; }));
    for (const H2Frame& f : c->frames)
      if (f.type == kRstStream) CHECK(f.error_code() == 8 /* CANCEL */);
    CHECK(find_frame(c->frames, kGoaway) == nullptr);
  }
  CHECK(wait_metric(gw.port(), "ssegw_http2_streams_stalled_total", 2 * kStreams) == 2 * kStreams);
  CHECK(wait_metric(gw.port(), "ssegw_http2_streams_active", 0) == 0);
}

TEST_CASE("http2 hardening: request headers held across a connection's streams are capped") {
  // 32 x limits.max_header_bytes: requests whose END_STREAM never comes each hold 870 bytes
  // (HPACK's count), so the 37th goes past 32000.
  Gateway gw("limits: {max_header_bytes: 1000}\n");
  RawH2 c(gw.port());
  const std::string value(100, 'v');
  std::string out;
  for (uint32_t i = 0; i < 37; ++i)
    out += h2_frame(kHeaders, kEndHeaders, 1 + 2 * i,
                    h2_headers_block({{":method", "POST"},
                                      {":scheme", "http"},
                                      {":authority", "127.0.0.1"},
                                      {":path", "/v1/channels/x/events"},
                                      {"x-a", value},
                                      {"x-b", value},
                                      {"x-c", value},
                                      {"x-d", value},
                                      {"x-e", value}}));
  c.send(out);
  REQUIRE(c.until([&](const auto&) { return c.ended(73); }));
  CHECK(c.body(73) ==
        "{\"error\":{\"code\":\"headers_too_large\",\"message\":\"the connection holds too many "
        "request headers\"}}\n");
  for (uint32_t i = 0; i < 36; ++i) CHECK(c.body(1 + 2 * i).empty());
  // A request whose stream ended frees its share: the next one fits again.
  c.send(h2_frame(kRstStream, 0, 1, std::string("\0\0\0\x08", 4)) + h2_get(75, "/healthz"));
  REQUIRE(c.until([&](const auto&) { return c.ended(75); }));
  CHECK(c.body(75) == "{\"status\":\"ok\"}\n");
}
