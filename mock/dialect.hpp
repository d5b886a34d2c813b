// The bytes each mocked API puts on the wire: SSE events and NDJSON lines, without any HTTP
// framing (the connection wraps each one in its own chunk). Pure functions, so the exact output
// can be read here in one place.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw::mock {

enum class Api : uint8_t {
  kChat,            // POST /v1/chat/completions, "stream":true
  kResponses,       // POST /v1/responses
  kMessages,        // POST /v1/messages (Anthropic)
  kOllamaChat,      // POST /api/chat
  kOllamaGenerate,  // POST /api/generate
  kFeed,            // GET /feed/{name}
};

struct Usage {
  uint64_t prompt = 0;
  uint64_t completion = 0;
  // The no_usage knob: the answer carries no token counts in any dialect (a provider or a proxy
  // that drops them), so a gateway has to estimate.
  bool reported = true;
  // Chat streams as OpenAI sends them: counts only when the request set
  // stream_options.include_usage, and then "usage":null on every chunk and a last chunk with
  // "choices":[] and the counts.
  bool include_usage = false;
};

std::string_view content_type(Api api);

// Events sent with the response head, before the first token.
std::vector<std::string> preamble(Api api, const Usage& usage, uint64_t retry_ms);
std::string token_event(Api api, std::string_view token, const Usage& usage);
// A token's text under the stamp knob: "T<now_ns>;" then the token ("T123456789;tok0 "). The
// caller takes now_ns (uv_hrtime, CLOCK_MONOTONIC) right before the token is written.
std::string stamped_token(uint64_t now_ns, std::string_view token);
std::string feed_event(std::string_view name, uint64_t n);
// Events that end a complete stream (usage, terminators).
std::vector<std::string> finish_events(Api api, const Usage& usage);
// The protocol's mid-stream error event.
std::string error_event(Api api);
// Bytes that are neither SSE nor NDJSON (a NUL, invalid UTF-8, no blank line).
std::string garbage_bytes();

// Whole answers for the non-streaming forms.
std::string chat_completion_json(std::string_view text, const Usage& usage);
std::string ollama_json(Api api, std::string_view text, const Usage& usage);
// {"error":{"message":"...","type":"..."}}
std::string error_json(std::string_view message, std::string_view type);

}  // namespace ssegw::mock
