#include "upstream/forwarding.hpp"

#include <doctest/doctest.h>

#include <string>

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
  CHECK(complete_sse_prefix("data: a\n\ndata: b\n\ndata: c") == 18);
  CHECK(complete_sse_prefix("data: c") == 0);
}

TEST_CASE("upstream/forwarding: the error event's data escapes what it is given") {
  CHECK(upstream::error_event_json("cancelled", "stopped \"now\"") ==
        R"({"error":{"type":"cancelled","message":"stopped \"now\""}})");
}
