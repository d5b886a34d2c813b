// upstream::ResponseParser, table-driven like tests/gateway/http/request_parser_test.cpp: every
// response is fed whole, split at every byte, and in pieces of 1, 2, 3, 7 and 64 bytes, and each
// way must give the same heads, body and outcome.
#include "upstream/response_parser.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

using namespace ssegw;

using upstream::ResponseParser;
using Status = upstream::ResponseParser::Status;

namespace {

class Collector final : public ResponseParser::Handler {
 public:
  std::string log;
  std::string body;
  bool stop_at_head = false;
  bool stop_at_body = false;

  bool on_response_head(int status, const std::vector<http::Header>& headers) override {
    log += "head " + std::to_string(status) + "\n";
    for (const http::Header& h : headers) log += "[" + h.name + "]=[" + h.value + "]\n";
    return !stop_at_head;
  }
  bool on_response_body(std::string_view data) override {
    body.append(data);
    return !stop_at_body;
  }
};

struct Case {
  const char* name;
  std::string bytes;
  std::string expected;  // what describe() gives
  bool head_request = false;
  bool eof = false;  // the connection ends after the bytes
  size_t max_head_bytes = ResponseParser::kDefaultMaxHeadBytes;
};

// Feeds the pieces in order and describes everything the parser said: the final head, the body,
// then the outcome ("complete N keep-alive|close" with N the bytes of the whole input used,
// "need more", "error: why", or what went wrong with a piece; after the bytes, "eof complete ..."
// or "eof error: why").
std::string describe(const Case& c, const std::vector<std::string_view>& pieces) {
  Collector collector;
  ResponseParser parser(collector, c.max_head_bytes);
  parser.reset(c.head_request);
  std::string outcome = "need more";
  size_t offset = 0;
  for (std::string_view piece : pieces) {
    ResponseParser::Result r = parser.feed(piece.data(), piece.size());
    if (r.consumed > piece.size()) {
      outcome = "consumed more than it was given";
      break;
    }
    if (r.status == Status::kComplete) {
      outcome = "complete " + std::to_string(offset + r.consumed) +
                (parser.keep_alive() ? " keep-alive" : " close");
      break;
    }
    if (r.status == Status::kError) {
      outcome = "error: " + parser.error();
      break;
    }
    // Anything else is wrong, and shows in the outcome (compared by the caller), not as one
    // assertion per piece: a long head fed byte by byte would make them hundreds of thousands.
    if (r.status != Status::kNeedMore || r.consumed != piece.size()) {
      outcome = "stopped, or left bytes, while it needed more";
      break;
    }
    offset += piece.size();
  }
  if (c.eof && outcome == "need more") {
    if (parser.finish() == Status::kComplete)
      outcome = std::string("eof complete") + (parser.keep_alive() ? " keep-alive" : " close");
    else
      outcome = "eof error: " + parser.error();
  }
  return collector.log + "body=[" + collector.body + "]\n" + outcome;
}

// Every split point of a short response; of a long one (the 64 KiB head), every point within
// 256 bytes of either end and one in 61 between: all of them would be quadratic in its size,
// which a sanitizer build makes minutes.
size_t next_split(size_t split, size_t size) {
  constexpr size_t kEdge = 256;
  if (size <= 4 * kEdge || split < kEdge || split + kEdge >= size) return split + 1;
  return std::min(split + 61, size - kEdge);
}

std::vector<std::string_view> in_pieces(std::string_view bytes, size_t piece) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < bytes.size(); i += piece) out.push_back(bytes.substr(i, piece));
  return out;
}

const std::string kOk = "HTTP/1.1 200 OK\r\n";

