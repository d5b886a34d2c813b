#include "gateway/http/request_parser.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gateway/http/request.hpp"

using http::ParserLimits;
using http::Request;
using http::RequestParser;
using Status = http::RequestParser::Status;

namespace {

ParserLimits limits(size_t max_header_bytes = 16 * 1024, size_t max_body_bytes = 1024 * 1024) {
  ParserLimits l;
  l.max_header_bytes = max_header_bytes;
  l.max_body_bytes = max_body_bytes;
  return l;
}

RequestParser::Result feed(RequestParser& parser, std::string_view bytes) {
  return parser.feed(bytes.data(), bytes.size());
}

// Everything a test compares between two parses of the same request.
std::string describe(const Request& r) {
  std::string out = std::to_string(r.method) + " " + r.target + " " +
                    std::to_string(r.version_major) + "." + std::to_string(r.version_minor) +
                    (r.keep_alive ? " keep-alive" : " close") +
                    (r.expect_continue ? " continue" : "") + "\n";
  for (const http::Header& h : r.headers) out += "[" + h.name + "]=[" + h.value + "]\n";
  out += "body=[" + r.body + "]";
  return out;
}

// Parses one complete request fed at once; fails the test if it is not complete.
std::string parse_whole(std::string_view bytes, ParserLimits l = limits()) {
  RequestParser parser(l);
  RequestParser::Result result = feed(parser, bytes);
  REQUIRE(result.status == Status::kComplete);
  CHECK(result.consumed == bytes.size());
  return describe(parser.request());
}

// The error of a request fed at once.
http::ParseError parse_error(std::string_view bytes, ParserLimits l = limits()) {
  RequestParser parser(l);
  RequestParser::Result result = feed(parser, bytes);
  CHECK(result.status == Status::kError);
  return parser.error();
}

}  // namespace

TEST_CASE("http/request_parser: a simple GET") {
  RequestParser parser(limits());
  std::string_view bytes =
      "GET /v1/channels/abc/events?last_event_id=1-0 HTTP/1.1\r\n"
      "Host: example.com\r\n"
      "Last-Event-ID: 5-0\r\n"
      "\r\n";
  RequestParser::Result result = feed(parser, bytes);
  CHECK(result.status == Status::kComplete);
  CHECK(result.consumed == bytes.size());
  const Request& r = parser.request();
  CHECK(r.method == HTTP_GET);
  CHECK(r.target == "/v1/channels/abc/events?last_event_id=1-0");
  CHECK(r.path() == "/v1/channels/abc/events");
  CHECK(r.query() == "last_event_id=1-0");
  CHECK(r.version_major == 1);
  CHECK(r.version_minor == 1);
  CHECK_FALSE(r.http10());
  CHECK(r.keep_alive);
  CHECK_FALSE(r.expect_continue);
  REQUIRE(r.headers.size() == 2);
  CHECK(r.headers[0].name == "host");
  CHECK(r.headers[0].value == "example.com");
  CHECK(r.header("last-event-id") == "5-0");
  CHECK(r.has_header("host"));
  CHECK_FALSE(r.has_header("Host"));  // lookups use lower-case names
  CHECK(r.header("missing").empty());
  CHECK(r.body.empty());
  CHECK(parser.headers_complete());
  CHECK_FALSE(parser.upgrade());
}

TEST_CASE("http/request_parser: header names are lower-cased, values kept") {
  RequestParser parser(limits());
  std::string_view bytes =
      "GET / HTTP/1.1\r\nX-Custom-HEADER: Mixed Case Value\r\nACCEPT: text/event-stream\r\n\r\n";
  REQUIRE(feed(parser, bytes).status == Status::kComplete);
  const Request& r = parser.request();
  REQUIRE(r.headers.size() == 2);
  CHECK(r.headers[0].name == "x-custom-header");
  CHECK(r.headers[0].value == "Mixed Case Value");
  CHECK(r.headers[1].name == "accept");
  CHECK(r.headers[1].value == "text/event-stream");
}

