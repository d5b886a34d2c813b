#include "upstream/sse_parser.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/upstream/feed_splits.hpp"

using namespace ssegw;

using upstream::SseEvent;
using upstream::SseLimits;
using upstream::SseParser;
using upstream::SseStatus;
using namespace std::string_view_literals;

namespace {

// Writes every callback as one line of text, so that two parses compare as two string lists.
class Recorder : public SseParser::Sink {
 public:
  std::vector<std::string> log;

  void on_event(const SseEvent& e) override {
    log.push_back("event type=[" + std::string(e.type) + "] data=[" + std::string(e.data) +
                  "] id=[" + std::string(e.id) + "]" + (e.has_id ? " has_id" : ""));
  }
  void on_comment(std::string_view text) override {
    log.push_back("comment [" + std::string(text) + "]");
  }
  void on_retry(uint64_t ms) override { log.push_back("retry " + std::to_string(ms)); }
};

// Everything observable about one parse of a whole stream.
struct Outcome {
  std::vector<std::string> log;
  SseStatus status = SseStatus::kOk;  // what the last feed() returned
  std::string last_event_id;          // before finish()
  bool discarded = false;             // what finish() returned

  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "{status=" << upstream::to_string(o.status) << " last_event_id=[" << o.last_event_id
     << "] discarded=" << o.discarded << " log=";
  for (const std::string& line : o.log) os << "\n  " << line;
  return os << "}";
}

// Feeds `pieces` in order to a fresh parser (each from its own short-lived heap copy).
Outcome run(const feed_splits::Pieces& pieces, const SseLimits& limits = {}) {
  SseParser parser(limits);
  Recorder recorder;
  Outcome out;
  feed_splits::feed_copies(
      pieces, [&](std::string_view bytes) { out.status = parser.feed(bytes, recorder); });
  out.last_event_id = parser.last_event_id();
  out.discarded = parser.finish();
  out.log = std::move(recorder.log);
  return out;
}

Outcome parse_every_split(std::string_view stream, const SseLimits& limits = {}) {
  return feed_splits::same_at_every_split(
      stream, [&](const feed_splits::Pieces& pieces) { return run(pieces, limits); });
}

Outcome parse_every_two_splits(std::string_view stream, const SseLimits& limits = {}) {
  return feed_splits::same_at_every_two_splits(
      stream, [&](const feed_splits::Pieces& pieces) { return run(pieces, limits); });
}

using Log = std::vector<std::string>;

std::string event(std::string_view type, std::string_view data, std::string_view id = "",
                  bool has_id = false) {
  return "event type=[" + std::string(type) + "] data=[" + std::string(data) + "] id=[" +
         std::string(id) + "]" + (has_id ? " has_id" : "");
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// Comments, retry, ids, multi-line data, an id-only block and an unknown field, with LF endings.
constexpr std::string_view kMixedStream =
    ": hello\n"
    "retry: 2500\n"
    "\n"
    "id: 1\n"
    "event: tick\n"
    "data: first\n"
    "\n"
    "data: line one\n"
    "data:\n"
    "data:line three\n"
    "\n"
    "id: 2\n"
    "\n"
    "foo: bar\n"
    "data: after id-only block\n"
    ": keep-alive\n"
    "\n";

const Log kMixedLog = {
    "comment [ hello]",
    "retry 2500",
    event("tick", "first", "1", true),
    event("", "line one\n\nline three", "1"),
    "comment [ keep-alive]",
    event("", "after id-only block", "2"),
};

}  // namespace

TEST_CASE("upstream/sse_parser: an OpenAI chat completion stream") {
  std::string_view stream =
      "data: "
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1694268190,)"
      R"("model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},)"
      R"("finish_reason":null}]})"
      "\n\n"
      "data: "
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,)"
      R"("delta":{"content":"Hello"},"finish_reason":null}]})"
      "\n\n"
      "data: "
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,)"
      R"("delta":{"content":" world: a\nb"},"finish_reason":null}]})"
      "\n\n"
      "data: "
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,)"
      R"("delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3}})"
      "\n\n"
      "data: [DONE]\n\n";
  Outcome out = parse_every_split(stream);
  REQUIRE(out.log.size() == 5);
  CHECK(out.log[0] ==
        event("", R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1694268190,)"
                  R"("model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant",)"
                  R"("content":""},"finish_reason":null}]})"));
  CHECK(out.log[2] ==
        event("", R"({"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,)"
                  R"("delta":{"content":" world: a\nb"},"finish_reason":null}]})"));
  CHECK(out.log[4] == event("", "[DONE]"));
  CHECK(out.status == SseStatus::kOk);
  CHECK(out.last_event_id.empty());
  CHECK_FALSE(out.discarded);
}

