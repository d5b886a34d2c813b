#include "upstream/ndjson_parser.hpp"

#include <doctest/doctest.h>

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/upstream/feed_splits.hpp"

using namespace ssegw;

using upstream::ndjson_done;
using upstream::NdjsonLimits;
using upstream::NdjsonParser;
using upstream::NdjsonStatus;

namespace {

class Recorder : public NdjsonParser::Sink {
 public:
  std::vector<std::string> lines;
  void on_line(std::string_view line) override { lines.emplace_back(line); }
};

using Lines = std::vector<std::string>;

struct Outcome {
  Lines lines;
  NdjsonStatus status = NdjsonStatus::kOk;  // what the last feed() returned
  bool truncated = false;                   // what finish() returned

  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "{status=" << upstream::to_string(o.status) << " truncated=" << o.truncated << " lines=";
  for (const std::string& line : o.lines) os << "\n  [" << line << "]";
  return os << "}";
}

// Feeds `pieces` in order to a fresh parser (each from its own short-lived heap copy).
Outcome run(const feed_splits::Pieces& pieces, const NdjsonLimits& limits = {}) {
  NdjsonParser parser(limits);
  Recorder recorder;
  Outcome out;
  feed_splits::feed_copies(
      pieces, [&](std::string_view bytes) { out.status = parser.feed(bytes, recorder); });
  out.truncated = parser.finish();
  out.lines = std::move(recorder.lines);
  return out;
}

Outcome parse_every_split(std::string_view stream, const NdjsonLimits& limits = {}) {
  return feed_splits::same_at_every_split(
      stream, [&](const feed_splits::Pieces& pieces) { return run(pieces, limits); });
}

constexpr std::string_view kLine1 =
    R"({"model":"llama3.2","created_at":"2024-08-04T08:52:19.385406455Z","response":"The","done":false})";
constexpr std::string_view kLine2 =
    R"({"model":"llama3.2","created_at":"2024-08-04T08:52:19.4Z","response":" sky\n{\"done\":true}","done":false})";
constexpr std::string_view kLine3 =
    R"({"model":"llama3.2","created_at":"2024-08-04T08:52:19.5Z","response":"","done":true,)"
    R"("done_reason":"stop","context":[1,2,3],"total_duration":10706818083,"eval_count":290})";

std::string ollama_stream(std::string_view eol) {
  return std::string(kLine1) + std::string(eol) + std::string(kLine2) + std::string(eol) +
         std::string(kLine3) + std::string(eol);
}

}  // namespace

TEST_CASE("upstream/ndjson_parser: an Ollama stream at every split point") {
  Outcome out = parse_every_split(ollama_stream("\n"));
  CHECK(out.lines == Lines{std::string(kLine1), std::string(kLine2), std::string(kLine3)});
  CHECK(out.status == NdjsonStatus::kOk);
  CHECK_FALSE(out.truncated);
  REQUIRE(out.lines.size() == 3);
  CHECK_FALSE(ndjson_done(out.lines[0]));
  CHECK_FALSE(ndjson_done(out.lines[1]));
  CHECK(ndjson_done(out.lines[2]));
}

TEST_CASE("upstream/ndjson_parser: CRLF endings lose their CR") {
  CHECK(parse_every_split(ollama_stream("\r\n")) == run({ollama_stream("\n")}));
  // Only one CR before the LF is part of the line ending; a lone CR is line content.
  CHECK(parse_every_split("a\r\r\nb\rc\n").lines == Lines{"a\r", "b\rc"});
}

TEST_CASE("upstream/ndjson_parser: blank lines are skipped") {
  Outcome out = parse_every_split("\n{\"a\":1}\n\n\r\n  \t\n \r\n{\"b\":2}\r\n\n");
  CHECK(out.lines == Lines{R"({"a":1})", R"({"b":2})"});
  CHECK_FALSE(out.truncated);
  CHECK(parse_every_split("").lines.empty());
}

TEST_CASE("upstream/ndjson_parser: a final line without LF is truncated, not emitted") {
  Outcome out = parse_every_split(std::string(kLine1) + "\n" + std::string(kLine3));
  CHECK(out.lines == Lines{std::string(kLine1)});
  CHECK(out.truncated);
  CHECK(parse_every_split("{\"a\":1}\n{").truncated);
  CHECK(parse_every_split("{\"a\":1}\r").truncated);
  // Whitespace after the last LF is not a line.
  CHECK_FALSE(parse_every_split("{\"a\":1}\n  ").truncated);
  CHECK_FALSE(parse_every_split("{\"a\":1}\n\r").truncated);
}