const std::vector<Case>& cases() {
  static const std::vector<Case> table = {
      {"Content-Length", kOk + "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
       "head 200\n[content-type]=[text/plain]\n[content-length]=[5]\nbody=[hello]\n"
       "complete 69 keep-alive"},
      {"header names lower-cased, values kept, repeats in order",
       kOk + "X-A: One Two\r\nSET-COOKIE: a=1\r\nset-cookie: b=2\r\nX-Empty:\r\nContent-Length: "
             "0\r\n\r\n",
       "head 200\n[x-a]=[One Two]\n[set-cookie]=[a=1]\n[set-cookie]=[b=2]\n[x-empty]=[]\n"
       "[content-length]=[0]\nbody=[]\ncomplete 96 keep-alive"},
      {"chunked", kOk + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
       "head 200\n[transfer-encoding]=[chunked]\nbody=[hello world]\ncomplete 73 keep-alive"},
      {"chunked with extensions and trailers: the trailers are no headers",
       kOk + "Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n",
       "head 200\n[transfer-encoding]=[chunked]\nbody=[hello]\ncomplete 85 keep-alive"},
      {"a body delimited by the close", kOk + "Content-Type: text/event-stream\r\n\r\ndata: 1\n\n",
       "head 200\n[content-type]=[text/event-stream]\nbody=[data: 1\n\n]\neof complete close",
       false, true},
      {"a close-delimited body, not ended yet", kOk + "\r\npartial",
       "head 200\nbody=[partial]\nneed more"},
      {"Connection: close", kOk + "Connection: close\r\nContent-Length: 2\r\n\r\nok",
       "head 200\n[connection]=[close]\n[content-length]=[2]\nbody=[ok]\ncomplete 59 close"},
      {"HTTP/1.0 without keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
       "head 200\n[content-length]=[2]\nbody=[ok]\ncomplete 40 close"},
      {"HTTP/1.0 with keep-alive",
       "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
       "head 200\n[connection]=[keep-alive]\n[content-length]=[2]\nbody=[ok]\n"
       "complete 64 keep-alive"},
      {"an answer to HEAD has no body, whatever its Content-Length",
       kOk + "Content-Length: 5\r\n\r\n",
       "head 200\n[content-length]=[5]\nbody=[]\ncomplete 38 keep-alive", true},
      {"a 204 has no body", "HTTP/1.1 204 No Content\r\n\r\n",
       "head 204\nbody=[]\ncomplete 27 keep-alive"},
      {"a 304 has no body, whatever its Content-Length",
       "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
       "head 304\n[content-length]=[5]\nbody=[]\ncomplete 48 keep-alive"},
      {"bytes after the end are left to the caller", kOk + "Content-Length: 2\r\n\r\nokEXTRA",
       "head 200\n[content-length]=[2]\nbody=[ok]\ncomplete 40 keep-alive"},
      {"interim heads are dropped: only the final one is seen",
       "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + kOk +
           "Content-Length: 2\r\n\r\nok",
       "head 200\n[content-length]=[2]\nbody=[ok]\ncomplete 109 keep-alive"},
      {"an interim head with a Content-Length has no body either",
       "HTTP/1.1 103 Early Hints\r\nContent-Length: 4\r\n\r\n" + kOk +
           "Content-Length: 2\r\n\r\nok",
       "head 200\n[content-length]=[2]\nbody=[ok]\ncomplete 87 keep-alive"},
      {"only interim heads so far", "HTTP/1.1 100 Continue\r\n\r\n", "body=[]\nneed more"},
      {"101 is refused", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
       "body=[]\nerror: 101 Switching Protocols, but no upgrade was asked for"},
      {"heads over the limit", kOk + "X-Long: " + std::string(100, 'v') + "\r\n\r\n",
       "body=[]\nerror: response heads larger than 64 bytes", false, false, 64},
      {"interim heads count against the limit",
       "HTTP/1.1 103 Early Hints\r\nLink: " + std::string(40, 'l') + "\r\n\r\n" + kOk +
           "X-B: " + std::string(20, 'b') + "\r\n\r\n",
       "body=[]\nerror: response heads larger than 64 bytes", false, false, 64},
      {"trailers count against the limit",
       kOk + "Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: " + std::string(40, 't') + "\r\n\r\n",
       "head 200\n[transfer-encoding]=[chunked]\nbody=[]\nerror: response heads larger than 64 "
       "bytes",
       false, false, 64},
      {"the default limit is 64 KiB", kOk + "X-Long: " + std::string(64 * 1024, 'v') + "\r\n\r\n",
       "body=[]\nerror: response heads larger than 64 KiB"},
      {"a body cut short by the close", kOk + "Content-Length: 10\r\n\r\nhello",
       "head 200\n[content-length]=[10]\nbody=[hello]\neof error: the connection ended inside the "
       "response body",
       false, true},
      {"a chunked body cut short by the close",
       kOk + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
       "head 200\n[transfer-encoding]=[chunked]\nbody=[hello]\neof error: the connection ended "
       "inside the response body",
       false, true},
      {"a close before the head", "HTTP/1.1 200 O",
       "body=[]\neof error: the connection ended before the response head", false, true},
      {"a close before anything", "",
       "body=[]\neof error: the connection ended before the response head", false, true},
      {"not HTTP", "SSH-2.0-OpenSSH_9.2\r\n", "body=[]\nerror: Expected HTTP/"},
      {"a bad status code", "HTTP/1.1 2x0 OK\r\n\r\n", "body=[]\nerror: Invalid response status"},
      {"a bad chunk size", kOk + "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
       "head 200\n[transfer-encoding]=[chunked]\nbody=[]\nerror: Invalid character in chunk size"},
      {"two different Content-Lengths", kOk + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nok",
       "body=[]\nerror: Duplicate Content-Length"},
  };
  return table;
}

}  // namespace

