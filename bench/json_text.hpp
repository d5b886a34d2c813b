// printf-style appending, JSON string quoting and the --expect-all verdict, shared by the reports
// of both bench modes.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>

namespace bench {

// Appends printf-formatted text.
inline void add(std::string& out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
inline void add(std::string& out, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list again;
  va_copy(again, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  if (n > 0) {
    size_t at = out.size();
    out.resize(at + static_cast<size_t>(n) + 1);
    std::vsnprintf(out.data() + at, static_cast<size_t>(n) + 1, fmt, again);
    out.resize(at + static_cast<size_t>(n));
  }
  va_end(again);
}

inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      add(out, "\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

inline double ms(uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

// {failed, reason} checks in order: false, with why set to the first failed one's reason, or true.
inline bool all_passed(std::initializer_list<std::pair<bool, const char*>> checks,
                       std::string& why) {
  for (const auto& [failed, reason] : checks) {
    if (failed) {
      why = reason;
      return false;
    }
  }
  return true;
}

}  // namespace bench
