#include "mock/knobs.hpp"

#include <cctype>

namespace ssegw::mock {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

enum class Found { kAbsent, kMalformed, kPresent };

// The knob's raw value from the query, else from its header.
Found find(const Request& request, std::string_view name, std::string& value) {
  switch (query_param(request.query(), name, value)) {
    case Param::kPresent:
      return Found::kPresent;
    case Param::kMalformed:
      return Found::kMalformed;
    case Param::kAbsent:
      break;
  }
  std::string header = "x-mock-";
  header.append(name);
  const std::string* found = request.find_header(header);
  if (!found) {
    for (char& c : header)
      if (c == '_') c = '-';
    found = request.find_header(header);
  }
  if (!found) return Found::kAbsent;
  value = *found;
  return Found::kPresent;
}

bool parse_uint(std::string_view text, uint64_t max, uint64_t& out) {
  if (text.empty() || text.size() > 19) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return false;
  out = v;
  return true;
}

}  // namespace

bool parse_knobs(const Request& request, bool feed, Knobs& knobs, std::string& error) {
  knobs = Knobs{};
  if (feed) {
    knobs.tokens = kNever;
    knobs.interval_ms = 100;
  }
  struct Number {
    const char* name;
    uint64_t* field;
    uint64_t max;
  };
  uint64_t stamp = 0, no_usage = 0;
  const Number numbers[] = {
      {"tokens", &knobs.tokens, kMaxTokens},
      {"interval_ms", &knobs.interval_ms, kMaxDelayMs},
      {"first_token_ms", &knobs.first_token_ms, kMaxDelayMs},
      {"head_delay_ms", &knobs.head_delay_ms, kMaxDelayMs},
      {"drop_after", &knobs.drop_after, kMaxTokens},
      {"error_after", &knobs.error_after, kMaxTokens},
      {"garbage", &knobs.garbage_after, kMaxTokens},
      {"stall_after", &knobs.stall_after, kMaxTokens},
      {"stall_ms", &knobs.stall_ms, kMaxDelayMs},
      {"status", &knobs.status, 599},
      {"interim", &knobs.interim, 199},
      {"retry_ms", &knobs.retry_ms, kMaxDelayMs},
      {"token_bytes", &knobs.token_bytes, kMaxTokenBytes},
      {"prompt_tokens", &knobs.prompt_tokens, 1'000'000'000},
      {"stamp", &stamp, 1},
      {"no_usage", &no_usage, 1},
  };
  std::string value;
  auto lookup = [&](const char* name) {
    Found found = find(request, name, value);
    if (found == Found::kMalformed) error = std::string("invalid knob ") + name + ": bad escape";
    return found;
  };
  for (const Number& n : numbers) {
    Found found = lookup(n.name);
    if (found == Found::kMalformed) return false;
    if (found == Found::kAbsent) continue;
    if (n.field == &knobs.tokens) knobs.tokens_given = true;
    if (!parse_uint(value, n.max, *n.field)) {
      error = std::string("invalid knob ") + n.name + ": expected an integer from 0 to " +
              std::to_string(n.max);
      return false;
    }
  }
  if (knobs.status != 0 && knobs.status < 200) {
    error = "invalid knob status: expected 200 to 599";
    return false;
  }
  if (knobs.interim != 0 && knobs.interim < 100) {
    error = "invalid knob interim: expected 100 to 199";
    return false;
  }
  knobs.stamp = stamp == 1;
  knobs.no_usage = no_usage == 1;
  // A stall with no position stalls after the first token.
  if (knobs.stall_ms > 0 && knobs.stall_after == kNever) knobs.stall_after = 1;
  Found text = lookup("text");
  if (text == Found::kMalformed) return false;
  if (text == Found::kPresent) {
    knobs.has_text = true;
    knobs.text = std::move(value);
  }
  return true;
}

std::vector<std::string> token_script(const Knobs& knobs) {
  std::vector<std::string> tokens;
  if (!knobs.has_text) {
    uint64_t n = knobs.tokens == kNever ? 0 : knobs.tokens;
    tokens.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      std::string t = "tok" + std::to_string(i);
      if (knobs.token_bytes > t.size() + 1) t.append(knobs.token_bytes - t.size() - 1, 'x');
      t += ' ';
      tokens.push_back(std::move(t));
    }
    return tokens;
  }
  std::string_view text(knobs.text);
  size_t i = 0;
  while (i < text.size() && is_space(text[i])) ++i;
  while (i < text.size() && tokens.size() < kMaxTokens) {
    size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    while (i < text.size() && is_space(text[i])) ++i;
    tokens.emplace_back(text.substr(start, i - start));
  }
  // tokens=N given explicitly alongside text: repeat or cut the words to N.
  if (knobs.tokens_given && !tokens.empty()) {
    std::vector<std::string> resized;
    resized.reserve(knobs.tokens);
    for (uint64_t k = 0; k < knobs.tokens; ++k) {
      resized.push_back(tokens[k % tokens.size()]);
      // The text's last word has no whitespace after it; a repeat needs one.
      if (k + 1 < knobs.tokens && !is_space(resized.back().back())) resized.back() += ' ';
    }
    tokens = std::move(resized);
  }
  return tokens;
}

uint64_t prompt_words(std::string_view body) {
  uint64_t words = 0;
  bool in_word = false;
  for (char c : body) {
    if (is_space(c)) {
      in_word = false;
    } else if (!in_word) {
      in_word = true;
      ++words;
    }
  }
  return words == 0 ? 10 : words;
}

bool json_flag(std::string_view body, std::string_view key, bool value) {
  std::string quoted;  // built by appends: GCC 12 -O3 flags `"\"" + std::string(key)` (-Wrestrict)
  quoted.reserve(key.size() + 2);
  quoted.append(1, '"').append(key).append(1, '"');
  std::string_view want = value ? "true" : "false";
  for (size_t at = body.find(quoted); at != std::string_view::npos;
       at = body.find(quoted, at + 1)) {
    size_t i = at + quoted.size();
    while (i < body.size() && is_space(body[i])) ++i;
    if (i >= body.size() || body[i] != ':') continue;
    ++i;
    while (i < body.size() && is_space(body[i])) ++i;
    if (body.substr(i, want.size()) == want) return true;
  }
  return false;
}

}  // namespace ssegw::mock
