// The known HTTP/2 floods (docs/security.md "HTTP/2"): each ends the connection with GOAWAY
// within a bound of frames, and the process's memory does not grow with the flood.
#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/h2_client.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

constexpr uint32_t kEnhanceYourCalm = 0xb;

// How much the gateway's RSS may grow over a flood: a flood that each frame or stream left a
// trace of would pass it many times over (5000 streams, 10000 CONTINUATION frames). Under ASan
// freed memory waits in a quarantine first.
long max_growth_kib() {
  return gateway_sanitized() ? 32 * 1024 : 8 * 1024;
}

struct Flood {
  explicit Flood(uint16_t port) : fd(connect_to(port)) { send_all(fd.get(), h2_client_start()); }
  // Sends until the server closes (a write fails) or `bytes` are out.
  void send(const std::string& bytes) {
    try {
      send_all(fd.get(), bytes, 10s);
    } catch (const std::runtime_error&) {
      // The server closed mid-flood: what it sent before is still read below.
    }
  }
  // Reads until the close; the GOAWAY's error code.
  uint32_t goaway_and_close() {
    REQUIRE(read_frames(
        fd.get(), buffer, frames, eof, [&](const auto&) { return eof; }, 10s));
    const H2Frame* g = find_frame(frames, kGoaway);
    REQUIRE(g != nullptr);
    return g->error_code();
  }
  size_t count(uint8_t type) const {
    size_t n = 0;
    for (const H2Frame& f : frames) n += f.type == type;
    return n;
  }

  Fd fd;
  std::string buffer;
  std::vector<H2Frame> frames;
  bool eof = false;
};

}  // namespace

TEST_CASE("http2 floods: rapid reset (CVE-2023-44487) ends the connection, memory stays flat") {
  Gateway gw;
  // Warm up: one ordinary subscribe, so that the heap has its working size.
  {
    H2Client warm(gw.port());
    warm.finish(warm.get("/healthz"));
  }
  const long before = rss_kib(gw.pid());
  Flood f(gw.port());
  std::string burst;
  for (uint32_t i = 0; i < 5000; ++i) {
    uint32_t stream = 1 + 2 * i;
    burst += h2_get(stream, "/v1/channels/reset/events");
    burst += h2_frame(kRstStream, 0, stream, std::string("\0\0\0\x08", 4));
  }
  f.send(burst);
  // nghttp2's reset rate limit answers INTERNAL_ERROR.
  CHECK(f.goaway_and_close() == 2);
  CHECK(wait_metric(gw.port(), "ssegw_http2_streams_active", 0) == 0);
  CHECK(wait_subscribers(gw.port(), "reset", 0) == 0);
  const long after = rss_kib(gw.pid());
  INFO("RSS before ", before, " KiB, after ", after, " KiB");
  CHECK(after - before < max_growth_kib());
  // The gateway still serves.
  H2Client c(gw.port());
  CHECK(c.finish(c.get("/healthz")).status == 200);
}

TEST_CASE("http2 floods: CONTINUATION flood (CVE-2024-28182) ends the connection") {
  Gateway gw;
  const long before = rss_kib(gw.pid());
  Flood f(gw.port());
  std::string flood = h2_frame(kHeaders, 0x1 /* END_STREAM, no END_HEADERS */, 1,
                               h2_headers_block({{":method", "GET"}, {":path", "/"}}));
  const std::string piece =
      h2_frame(kContinuation, 0, 1, h2_headers_block({{"x-flood", std::string(100, 'a')}}));
  for (int i = 0; i < 10000; ++i) flood += piece;  // ~1 MB of header block
  f.send(flood);
  CHECK(f.goaway_and_close() != 0);
  const long after = rss_kib(gw.pid());
  INFO("RSS before ", before, " KiB, after ", after, " KiB");
  CHECK(after - before < max_growth_kib());
}

