#include "gateway/http/strict_scanner.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using namespace ssegw;

using http::StrictScanner;
using Body = http::StrictScanner::Body;

namespace {

size_t scan(StrictScanner& s, std::string_view bytes) {
  return s.scan(bytes.data(), bytes.size());
}

}  // namespace

TEST_CASE("http/strict_scanner: stops at the end of the head until told the body") {
  std::string head = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n";
  std::string next = "GET /b HTTP/1.1\r\n\r\n";
  StrictScanner s;
  CHECK(scan(s, head + "abc" + next) == head.size());
  CHECK(s.head_done());
  CHECK_FALSE(s.accepts_bytes());
  CHECK(scan(s, "abc") == 0);  // nothing is read while it waits
  s.begin_body(Body::kLength, 3);
  CHECK(s.accepts_bytes());
  CHECK(scan(s, "ab") == 2);
  CHECK(scan(s, "c" + next) == 1);  // the next request is not its business
  CHECK(s.done());
  CHECK(s.error() == nullptr);
  s.reset();
  CHECK(scan(s, next) == next.size());
  CHECK(s.head_done());
  s.begin_body(Body::kNone, 0);
  CHECK(s.done());
}

TEST_CASE("http/strict_scanner: a chunked body ends after its trailer section") {
  std::string body = "3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n";
  for (size_t split = 0; split <= body.size(); ++split) {
    CAPTURE(split);
    StrictScanner s;
    REQUIRE(scan(s, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
    REQUIRE(s.head_done());
    s.begin_body(Body::kChunked, 0);
    size_t used = scan(s, std::string_view(body).substr(0, split));
    used += scan(s, body.substr(used) + "GET");
    CHECK(used == body.size());
    CHECK(s.done());
    CHECK(s.take_extension_bytes() == 4);  // ";a=b"
    CHECK(s.take_extension_bytes() == 0);
  }
}

TEST_CASE("http/strict_scanner: empty lines before the request line are counted") {
  StrictScanner s;
  CHECK(scan(s, "\r\n\r\nGET / HTTP/1.1\r\n\r\n") == 22);
  CHECK(s.head_done());
  CHECK(s.take_empty_line_bytes() == 4);
}

TEST_CASE("http/strict_scanner: the first bad byte stops it, with a reason") {
  StrictScanner s;
  std::string_view bytes = "GET / HTTP/1.1\r\nA: 1\r\n b\r\n\r\n";
  CHECK(scan(s, bytes) == bytes.find("\r\n b") + 2);
  REQUIRE(s.error() != nullptr);
  CHECK(std::string(s.error()) == "header line starting with whitespace (obs-fold)");
  CHECK_FALSE(s.accepts_bytes());
  CHECK(scan(s, "GET / HTTP/1.1\r\n\r\n") == 0);
}
