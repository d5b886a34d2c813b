// The shape and fault knobs of one mock request, parsed once from the query string and the
// X-Mock-<Name> headers, plus the token script they describe.
//
// A knob is read from the query parameter `name` first, then from the header X-Mock-<Name>
// (X-Mock-Interval-Ms and X-Mock-Interval_Ms both name interval_ms). Numbers are decimal digits
// only, each with an upper bound, so one request can never make the mock run unbounded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mock/http.hpp"

namespace ssegw::mock {

constexpr uint64_t kMaxTokens = 10'000;
constexpr uint64_t kMaxDelayMs = 600'000;
constexpr uint64_t kMaxTokenBytes = 64 * 1024;

// A count that "is not set" is kNever: a fault that never fires, a feed that never ends.
constexpr uint64_t kNever = UINT64_MAX;

struct Knobs {
  uint64_t tokens = 20;              // LLM default; a feed defaults to kNever (endless)
  uint64_t interval_ms = 20;         // a feed defaults to 100
  uint64_t first_token_ms = kNever;  // kNever: the first token waits interval_ms like the rest
  uint64_t head_delay_ms = 0;
  uint64_t drop_after = kNever;
  uint64_t error_after = kNever;
  uint64_t garbage_after = kNever;  // garbage=K: K tokens, then garbage bytes, then close
  uint64_t stall_after = kNever;
  uint64_t stall_ms = 0;
  // 0: answer normally. 204: no body and no Content-Length. 304: the head of the status answer
  // (with an ETag and the Content-Length of the body it leaves out), no body.
  uint64_t status = 0;
  // 100 to 199: an interim head with this status goes out first (103 with a Link header), then
  // the answer as usual. 0: none.
  uint64_t interim = 0;
  uint64_t retry_ms = 100;
  uint64_t token_bytes = 0;         // pads the default "tokN " tokens to this size
  uint64_t prompt_tokens = kNever;  // kNever: count the words of the request body
  // stamp=1: each token's text starts with "T<uv_hrtime() ns>;", taken as the token is written,
  // so a client on the same machine (CLOCK_MONOTONIC) measures each chunk's latency.
  bool stamp = false;
  // no_usage=1: the answer carries no token counts, in any dialect.
  bool no_usage = false;
  bool tokens_given = false;  // tokens came from the request, not the default
  bool has_text = false;
  std::string text;
};

// Fills `knobs` from `request`; false with `error` naming the bad knob.
bool parse_knobs(const Request& request, bool feed, Knobs& knobs, std::string& error);

// The tokens to stream: "tok0 ", "tok1 ", ... or the words of `text`, each keeping the
// whitespace that follows it, so that their concatenation is the text itself. With both text and
// a tokens count, the words repeat or are cut to that count.
std::vector<std::string> token_script(const Knobs& knobs);

// Whitespace-separated words in `body`, or 10 for an empty body (the prompt_tokens default).
uint64_t prompt_words(std::string_view body);

// True when the JSON body sets `key` to `value` (whitespace allowed around the colon). A plain
// scan, not a parser: enough for the mock, where a wrong guess only changes the answer's form.
bool json_flag(std::string_view body, std::string_view key, bool value);

}  // namespace ssegw::mock
