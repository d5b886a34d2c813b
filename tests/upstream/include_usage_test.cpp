#include "upstream/include_usage.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ssegw;
using upstream::inject_include_usage;
using upstream::strip_injected_usage;
using upstream::strip_injected_usage_events;

TEST_CASE("upstream/include_usage: injected into a streaming chat request without stream_options") {
  std::string body = R"({"model":"m","stream":true,"messages":[]})";
  CHECK(inject_include_usage("/v1/chat/completions", body));
  CHECK(body ==
        R"({"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[]})");

  std::string spaced = "  { \"stream\" : true }";
  CHECK(inject_include_usage("/openai/v1/chat/completions", spaced));
  CHECK(spaced == R"(  {"stream_options":{"include_usage":true}, "stream" : true })");
}

TEST_CASE("upstream/include_usage: a client's stream_options without include_usage: true get it") {
  std::string off = R"({"stream":true,"stream_options":{"include_usage":false}})";
  CHECK(inject_include_usage("/v1/chat/completions", off));
  CHECK(off == R"({"stream":true,"stream_options":{"include_usage":true}})");
  std::string other = R"({"stream":true,"stream_options":{"x":1}})";
  CHECK(inject_include_usage("/v1/chat/completions", other));
  CHECK(other == R"({"stream":true,"stream_options":{"include_usage":true,"x":1}})");
  std::string empty = R"({"stream":true,"stream_options":{ }})";
  CHECK(inject_include_usage("/v1/chat/completions", empty));
  CHECK(empty == R"({"stream":true,"stream_options":{"include_usage":true }})");
  std::string null = R"({"stream":true,"stream_options":null})";
  CHECK(inject_include_usage("/v1/chat/completions", null));
  CHECK(null == R"({"stream":true,"stream_options":{"include_usage":true}})");
}

TEST_CASE("upstream/include_usage: left alone when there is nothing to ask, or it was asked") {
  std::string asked = R"({"stream":true,"stream_options":{"include_usage":true}})";
  CHECK_FALSE(inject_include_usage("/v1/chat/completions", asked));
  CHECK(asked == R"({"stream":true,"stream_options":{"include_usage":true}})");
  std::string not_streaming = R"({"stream":false})";
  CHECK_FALSE(inject_include_usage("/v1/chat/completions", not_streaming));
  // A "stream":true nested in a tool's schema is not the request's.
  std::string nested =
      R"({"stream":false,"tools":[{"function":{"parameters":{"default":{"stream":true}}}}]})";
  CHECK_FALSE(inject_include_usage("/v1/chat/completions", nested));
  std::string other_route = R"({"stream":true})";
  CHECK_FALSE(inject_include_usage("/v1/responses", other_route));
  std::string not_object = R"([{"stream":true}])";
  CHECK_FALSE(inject_include_usage("/v1/chat/completions", not_object));
  CHECK(not_object == R"([{"stream":true}])");
}

TEST_CASE("upstream/include_usage: the null usage goes, the usage-only chunk is dropped") {
  std::string out;
  CHECK(strip_injected_usage(R"({"id":"c","choices":[{"delta":{"content":"x"}}],"usage":null})",
                             out));
  CHECK(out == R"({"id":"c","choices":[{"delta":{"content":"x"}}]})");
  CHECK_FALSE(strip_injected_usage(
      R"({"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}})", out));
  // Nothing to take out: out stays empty, the data is used as it is.
  CHECK(strip_injected_usage(R"({"choices":[{"delta":{}}]})", out));
  CHECK(out.empty());
  CHECK(strip_injected_usage("[DONE]", out));
  CHECK(out.empty());
  // "usage" as a value before the key: each occurrence is tried, and only the key's null goes.
  CHECK(strip_injected_usage(R"({"choices":[{"delta":{"content":"usage"}}], "usage": null})", out));
  CHECK(out == R"({"choices":[{"delta":{"content":"usage"}}]})");
  CHECK(strip_injected_usage(R"({"usage":null,"id":"c"})", out));
  CHECK(out == R"({"id":"c"})");
  // Two null usages: the first form of the list that occurs goes (",\"usage\":null" before
  // ", \"usage\": null"), wherever it is.
  CHECK(strip_injected_usage(R"({"x":{"usage": null, "y":1},"usage":null})", out));
  CHECK(out == R"({"x":{"usage": null, "y":1}})");
  // A usage that is not null, in a chunk with choices, passes whole.
  CHECK(strip_injected_usage(R"({"choices":[{}],"usage":{"prompt_tokens":1}})", out));
  CHECK(out.empty());
}

TEST_CASE("upstream/include_usage: whole events keep their line ends, a partial tail passes") {
  std::string out;
  strip_injected_usage_events(
      "data: {\"a\":1,\"usage\":null}\r\n\r\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n"
      "data: [DONE]\n\n"
      "data: {\"b\"",
      out);
  CHECK(out == "data: {\"a\":1}\r\n\r\ndata: [DONE]\n\ndata: {\"b\"");
}