TEST_CASE("upstream/sse_parser: an Anthropic messages stream") {
  std::string_view stream =
      "event: message_start\n"
      R"(data: {"type":"message_start","message":{"id":"msg_1","type":"message",)"
      R"("role":"assistant","content":[],"model":"claude-3-5-sonnet","usage":{"input_tokens":25,)"
      R"("output_tokens":1}}})"
      "\n\n"
      "event: content_block_start\n"
      R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"
      "\n\n"
      "event: ping\n"
      R"(data: {"type": "ping"})"
      "\n\n"
      "event: content_block_delta\n"
      R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})"
      "\n\n"
      "event: content_block_stop\n"
      R"(data: {"type":"content_block_stop","index":0})"
      "\n\n"
      "event: message_delta\n"
      R"(data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}})"
      "\n\n"
      "event: message_stop\n"
      R"(data: {"type":"message_stop"})"
      "\n\n";
  Outcome out = parse_every_split(stream);
  REQUIRE(out.log.size() == 7);
  CHECK(out.log[2] == event("ping", R"({"type": "ping"})"));
  CHECK(
      out.log[3] ==
      event(
          "content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})"));
  CHECK(out.log[6] == event("message_stop", R"({"type":"message_stop"})"));
  CHECK_FALSE(out.discarded);
}

TEST_CASE("upstream/sse_parser: comments, retry, ids and multi-line data") {
  Outcome out = parse_every_two_splits(kMixedStream);
  CHECK(out.log == kMixedLog);
  CHECK(out.last_event_id == "2");
  CHECK_FALSE(out.discarded);
  CHECK(parse_every_split(kMixedStream) == out);
}

TEST_CASE("upstream/sse_parser: CRLF, CR-only and mixed line endings parse alike") {
  std::string crlf = replace_all(std::string(kMixedStream), "\n", "\r\n");
  std::string cr = replace_all(std::string(kMixedStream), "\n", "\r");
  Outcome lf = run({kMixedStream});
  CHECK(parse_every_split(crlf) == lf);
  CHECK(parse_every_split(cr) == lf);
  CHECK(parse_every_two_splits(cr) == lf);

  // LF CR is two line endings (a blank line), CR LF one.
  Outcome mixed = parse_every_two_splits("data: a\r\ndata: b\n\rdata: c\r\r\ndata: d\n\r\n");
  CHECK(mixed.log == Log{event("", "a\nb"), event("", "c"), event("", "d")});
  CHECK_FALSE(mixed.discarded);
}

TEST_CASE("upstream/sse_parser: a CR dispatches at once, and the LF after it is skipped later") {
  SseParser parser;
  Recorder r;
  CHECK(parser.feed("data: a\r\r", r) == SseStatus::kOk);
  CHECK(r.log == Log{event("", "a")});  // no waiting for the next feed to see a possible LF
  CHECK(parser.feed("\n", r) == SseStatus::kOk);
  CHECK(r.log.size() == 1);  // that LF belonged to the CR: not another blank line
  CHECK(parser.feed("data: b\r", r) == SseStatus::kOk);
  CHECK(parser.feed("\n", r) == SseStatus::kOk);
  CHECK(r.log.size() == 1);
  CHECK(parser.feed("\n", r) == SseStatus::kOk);
  CHECK(r.log == Log{event("", "a"), event("", "b")});
  CHECK_FALSE(parser.finish());
}

