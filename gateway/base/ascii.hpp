// ASCII for protocol text: case for header names, Expect and Connection tokens, auth schemes,
// hosts; hexadecimal digits for chunk sizes, percent escapes and \u escapes.
// HTTP compares these case-insensitively in ASCII only (RFC 9110 §5.1), whatever the locale, so
// nothing here calls <cctype> or strcasecmp.
#pragma once

#include <cstring>
#include <string>
#include <string_view>

namespace ssegw::base {

// `needle` in `text` at or after `from`, or npos: std::string_view::find's answer, by glibc's
// memmem. find() stops at each occurrence of the needle's first byte, and a needle such as
// "\"usage\"" meets every quote of a JSON text; these searches run on every chunk of a streamed
// answer.
inline size_t find_text(std::string_view text, std::string_view needle, size_t from = 0) {
  if (from > text.size()) return std::string_view::npos;
  if (needle.empty()) return from;
  // Also keeps a null data() (an empty view) away from memmem, whose arguments are non-null.
  if (text.size() - from < needle.size()) return std::string_view::npos;
  const void* at = memmem(text.data() + from, text.size() - from, needle.data(), needle.size());
  return at ? static_cast<size_t>(static_cast<const char*>(at) - text.data())
            : std::string_view::npos;
}

constexpr char to_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Appends s to out, lower-cased.
inline void append_lower(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size());
  for (char c : s) out += to_lower(c);
}

inline std::string to_lower(std::string_view s) {
  std::string out;
  append_lower(out, s);
  return out;
}

// a == b ignoring ASCII case.
constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}

// The value of one hexadecimal digit, either case; -1 for any other character.
constexpr int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace ssegw::base