TEST_CASE("upstream/ndjson_parser: a line over the limit is an error, and the error sticks") {
  NdjsonLimits limits;
  limits.max_line_bytes = 8;
  Outcome out = parse_every_split("12345678\n123456789\nafter\n", limits);
  CHECK(out.lines == Lines{"12345678"});
  CHECK(out.status == NdjsonStatus::kLineTooLong);
  CHECK(out.truncated);
  // The limit counts the bytes before the LF, a CR included.
  CHECK(parse_every_split("1234567\r\n", limits).status == NdjsonStatus::kOk);
  CHECK(parse_every_split("12345678\r\n", limits).status == NdjsonStatus::kLineTooLong);

  NdjsonParser parser(limits);
  Recorder r;
  CHECK(parser.feed("12345678", r) == NdjsonStatus::kOk);
  CHECK(parser.feed("9", r) == NdjsonStatus::kLineTooLong);  // before the LF arrives
  CHECK(parser.feed("\nok\n", r) == NdjsonStatus::kLineTooLong);
  CHECK(parser.status() == NdjsonStatus::kLineTooLong);
  CHECK(r.lines.empty());
  parser.reset();
  CHECK(parser.feed("ok\n", r) == NdjsonStatus::kOk);
  CHECK(r.lines == Lines{"ok"});
}

TEST_CASE("upstream/ndjson_parser: finish() and reset() ready the parser for another stream") {
  NdjsonParser parser;
  Recorder r;
  CHECK(parser.feed("{\"a\":1}\n{\"cut", r) == NdjsonStatus::kOk);
  CHECK(parser.finish());
  CHECK(parser.feed("{\"b\":2}\n", r) == NdjsonStatus::kOk);
  CHECK_FALSE(parser.finish());
  CHECK(parser.feed("{\"partial", r) == NdjsonStatus::kOk);
  parser.reset();
  CHECK(parser.feed("{\"c\":3}\n", r) == NdjsonStatus::kOk);
  CHECK(r.lines == Lines{R"({"a":1})", R"({"b":2})", R"({"c":3})"});
  CHECK(std::string_view(upstream::to_string(NdjsonStatus::kLineTooLong)) == "line_too_long");
}

TEST_CASE("upstream/ndjson_parser: ndjson_done finds a top-level \"done\":true") {
  CHECK(ndjson_done(R"({"done":true})"));
  CHECK(ndjson_done(R"({ "done" : true })"));
  CHECK(ndjson_done(" \t{\r\n\"done\"\t:\ntrue\r\n}\r\n"));
  CHECK(ndjson_done(R"({"model":"m","response":"","done":true,"context":[1,2,3]})"));
  CHECK(ndjson_done(R"({"message":{"role":"assistant","content":"}"},"done":true})"));
  CHECK(ndjson_done(R"({"x":[1,"]}",{"a":"}{"}],"done":true,"y":{"z":[[]]}})"));
  CHECK(ndjson_done(R"({"response":"\\","done":true})"));  // an escaped backslash ends a string
  CHECK(ndjson_done(R"({"d\u006fne":true})"));             // an escaped key is the same key
  CHECK(ndjson_done(R"({"done":false,"done":true})"));     // the last duplicate wins
  CHECK(ndjson_done(R"({"a":-1.5e3,"b":null,"c":false,"done":true})"));
}

TEST_CASE("upstream/ndjson_parser: ndjson_done is false otherwise") {
  CHECK_FALSE(ndjson_done(R"({"done":false})"));
  CHECK_FALSE(ndjson_done(R"({"done":"true"})"));
  CHECK_FALSE(ndjson_done(R"({"done":trueish})"));
  CHECK_FALSE(ndjson_done(R"({"done":null})"));
  CHECK_FALSE(ndjson_done(R"({"done":1})"));
  CHECK_FALSE(ndjson_done(R"({"done":true,"done":false})"));
  CHECK_FALSE(ndjson_done(R"({"Done":true})"));
  CHECK_FALSE(ndjson_done(R"({"done ":true})"));
  CHECK_FALSE(ndjson_done(R"({"d\u00f6ne":true})"));
  // Inside a string value or a nested value, it is not the top-level key.
  CHECK_FALSE(ndjson_done(R"({"response":"\"done\":true"})"));
  CHECK_FALSE(ndjson_done(R"({"response":"\\\"done\":true"})"));
  CHECK_FALSE(ndjson_done(R"({"response":"{\"done\":true}","done":false})"));
  CHECK_FALSE(ndjson_done(R"({"x":{"done":true}})"));
  CHECK_FALSE(ndjson_done(R"({"x":[{"done":true}],"done":false})"));
  CHECK_FALSE(ndjson_done(R"([{"done":true}])"));
  CHECK_FALSE(ndjson_done(R"("done":true)"));
  // Not a well-formed object at the top level.
  CHECK_FALSE(ndjson_done(""));
  CHECK_FALSE(ndjson_done("{}"));
  CHECK_FALSE(ndjson_done(R"({"done":true)"));
  CHECK_FALSE(ndjson_done(R"({"done":true,)"));
  CHECK_FALSE(ndjson_done(R"({"done":true} x)"));
  CHECK_FALSE(ndjson_done(R"({"done":true}})"));
  CHECK_FALSE(ndjson_done(R"({"done" true})"));
  CHECK_FALSE(ndjson_done(R"({"done":})"));
  CHECK_FALSE(ndjson_done(R"({done:true})"));
  CHECK_FALSE(ndjson_done(R"({"x":"unterminated,"done":true})"));
  CHECK_FALSE(ndjson_done(R"({"x":[1,2,"done":true})"));
  CHECK_FALSE(ndjson_done("{\"done\\"));
  CHECK_FALSE(ndjson_done(R"({"d\u00":true})"));
}
