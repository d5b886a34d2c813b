// The send-time stamp of ssegw-mock-llm's stamp=1 knob: every token's text starts with
// "T<uv_hrtime() ns>;", so a token chunk's data holds, for example,
//   {"id":"chatcmpl-mock",...,"choices":[{"index":0,"delta":{"content":"T123456789;tok0 "},...
// The stamp is found by its shape, a JSON string that opens with T, digits and ';', not by the
// dialect's field name, so OpenAI chunks, Responses deltas and Anthropic deltas all work. The
// clock is CLOCK_MONOTONIC: a receiver on the same machine gets the latency as uv_hrtime() - ns.
#pragma once

#include <charconv>
#include <cstdint>
#include <string_view>

namespace bench {

// The stamp in `data`; false when it holds none (role, usage and terminator events).
inline bool find_llm_stamp(std::string_view data, uint64_t& ns) {
  for (size_t at = data.find("\"T"); at != std::string_view::npos; at = data.find("\"T", at + 1)) {
    const char* p = data.data() + at + 2;
    const char* end = data.data() + data.size();
    uint64_t v = 0;
    auto [next, ec] = std::from_chars(p, end, v);
    if (ec == std::errc() && next != p && next < end && *next == ';') {
      ns = v;
      return true;
    }
  }
  return false;
}

// True for the event that ends a complete answer: OpenAI's data: [DONE], Anthropic's
// message_stop, the Responses API's response.completed.
inline bool is_llm_terminator(std::string_view type, std::string_view data) {
  return (type.empty() && data == "[DONE]") || type == "message_stop" ||
         type == "response.completed";
}

}  // namespace bench
