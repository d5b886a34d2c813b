#include "mock/dialect.hpp"

#include <cstdio>

#include "mock/json.hpp"

namespace ssegw::mock {
namespace {

std::string num(uint64_t v) {
  return std::to_string(v);
}

std::string sse(std::string_view event, std::string_view data) {
  std::string out;
  out.reserve(event.size() + data.size() + 16);
  if (!event.empty()) {
    out += "event: ";
    out.append(event);
    out += '\n';
  }
  out += "data: ";
  out.append(data);
  out += "\n\n";
  return out;
}

constexpr std::string_view kChunkPrefix =
    R"({"id":"chatcmpl-mock","object":"chat.completion.chunk","created":0,"model":"mock",)";

// A chat chunk's end: OpenAI adds "usage":null to every chunk of a stream that asked for usage.
void close_chunk(std::string& json, const Usage& usage) {
  if (usage.include_usage) json += R"(,"usage":null)";
  json += '}';
}

std::string counts(std::string_view prompt_key, uint64_t prompt, std::string_view completion_key,
                   uint64_t completion) {
  std::string out = "{\"";
  out.append(prompt_key);
  out += "\":" + num(prompt) + ",\"";
  out.append(completion_key);
  out += "\":" + num(completion);
  return out;
}

}  // namespace

std::string_view content_type(Api api) {
  switch (api) {
    case Api::kOllamaChat:
    case Api::kOllamaGenerate:
      return "application/x-ndjson";
    default:
      return "text/event-stream";
  }
}

std::vector<std::string> preamble(Api api, const Usage& usage, uint64_t retry_ms) {
  switch (api) {
    case Api::kResponses:
      return {sse("response.created",
                  R"({"type":"response.created","response":{"id":"resp_mock","object":"response",)"
                  R"("status":"in_progress","model":"mock"}})")};
    case Api::kMessages:
      return {sse("message_start",
                  R"({"type":"message_start","message":{"id":"msg_mock","type":"message",)"
                  R"("role":"assistant","model":"mock","content":[],"stop_reason":null,)"
                  R"("stop_sequence":null)" +
                      (usage.reported ? R"(,"usage":{"input_tokens":)" + num(usage.prompt) +
                                            R"(,"output_tokens":0})"
                                      : std::string()) +
                      "}}"),
              sse("ping", R"({"type":"ping"})"),
              sse("content_block_start", R"({"type":"content_block_start","index":0,)"
                                         R"("content_block":{"type":"text","text":""}})")};
    case Api::kFeed:
      return {"retry: " + num(retry_ms) + "\n\n"};
    default:
      return {};
  }
}

std::string token_event(Api api, std::string_view token, const Usage& usage) {
  std::string json;
  json.reserve(token.size() + 200);
  switch (api) {
    case Api::kChat:
      json.append(kChunkPrefix);
      json += R"("choices":[{"index":0,"delta":{"content":)";
      append_json(json, token);
      json += R"(},"finish_reason":null}])";
      close_chunk(json, usage);
      return sse("", json);
    case Api::kResponses:
      json += R"({"type":"response.output_text.delta","delta":)";
      append_json(json, token);
      json += '}';
      return sse("response.output_text.delta", json);
    case Api::kMessages:
      json += R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":)";
      append_json(json, token);
      json += "}}";
      return sse("content_block_delta", json);
    case Api::kOllamaChat:
      json += R"({"model":"mock","message":{"role":"assistant","content":)";
      append_json(json, token);
      json += "},\"done\":false}\n";
      return json;
    case Api::kOllamaGenerate:
      json += R"({"model":"mock","response":)";
      append_json(json, token);
      json += ",\"done\":false}\n";
      return json;
    case Api::kFeed:
      break;
  }
  return json;
}

std::string stamped_token(uint64_t now_ns, std::string_view token) {
  char stamp[24];
  int n = std::snprintf(stamp, sizeof stamp, "T%llu;", static_cast<unsigned long long>(now_ns));
  std::string out;
  out.reserve(static_cast<size_t>(n) + token.size());
  out.append(stamp, static_cast<size_t>(n));
  out.append(token);
  return out;
}

std::string feed_event(std::string_view name, uint64_t n) {
  std::string out = "id: " + num(n) + "\nevent: tick\ndata: {\"feed\":";
  append_json(out, name);
  out += ",\"n\":" + num(n) + "}\n\n";
  return out;
}

std::vector<std::string> finish_events(Api api, const Usage& usage) {
  switch (api) {
    case Api::kChat: {
      std::string last(kChunkPrefix);
      last += R"("choices":[{"index":0,"delta":{},"finish_reason":"stop"}])";
      close_chunk(last, usage);
      std::vector<std::string> events{sse("", last)};
      if (usage.include_usage && usage.reported) {
        std::string totals(kChunkPrefix);
        totals += R"("choices":[],"usage":)" +
                  counts("prompt_tokens", usage.prompt, "completion_tokens", usage.completion) +
                  R"(,"total_tokens":)" + num(usage.prompt + usage.completion) + "}}";
        events.push_back(sse("", totals));
      }
      events.push_back(sse("", "[DONE]"));
      return events;
    }
    case Api::kResponses:
      return {sse("response.completed",
                  R"({"type":"response.completed","response":{"id":"resp_mock",)"
                  R"("object":"response","status":"completed","model":"mock")" +
                      (usage.reported ? R"(,"usage":)" +
                                            counts("input_tokens", usage.prompt, "output_tokens",
                                                   usage.completion) +
                                            "}"
                                      : std::string()) +
                      "}}")};
    case Api::kMessages:
      return {sse("content_block_stop", R"({"type":"content_block_stop","index":0})"),
              sse("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn",)"
                                   R"("stop_sequence":null})" +
                                       (usage.reported ? R"(,"usage":{"output_tokens":)" +
                                                             num(usage.completion) + "}"
                                                       : std::string()) +
                                       "}"),
              sse("message_stop", R"({"type":"message_stop"})")};
    case Api::kOllamaChat:
    case Api::kOllamaGenerate: {
      std::string line = api == Api::kOllamaChat
                             ? R"({"model":"mock","message":{"role":"assistant","content":""},)"
                             : R"({"model":"mock","response":"",)";
      line += R"("done":true,"done_reason":"stop")";
      if (usage.reported)
        line += R"(,"prompt_eval_count":)" + num(usage.prompt) + R"(,"eval_count":)" +
                num(usage.completion);
      line += "}\n";
      return {line};
    }
    case Api::kFeed:
      return {};
  }
  return {};
}

