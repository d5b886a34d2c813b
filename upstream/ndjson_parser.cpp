#include "upstream/ndjson_parser.hpp"

#include <cstring>

#include "gateway/base/ascii.hpp"

namespace ssegw::upstream {

namespace {

constexpr size_t kKeepCapacity = 64 * 1024;

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool blank(std::string_view line) {
  for (char c : line) {
    if (!is_json_space(c)) return false;
  }
  return true;
}

void emit(std::string_view line, NdjsonParser::Sink& sink) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!blank(line)) sink.on_line(line);
}

// Walks the text of one JSON value just far enough for ndjson_done(). Every step checks `end`,
// and nesting is counted, not recursed, so no input can overrun or exhaust the stack.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  const char* position() const { return p_; }
  bool at_end() const { return p_ == end_; }

  void skip_space() {
    while (p_ < end_ && is_json_space(*p_)) ++p_;
  }

  bool eat(char c) {
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }

  // At a '"': moves past the closing quote. False when the string is not terminated.
  bool skip_string() {
    if (!eat('"')) return false;
    while (p_ < end_) {
      char c = *p_++;
      if (c == '"') return true;
      if (c == '\\') {
        if (p_ == end_) return false;
        ++p_;
      }
    }
    return false;
  }

  bool skip_value() {
    if (p_ == end_) return false;
    if (*p_ == '"') return skip_string();
    if (*p_ == '{' || *p_ == '[') {
      size_t depth = 0;
      while (p_ < end_) {
        char c = *p_;
        if (c == '"') {
          if (!skip_string()) return false;
          continue;
        }
        ++p_;
        if (c == '{' || c == '[') {
          ++depth;
        } else if (c == '}' || c == ']') {
          if (--depth == 0) return true;
        }
      }
      return false;
    }
    // A number, true, false or null: up to the next delimiter.
    const char* start = p_;
    while (p_ < end_ && !is_json_space(*p_) && *p_ != ',' && *p_ != '}' && *p_ != ']') ++p_;
    return p_ > start;
  }

 private:
  const char* p_;
  const char* end_;
};

// Whether the raw (still escaped) contents of a JSON string equal the ASCII text `want`, so that
// "d\u006fne" is the key done too.
bool json_string_equals(std::string_view raw, std::string_view want) {
  size_t i = 0;
  for (char expected : want) {
    if (i == raw.size()) return false;
    char c = raw[i++];
    if (c == '\\') {
      if (i == raw.size()) return false;
      char e = raw[i++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          c = e;
          break;
        case 'b':
          c = '\b';
          break;
        case 'f':
          c = '\f';
          break;
        case 'n':
          c = '\n';
          break;
        case 'r':
          c = '\r';
          break;
        case 't':
          c = '\t';
          break;
        case 'u': {
          if (raw.size() - i < 4) return false;
          int code = 0;
          for (int k = 0; k < 4; ++k) {
            int d = base::hex_digit(raw[i++]);
            if (d < 0) return false;
            code = code * 16 + d;
          }
          if (code > 0x7F) return false;  // `want` is ASCII
          c = static_cast<char>(code);
          break;
        }
        default:
          return false;
      }
    }
    if (c != expected) return false;
  }
  return i == raw.size();
}

}  // namespace

const char* to_string(NdjsonStatus status) {
  switch (status) {
    case NdjsonStatus::kOk:
      return "ok";
    case NdjsonStatus::kLineTooLong:
      return "line_too_long";
  }
  return "unknown";
}

NdjsonParser::NdjsonParser(const NdjsonLimits& limits) : limits_(limits) {}

NdjsonStatus NdjsonParser::feed(std::string_view bytes, Sink& sink) {
  if (status_ != NdjsonStatus::kOk) return status_;
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  while (p < end) {
    const char* lf = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* stop = lf ? lf : end;
    size_t length = static_cast<size_t>(stop - p);
    if (line_.size() + length > limits_.max_line_bytes) {
      status_ = NdjsonStatus::kLineTooLong;
      line_.clear();
      return status_;
    }
    if (!lf) {
      line_.append(p, length);
      break;
    }
    if (line_.empty()) {
      emit(std::string_view(p, length), sink);  // wholly inside this feed: no copy
    } else {
      line_.append(p, length);
      emit(line_, sink);
      line_.clear();
    }
    p = lf + 1;
  }
  return NdjsonStatus::kOk;
}

bool NdjsonParser::finish() {
  bool truncated = status_ != NdjsonStatus::kOk || !blank(line_);
  reset();
  return truncated;
}

void NdjsonParser::reset() {
  status_ = NdjsonStatus::kOk;
  if (line_.capacity() > kKeepCapacity) {
    std::string().swap(line_);
  } else {
    line_.clear();
  }
}

bool ndjson_done(std::string_view line) {
  Scanner s(line);
  s.skip_space();
  if (!s.eat('{')) return false;
  s.skip_space();
  if (s.eat('}')) return false;
  bool done = false;
  for (;;) {
    s.skip_space();
    const char* key = s.position();
    if (!s.skip_string()) return false;
    std::string_view raw_key(key + 1, static_cast<size_t>(s.position() - key - 2));
    s.skip_space();
    if (!s.eat(':')) return false;
    s.skip_space();
    const char* value = s.position();
    if (!s.skip_value()) return false;
    if (json_string_equals(raw_key, "done")) {
      done = std::string_view(value, static_cast<size_t>(s.position() - value)) == "true";
    }
    s.skip_space();
    if (s.eat(',')) continue;
    if (s.eat('}')) break;
    return false;
  }
  s.skip_space();
  return s.at_end() && done;
}

}  // namespace ssegw::upstream