TEST_CASE("http/request_parser: empty header values") {
  std::string bytes = "GET / HTTP/1.1\r\nX-Empty:\r\nHost: h\r\nX-Blank:   \r\nAccept: */*\r\n\r\n";
  std::string expected =
      "1 / 1.1 keep-alive\n[x-empty]=[]\n[host]=[h]\n[x-blank]=[]\n[accept]=[*/*]\nbody=[]";
  CHECK(parse_whole(bytes) == expected);
  for (size_t split = 1; split < bytes.size(); ++split) {
    CAPTURE(split);
    RequestParser parser(limits());
    REQUIRE(parser.feed(bytes.data(), split).status == Status::kNeedMore);
    REQUIRE(parser.feed(bytes.data() + split, bytes.size() - split).status == Status::kComplete);
    CHECK(describe(parser.request()) == expected);
  }
}

TEST_CASE("http/request_parser: a request split at every byte boundary parses the same") {
  std::string bytes =
      "POST /v1/channels/room-1/events?event=token HTTP/1.1\r\n"
      "Host: localhost:8080\r\n"
      "Content-Type: text/plain\r\n"
      "X-Long-Header-Name: some value with spaces\r\n"
      "Content-Length: 11\r\n"
      "\r\n"
      "hello world";
  std::string whole = parse_whole(bytes);
  CHECK(whole.find("body=[hello world]") != std::string::npos);
  for (size_t split = 1; split < bytes.size(); ++split) {
    CAPTURE(split);
    RequestParser parser(limits());
    RequestParser::Result first = parser.feed(bytes.data(), split);
    REQUIRE(first.status == Status::kNeedMore);
    CHECK(first.consumed == split);
    CHECK(parser.in_progress());
    RequestParser::Result second = parser.feed(bytes.data() + split, bytes.size() - split);
    REQUIRE(second.status == Status::kComplete);
    CHECK(second.consumed == bytes.size() - split);
    CHECK(describe(parser.request()) == whole);
  }
}

TEST_CASE("http/request_parser: a request fed one byte at a time") {
  std::string bytes =
      "GET /x?a=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
  std::string whole = parse_whole(bytes);
  RequestParser parser(limits());
  for (size_t i = 0; i < bytes.size(); ++i) {
    CAPTURE(i);
    RequestParser::Result r = parser.feed(bytes.data() + i, 1);
    CHECK(r.consumed == 1);
    CHECK(r.status == (i + 1 == bytes.size() ? Status::kComplete : Status::kNeedMore));
  }
  CHECK(describe(parser.request()) == whole);
  CHECK(parser.request().body == "abc");
}

TEST_CASE("http/request_parser: pipelined requests come out one at a time") {
  std::string first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string second = "POST /b HTTP/1.1\r\nHost: y\r\nContent-Length: 3\r\n\r\nabc";
  std::string third = "GET /c HTTP/1.1\r\n\r\n";
  std::string all = first + second + third;
  RequestParser parser(limits());

  RequestParser::Result r = feed(parser, all);
  REQUIRE(r.status == Status::kComplete);
  CHECK(r.consumed == first.size());
  CHECK(parser.request().target == "/a");
  CHECK(parser.request().method == HTTP_GET);
  CHECK(parser.request().header("host") == "x");
  parser.next();
  CHECK_FALSE(parser.in_progress());
  CHECK_FALSE(parser.headers_complete());
  CHECK(parser.request().target.empty());

  std::string_view rest = std::string_view(all).substr(first.size());
  r = feed(parser, rest);
  REQUIRE(r.status == Status::kComplete);
  CHECK(r.consumed == second.size());
  CHECK(parser.request().target == "/b");
  CHECK(parser.request().method == HTTP_POST);
  REQUIRE(parser.request().headers.size() == 2);
  CHECK(parser.request().header("host") == "y");
  CHECK(parser.request().body == "abc");
  parser.next();

  rest = rest.substr(second.size());
  r = feed(parser, rest);
  REQUIRE(r.status == Status::kComplete);
  CHECK(r.consumed == third.size());
  CHECK(parser.request().target == "/c");
  CHECK(parser.request().headers.empty());
  CHECK(parser.request().body.empty());
  parser.next();

  // A fourth request arriving in two pieces after that.
  r = feed(parser, "GET /d HT");
  CHECK(r.status == Status::kNeedMore);
  CHECK(r.consumed == 9);
  r = feed(parser, "TP/1.1\r\n\r\n");
  CHECK(r.status == Status::kComplete);
  CHECK(r.consumed == 10);
  CHECK(parser.request().target == "/d");
}

