// Fuzz target: upstream::SseParser (upstream/sse_parser.hpp).
//
// The input is the byte stream an upstream sends. Invariants:
// - any split of the stream gives the same callbacks, status, last event ID and finish() result
//   (the header's promise), with the default limits and with small limits derived from the input
//   (which drive the line_too_long and event_too_large paths);
// - reset(false) forgets everything: a reused parser gives the same outcome as a fresh one;
// - what the parser hands out is well formed: no CR or LF in a type, id or comment, no CR in
//   data, no NUL in an id, data within max_event_bytes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_support.hpp"
#include "upstream/sse_parser.hpp"

using namespace ssegw;

namespace {

using upstream::SseEvent;
using upstream::SseLimits;
using upstream::SseParser;
using upstream::SseStatus;

bool has_any(std::string_view s, std::string_view chars) {
  return s.find_first_of(chars) != std::string_view::npos;
}

class Recorder : public SseParser::Sink {
 public:
  explicit Recorder(const SseLimits& limits) : limits_(limits) {}
  std::string log;

  void on_event(const SseEvent& e) override {
    FUZZ_CHECK(!has_any(e.type, std::string_view("\r\n", 2)));
    FUZZ_CHECK(!has_any(e.id, std::string_view("\r\n\0", 3)));
    FUZZ_CHECK(!has_any(e.data, "\r"));
    FUZZ_CHECK(e.data.size() <= limits_.max_event_bytes);
    FUZZ_CHECK(!e.effective_type().empty());
    log += "event type=";
    fuzz::append_field(log, e.type);
    log += " data=";
    fuzz::append_field(log, e.data);
    log += " id=";
    fuzz::append_field(log, e.id);
    log += e.has_id ? " has_id\n" : "\n";
  }
  void on_comment(std::string_view text) override {
    FUZZ_CHECK(!has_any(text, "\r\n"));
    log += "comment ";
    fuzz::append_field(log, text);
    log += '\n';
  }
  void on_retry(uint64_t ms) override { log += "retry " + std::to_string(ms) + "\n"; }

 private:
  SseLimits limits_;
};

std::string run(SseParser& parser, std::string_view input, const fuzz::Plan& plan,
                const SseLimits& limits) {
  Recorder recorder(limits);
  SseStatus status = SseStatus::kOk;
  fuzz::feed_plan(input, plan, [&](std::string_view piece) {
    SseStatus s = parser.feed(piece, recorder);
    FUZZ_CHECK(s == parser.status());
    // An error is sticky until reset().
    if (status != SseStatus::kOk) FUZZ_CHECK(s == status);
    status = s;
  });
  std::string out = recorder.log;
  out += "status=";
  out += upstream::to_string(status);
  out += " last_event_id=";
  fuzz::append_field(out, parser.last_event_id());
  FUZZ_CHECK(!has_any(parser.last_event_id(), std::string_view("\r\n\0", 3)));
  bool discarded = parser.finish();
  if (status != SseStatus::kOk) FUZZ_CHECK(discarded);
  FUZZ_CHECK(parser.status() == SseStatus::kOk);  // finish() resets
  out += discarded ? " discarded" : " complete";
  return out;
}

void check_splits(std::string_view input, const SseLimits& limits, size_t bytewise_limit) {
  const auto plans = fuzz::split_plans(input, bytewise_limit);
  SseParser fresh(limits);
  const std::string expected = run(fresh, input, plans[0], limits);
  if (fuzz::debug()) std::fprintf(stderr, "%s\n", expected.c_str());
  SseParser reused(limits);  // reset(false) between plans must make it as good as new
  for (const fuzz::Plan& plan : plans) {
    reused.reset(false);
    std::string got = run(reused, input, plan, limits);
    if (got != expected) {
      fuzz::report_mismatch("SSE outcomes", expected, got);
      FUZZ_CHECK(got == expected);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  check_splits(input, SseLimits{}, 1024);
  // Small limits from the last two bytes (the first ones pick the splits).
  if (size >= 2) {
    SseLimits small;
    small.max_line_bytes = static_cast<unsigned char>(input[size - 1]) % 48;
    small.max_event_bytes = static_cast<unsigned char>(input[size - 2]) % 48;
    check_splits(input, small, 256);
  }
  return 0;
}