TEST_CASE("upstream/response_parser: each response parses the same whole, split, and in pieces") {
  for (const Case& c : cases()) {
    CAPTURE(c.name);
    std::string whole = describe(c, {c.bytes});
    CHECK(whole == c.expected);
    for (size_t split = 1; split < c.bytes.size(); split = next_split(split, c.bytes.size())) {
      CAPTURE(split);
      std::string_view bytes = c.bytes;
      std::string got = describe(c, {bytes.substr(0, split), bytes.substr(split)});
      if (got != whole) {
        CHECK(got == whole);
        break;  // one failure per case is enough to read
      }
    }
    for (size_t piece : {1, 2, 3, 7, 64}) {
      CAPTURE(piece);
      CHECK(describe(c, in_pieces(c.bytes, piece)) == whole);
    }
  }
}

TEST_CASE("upstream/response_parser: a handler that stops at the head hears nothing more") {
  Collector collector;
  collector.stop_at_head = true;
  ResponseParser parser(collector);
  parser.reset(false);
  std::string bytes = kOk + "Content-Length: 5\r\n\r\nhello";
  ResponseParser::Result r = parser.feed(bytes.data(), bytes.size());
  CHECK(r.status == Status::kStopped);
  CHECK(collector.log == "head 200\n[content-length]=[5]\n");
  CHECK(collector.body.empty());
  CHECK(parser.feed("x", 1).status == Status::kStopped);  // it stays stopped
  CHECK(parser.finish() == Status::kStopped);
}

TEST_CASE("upstream/response_parser: a handler that stops in the body gets no more of it") {
  Collector collector;
  collector.stop_at_body = true;
  ResponseParser parser(collector);
  parser.reset(false);
  std::string head = kOk + "Transfer-Encoding: chunked\r\n\r\n";
  REQUIRE(parser.feed(head.data(), head.size()).status == Status::kNeedMore);
  std::string chunks = "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
  CHECK(parser.feed(chunks.data(), chunks.size()).status == Status::kStopped);
  CHECK(collector.body == "hello");
}

TEST_CASE("upstream/response_parser: reset() reads the next response of a kept-alive connection") {
  Collector collector;
  ResponseParser parser(collector);
  parser.reset(false);
  std::string first = kOk + "Content-Length: 1\r\n\r\na";
  REQUIRE(parser.feed(first.data(), first.size()).status == Status::kComplete);
  CHECK(parser.keep_alive());
  // Without reset() the parser stays at the end of the first response.
  ResponseParser::Result again = parser.feed("HTTP", 4);
  CHECK(again.status == Status::kComplete);
  CHECK(again.consumed == 0);
  parser.reset(true);  // a HEAD request this time
  CHECK_FALSE(parser.head_complete());
  std::string second = kOk + "Content-Length: 9\r\n\r\n";
  ResponseParser::Result r = parser.feed(second.data(), second.size());
  CHECK(r.status == Status::kComplete);
  CHECK(r.consumed == second.size());
  CHECK(parser.head_complete());
  CHECK(collector.log == "head 200\n[content-length]=[1]\nhead 200\n[content-length]=[9]\n");
  CHECK(collector.body == "a");
}

TEST_CASE("upstream/response_parser: an error stays an error") {
  Collector collector;
  ResponseParser parser(collector);
  parser.reset(false);
  CHECK(parser.feed("NOT HTTP\r\n", 10).status == Status::kError);
  std::string error = parser.error();
  std::string good = kOk + "Content-Length: 0\r\n\r\n";
  CHECK(parser.feed(good.data(), good.size()).status == Status::kError);
  CHECK(parser.error() == error);
  CHECK(parser.finish() == Status::kError);
  CHECK(collector.log.empty());
}