TEST_CASE("upstream/sse_parser: one leading BOM is skipped") {
  CHECK(parse_every_two_splits("\xEF\xBB\xBF"
                               "data: a\n\n")
            .log == Log{event("", "a")});
  // A BOM right before the first line ending: the first line is blank.
  CHECK(parse_every_two_splits("\xEF\xBB\xBF\r\ndata: c\n\n").log == Log{event("", "c")});
  // Only one: a second BOM is part of the first field name, "\xEF\xBB\xBF" "data", ignored.
  CHECK(parse_every_two_splits("\xEF\xBB\xBF\xEF\xBB\xBF"
                               "data: a\n\ndata: b\n\n")
            .log == Log{event("", "b")});
  // Not at the start of the stream: just bytes of a line.
  CHECK(parse_every_split("data: a\n\n\xEF\xBB\xBF"
                          "data: b\n\n")
            .log == Log{event("", "a")});
  CHECK(parse_every_split("data: \xEF\xBB\xBFx\n\n").log == Log{event("", "\xEF\xBB\xBFx")});
  // A BOM prefix that is not a BOM stays in the line.
  CHECK(parse_every_two_splits("\xEF\xBB"
                               "data: a\n\ndata: b\n\n")
            .log == Log{event("", "b")});
  CHECK(parse_every_split("\xEF:c\n").log == Log{});
  CHECK(parse_every_split("\xEF\n:c\n").log == Log{"comment [c]"});
  // The BOM alone is not an event; a BOM prefix at EOF is a discarded partial line.
  CHECK_FALSE(parse_every_split("\xEF\xBB\xBF").discarded);
  CHECK(parse_every_split("\xEF\xBB").discarded);
}

TEST_CASE("upstream/sse_parser: data with no value dispatches an event with empty data") {
  // The data buffer gets "\n", so it is not empty: the event is dispatched, with data "".
  CHECK(parse_every_split("data\n\n").log == Log{event("", "")});
  CHECK(parse_every_split("data:\n\n").log == Log{event("", "")});
  CHECK(parse_every_split("data: \n\n").log == Log{event("", "")});
  CHECK(parse_every_split("data\ndata\n\n").log == Log{event("", "\n")});
  CHECK(parse_every_split("data: a\ndata\n\n").log == Log{event("", "a\n")});
  // No data field at all: nothing is dispatched, and the type does not carry over.
  CHECK(parse_every_split("event: foo\n\ndata: x\n\n").log == Log{event("", "x")});
  CHECK(parse_every_split("\n\n\n").log == Log{});
}

TEST_CASE("upstream/sse_parser: one space after the colon is removed, no more") {
  CHECK(parse_every_split("data:x\n\n").log == Log{event("", "x")});
  CHECK(parse_every_split("data: x\n\n").log == Log{event("", "x")});
  CHECK(parse_every_split("data:  x\n\n").log == Log{event("", " x")});
  CHECK(parse_every_split("data: x \n\n").log == Log{event("", "x ")});
  CHECK(parse_every_split("data:\tx\n\n").log == Log{event("", "\tx")});
  CHECK(parse_every_split("data: a: b\n\n").log == Log{event("", "a: b")});
  CHECK(parse_every_split("event:  foo\ndata: x\n\n").log == Log{event(" foo", "x")});
  // Field names are exact: a space before the colon or another case is another field.
  CHECK(parse_every_split("data :x\n\n").log == Log{});
  CHECK(parse_every_split("Data: x\n\n").log == Log{});
}

