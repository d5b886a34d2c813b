// The token usage of one proxied answer (docs/protocol.md "Usage"), read from the provider's own
// events as they pass, and the content streamed so far for an estimate when the answer ends
// without counts.
//
// What is read:
// - OpenAI chat completions: the `usage` object of a chunk (prompt_tokens, completion_tokens);
//   content from `content`, `reasoning_content` and tool call `arguments` strings.
// - OpenAI Responses: `usage` of response.completed / response.incomplete / response.failed
//   (input_tokens, output_tokens); content from the `delta` of response.*.delta events.
// - Anthropic messages: `usage` of message_start (input_tokens, with the cache_creation_ and
//   cache_read_input_tokens added to the prompt) and of message_delta (output_tokens, cumulative);
//   content from content_block_delta's text, partial_json and thinking.
// - Ollama: prompt_eval_count and eval_count of the final line; content from `content`,
//   `response` and `thinking`.
// - A non-streamed JSON answer: its `usage` object (either naming), or Ollama's counts.
//
// Rules:
// - A scan of the event's own text, not a JSON parse: each event is looked at once, for the few
//   keys above, so accounting costs one pass over bytes that already passed the SSE parser.
// - Counts only grow: a provider that repeats a cumulative count (Anthropic) is read as the
//   largest value seen.
// - The estimate is ceil(characters / 4) of the content strings (decoded: an escape is one
//   character, a UTF-8 sequence is one), about what a BPE tokenizer gives for English text.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ssegw::upstream {

class UsageMeter {
 public:
  // An SSE event of a 2xx answer; type is its effective type ("message" when unnamed).
  void on_event(std::string_view type, std::string_view data);
  // An NDJSON line of a 2xx answer.
  void on_line(std::string_view line);
  // A whole non-streamed JSON answer, or its tail (the counts come last).
  void on_json_answer(std::string_view body);

  // The counts the provider reported, if it did.
  std::optional<uint64_t> prompt() const { return prompt_; }
  std::optional<uint64_t> completion() const { return completion_; }
  // Characters of generated content seen so far.
  uint64_t content_chars() const { return content_chars_; }
  uint64_t estimated_completion() const { return (content_chars_ + 3) / 4; }

 private:
  void read_usage_object(std::string_view json, std::string_view prompt_key,
                         std::string_view completion_key);
  void note_prompt(uint64_t n);
  void note_completion(uint64_t n);

  std::optional<uint64_t> prompt_;
  std::optional<uint64_t> completion_;
  uint64_t content_chars_ = 0;
};

// Characters of the strings under these keys in a JSON text (decoded, as above): for the content
// of an event, and for estimating a prompt from a request body.
uint64_t string_chars_under(std::string_view json, std::initializer_list<std::string_view> keys);

// A prompt's estimate from a request body: the characters of its message texts, inputs and
// instructions, divided by 4 and rounded up.
uint64_t estimate_prompt_tokens(std::string_view request_body);

// The number after "key": in a JSON text (the first one), without parsing the document.
std::optional<uint64_t> find_json_number(std::string_view json, std::string_view key);

// The string value of "key" in a JSON text (the first one, as raw bytes, escapes undecoded),
// cut to at most max_bytes at a UTF-8 boundary.
std::optional<std::string_view> find_json_string(std::string_view json, std::string_view key,
                                                 size_t max_bytes);

}  // namespace ssegw::upstream
