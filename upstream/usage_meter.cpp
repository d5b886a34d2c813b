#include "upstream/usage_meter.hpp"

#include <algorithm>

#include "gateway/base/ascii.hpp"

namespace ssegw::upstream {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The position of the value after the next `"key":` at or after `from`, or npos. A key inside a
// string value has escaped quotes around it, so it never matches.
size_t value_after_key(std::string_view json, std::string_view key, size_t from) {
  while (from < json.size()) {
    size_t pos = base::find_text(json, key, from);
    if (pos == std::string_view::npos) return pos;
    from = pos + key.size();
    bool quoted = pos > 0 && json[pos - 1] == '"' && (pos < 2 || json[pos - 2] != '\\') &&
                  from < json.size() && json[from] == '"';
    if (!quoted) continue;
    size_t i = from + 1;
    while (i < json.size() && is_space(json[i])) ++i;
    if (i >= json.size() || json[i] != ':') continue;
    ++i;
    while (i < json.size() && is_space(json[i])) ++i;
    return i < json.size() ? i : std::string_view::npos;
  }
  return std::string_view::npos;
}

// The end (the closing quote) of the string whose opening quote is at `open`, or npos.
size_t string_end(std::string_view json, size_t open) {
  for (size_t i = open + 1; i < json.size(); ++i) {
    if (json[i] == '\\')
      ++i;
    else if (json[i] == '"')
      return i;
  }
  return std::string_view::npos;
}

// Decoded characters of a string's raw contents: an escape is one, a UTF-8 sequence is one.
uint64_t decoded_chars(std::string_view raw) {
  uint64_t chars = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    auto c = static_cast<unsigned char>(raw[i]);
    if (c == '\\') {
      i += (i + 1 < raw.size() && raw[i + 1] == 'u') ? 5 : 1;
      ++chars;
    } else if ((c & 0xC0) != 0x80) {
      ++chars;
    }
  }
  return chars;
}

size_t skip_space(std::string_view json, size_t i) {
  while (i < json.size() && is_space(json[i])) ++i;
  return i;
}

// The end (one past) of the JSON value that starts at `i`, or npos when it does not end: a
// string, an object or array (brackets matched, strings skipped), or a scalar.
size_t value_end(std::string_view json, size_t i) {
  if (i >= json.size()) return std::string_view::npos;
  if (json[i] == '"') {
    size_t end = string_end(json, i);
    return end == std::string_view::npos ? end : end + 1;
  }
  if (json[i] == '{' || json[i] == '[') {
    size_t depth = 0;
    for (; i < json.size(); ++i) {
      char c = json[i];
      if (c == '"') {
        i = string_end(json, i);
        if (i == std::string_view::npos) return i;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return i + 1;
      }
    }
    return std::string_view::npos;
  }
  while (i < json.size() && json[i] != ',' && json[i] != '}' && json[i] != ']' &&
         !is_space(json[i]))
    ++i;
  return i;
}

// A count: 1 to 18 digits and nothing else.
std::optional<uint64_t> parse_count(std::string_view raw) {
  if (raw.empty() || raw.size() > 18) return std::nullopt;
  uint64_t value = 0;
  for (char c : raw) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

}  // namespace

std::string_view json_member(std::string_view object, std::string_view key) {
  size_t i = skip_space(object, 0);
  if (i >= object.size() || object[i] != '{') return {};
  i = skip_space(object, i + 1);
  if (i < object.size() && object[i] == '}') return {};
  while (i < object.size() && object[i] == '"') {
    size_t key_end = string_end(object, i);
    if (key_end == std::string_view::npos) return {};
    std::string_view name = object.substr(i + 1, key_end - i - 1);
    i = skip_space(object, key_end + 1);
    if (i >= object.size() || object[i] != ':') return {};
    i = skip_space(object, i + 1);
    size_t end = value_end(object, i);
    if (end == std::string_view::npos) return {};
    if (name == key) return object.substr(i, end - i);
    i = skip_space(object, end);
    if (i >= object.size() || object[i] != ',') return {};
    i = skip_space(object, i + 1);
  }
  return {};
}

std::optional<uint64_t> json_count(std::string_view object, std::string_view key) {
  return parse_count(json_member(object, key));
}

namespace {}  // namespace

std::optional<uint64_t> find_json_number(std::string_view json, std::string_view key) {
  size_t from = 0;
  while (true) {
    size_t pos = value_after_key(json, key, from);
    if (pos == std::string_view::npos) return std::nullopt;
    from = pos;
    uint64_t value = 0;
    size_t digits = 0;
    while (pos < json.size() && json[pos] >= '0' && json[pos] <= '9') {
      if (++digits > 18) return std::nullopt;  // no count is that large: a hostile number
      value = value * 10 + static_cast<uint64_t>(json[pos++] - '0');
    }
    if (digits > 0) return value;
  }
}

