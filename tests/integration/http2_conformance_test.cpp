// RFC 9113 conformance cases that apply to the gateway's HTTP/2 (h2spec-style), written as raw
// frames (h2_client.hpp): what a well-behaved client library would refuse to send.
#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/h2_client.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

constexpr uint32_t kProtocolError = 1, kStreamClosed = 5, kFrameSizeError = 6;

}  // namespace

TEST_CASE("http2 conformance: a preface not followed by SETTINGS is a connection error") {
  Gateway gw;
  RawH2 c(gw.port(), /*start=*/false);
  c.send(std::string(kH2Preface) + h2_frame(kPing, 0, 0, std::string(8, '\0')));
  CHECK(c.goaway_and_close() == kProtocolError);
  CHECK(read_metric(gw.port(), "ssegw_http2_goaway_sent_total{error=\"protocol_error\"}") == 1);
}

TEST_CASE("http2 conformance: bytes that differ from the preface are HTTP/1.1: 400, then close") {
  Gateway gw;
  Conn c(gw.port());
  c.send("PRI * HTTP/2.0\r\n\r\nSX\r\n\r\n");  // one byte off
  // Not the preface: HTTP/1.1's parser sees "PRI * HTTP/2.0", a request it refuses.
  Response r = c.read_response();
  CHECK(r.status == 400);
  CHECK(c.wait_closed(kTimeout));
}

TEST_CASE("http2 conformance: garbage right after the preface is a connection error") {
  Gateway gw;
  RawH2 c(gw.port(), /*start=*/false);
  c.send(std::string(kH2Preface) + "GET / HTTP/1.1\r\n\r\n");
  CHECK(c.goaway_and_close() == kProtocolError);
}

TEST_CASE("http2 conformance: a frame larger than SETTINGS_MAX_FRAME_SIZE is FRAME_SIZE_ERROR") {
  Gateway gw;
  RawH2 c(gw.port());
  c.send(h2_frame(kPing, 0, 0, std::string(16385, '\0')));
  CHECK(c.goaway_and_close() == kFrameSizeError);
}

TEST_CASE("http2 conformance: DATA on an idle stream is a connection error") {
  Gateway gw;
  RawH2 c(gw.port());
  c.send(h2_frame(kData, 0, 1, "hello"));
  CHECK(c.goaway_and_close() == kProtocolError);
}

TEST_CASE("http2 conformance: DATA after the client's END_STREAM is STREAM_CLOSED") {
  Gateway gw;
  RawH2 c(gw.port());
  // A subscription: the client's side is closed (END_STREAM), the answer goes on.
  c.send(h2_get(1, "/v1/channels/half/events"));
  REQUIRE(c.until([&](const auto& frames) { return find_frame(frames, kHeaders, 1) != nullptr; }));
  c.send(h2_frame(kData, 0, 1, "late"));
  REQUIRE(c.until([&](const auto& frames) {
    return find_frame(frames, kRstStream, 1) || find_frame(frames, kGoaway);
  }));
  const H2Frame* e = c.rst(1);
  if (!e) e = find_frame(c.frames, kGoaway);
  CHECK(e->error_code() == kStreamClosed);
  CHECK(wait_subscribers(gw.port(), "half", 0) == 0);
}

TEST_CASE("http2 conformance: DATA on a stream that has closed is ignored") {
  // RFC 9113 5.1 lets an endpoint ignore frames on a closed stream; nghttp2 keeps no closed
  // streams (no RFC 7540 priorities), so it cannot tell them from streams reset long ago.
  Gateway gw;
  RawH2 c(gw.port());
  c.send(h2_get(1, "/healthz"));
  REQUIRE(c.until([&](const auto&) { return c.ended(1); }));
  CHECK(c.body(1) == "{\"status\":\"ok\"}\n");
  c.send(h2_frame(kData, 0, 1, "late") + h2_get(3, "/healthz"));
  REQUIRE(c.until([&](const auto&) { return c.ended(3); }));
  CHECK(c.body(3) == "{\"status\":\"ok\"}\n");
  CHECK(find_frame(c.frames, kGoaway) == nullptr);
}