TEST_CASE("http2 floods: PING and SETTINGS floods get GOAWAY ENHANCE_YOUR_CALM") {
  Gateway gw;
  for (uint8_t type : {kPing, kSettings}) {
    CAPTURE(static_cast<int>(type));
    Flood f(gw.port());
    std::string flood;
    const std::string payload = type == kPing ? std::string(8, '\0') : std::string();
    for (int i = 0; i < 5000; ++i) flood += h2_frame(type, 0, 0, payload);
    f.send(flood);
    CHECK(f.goaway_and_close() == kEnhanceYourCalm);
    // Acknowledged up to the budget (the first SETTINGS is the client's own), never all 5000.
    CHECK(f.count(type) <= 256 + 1);
  }
  CHECK(read_metric(gw.port(), "ssegw_http2_floods_total") == 2);
  CHECK(read_metric(gw.port(), "ssegw_http2_goaway_sent_total{error=\"enhance_your_calm\"}") == 2);
}

TEST_CASE("http2 floods: empty DATA and empty CONTINUATION frames get ENHANCE_YOUR_CALM") {
  Gateway gw;
  {
    Flood f(gw.port());
    std::string flood = h2_frame(kHeaders, 0x4 /* END_HEADERS, no END_STREAM */, 1,
                                 h2_headers_block({{":method", "POST"},
                                                   {":scheme", "http"},
                                                   {":authority", "127.0.0.1"},
                                                   {":path", "/v1/channels/e/events"}}));
    for (int i = 0; i < 5000; ++i) flood += h2_frame(kData, 0, 1, "");
    f.send(flood);
    CHECK(f.goaway_and_close() == kEnhanceYourCalm);
  }
  {
    Flood f(gw.port());
    std::string flood =
        h2_frame(kHeaders, 0x1, 1, h2_headers_block({{":method", "GET"}, {":path", "/"}}));
    for (int i = 0; i < 5000; ++i) flood += h2_frame(kContinuation, 0, 1, "");
    f.send(flood);
    CHECK(f.goaway_and_close() != 0);  // the CONTINUATION limit or the empty-frame budget
  }
  CHECK(read_metric(gw.port(), "ssegw_http2_floods_total") >= 1);
}

TEST_CASE("http2 floods: resets the server is made to send (MadeYouReset) spend the reset budget") {
  // CVE-2025-8671: each request is dispatched (a subscription joins its channel), then a
  // WINDOW_UPDATE overflows the stream's window and nghttp2 itself resets the stream
  // (FLOW_CONTROL_ERROR), which its rapid-reset limit does not count.
  Gateway gw;
  Flood f(gw.port());
  // In batches, each sent once the last one's resets are back (as an attacker keeps the streams
  // under http2.max_concurrent_streams): 3000 streams, unless the connection ends first.
  constexpr uint32_t kBatch = 100, kBatches = 30;
  auto resets = [](const std::vector<H2Frame>& frames) {
    size_t n = 0;
    for (const H2Frame& frame : frames)
      n += frame.type == kRstStream && frame.error_code() == 3 /* FLOW_CONTROL_ERROR */;
    return n;
  };
  uint32_t stream = 1;
  for (uint32_t b = 0; b < kBatches && !f.eof && !find_frame(f.frames, kGoaway); ++b) {
    std::string batch;
    for (uint32_t i = 0; i < kBatch; ++i, stream += 2) {
      batch += h2_get(stream, "/v1/channels/made-you-reset/events");
      batch += h2_frame(kWindowUpdate, 0, stream, std::string("\x7f\xff\xff\xff", 4));
    }
    f.send(batch);
    REQUIRE(read_frames(f.fd.get(), f.buffer, f.frames, f.eof, [&](const auto& frames) {
      return resets(frames) == (b + 1) * kBatch || find_frame(frames, kGoaway);
    }));
  }
  CHECK(f.goaway_and_close() == kEnhanceYourCalm);
  // The budget (256) and the rest of the batch read before the GOAWAY went out: never 3000.
  const size_t made_to_reset = resets(f.frames);
  const double joined =
      read_metric(gw.port(),
                  "ssegw_http_requests_total{code=\"200\",route=\"/v1/channels/{channel}/events\"}")
          .value_or(0);
  INFO("FLOW_CONTROL_ERROR resets: ", made_to_reset, ", subscriptions started: ", joined);
  CHECK(made_to_reset > 256);
  CHECK(made_to_reset <= 256 + kBatch);
  CHECK(joined <= 256 + kBatch);
  CHECK(read_metric(gw.port(), "ssegw_http2_floods_total") == 1);
  CHECK(wait_metric(gw.port(), "ssegw_http2_streams_active", 0) == 0);
  CHECK(wait_subscribers(gw.port(), "made-you-reset", 0) == 0);
}