TEST_CASE("upstream/sse_parser: id containing NUL is ignored") {
  std::string_view stream = "id: 1\ndata: x\n\nid: a\0b\ndata: y\n\n"sv;
  Outcome out = parse_every_split(stream);
  CHECK(out.log == Log{event("", "x", "1", true), event("", "y", "1")});
  CHECK(out.last_event_id == "1");
  CHECK(parse_every_split("id: \0\ndata: y\n\n"sv).log == Log{event("", "y")});
}

TEST_CASE("upstream/sse_parser: the last event id persists, and an empty id resets it") {
  std::string_view stream =
      "id: 1\ndata: a\n\n"
      "data: b\n\n"
      "id: 2\nid: 3\ndata: c\n\n"
      "id\ndata: d\n\n"
      "data: e\n\n"
      "id: 4\ndata: f\n\n"
      "id:\ndata: g\n\n"
      "id:  5\ndata: h\n\n";
  Outcome out = parse_every_split(stream);
  CHECK(out.log == Log{event("", "a", "1", true), event("", "b", "1"), event("", "c", "3", true),
                       event("", "d", "", true), event("", "e", ""), event("", "f", "4", true),
                       event("", "g", "", true), event("", "h", " 5", true)});
  CHECK(out.last_event_id == " 5");
}

TEST_CASE("upstream/sse_parser: an id-only block sets the last event id without an event") {
  SseParser parser;
  Recorder r;
  CHECK(parser.feed("id: 7\n\n", r) == SseStatus::kOk);
  CHECK(r.log.empty());
  CHECK(parser.last_event_id() == "7");
  CHECK(parser.feed("data: x\n\n", r) == SseStatus::kOk);
  CHECK(r.log == Log{event("", "x", "7")});
}

TEST_CASE("upstream/sse_parser: an id is the last event id only once its block is dispatched") {
  SseParser parser;
  Recorder r;
  CHECK(parser.feed("id: 1\ndata: a\n\nid: 2\ndata: b\n", r) == SseStatus::kOk);
  CHECK(parser.last_event_id() == "1");
  CHECK(parser.finish());  // the block with id 2 was cut off
  CHECK(parser.last_event_id() == "1");
  CHECK(r.log == Log{event("", "a", "1", true)});
}

TEST_CASE("upstream/sse_parser: retry is reported only when all ASCII digits") {
  CHECK(parse_every_split("retry: 500\n").log == Log{"retry 500"});
  CHECK(parse_every_split("retry:0\n").log == Log{"retry 0"});
  CHECK(parse_every_split("retry: 12a\n").log == Log{});
  CHECK(parse_every_split("retry: -1\n").log == Log{});
  CHECK(parse_every_split("retry: 1.5\n").log == Log{});
  CHECK(parse_every_split("retry:  500\n").log == Log{});  // the second space is in the value
  CHECK(parse_every_split("retry: 500 \n").log == Log{});
  CHECK(parse_every_split("retry:\n").log == Log{});
  CHECK(parse_every_split("retry\n").log == Log{});
  CHECK(parse_every_split("retry: 99999999999999999999999\n").log ==
        Log{"retry 18446744073709551615"});
  CHECK(parse_every_split("retry: 18446744073709551615\n").log ==
        Log{"retry 18446744073709551615"});
  // Reported when read, before the event it sits in is dispatched; it is not data.
  CHECK(parse_every_split("data: a\nretry: 10\n\n").log == Log{"retry 10", event("", "a")});
}

TEST_CASE("upstream/sse_parser: comments are reported with what follows the colon") {
  CHECK(parse_every_split(":\n: ping\n::x\n:data: y\n\n").log ==
        Log{"comment []", "comment [ ping]", "comment [:x]", "comment [data: y]"});
  // A comment does not end an event block.
  CHECK(parse_every_split("data: a\n: between\ndata: b\n\n").log ==
        Log{"comment [ between]", event("", "a\nb")});
}