TEST_CASE("http/request_parser: a pipelined request whose second half arrives later") {
  std::string first = "GET /a HTTP/1.1\r\n\r\n";
  std::string second = "GET /b HTTP/1.1\r\nHost: z\r\n\r\n";
  std::string chunk = first + second.substr(0, 10);
  RequestParser parser(limits());
  RequestParser::Result r = feed(parser, chunk);
  REQUIRE(r.status == Status::kComplete);
  CHECK(r.consumed == first.size());
  parser.next();
  r = feed(parser, std::string_view(chunk).substr(r.consumed));
  CHECK(r.status == Status::kNeedMore);
  CHECK(r.consumed == 10);
  CHECK(parser.in_progress());
  r = feed(parser, std::string_view(second).substr(10));
  REQUIRE(r.status == Status::kComplete);
  CHECK(r.consumed == second.size() - 10);
  CHECK(parser.request().target == "/b");
  CHECK(parser.request().header("host") == "z");
}

TEST_CASE("http/request_parser: chunked body") {
  std::string bytes =
      "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n"
      "A\r\n0123456789\r\n"
      "0\r\n\r\n";
  RequestParser parser(limits());
  RequestParser::Result r = feed(parser, bytes);
  REQUIRE(r.status == Status::kComplete);
  CHECK(r.consumed == bytes.size());
  CHECK(parser.request().body == "abc0123456789");
  CHECK(parser.request().header("transfer-encoding") == "chunked");
}

