#include "config/text.hpp"

#include <algorithm>
#include <charconv>
#include <system_error>

namespace ssegw::config {

bool parse_digits(std::string_view digits, uint64_t& out) {
  if (digits.empty()) return false;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  return ec == std::errc() && end == digits.data() + digits.size();
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string quoted(std::string_view s) {
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on "'" + std::string.
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  out += s;
  out += '\'';
  return out;
}

}  // namespace ssegw::config