TEST_CASE("upstream/sse_parser: an event cut off at EOF is discarded") {
  Outcome out = parse_every_split("data: a\n\ndata: b\n");
  CHECK(out.log == Log{event("", "a")});
  CHECK(out.discarded);
  CHECK(parse_every_split("data: a\n\ndata: b").discarded);     // unterminated line
  CHECK(parse_every_split("data: a\n\nevent: x\n").discarded);  // fields, no data
  CHECK(parse_every_split("data: a\n\nid: 9\n").discarded);     // an id not yet dispatched
  CHECK(parse_every_split("data: a\n\ndata: b\r").discarded);   // CR: the line ended
  CHECK_FALSE(parse_every_split("data: a\n\n").discarded);
  CHECK_FALSE(parse_every_split("data: a\r\r").discarded);
  CHECK_FALSE(parse_every_split("data: a\n\n: bye\n").discarded);  // comments are not events
  CHECK_FALSE(parse_every_split("data: a\n\n: bye").discarded);
  CHECK_FALSE(parse_every_split("").discarded);
}

TEST_CASE("upstream/sse_parser: finish() readies the parser for the next stream") {
  SseParser parser;
  Recorder r;
  CHECK(parser.feed("id: 3\ndata: a\n\ndata: partial\n", r) == SseStatus::kOk);
  CHECK(parser.finish());
  // The next stream may start with its own BOM, and its events carry the last event id on.
  CHECK(parser.feed("\xEF\xBB\xBF"
                    "data: b\n\n",
                    r) == SseStatus::kOk);
  CHECK(r.log == Log{event("", "a", "3", true), event("", "b", "3")});
  CHECK_FALSE(parser.finish());
}

TEST_CASE("upstream/sse_parser: reset() keeps the last event id unless asked") {
  SseParser parser;
  Recorder r;
  CHECK(parser.feed("id: 5\nevent: t\ndata: a\n\nevent: u\ndata: cut", r) == SseStatus::kOk);
  parser.reset();
  CHECK(parser.last_event_id() == "5");
  CHECK(parser.feed("data: b\n\n", r) == SseStatus::kOk);
  parser.reset(false);
  CHECK(parser.last_event_id().empty());
  CHECK(parser.feed("data: c\n\n", r) == SseStatus::kOk);
  CHECK(r.log == Log{event("t", "a", "5", true), event("", "b", "5"), event("", "c", "")});
}

TEST_CASE("upstream/sse_parser: a line over the limit is an error, and the error sticks") {
  SseLimits limits;
  limits.max_line_bytes = 16;
  // "data: 0123456789" is exactly 16 bytes: allowed. The 17-byte line is not.
  std::string_view stream =
      "data: 0123456789\n\n"
      "data: 0123456789a\n\n"
      "data: after\n\n";
  Outcome out = parse_every_split(stream, limits);
  CHECK(out.log == Log{event("", "0123456789")});
  CHECK(out.status == SseStatus::kLineTooLong);
  CHECK(out.discarded);

  // The same holds whatever the line ending, and for comments.
  CHECK(parse_every_split("data: 0123456789a\r\r", limits).status == SseStatus::kLineTooLong);
  CHECK(parse_every_split(":23456789abcdefgh\n", limits).status == SseStatus::kLineTooLong);
  CHECK(parse_every_split(":23456789abcdefg\n", limits).status == SseStatus::kOk);

  SseParser parser(limits);
  Recorder r;
  // Memory stays bounded: the error comes before the line ends.
  CHECK(parser.feed("data: 0123456789", r) == SseStatus::kOk);
  CHECK(parser.feed("a", r) == SseStatus::kLineTooLong);
  CHECK(parser.status() == SseStatus::kLineTooLong);
  CHECK(parser.feed("\n\ndata: x\n\n", r) == SseStatus::kLineTooLong);
  CHECK(r.log.empty());
  parser.reset();
  CHECK(parser.status() == SseStatus::kOk);
  CHECK(parser.feed("data: x\n\n", r) == SseStatus::kOk);
  CHECK(r.log == Log{event("", "x")});
}

