// Fuzz target: upstream::NdjsonParser and upstream::ndjson_done (upstream/ndjson_parser.hpp).
//
// The input is the byte stream an upstream (Ollama) sends. Invariants:
// - any split of the stream gives the same lines, done flags, status and finish() result, with
//   the default limit and with a small limit derived from the input;
// - reset() forgets everything: a reused parser gives the same outcome as a fresh one;
// - a line has no LF, is not blank and fits the limit;
// - ndjson_done() ignores JSON whitespace around the object, and never sees a "done" that is
//   nested one level down ({"x": <line>}), the case its header promises not to match.
// ndjson_done() also runs on the whole input, multi-line and all: it must not overrun.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_support.hpp"
#include "upstream/ndjson_parser.hpp"

using namespace ssegw;

namespace {

using upstream::NdjsonLimits;
using upstream::NdjsonParser;
using upstream::NdjsonStatus;

bool json_blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return false;
  return true;
}

void check_done_invariants(std::string_view line) {
  bool done = upstream::ndjson_done(line);
  std::string padded = " \t";
  padded += line;
  padded += " \r ";
  FUZZ_CHECK(upstream::ndjson_done(padded) == done);
  if (done) {
    std::string nested = "{\"x\":";
    nested += line;
    nested += "}";
    FUZZ_CHECK(!upstream::ndjson_done(nested));
  }
}

class Recorder : public NdjsonParser::Sink {
 public:
  explicit Recorder(const NdjsonLimits& limits) : limits_(limits) {}
  std::string log;

  void on_line(std::string_view line) override {
    FUZZ_CHECK(line.find('\n') == std::string_view::npos);
    FUZZ_CHECK(!json_blank(line));
    FUZZ_CHECK(line.size() <= limits_.max_line_bytes);
    bool done = upstream::ndjson_done(line);
    log += done ? "done " : "line ";
    fuzz::append_field(log, line);
    log += '\n';
  }

 private:
  NdjsonLimits limits_;
};

std::string run(NdjsonParser& parser, std::string_view input, const fuzz::Plan& plan,
                const NdjsonLimits& limits) {
  Recorder recorder(limits);
  NdjsonStatus status = NdjsonStatus::kOk;
  fuzz::feed_plan(input, plan, [&](std::string_view piece) {
    NdjsonStatus s = parser.feed(piece, recorder);
    FUZZ_CHECK(s == parser.status());
    if (status != NdjsonStatus::kOk) FUZZ_CHECK(s == status);  // sticky
    status = s;
  });
  std::string out = recorder.log;
  out += "status=";
  out += upstream::to_string(status);
  bool truncated = parser.finish();
  if (status != NdjsonStatus::kOk) FUZZ_CHECK(truncated);
  FUZZ_CHECK(parser.status() == NdjsonStatus::kOk);  // finish() resets
  out += truncated ? " truncated" : " complete";
  return out;
}

void check_splits(std::string_view input, const NdjsonLimits& limits, size_t bytewise_limit) {
  const auto plans = fuzz::split_plans(input, bytewise_limit);
  NdjsonParser fresh(limits);
  const std::string expected = run(fresh, input, plans[0], limits);
  if (fuzz::debug()) std::fprintf(stderr, "%s\n", expected.c_str());
  NdjsonParser reused(limits);
  for (const fuzz::Plan& plan : plans) {
    reused.reset();
    std::string got = run(reused, input, plan, limits);
    if (got != expected) {
      fuzz::report_mismatch("NDJSON outcomes", expected, got);
      FUZZ_CHECK(got == expected);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  check_splits(input, NdjsonLimits{}, 1024);
  if (size >= 1) {
    NdjsonLimits small;
    small.max_line_bytes = static_cast<unsigned char>(input[size - 1]) % 64;
    check_splits(input, small, 256);
  }
  // The scanner on arbitrary text, and its invariants on each line of the input.
  upstream::ndjson_done(input);
  for (size_t start = 0; start <= size;) {
    size_t lf = input.find('\n', start);
    if (lf == std::string_view::npos) lf = size;
    check_done_invariants(input.substr(start, lf - start));
    start = lf + 1;
  }
  return 0;
}
