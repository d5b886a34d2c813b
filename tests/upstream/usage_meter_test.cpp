#include "upstream/usage_meter.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using namespace ssegw;
using upstream::UsageMeter;

TEST_CASE("upstream/usage_meter: OpenAI chat reads the usage chunk and the content") {
  UsageMeter m;
  m.on_event("message", R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})");
  m.on_event("message", R"({"choices":[{"index":0,"delta":{"content":"Hello"}}],"usage":null})");
  m.on_event("message", R"({"choices":[{"index":0,"delta":{"content":" wor\"ld"}}]})");
  CHECK_FALSE(m.prompt().has_value());
  CHECK_FALSE(m.completion().has_value());
  CHECK(m.content_chars() == 5 + 7);  // the escape is one character
  CHECK(m.estimated_completion() == 3);
  m.on_event("message", R"({"choices":[],"usage":{"prompt_tokens":13,"completion_tokens":4,)"
                        R"("total_tokens":17}})");
  m.on_event("message", "[DONE]");
  CHECK(m.prompt() == 13u);
  CHECK(m.completion() == 4u);
}

TEST_CASE("upstream/usage_meter: tool call arguments and reasoning count as content") {
  UsageMeter m;
  m.on_event("message", R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":)"
                        R"({"arguments":"{\"a\":1}"}}]}}]})");
  m.on_event("message", R"({"choices":[{"delta":{"reasoning_content":"think"}}]})");
  CHECK(m.content_chars() == 7 + 5);
}

TEST_CASE("upstream/usage_meter: OpenAI Responses reads response.completed") {
  UsageMeter m;
  m.on_event("response.created", R"({"type":"response.created","response":{"id":"r"}})");
  m.on_event("response.output_text.delta",
             R"({"type":"response.output_text.delta","delta":"abcd"})");
  m.on_event("response.completed",
             R"({"type":"response.completed","response":{"usage":{"input_tokens":7,)"
             R"("output_tokens":9,"total_tokens":16}}})");
  CHECK(m.prompt() == 7u);
  CHECK(m.completion() == 9u);
  CHECK(m.content_chars() == 4);
}

TEST_CASE("upstream/usage_meter: Anthropic adds cache tokens to the prompt, output is cumulative") {
  UsageMeter m;
  m.on_event("message_start",
             R"({"type":"message_start","message":{"usage":{"input_tokens":10,)"
             R"("cache_creation_input_tokens":3,"cache_read_input_tokens":2,"output_tokens":1}}})");
  m.on_event(
      "content_block_delta",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"héllo"}})");
  m.on_event("message_delta", R"({"type":"message_delta","usage":{"output_tokens":5}})");
  m.on_event("message_delta", R"({"type":"message_delta","usage":{"output_tokens":4}})");
  CHECK(m.prompt() == 15u);
  CHECK(m.completion() == 5u);    // the largest seen: counts only grow
  CHECK(m.content_chars() == 5);  // a UTF-8 sequence is one character
}

TEST_CASE("upstream/usage_meter: Ollama reads the final line's counts") {
  UsageMeter m;
  m.on_line(R"({"model":"m","message":{"role":"assistant","content":"hi "},"done":false})");
  m.on_line(R"({"model":"m","response":"there","done":false})");
  CHECK_FALSE(m.prompt().has_value());
  m.on_line(R"({"model":"m","done":true,"prompt_eval_count":26,"eval_count":290})");
  CHECK(m.prompt() == 26u);
  CHECK(m.completion() == 290u);
  CHECK(m.content_chars() == 3 + 5);
}

TEST_CASE("upstream/usage_meter: a non-streamed answer's usage, in either naming") {
  UsageMeter chat;
  chat.on_json_answer(R"({"choices":[{"message":{"content":"x"}}],)"
                      R"("usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})");
  CHECK(chat.prompt() == 5u);
  CHECK(chat.completion() == 2u);
  UsageMeter anthropic;
  anthropic.on_json_answer(R"({"content":[],"usage":{"input_tokens":8,"output_tokens":3}})");
  CHECK(anthropic.prompt() == 8u);
  CHECK(anthropic.completion() == 3u);
  UsageMeter none;
  none.on_json_answer(R"({"choices":[]})");
  CHECK_FALSE(none.prompt().has_value());
  CHECK_FALSE(none.completion().has_value());
}

TEST_CASE("upstream/usage_meter: hostile numbers are not counts") {
  UsageMeter m;
  m.on_event("message", R"({"choices":[],"usage":{"prompt_tokens":-1,"completion_tokens":)"
                        R"(99999999999999999999999}})");
  CHECK_FALSE(m.prompt().has_value());
  CHECK_FALSE(m.completion().has_value());
}

TEST_CASE("upstream/usage_meter: the estimate is ceil(characters / 4)") {
  UsageMeter m;
  CHECK(m.estimated_completion() == 0);
  m.on_event("message", R"({"choices":[{"delta":{"content":"a"}}]})");
  CHECK(m.estimated_completion() == 1);
  m.on_event("message", R"({"choices":[{"delta":{"content":"bcd"}}]})");
  CHECK(m.estimated_completion() == 1);
  m.on_event("message", R"({"choices":[{"delta":{"content":"e"}}]})");
  CHECK(m.estimated_completion() == 2);
}

TEST_CASE("upstream/usage_meter: the prompt estimate reads messages, input and instructions") {
  CHECK(upstream::estimate_prompt_tokens(
            R"({"model":"gpt","messages":[{"role":"user","content":"abcdefgh"}]})") == 2);
  CHECK(upstream::estimate_prompt_tokens(R"({"input":"abcde","instructions":"xyz"})") == 2);
  CHECK(upstream::estimate_prompt_tokens(R"({"model":"gpt"})") == 0);
}

TEST_CASE("upstream/usage_meter: find_json_number and find_json_string") {
  CHECK(upstream::find_json_number(R"({"a": 12 ,"b":3})", "a") == 12u);
  CHECK(upstream::find_json_number(R"({"a":"12"})", "a") == std::nullopt);
  CHECK(upstream::find_json_number(R"({"ab":1})", "a") == std::nullopt);
  CHECK(upstream::find_json_string(R"({"model" : "gpt-4o"})", "model", 64) == "gpt-4o");
  CHECK(upstream::find_json_string(R"({"model":"gpt-4o"})", "model", 3) == "gpt");
  // Cut at a UTF-8 boundary: never half of "é".
  CHECK(upstream::find_json_string("{\"model\":\"a\xc3\xa9\"}", "model", 2) == "a");
  CHECK(upstream::find_json_string(R"({"model":5})", "model", 64) == std::nullopt);
}
