#include "gateway/base/json_value.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

#include "gateway/base/ascii.hpp"
#include "gateway/base/json.hpp"

namespace ssegw::base {

std::optional<bool> JsonValue::as_bool() const {
  if (const bool* b = std::get_if<bool>(&value_)) return *b;
  return std::nullopt;
}

std::optional<int64_t> JsonValue::as_int() const {
  if (const int64_t* n = std::get_if<int64_t>(&value_)) return *n;
  return std::nullopt;
}

std::optional<double> JsonValue::as_number() const {
  if (const int64_t* n = std::get_if<int64_t>(&value_)) return static_cast<double>(*n);
  if (const double* d = std::get_if<double>(&value_)) return *d;
  return std::nullopt;
}

const std::string* JsonValue::as_string() const {
  return std::get_if<std::string>(&value_);
}

const JsonValue::Array* JsonValue::as_array() const {
  return std::get_if<Array>(&value_);
}

const JsonValue::Object* JsonValue::as_object() const {
  return std::get_if<Object>(&value_);
}

const JsonValue* JsonValue::find(std::string_view key) const {
  const Object* members = as_object();
  if (!members) return nullptr;
  for (const Member& m : *members)
    if (m.first == key) return &m.second;
  return nullptr;
}

namespace {

// Recursive descent over the text. The first error stops everything: each parse_* returns false
// and leaves the message in error_.
class Parser {
 public:
  Parser(std::string_view text, const JsonLimits& limits) : text_(text), limits_(limits) {}

  JsonResult run() {
    JsonResult result;
    JsonValue value;
    if (text_.size() > limits_.max_bytes) {
      fail(0, "the document is larger than " + std::to_string(limits_.max_bytes) + " bytes");
    } else {
      skip_space();
      if (parse_value(value, 0)) {
        skip_space();
        if (pos_ != text_.size()) fail(pos_, "unexpected text after the value");
      }
    }
    if (error_.empty()) {
      result.value = std::move(value);
    } else {
      result.error_offset = error_offset_;
      result.error = "offset " + std::to_string(error_offset_) + ": " + error_;
    }
    return result;
  }

 private:
  bool fail(size_t offset, std::string message) {
    if (error_.empty()) {
      error_offset_ = offset;
      error_ = std::move(message);
    }
    return false;
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
      ++pos_;
  }

  bool parse_value(JsonValue& out, uint32_t depth) {
    if (at_end()) return fail(pos_, "unexpected end of text, expected a value");
    switch (peek()) {
      case '{':
        return parse_object(out, depth + 1);
      case '[':
        return parse_array(out, depth + 1);
      case '"': {
        std::string s;
        if (!parse_string(s)) return false;
        out = JsonValue::string(std::move(s));
        return true;
      }
      case 't':
        return parse_literal("true", JsonValue::boolean(true), out);
      case 'f':
        return parse_literal("false", JsonValue::boolean(false), out);
      case 'n':
        return parse_literal("null", JsonValue(), out);
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number(out);
        return fail(pos_, "unexpected character, expected a value");
    }
  }

  bool parse_literal(std::string_view word, JsonValue value, JsonValue& out) {
    if (text_.substr(pos_, word.size()) != word) return fail(pos_, "invalid literal");
    pos_ += word.size();
    out = std::move(value);
    return true;
  }

  bool enter(size_t start, uint32_t depth) {
    if (depth > limits_.max_depth) {
      return fail(start, "nested deeper than " + std::to_string(limits_.max_depth) + " levels");
    }
    ++pos_;  // '[' or '{'
    skip_space();
    return true;
  }

  bool parse_array(JsonValue& out, uint32_t depth) {
    if (!enter(pos_, depth)) return false;
    JsonValue::Array items;
    if (!at_end() && peek() == ']') {
      ++pos_;
      out = JsonValue::array(std::move(items));
      return true;
    }
    while (true) {
      JsonValue item;
      if (!parse_value(item, depth)) return false;
      items.push_back(std::move(item));
      skip_space();
      if (at_end()) return fail(pos_, "unexpected end of text, expected ',' or ']'");
      if (peek() == ']') break;
      if (peek() != ',') return fail(pos_, "expected ',' or ']'");
      ++pos_;
      skip_space();
    }
    ++pos_;
    out = JsonValue::array(std::move(items));
    return true;
  }