std::optional<std::string_view> find_json_string(std::string_view json, std::string_view key,
                                                 size_t max_bytes) {
  size_t from = 0;
  while (true) {
    size_t open = value_after_key(json, key, from);
    if (open == std::string_view::npos) return std::nullopt;
    from = open;
    if (json[open] != '"') continue;
    size_t end = string_end(json, open);
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view raw = json.substr(open + 1, end - open - 1);
    if (raw.size() > max_bytes) {
      size_t cut = max_bytes;
      while (cut > 0 && (static_cast<unsigned char>(raw[cut]) & 0xC0) == 0x80) --cut;
      raw = raw.substr(0, cut);
    }
    return raw;
  }
}

uint64_t string_chars_under(std::string_view json, std::initializer_list<std::string_view> keys) {
  uint64_t chars = 0;
  for (std::string_view key : keys) {
    size_t from = 0;
    while (true) {
      size_t open = value_after_key(json, key, from);
      if (open == std::string_view::npos) break;
      from = open;
      if (json[open] != '"') continue;
      size_t end = string_end(json, open);
      if (end == std::string_view::npos) break;
      chars += decoded_chars(json.substr(open + 1, end - open - 1));
      from = end + 1;
    }
  }
  return chars;
}

uint64_t estimate_prompt_tokens(std::string_view request_body) {
  return (request_body.size() + 3) / 4;
}

void UsageMeter::note_prompt(uint64_t n) {
  prompt_ = std::max(prompt_.value_or(0), n);
}

void UsageMeter::note_completion(uint64_t n) {
  completion_ = std::max(completion_.value_or(0), n);
}

void UsageMeter::read_usage(std::string_view usage, std::string_view prompt_key,
                            std::string_view completion_key) {
  if (usage.empty() || usage.front() != '{') return;
  if (auto n = json_count(usage, prompt_key)) {
    uint64_t prompt = *n;
    // Anthropic counts cached prompt tokens apart from input_tokens; they are prompt all the same.
    if (prompt_key == "input_tokens") {
      prompt += json_count(usage, "cache_creation_input_tokens").value_or(0);
      prompt += json_count(usage, "cache_read_input_tokens").value_or(0);
    }
    note_prompt(prompt);
  }
  if (completion_key.empty()) return;
  if (auto n = json_count(usage, completion_key)) note_completion(*n);
}

void UsageMeter::on_event(std::string_view type, std::string_view data) {
  if (type == "content_block_delta") {
    content_chars_ += string_chars_under(data, {"text", "partial_json", "thinking"});
    return;
  }
  if (type.starts_with("response.")) {
    if (type.ends_with(".delta")) {
      content_chars_ += string_chars_under(data, {"delta"});
    } else if (type == "response.completed" || type == "response.incomplete" ||
               type == "response.failed") {
      read_usage(json_member(json_member(data, "response"), "usage"), "input_tokens",
                 "output_tokens");
    }
    return;
  }
  // message_start's output_tokens is a placeholder (0 or 1) before any content: only
  // message_delta's cumulative count says what the answer cost.
  if (type == "message_start") {
    read_usage(json_member(json_member(data, "message"), "usage"), "input_tokens", {});
    return;
  }
  if (type == "message_delta") {
    read_usage(json_member(data, "usage"), "input_tokens", "output_tokens");
    return;
  }
  // OpenAI chat completions (and what imitates it): unnamed events.
  content_chars_ += string_chars_under(data, {"content", "reasoning_content", "arguments"});
  // Every chunk of a stream that asked for usage says "usage":null; only a chunk with counts is
  // worth walking the document for.
  size_t usage = base::find_text(data, "\"usage\"");
  if (usage == std::string_view::npos) return;
  if (data.substr(usage + 7, 5) == ":null" &&
      base::find_text(data, "\"usage\"", usage + 7) == std::string_view::npos)
    return;
  read_usage(json_member(data, "usage"), "prompt_tokens", "completion_tokens");
}

void UsageMeter::on_line(std::string_view line) {
  content_chars_ += string_chars_under(line, {"content", "response", "thinking"});
  if (auto n = json_count(line, "prompt_eval_count")) note_prompt(*n);
  if (auto n = json_count(line, "eval_count")) note_completion(*n);
}

void UsageMeter::on_json_answer(std::string_view body) {
  std::string_view usage = json_member(body, "usage");
  if (usage.empty()) {
    on_line(body);  // Ollama's counts are top-level
    return;
  }
  read_usage(usage, "prompt_tokens", "completion_tokens");
  read_usage(usage, "input_tokens", "output_tokens");
  content_chars_ += string_chars_under(body, {"content", "text", "output_text"});
}

void UsageMeter::on_unread_bytes(uint64_t bytes) {
  content_chars_ += bytes;
}

}  // namespace ssegw::upstream