TEST_CASE("http2 conformance: malformed requests reset their stream, and the connection goes on") {
  Gateway gw;
  RawH2 c(gw.port());
  // An upper-case field name (RFC 9113 8.2.1).
  c.send(h2_get(1, "/healthz", {{"X-Upper", "1"}}));
  // No :path (8.3.1).
  c.send(h2_frame(
      kHeaders, 0x5, 3,
      h2_headers_block({{":method", "GET"}, {":scheme", "http"}, {":authority", "127.0.0.1"}})));
  // An unknown pseudo-header field.
  c.send(h2_get(5, "/healthz", {{":bogus", "1"}}));
  // A connection-specific field (8.2.2).
  c.send(h2_get(7, "/healthz", {{"connection", "close"}}));
  c.send(h2_get(9, "/healthz"));
  REQUIRE(c.until([&](const auto&) { return c.ended(9); }));
  for (uint32_t stream : {1u, 3u, 5u, 7u}) {
    CAPTURE(stream);
    const H2Frame* r = c.rst(stream);
    REQUIRE(r != nullptr);
    CHECK(r->error_code() == kProtocolError);
  }
  CHECK(c.body(9) == "{\"status\":\"ok\"}\n");
  CHECK(find_frame(c.frames, kGoaway) == nullptr);
}

TEST_CASE("http2 conformance: CONNECT, a bad :path and an unknown method get HTTP/1.1's 400") {
  Gateway gw;
  RawH2 c(gw.port());
  c.send(h2_frame(kHeaders, 0x5, 1,
                  h2_headers_block({{":method", "CONNECT"}, {":authority", "example.com:443"}})));
  c.send(h2_frame(kHeaders, 0x5, 3,
                  h2_headers_block({{":method", "GET"},
                                    {":scheme", "http"},
                                    {":authority", "127.0.0.1"},
                                    {":path", "/a#frag"}})));
  c.send(h2_frame(kHeaders, 0x5, 5,
                  h2_headers_block({{":method", "BREW"},
                                    {":scheme", "http"},
                                    {":authority", "127.0.0.1"},
                                    {":path", "/"}})));
  REQUIRE(c.until([&](const auto&) { return c.ended(1) && c.ended(3) && c.ended(5); }));
  CHECK(c.body(1) ==
        "{\"error\":{\"code\":\"bad_request\",\"message\":\"CONNECT is not supported (no "
        "authority-form targets)\"}}\n");
  CHECK(c.body(3) ==
        "{\"error\":{\"code\":\"bad_request\",\"message\":\"the request target must not contain "
        "a fragment ('#')\"}}\n");
  CHECK(c.body(5) == "{\"error\":{\"code\":\"bad_request\",\"message\":\"unknown method\"}}\n");
  CHECK(read_metric(gw.port(), "ssegw_http_requests_total{code=\"400\",route=\"unmatched\"}") == 3);
}

TEST_CASE("http2 conformance: header bytes past limits.max_header_bytes get 431") {
  Gateway gw("limits: {max_header_bytes: 200}\n");
  RawH2 c(gw.port());
  c.send(
      h2_get(1, "/healthz", {{"x-big", std::string(120, 'a')}, {"x-big2", std::string(100, 'b')}}));
  // The same without END_STREAM: a request that would go on with a body.
  HeaderPairs post = {{":method", "POST"},
                      {":scheme", "http"},
                      {":authority", "127.0.0.1"},
                      {":path", "/v1/channels/a/events"},
                      {"x-big", std::string(120, 'a')},
                      {"x-big2", std::string(100, 'b')}};
  c.send(h2_frame(kHeaders, 0x4 /* END_HEADERS */, 3, h2_headers_block(post)));
  REQUIRE(c.until([&](const auto&) { return c.ended(1) && c.rst(3); }));
  const std::string error =
      "{\"error\":{\"code\":\"headers_too_large\",\"message\":\"headers exceed 200 bytes\"}}\n";
  CHECK(c.body(1) == error);
  CHECK(c.body(3) == error);
  // The answer first, then RST_STREAM NO_ERROR: the rest of the request is not wanted (8.1).
  CHECK(c.ended(3));
  CHECK(c.rst(3)->error_code() == 0);
  CHECK(c.rst(1) == nullptr);
}

TEST_CASE("http2 conformance: a connection with no request in header_timeout gets GOAWAY") {
  Gateway gw("limits: {header_timeout: 300ms, idle_timeout: 600ms}\n");
  {
    RawH2 c(gw.port());  // the preface and SETTINGS, then nothing
    CHECK(c.goaway_and_close() == 0);
    // GOAWAY's last stream id: none was processed.
    CHECK(find_frame(c.frames, kGoaway)->payload.substr(0, 4) == std::string(4, '\0'));
  }
  {
    // After a request, the idle timeout applies once no stream is open.
    RawH2 c(gw.port());
    c.send(h2_get(1, "/healthz"));
    REQUIRE(c.until([&](const auto&) { return c.ended(1); }));
    CHECK(c.goaway_and_close() == 0);
    CHECK(find_frame(c.frames, kGoaway)->payload.substr(0, 4) == std::string("\0\0\0\x01", 4));
  }
  CHECK(read_metric(gw.port(), "ssegw_http2_goaway_sent_total{error=\"no_error\"}") == 2);
}