  bool parse_object(JsonValue& out, uint32_t depth) {
    size_t start = pos_;
    if (!enter(pos_, depth)) return false;
    JsonValue::Object members;
    if (!at_end() && peek() == '}') {
      ++pos_;
      out = JsonValue::object(std::move(members));
      return true;
    }
    while (true) {
      if (at_end() || peek() != '"') return fail(pos_, "expected a string key");
      std::string key;
      if (!parse_string(key)) return false;
      skip_space();
      if (at_end() || peek() != ':') return fail(pos_, "expected ':' after a key");
      ++pos_;
      skip_space();
      JsonValue value;
      if (!parse_value(value, depth)) return false;
      members.emplace_back(std::move(key), std::move(value));
      skip_space();
      if (at_end()) return fail(pos_, "unexpected end of text, expected ',' or '}'");
      if (peek() == '}') break;
      if (peek() != ',') return fail(pos_, "expected ',' or '}'");
      ++pos_;
      skip_space();
    }
    ++pos_;
    if (has_duplicate_key(members)) return fail(start, "duplicate key in an object");
    out = JsonValue::object(std::move(members));
    return true;
  }

  // Sorting beats a pairwise scan on an object with thousands of keys.
  static bool has_duplicate_key(const JsonValue::Object& members) {
    if (members.size() < 2) return false;
    std::vector<std::string_view> keys;
    keys.reserve(members.size());
    for (const JsonValue::Member& m : members) keys.push_back(m.first);
    std::sort(keys.begin(), keys.end());
    return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
  }

  // Reads the 4 hex digits of a \u escape at pos_ (just after the 'u').
  bool parse_hex4(uint32_t& out) {
    if (text_.size() - pos_ < 4) return fail(pos_, "truncated \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      int d = hex_digit(text_[pos_ + i]);
      if (d < 0) return fail(pos_ + i, "invalid hex digit in a \\u escape");
      out = out << 4 | static_cast<uint32_t>(d);
    }
    pos_ += 4;
    return true;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | cp >> 6);
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | cp >> 12);
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | cp >> 18);
      out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // pos_ is at the opening quote.
  bool parse_string(std::string& out) {
    ++pos_;
    while (true) {
      // A run of plain bytes. It ends at an ASCII byte, so it never splits a UTF-8 sequence.
      size_t run = pos_;
      while (!at_end() && peek() != '"' && peek() != '\\' &&
             static_cast<unsigned char>(peek()) >= 0x20)
        ++pos_;
      std::string_view plain = text_.substr(run, pos_ - run);
      if (!is_valid_utf8(plain)) return fail(run, "invalid UTF-8 in a string");
      out.append(plain);
      if (at_end()) return fail(pos_, "unterminated string");
      char c = peek();
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c != '\\') return fail(pos_, "control character in a string");
      size_t escape = pos_++;
      if (at_end()) return fail(pos_, "unterminated string");
      switch (text_[pos_++]) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!parse_hex4(cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(escape, "lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (text_.substr(pos_, 2) != "\\u") return fail(escape, "lone high surrogate");
            pos_ += 2;
            uint32_t low = 0;
            if (!parse_hex4(low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return fail(escape, "lone high surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          return fail(escape, "invalid escape");
      }
    }
  }

  // RFC 8259 grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  bool parse_number(JsonValue& out) {
    size_t start = pos_;
    auto digits = [&] {
      size_t from = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ - from;
    };
    if (peek() == '-') ++pos_;
    if (at_end()) return fail(start, "invalid number");
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') return fail(start, "leading zero");
    } else if (digits() == 0) {
      return fail(start, "invalid number");
    }
    bool integral = true;
    if (!at_end() && peek() == '.') {
      ++pos_;
      integral = false;
      if (digits() == 0) return fail(start, "invalid number");
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      integral = false;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) return fail(start, "invalid number");
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (integral) {
      int64_t n = 0;
      auto [end, ec] = std::from_chars(first, last, n);
      if (ec == std::errc() && end == last) {
        out = JsonValue::integer(n);
        return true;
      }
      // Too large for int64: read it as a double, as other JSON readers do.
    }
    double d = 0;
    auto [end, ec] = std::from_chars(first, last, d);
    if (ec != std::errc() || end != last || !std::isfinite(d)) {
      return fail(start, "number out of range");
    }
    out = JsonValue::number(d);
    return true;
  }

  std::string_view text_;
  const JsonLimits& limits_;
  size_t pos_ = 0;
  size_t error_offset_ = 0;
  std::string error_;
};

}  // namespace

JsonResult parse_json(std::string_view text, const JsonLimits& limits) {
  return Parser(text, limits).run();
}

}  // namespace ssegw::base