std::string error_event(Api api) {
  switch (api) {
    case Api::kChat:
      return sse("", R"({"error":{"message":"mock error","type":"server_error"}})");
    case Api::kResponses:
      return sse("error", R"({"type":"error","code":"server_error","message":"mock error"})");
    case Api::kMessages:
      return sse("error",
                 R"({"type":"error","error":{"type":"overloaded_error","message":"mock"}})");
    case Api::kOllamaChat:
    case Api::kOllamaGenerate:
      return "{\"error\":\"mock error\"}\n";
    case Api::kFeed:
      return sse("error", R"({"error":{"message":"mock error","type":"server_error"}})");
  }
  return {};
}

std::string garbage_bytes() {
  static constexpr char kBytes[] = "\x00\xff\xfe<html>not an event stream</html>\r{{{\x01";
  return std::string(kBytes, sizeof(kBytes) - 1);
}

std::string chat_completion_json(std::string_view text, const Usage& usage) {
  std::string out =
      R"({"id":"chatcmpl-mock","object":"chat.completion","created":0,"model":"mock",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":)";
  append_json(out, text);
  out += R"(},"finish_reason":"stop"}])";
  if (usage.reported)
    out += R"(,"usage":)" +
           counts("prompt_tokens", usage.prompt, "completion_tokens", usage.completion) +
           R"(,"total_tokens":)" + num(usage.prompt + usage.completion) + "}";
  out += "}";
  return out;
}

std::string ollama_json(Api api, std::string_view text, const Usage& usage) {
  std::string out = R"({"model":"mock",)";
  if (api == Api::kOllamaChat) {
    out += R"("message":{"role":"assistant","content":)";
    append_json(out, text);
    out += "},";
  } else {
    out += R"("response":)";
    append_json(out, text);
    out += ",";
  }
  out += R"("done":true,"done_reason":"stop")";
  if (usage.reported)
    out += R"(,"prompt_eval_count":)" + num(usage.prompt) + R"(,"eval_count":)" +
           num(usage.completion);
  out += "}";
  return out;
}

std::string error_json(std::string_view message, std::string_view type) {
  std::string out = R"({"error":{"message":)";
  append_json(out, message);
  out += R"(,"type":)";
  append_json(out, type);
  out += "}}";
  return out;
}

}  // namespace ssegw::mock
