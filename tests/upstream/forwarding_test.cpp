#include "upstream/forwarding.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using namespace ssegw;
using upstream::complete_sse_prefix;
using upstream::sse_event_end;

TEST_CASE("upstream/forwarding: hop-by-hop headers (names as the parser gives them, lower case)") {
  for (const char* name : {"connection", "keep-alive", "te", "trailer", "transfer-encoding",
                           "upgrade", "host", "content-length", "expect", "accept-encoding"})
    CHECK_MESSAGE(upstream::is_hop_by_hop(name), name);
  for (const char* name : {"authorization", "content-type", "x-mock-tokens", "traceparent"})
    CHECK_FALSE_MESSAGE(upstream::is_hop_by_hop(name), name);
}

TEST_CASE("upstream/forwarding: event boundaries under every line end") {
  CHECK(sse_event_end("data: a\n\ndata: b\n\n") == 9);
  CHECK(sse_event_end("data: a\r\n\r\ndata: b") == 11);
  CHECK(sse_event_end("data: a\r\rx") == 9);
  CHECK(sse_event_end("data: a\n") == 0);
  CHECK(sse_event_end("") == 0);
  // LF lines are searched line by line; a line with a CR is read byte by byte from its start.
  CHECK(sse_event_end("id: 1\ndata: a\r\n\r\nx") == 17);
  CHECK(sse_event_end("id: 1\ndata: a\r\r") == 15);
  CHECK(sse_event_end("id: 1\r\ndata: a\n\nx") == 16);
  CHECK(sse_event_end("\n") == 1);
  CHECK(sse_event_end("\r") == 1);
  CHECK(sse_event_end("data: a\n\r\n") == 10);  // a blank line is CRLF alone too
  CHECK(sse_event_end("data: a\ndata: b\n") == 0);
  CHECK(complete_sse_prefix("data: a\n\ndata: b\n\ndata: c") == 18);
  CHECK(complete_sse_prefix("data: c") == 0);
}

namespace {

// The definition, byte by byte: a line ends at CR, LF or CRLF; an empty line ends the event.
size_t reference_event_end(std::string_view data) {
  size_t line_length = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] != '\r' && data[i] != '\n') {
      ++line_length;
      continue;
    }
    if (data[i] == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
    if (line_length == 0) return i + 1;
    line_length = 0;
  }
  return 0;
}

}  // namespace

TEST_CASE("upstream/forwarding: event ends agree with the byte-by-byte definition") {
  // Every string of up to 7 bytes over {a, CR, LF}: 3,280 of them.
  const char alphabet[] = {'a', '\r', '\n'};
  for (size_t length = 0; length <= 7; ++length) {
    size_t count = 1;
    for (size_t i = 0; i < length; ++i) count *= 3;
    for (size_t n = 0; n < count; ++n) {
      std::string data;
      for (size_t i = 0, v = n; i < length; ++i, v /= 3) data += alphabet[v % 3];
      if (sse_event_end(data) != reference_event_end(data)) {
        CAPTURE(data);
        CHECK(sse_event_end(data) == reference_event_end(data));
      }
    }
  }
}

TEST_CASE("upstream/forwarding: the error event's data escapes what it is given") {
  CHECK(upstream::error_event_json("cancelled", "stopped \"now\"") ==
        R"({"error":{"type":"cancelled","message":"stopped \"now\""}})");
}