TEST_CASE("upstream/sse_parser: an event over the data limit is an error") {
  SseLimits limits;
  limits.max_event_bytes = 8;
  // Data "1234\n567" is exactly 8 bytes: allowed. "1234\n5678" is not.
  Outcome ok = parse_every_split("data: 1234\ndata: 567\n\n", limits);
  CHECK(ok.log == Log{event("", "1234\n567")});
  CHECK(ok.status == SseStatus::kOk);
  CHECK(parse_every_split("data: 12345678\n\n", limits).status == SseStatus::kOk);

  Outcome big = parse_every_split("data: a\n\ndata: 1234\ndata: 5678\n\ndata: b\n\n", limits);
  CHECK(big.log == Log{event("", "a")});
  CHECK(big.status == SseStatus::kEventTooLarge);
  CHECK(big.discarded);
  // Each event is measured on its own.
  CHECK(parse_every_split("data: 12345678\n\ndata: 12345678\n\n", limits).log.size() == 2);
}

TEST_CASE("upstream/sse_parser: statuses and types have names") {
  CHECK(std::string_view(upstream::to_string(SseStatus::kOk)) == "ok");
  CHECK(std::string_view(upstream::to_string(SseStatus::kLineTooLong)) == "line_too_long");
  CHECK(std::string_view(upstream::to_string(SseStatus::kEventTooLarge)) == "event_too_large");
  SseEvent e;
  CHECK(e.effective_type() == "message");
  e.type = "ping";
  CHECK(e.effective_type() == "ping");
}

TEST_CASE("upstream/sse_parser: complete_prefix ends where the last whole block of a feed ends") {
  SseParser parser;
  Recorder sink;
  parser.feed("data: a\n\ndata: b", sink);
  CHECK(parser.complete_prefix() == 9);  // "data: a\n\n"
  parser.feed("\n", sink);
  CHECK(parser.complete_prefix() == std::string_view::npos);  // "data: b\n": not whole yet
  parser.feed("\n:\n\nda", sink);
  CHECK(parser.complete_prefix() == 4);  // the blank line, then the comment's block
  parser.feed("ta: c\r\n\r", sink);
  CHECK(parser.complete_prefix() == 8);  // a CR ends the block at once...
  parser.feed("\ndata: d\r\n\r\n", sink);
  CHECK(parser.complete_prefix() == 12);  // ...and the LF after it belongs to it
}

// The parser's complete_prefix() finds the same event ends as a scan of the bytes does
// (upstream::complete_sse_prefix, what the proxy used before), for every split of a stream.
TEST_CASE("upstream/sse_parser: complete_prefix agrees with a separate scan for any split") {
  const std::string stream =
      "data: one\r\n\r\n: keep-alive\n\nevent: x\rdata: two\r\rid: 3\ndata: three\n\n"
      "data: {\"a\":1}\r\n\r\ndata: last\n";
  for (size_t a = 0; a <= stream.size(); ++a) {
    for (size_t b = a; b <= stream.size(); b += 3) {
      SseParser parser;
      Recorder sink;
      std::string forwarded, held;
      for (std::string_view piece :
           {std::string_view(stream).substr(0, a), std::string_view(stream).substr(a, b - a),
            std::string_view(stream).substr(b)}) {
        parser.feed(piece, sink);
        size_t prefix = parser.complete_prefix();
        size_t complete = prefix == std::string_view::npos ? 0 : held.size() + prefix;
        held.append(piece);
        forwarded.append(held, 0, complete);
        held.erase(0, complete);
      }
      // What was forwarded is whole blocks, and all of them but the unterminated last one.
      INFO("split at " << a << " and " << b);
      REQUIRE(forwarded.size() == stream.size() - std::string("data: last\n").size());
      REQUIRE(forwarded == stream.substr(0, forwarded.size()));
    }
  }
}
