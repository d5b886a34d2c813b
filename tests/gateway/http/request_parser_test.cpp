#include "gateway/http/request_parser.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "gateway/http/request.hpp"

using namespace ssegw;

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

// ---- strict HTTP: request smuggling and RFC 9112 framing ---------------------------------------

namespace {

// What Connection::parse() makes of a byte stream: the requests it would answer, then the error
// (if any) after which it closes. Pieces of `piece` bytes (0: all at once).
struct Outcome {
  std::vector<std::string> targets;
  bool error = false;
  http::ParseError e;
};

Outcome run_stream(std::string_view bytes, size_t piece = 0, ParserLimits l = limits()) {
  RequestParser parser(l);
  Outcome out;
  size_t offset = 0;
  while (offset < bytes.size() && !out.error) {
    size_t n = piece == 0 ? bytes.size() - offset : std::min(piece, bytes.size() - offset);
    std::string_view chunk = bytes.substr(offset, n);
    offset += n;
    size_t used = 0;
    while (used < chunk.size()) {
      RequestParser::Result r = parser.feed(chunk.data() + used, chunk.size() - used);
      REQUIRE(r.consumed <= chunk.size() - used);
      used += r.consumed;
      if (r.status == Status::kError) {
        out.error = true;
        out.e = parser.error();
        // An error stays an error: nothing more comes out of this parser.
        CHECK(feed(parser, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").status == Status::kError);
        break;
      }
      if (r.status == Status::kNeedMore) break;
      out.targets.push_back(parser.request().target);
      parser.next();
    }
  }
  return out;
}

struct Refused {
  const char* name;
  std::string bytes;
  const char* message;  // a part of the 400's message, fed all at once
};

const std::string kPost = "POST /v1/channels/a/events HTTP/1.1\r\nHost: x\r\n";
const std::string kSmuggled = "GET /v1/channels/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
const std::string kChunked = kPost + "Transfer-Encoding: chunked\r\n\r\n";

const std::vector<Refused>& refused_requests() {
  using namespace std::string_literals;
  static const std::vector<Refused> cases = {
      // Chunked framing: what llhttp's loose mode read as two requests (finding 6).
      {"chunk data not followed by CRLF", kChunked + "1\r\nAZZ0\r\n\r\n" + kSmuggled,
       "chunk data not followed by CRLF"},
      {"chunk data longer than its size", kChunked + "2\r\n{}xx\r\n0\r\n\r\n" + kSmuggled,
       "chunk data not followed by CRLF"},
      {"chunk data followed by LF alone", kChunked + "5\r\nhello\n0\r\n\r\n" + kSmuggled,
       "chunk data not followed by CRLF"},
      {"chunk data followed by CR alone", kChunked + "5\r\nhello\r0\r\n\r\n" + kSmuggled,
       "chunk data not followed by CRLF"},
      {"non-hex chunk size", kChunked + "zz\r\n{}\r\n0\r\n\r\n", "chunk size is not a hex number"},
      {"negative chunk size", kChunked + "-2\r\n{}\r\n0\r\n\r\n", "chunk size is not a hex number"},
      {"signed chunk size", kChunked + "+5\r\nhello\r\n0\r\n\r\n",
       "chunk size is not a hex number"},
      {"chunk size with leading space", kChunked + " 5\r\nhello\r\n0\r\n\r\n",
       "chunk size is not a hex number"},
      {"chunk size with 0x", kChunked + "0x5\r\nhello\r\n0\r\n\r\n",
       "invalid byte after a chunk size"},
      {"chunk size with trailing space", kChunked + "5 \r\nhello\r\n0\r\n\r\n",
       "invalid byte after a chunk size"},
      {"chunk size with an underscore", kChunked + "1_0\r\nhello world!!!!!\r\n0\r\n\r\n",
       "invalid byte after a chunk size"},
      {"overflowing chunk size", kChunked + "fffffffffffffffff2\r\n{}\r\n0\r\n\r\n",
       "chunk size longer than 16 hex digits"},
      {"17 digits of leading zeros", kChunked + "00000000000000001\r\nx\r\n0\r\n\r\n",
       "chunk size longer than 16 hex digits"},
      {"chunk size line ending in LF", kChunked + "5\nhello\r\n0\r\n\r\n", "LF without CR"},
      {"chunk size line ending in CR", kChunked + "5\rhello\r\n0\r\n\r\n", "CR not followed by LF"},
      {"chunk extension ending in LF", kChunked + "5;a\nhello\r\n0\r\n\r\n", "LF without CR"},
      {"control byte in a chunk extension", kChunked + "5;a\x01b\r\nhello\r\n0\r\n\r\n",
       "control byte in a chunk extension"},
      {"NUL in a chunk extension", kChunked + "5;a\0b\r\nhello\r\n0\r\n\r\n"s,
       "control byte in a chunk extension"},
      {"bare semicolon extension", kChunked + "5;\r\nhello\r\n0\r\n\r\n",
       "Invalid character in chunk extensions"},
      {"last chunk followed by LF alone", kChunked + "0\r\n\n" + kSmuggled, "LF without CR"},
      {"last chunk followed by CR alone", kChunked + "0\r\n\r" + kSmuggled,
       "CR not followed by LF"},

      // CL.TE and TE.CL.
      {"Content-Length then Transfer-Encoding",
       kPost + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + kSmuggled,
       "Content-Length can't be present with Transfer-Encoding"},
      {"Transfer-Encoding then Content-Length",
       kPost + "Transfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n0\r\n\r\n" + kSmuggled,
       "Content-Length can't be present with Transfer-Encoding"},

      // TE.TE: a Transfer-Encoding one parser may take for chunked and another not.
      {"xchunked", kPost + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
       "Transfer-Encoding must be exactly \"chunked\""},
      {"xchunked with Content-Length",
       kPost + "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello",
       "Content-Length can't be present with Transfer-Encoding"},
      {"chunked, identity", kPost + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
       "Invalid `Transfer-Encoding` header value"},
      {"identity, chunked", kPost + "Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n",
       "Transfer-Encoding must be exactly \"chunked\""},
      {"gzip, chunked", kPost + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
       "Transfer-Encoding must be exactly \"chunked\""},
      {"chunked, chunked", kPost + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
       "Invalid `Transfer-Encoding` header value"},
      {"chunked with a parameter", kPost + "Transfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n",
       "Transfer-Encoding must be exactly \"chunked\""},
      {"upper-case Chunked", kPost + "Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
       "Transfer-Encoding must be exactly \"chunked\""},
      {"CHUNKED", kPost + "Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
       "Transfer-Encoding must be exactly \"chunked\""},
      {"chunked and a trailing space", kPost + "Transfer-Encoding: chunked \r\n\r\n0\r\n\r\n",
       "Transfer-Encoding must be exactly \"chunked\""},
      {"chunked and a trailing tab", kPost + "Transfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n",
       "Transfer-Encoding must be exactly \"chunked\""},
      {"a leading comma", kPost + "Transfer-Encoding: , chunked\r\n\r\n0\r\n\r\n",
       "Transfer-Encoding must be exactly \"chunked\""},
      {"a trailing comma", kPost + "Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n",
       "Invalid `Transfer-Encoding` header value"},
      {"an empty Transfer-Encoding", kPost + "Transfer-Encoding: \r\n\r\n0\r\n\r\n",
       "Transfer-Encoding must be exactly \"chunked\""},
      {"identity", kPost + "Transfer-Encoding: identity\r\n\r\nhello",
       "Transfer-Encoding must be exactly \"chunked\""},
      {"two Transfer-Encoding headers, chunked first",
       kPost + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
       "Invalid `Transfer-Encoding` header value"},
      {"two Transfer-Encoding headers, chunked last",
       kPost + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       "more than one Transfer-Encoding header"},
      {"Transfer-Encoding in HTTP/1.0",
       "POST /v1/channels/a/events HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       "Transfer-Encoding is not allowed in an HTTP/1.0 request"},
      {"folded Transfer-Encoding",
       kPost + "Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello",
       "header line starting with whitespace (obs-fold)"},
      {"space before the colon of Transfer-Encoding",
       kPost + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello",
       "whitespace between a header name and its colon"},
      {"vertical tab before chunked",
       kPost + "Transfer-Encoding: \x0b"
               "chunked\r\n\r\n0\r\n\r\n",
       "control byte (NUL, DEL or another) in a header value"},
      {"NUL after chunked", kPost + "Transfer-Encoding: chunked\0\r\n\r\n0\r\n\r\n"s,
       "control byte (NUL, DEL or another) in a header value"},

      // Content-Length.
      {"two different Content-Lengths",
       kPost + "Content-Length: 4\r\nContent-Length: 57\r\n\r\nabcd" + kSmuggled,
       "Duplicate Content-Length"},
      {"two equal Content-Lengths", kPost + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
       "Duplicate Content-Length"},
      {"a Content-Length list", kPost + "Content-Length: 5, 5\r\n\r\nhello",
       "Invalid character in Content-Length"},
      {"a signed Content-Length", kPost + "Content-Length: +5\r\n\r\nhello",
       "Invalid character in Content-Length"},
      {"a negative Content-Length", kPost + "Content-Length: -1\r\n\r\n",
       "Invalid character in Content-Length"},
      {"a hex Content-Length", kPost + "Content-Length: 0x5\r\n\r\nhello",
       "Invalid character in Content-Length"},
      {"a space inside Content-Length", kPost + "Content-Length: 1 0\r\n\r\nhello12345",
       "Invalid character in Content-Length"},
      {"a trailing space after Content-Length", kPost + "Content-Length: 5 \r\n\r\nhello",
       "Content-Length must be decimal digits only"},
      {"an empty Content-Length", kPost + "Content-Length: \r\n\r\n", "Empty Content-Length"},

      // Header lines.
      {"obs-fold", kPost + "X-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}",
       "header line starting with whitespace (obs-fold)"},
      {"obs-fold with a tab", kPost + "X-A: 1\r\n\tmore\r\n\r\n",
       "header line starting with whitespace (obs-fold)"},
      {"whitespace before the first header", "GET / HTTP/1.1\r\n Host: x\r\n\r\n",
       "header line starting with whitespace (obs-fold)"},
      {"space before a colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
       "whitespace between a header name and its colon"},
      {"tab before a colon", "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n",
       "whitespace between a header name and its colon"},
      {"a header line without a colon", "GET / HTTP/1.1\r\nHost\r\n\r\n",
       "header line without a colon"},
      {"an empty header name", "GET / HTTP/1.1\r\n: x\r\n\r\n", "header name is not a token"},
      {"a separator in a header name", "GET / HTTP/1.1\r\nX(a): x\r\n\r\n",
       "header name is not a token"},
      {"a byte >= 0x80 in a header name", "GET / HTTP/1.1\r\nX\xc3\xa9: x\r\n\r\n",
       "header name is not a token"},
      {"NUL in a header name", "GET / HTTP/1.1\r\nX\0A: b\r\n\r\n"s, "header name is not a token"},
      {"NUL in a header value", "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n"s,
       "control byte (NUL, DEL or another) in a header value"},
      {"DEL in a header value",
       "GET / HTTP/1.1\r\nX-A: a\x7f"
       "b\r\n\r\n",
       "control byte (NUL, DEL or another) in a header value"},
      {"ESC in a header value", "GET / HTTP/1.1\r\nX-A: a\x1b[0m\r\n\r\n",
       "control byte (NUL, DEL or another) in a header value"},
      {"form feed in a header value",
       "GET / HTTP/1.1\r\nX-A: a\x0c"
       "b\r\n\r\n",
       "control byte (NUL, DEL or another) in a header value"},
      {"bare CR inside a header value", "GET / HTTP/1.1\r\nX-A: val\rue\r\n\r\n",
       "CR not followed by LF"},
      {"a header line ending in LF", "GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", "LF without CR"},
      {"the head ending in LF", "GET / HTTP/1.1\r\nHost: x\r\n\n", "LF without CR"},
      {"the head ending in CR", "GET / HTTP/1.1\r\nHost: x\r\n\rGET / HTTP/1.1\r\n\r\n",
       "CR not followed by LF"},
      {"the request line ending in LF", "GET / HTTP/1.1\nHost: x\r\n\r\n", "LF without CR"},
      {"an empty line of a bare LF first", "\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "LF without CR"},
      {"an empty line of a bare CR first", "\rGET / HTTP/1.1\r\nHost: x\r\n\r\n",
       "CR not followed by LF"},

      // Trailers.
      {"Content-Length in the trailers", kChunked + "0\r\nContent-Length: 50\r\n\r\n",
       "in the trailer section"},
      {"Transfer-Encoding in the trailers", kChunked + "0\r\nTransfer-Encoding: chunked\r\n\r\n",
       "in the trailer section"},
      {"Connection in the trailers", kChunked + "0\r\nconnection: close\r\n\r\n",
       "in the trailer section"},
      {"Upgrade in the trailers", kChunked + "0\r\nUpgrade: websocket\r\n\r\n",
       "in the trailer section"},
      {"obs-fold in the trailers", kChunked + "0\r\nX-A: 1\r\n b\r\n\r\n",
       "header line starting with whitespace (obs-fold)"},

      // The request line and its target.
      {"a byte >= 0x80 in the target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
       "the request target may hold only visible ASCII"},
      {"a tab in the target", "GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n",
       "the request target may hold only visible ASCII"},
      {"DEL in the target", "GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
       "the request target may hold only visible ASCII"},
      {"a control byte in the target", "GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
       "the request target may hold only visible ASCII"},
      {"NUL in the target", "GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n"s,
       "the request target may hold only visible ASCII"},
      {"a space in the target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
       "separated by single spaces"},
      {"two spaces after the method", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
       "separated by single spaces"},
      {"a space after the version", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
       "separated by single spaces"},
      {"a tab between method and target", "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n",
       "control byte, tab, DEL or byte >= 0x80 in the request line"},
      {"whitespace before the method", " GET / HTTP/1.1\r\nHost: x\r\n\r\n",
       "whitespace before the request line"},
      {"an HTTP/0.9 request line", "GET /\r\n\r\n", "separated by single spaces"},
      {"HTTP/2.0 in the request line", "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
       "only HTTP/1.0 and HTTP/1.1 are supported"},
      {"absolute-form", "GET http://evil.example/v1/channels/a/events HTTP/1.1\r\nHost: x\r\n\r\n",
       "the request target must be a path starting with '/'"},
      {"authority-form", "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example\r\n\r\n",
       "CONNECT is not supported"},
      {"CONNECT to a path", "CONNECT /v1/channels/a/events HTTP/1.1\r\nHost: x\r\n\r\n",
       "CONNECT is not supported"},
      {"a relative target", "GET v1/channels/a/events HTTP/1.1\r\nHost: x\r\n\r\n",
       "Unexpected char in url schema"},
      {"* for GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
       "the request target \"*\" is for OPTIONS only"},
      {"a fragment", "GET /v1/channels/a/events#x HTTP/1.1\r\nHost: x\r\n\r\n",
       "the request target must not contain a fragment"},
      {"the HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
       "the request target \"*\" is for OPTIONS only"},
  };
  return cases;
}

}  // namespace

TEST_CASE("http/request_parser: strict HTTP refuses each smuggling vector with one 400") {
  for (const Refused& c : refused_requests()) {
    CAPTURE(c.name);
    for (size_t piece : {0, 1, 2, 3, 7, 64}) {
      CAPTURE(piece);
      Outcome out = run_stream(c.bytes, piece);
      CHECK(out.targets.empty());  // no request comes out, the smuggled one least of all
      REQUIRE(out.error);
      CHECK(out.e.status == 400);
      CHECK(std::string(out.e.code) == "bad_request");
      if (piece == 0) {
        INFO("message: ", out.e.message);
        CHECK(out.e.message.find(c.message) != std::string::npos);
      }
    }
  }
}

TEST_CASE("http/request_parser: a refused request after a good one ends the stream there") {
  std::string good = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string bytes = good + kChunked + "1\r\nAZZ0\r\n\r\n" + kSmuggled;
  for (size_t piece : {0, 1, 5}) {
    CAPTURE(piece);
    Outcome out = run_stream(bytes, piece);
    CHECK(out.targets == std::vector<std::string>{"/a"});
    REQUIRE(out.error);
    CHECK(out.e.status == 400);
  }
}

TEST_CASE("http/request_parser: strict HTTP still takes valid edge cases") {
  SUBCASE("a tab and obs-text inside a value, OWS around it") {
    std::string bytes =
        "GET / HTTP/1.1\r\nHost: x\r\nX-A:\ta\tb \r\nX-B: caf\xc3\xa9\r\nX-C:\r\n\r\n";
    for (size_t piece : {0, 1, 3}) {
      Outcome out = run_stream(bytes, piece);
      CHECK_FALSE(out.error);
      CHECK(out.targets == std::vector<std::string>{"/"});
    }
    CHECK(parse_whole(bytes).find("[x-a]=[a\tb ]\n[x-b]=[caf\xc3\xa9]\n[x-c]=[]") !=
          std::string::npos);
  }
  SUBCASE("a chunked body with extensions of reasonable size, and a trailer") {
    // (llhttp 8.1 refuses an extension after one with a value: "1;a=b;c".)
    std::string bytes = kChunked +
                        "5;name=value\r\nhello\r\n"
                        "0006;q=\"a quoted; string\"\r\n world\r\n"
                        "0;last;x\r\nX-Checksum: abc\r\n\r\n";
    for (size_t piece : {0, 1, 2, 9}) {
      CAPTURE(piece);
      Outcome out = run_stream(bytes, piece);
      CHECK_FALSE(out.error);
      CHECK(out.targets.size() == 1);
    }
    CHECK(parse_whole(bytes).find("body=[hello world]") != std::string::npos);
  }
  SUBCASE("Transfer-Encoding after a tab, and a 16-digit chunk size") {
    std::string bytes =
        kPost + "Transfer-Encoding:\tchunked\r\n\r\n0000000000000002\r\nab\r\n0\r\n\r\n";
    CHECK(parse_whole(bytes).find("body=[ab]") != std::string::npos);
  }
  SUBCASE("pipelined requests, each after an empty line") {
    std::string bytes = "\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n" + kPost +
                        "Content-Length: 2\r\n\r\n{}\r\n" + kChunked + "2\r\n{}\r\n0\r\n\r\n" +
                        "\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" +
                        "GET /q?a=%20&b=~!$'()*+,;=:@/? HTTP/1.0\r\n\r\n";
    std::vector<std::string> want = {"/a", "/v1/channels/a/events", "/v1/channels/a/events", "*",
                                     "/q?a=%20&b=~!$'()*+,;=:@/?"};
    for (size_t piece : {0, 1, 2, 3, 7, 100}) {
      CAPTURE(piece);
      Outcome out = run_stream(bytes, piece);
      CHECK_FALSE(out.error);
      CHECK(out.targets == want);
    }
  }
  SUBCASE("Content-Length with OWS before it, and with leading zeros") {
    CHECK(parse_whole(kPost + "Content-Length:\t 003\r\n\r\nabc").find("body=[abc]") !=
          std::string::npos);
  }
}

TEST_CASE("http/request_parser: chunk extensions count against max_header_bytes") {
  std::string head = kChunked;  // 58 bytes as the parser counts them
  std::string flood = head + "1;" + std::string(200, 'e') + "\r\nx\r\n0\r\n\r\n";
  http::ParseError e = parse_error(flood, limits(256));
  CHECK(e.status == 431);
  CHECK(std::string(e.code) == "headers_too_large");
  CHECK(e.message == "chunk extensions, request line and headers exceed 256 bytes");

  SUBCASE("spread over many chunks") {
    std::string many = head;
    for (int i = 0; i < 40; ++i) many += "1;ext=1\r\nx\r\n";
    many += "0\r\n\r\n";
    CHECK(parse_error(many, limits(256)).status == 431);
    CHECK(parse_whole(many, limits(1024)).find("body=[" + std::string(40, 'x') + "]") !=
          std::string::npos);
  }
  SUBCASE("streamed without end, fed in pieces") {
    RequestParser parser(limits(4096));
    REQUIRE(feed(parser, head + "1;").status == Status::kNeedMore);
    RequestParser::Result r{Status::kNeedMore, 0};
    for (int i = 0; i < 100 && r.status == Status::kNeedMore; ++i)
      r = feed(parser, std::string(100, 'e'));
    CHECK(r.status == Status::kError);
    CHECK(parser.error().status == 431);
  }
  SUBCASE("the same body under a larger limit") {
    CHECK(parse_whole(flood, limits(1024)).find("body=[x]") != std::string::npos);
  }
}

TEST_CASE("http/request_parser: empty lines before a request count against max_header_bytes") {
  std::string bytes;
  for (int i = 0; i < 60; ++i) bytes += "\r\n";
  bytes += "GET / HTTP/1.1\r\n\r\n";
  http::ParseError e = parse_error(bytes, limits(100));
  CHECK(e.status == 431);
  CHECK(e.message == "request line and headers exceed 100 bytes");
  CHECK(parse_whole(bytes, limits(1000)).find("1 / 1.1") == 0);
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