TEST_CASE("http/request_parser: body limits") {
  SUBCASE("Content-Length at the limit is accepted") {
    CHECK(parse_whole("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", limits(1024, 10))
              .find("body=[0123456789]") != std::string::npos);
  }
  SUBCASE("Content-Length over the limit fails before the body arrives") {
    RequestParser parser(limits(1024, 10));
    RequestParser::Result r = feed(parser, "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
    CHECK(r.status == Status::kError);
    CHECK(parser.error().status == 413);
    CHECK(std::string(parser.error().code) == "payload_too_large");
    CHECK(parser.error().message == "body exceeds 10 bytes");
  }
  SUBCASE("a huge Content-Length") {
    http::ParseError e =
        parse_error("POST / HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n", limits(1024, 10));
    CHECK(e.status == 413);
    CHECK(std::string(e.code) == "payload_too_large");
  }
  SUBCASE("a chunked body over the limit") {
    RequestParser parser(limits(1024, 10));
    RequestParser::Result r =
        feed(parser, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n");
    CHECK(r.status == Status::kNeedMore);
    r = feed(parser, "5\r\nghijk\r\n0\r\n\r\n");
    CHECK(r.status == Status::kError);
    CHECK(parser.error().status == 413);
    CHECK(std::string(parser.error().code) == "payload_too_large");
  }
  SUBCASE("a chunked body at the limit") {
    RequestParser parser(limits(1024, 10));
    RequestParser::Result r = feed(parser,
                                   "POST / HTTP/1.1\r\nTransfer-Encoding: "
                                   "chunked\r\n\r\n6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n");
    CHECK(r.status == Status::kComplete);
    CHECK(parser.request().body == "abcdefghij");
  }
}

TEST_CASE("http/request_parser: headers over the limit give 431") {
  std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(200, 'v') + "\r\n\r\n";
  http::ParseError e = parse_error(big, limits(100));
  CHECK(e.status == 431);
  CHECK(std::string(e.code) == "headers_too_large");
  CHECK(e.message == "request line and headers exceed 100 bytes");

  SUBCASE("a long target counts too") {
    http::ParseError t =
        parse_error("GET /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n", limits(100));
    CHECK(t.status == 431);
  }
  SUBCASE("many small headers add up") {
    std::string many = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 30; ++i) many += "A: b\r\n";
    many += "\r\n";
    CHECK(parse_error(many, limits(100)).status == 431);
    CHECK(parse_whole(many, limits(1000)).find("[a]=[b]") != std::string::npos);
  }
  SUBCASE("split across feeds") {
    RequestParser parser(limits(100));
    RequestParser::Result r = feed(parser, std::string_view(big).substr(0, 60));
    CHECK(r.status == Status::kNeedMore);
    r = feed(parser, std::string_view(big).substr(60));
    CHECK(r.status == Status::kError);
    CHECK(parser.error().status == 431);
  }
  SUBCASE("the same request under a larger limit") {
    CHECK(parse_whole(big, limits(1000)).find("[x-big]") != std::string::npos);
  }
}

TEST_CASE("http/request_parser: garbage gives 400") {
  for (std::string_view bytes :
       {std::string_view("HELLO\r\n\r\n"), std::string_view("GET / HTTP/9.9\r\n\r\n"),
        std::string_view("GET / HTTP/1.1\r\nBad Header\r\n\r\n"),
        std::string_view("GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
        std::string_view("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)}) {
    CAPTURE(bytes);
    http::ParseError e = parse_error(bytes);
    CHECK(e.status == 400);
    CHECK(std::string(e.code) == "bad_request");
    CHECK(e.message.rfind("malformed HTTP request: ", 0) == 0);
  }
}

TEST_CASE("http/request_parser: Content-Length with Transfer-Encoding is an error") {
  http::ParseError e = parse_error(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n");
  CHECK(e.status == 400);
  CHECK(std::string(e.code) == "bad_request");
}

TEST_CASE("http/request_parser: two different Content-Lengths are an error") {
  http::ParseError e =
      parse_error("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
  CHECK(e.status == 400);
}

TEST_CASE("http/request_parser: HTTP/1.0") {
  RequestParser parser(limits());
  REQUIRE(feed(parser, "GET /healthz HTTP/1.0\r\n\r\n").status == Status::kComplete);
  CHECK(parser.request().http10());
  CHECK(parser.request().version_major == 1);
  CHECK(parser.request().version_minor == 0);
  CHECK_FALSE(parser.request().keep_alive);

  SUBCASE("with Connection: keep-alive") {
    RequestParser p(limits());
    REQUIRE(feed(p, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").status ==
            Status::kComplete);
    CHECK(p.request().keep_alive);
  }
  SUBCASE("HTTP/1.1 with Connection: close") {
    RequestParser p(limits());
    REQUIRE(feed(p, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n").status == Status::kComplete);
    CHECK_FALSE(p.request().keep_alive);
  }
}

TEST_CASE("http/request_parser: Expect: 100-continue") {
  RequestParser parser(limits());
  RequestParser::Result r =
      feed(parser, "POST /p HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
  CHECK(r.status == Status::kNeedMore);
  CHECK(parser.headers_complete());
  CHECK(parser.in_progress());
  CHECK(parser.request().expect_continue);
  r = feed(parser, "xyz");
  CHECK(r.status == Status::kComplete);
  CHECK(r.consumed == 3);
  CHECK(parser.request().body == "xyz");
  CHECK(parser.request().expect_continue);
  parser.next();
  CHECK_FALSE(parser.request().expect_continue);

  SUBCASE("another expectation is refused") {
    http::ParseError e =
        parse_error("POST /p HTTP/1.1\r\nExpect: something\r\nContent-Length: 3\r\n\r\nxyz");
    CHECK(e.status == 400);
    CHECK(e.message == "unsupported Expect header");
  }
}

TEST_CASE("http/request_parser: upgrade requests are flagged") {
  RequestParser parser(limits());
  std::string_view bytes =
      "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nrest";
  RequestParser::Result r = feed(parser, bytes);
  CHECK(r.status == Status::kComplete);
  CHECK(r.consumed == bytes.size() - 4);
  CHECK(parser.upgrade());
}

TEST_CASE("http/request_parser: an error stays an error") {
  RequestParser parser(limits());
  REQUIRE(feed(parser, "NOT HTTP AT ALL\r\n\r\n").status == Status::kError);
  CHECK(feed(parser, "GET / HTTP/1.1\r\n\r\n").status == Status::kError);
  CHECK(parser.error().status == 400);
}

TEST_CASE("http/request: query_param") {
  using http::QueryParam;
  std::string v;
  std::string_view q = "a=1&b=hello%20world&c&d=&e=x+y&a=2&f=%zz&g=%41%42";
  CHECK(http::query_param(q, "a", v) == QueryParam::kPresent);
  CHECK(v == "1");  // the first occurrence
  CHECK(http::query_param(q, "b", v) == QueryParam::kPresent);
  CHECK(v == "hello world");
  CHECK(http::query_param(q, "c", v) == QueryParam::kPresent);
  CHECK(v == "");
  CHECK(http::query_param(q, "d", v) == QueryParam::kPresent);
  CHECK(v == "");
  CHECK(http::query_param(q, "e", v) == QueryParam::kPresent);
  CHECK(v == "x y");
  CHECK(http::query_param(q, "g", v) == QueryParam::kPresent);
  CHECK(v == "AB");
  // A malformed escape is reported as such, and leaves no half-decoded text behind.
  CHECK(http::query_param(q, "f", v) == QueryParam::kMalformed);
  CHECK(v == "");
  CHECK(http::query_param("event=x%0Adata:%20injected%zz", "event", v) == QueryParam::kMalformed);
  CHECK(v == "");
  CHECK(http::query_param("event=%", "event", v) == QueryParam::kMalformed);
  CHECK(http::query_param(q, "missing", v) == QueryParam::kAbsent);
  CHECK(http::query_param(q, "A", v) == QueryParam::kAbsent);  // names are case-sensitive
  CHECK(http::query_param("", "a", v) == QueryParam::kAbsent);
  CHECK(http::query_param("last_event_id=1700000000000-3", "last_event_id", v) ==
        QueryParam::kPresent);
  CHECK(v == "1700000000000-3");
  CHECK(http::query_param("x=1&&last_event_id=5-0&", "last_event_id", v) == QueryParam::kPresent);
  CHECK(v == "5-0");
  CHECK(http::query_param("k=a=b", "k", v) == QueryParam::kPresent);
  CHECK(v == "a=b");
}

TEST_CASE("http/request: trailer fields do not become headers") {
  RequestParser parser(limits());
  auto r = feed(parser,
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"
                "Authorization: Bearer x\r\n\r\n");
  REQUIRE(r.status == Status::kComplete);
  CHECK(parser.request().header("authorization").empty());
  CHECK(parser.request().body == "a");
}

TEST_CASE("http/request: Expect is ignored on HTTP/1.0") {
  RequestParser parser(limits());
  auto r = feed(parser, "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx");
  REQUIRE(r.status == Status::kComplete);
  CHECK_FALSE(parser.request().expect_continue);
}

TEST_CASE("http/request: percent_decode") {
  std::string out = "junk";
  CHECK(http::percent_decode("", out));
  CHECK(out == "");
  CHECK(http::percent_decode("plain", out));
  CHECK(out == "plain");
  CHECK(http::percent_decode("%41%62%2f%2F", out));
  CHECK(out == "Ab//");
  CHECK(http::percent_decode("a+b", out));
  CHECK(out == "a b");
  CHECK(http::percent_decode("%2B%25", out));
  CHECK(out == "+%");
  CHECK(http::percent_decode("%00", out));
  CHECK(out == std::string(1, '\0'));
  CHECK(http::percent_decode("%e2%82%ac", out));
  CHECK(out == "\xe2\x82\xac");
  CHECK(http::percent_decode("x%41", out));
  CHECK(out == "xA");

  for (std::string_view bad :
       {"%", "%4", "a%", "a%4", "%4g", "%g4", "%%41", "%-1", "% 1", "abc%2"}) {
    CAPTURE(bad);
    CHECK_FALSE(http::percent_decode(bad, out));
  }
}

TEST_CASE("http/request: path, query and clear") {
  Request r;
  r.target = "/a/b?x=1?y";
  CHECK(r.path() == "/a/b");
  CHECK(r.query() == "x=1?y");
  r.target = "/plain";
  CHECK(r.path() == "/plain");
  CHECK(r.query().empty());
  r.method = HTTP_POST;
  r.version_minor = 0;
  r.keep_alive = false;
  r.expect_continue = true;
  r.headers.push_back({"a", "b"});
  r.body = "x";
  r.clear();
  CHECK(r.method == 0);
  CHECK(r.version_minor == 1);
  CHECK(r.keep_alive);
  CHECK_FALSE(r.expect_continue);
  CHECK(r.target.empty());
  CHECK(r.headers.empty());
  CHECK(r.body.empty());
}
