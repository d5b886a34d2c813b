#include "upstream/usage_meter.hpp"

#include <algorithm>

namespace ssegw::upstream {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The position of the value after the next `"key":` at or after `from`, or npos. A key inside a
// string value has escaped quotes around it, so it never matches.
size_t value_after_key(std::string_view json, std::string_view key, size_t from) {
  while (from < json.size()) {
    size_t pos = json.find(key, from);
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

// The object that follows "key": (the first one that is an object, not null), or empty.
std::string_view object_under(std::string_view json, std::string_view key) {
  size_t from = 0;
  while (true) {
    size_t value = value_after_key(json, key, from);
    if (value == std::string_view::npos) return {};
    from = value;
    if (json[value] != '{') continue;
    int depth = 0;
    for (size_t i = value; i < json.size(); ++i) {
      char c = json[i];
      if (c == '"') {
        i = string_end(json, i);
        if (i == std::string_view::npos) return {};
      } else if (c == '{') {
        ++depth;
      } else if (c == '}' && --depth == 0) {
        return json.substr(value, i + 1 - value);
      }
    }
    return {};
  }
}

}  // namespace

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
  uint64_t chars = string_chars_under(
      request_body, {"content", "text", "input", "prompt", "system", "instructions"});
  return (chars + 3) / 4;
}

void UsageMeter::note_prompt(uint64_t n) {
  prompt_ = std::max(prompt_.value_or(0), n);
}

void UsageMeter::note_completion(uint64_t n) {
  completion_ = std::max(completion_.value_or(0), n);
}

void UsageMeter::read_usage_object(std::string_view json, std::string_view prompt_key,
                                   std::string_view completion_key) {
  std::string_view usage = object_under(json, "usage");
  if (usage.empty()) return;
  if (auto n = find_json_number(usage, prompt_key)) {
    uint64_t prompt = *n;
    // Anthropic counts cached prompt tokens apart from input_tokens; they are prompt all the same.
    if (prompt_key == "input_tokens") {
      prompt += find_json_number(usage, "cache_creation_input_tokens").value_or(0);
      prompt += find_json_number(usage, "cache_read_input_tokens").value_or(0);
    }
    note_prompt(prompt);
  }
  if (auto n = find_json_number(usage, completion_key)) note_completion(*n);
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
      read_usage_object(data, "input_tokens", "output_tokens");
    }
    return;
  }
  if (type == "message_start" || type == "message_delta") {
    read_usage_object(data, "input_tokens", "output_tokens");
    return;
  }
  // OpenAI chat completions (and what imitates it): unnamed events.
  content_chars_ += string_chars_under(data, {"content", "reasoning_content", "arguments"});
  if (data.find("\"usage\"") != std::string_view::npos)
    read_usage_object(data, "prompt_tokens", "completion_tokens");
}

void UsageMeter::on_line(std::string_view line) {
  content_chars_ += string_chars_under(line, {"content", "response", "thinking"});
  if (auto n = find_json_number(line, "prompt_eval_count")) note_prompt(*n);
  if (auto n = find_json_number(line, "eval_count")) note_completion(*n);
}

void UsageMeter::on_json_answer(std::string_view body) {
  if (object_under(body, "usage").empty()) {
    on_line(body);  // Ollama's counts are top-level
    return;
  }
  read_usage_object(body, "prompt_tokens", "completion_tokens");
  read_usage_object(body, "input_tokens", "output_tokens");
  content_chars_ += string_chars_under(body, {"content", "text", "output_text"});
}

}  // namespace ssegw::upstream
