#include "upstream/trace_context.hpp"

#include <algorithm>

#include "gateway/base/random.hpp"

namespace ssegw::upstream {
namespace {

bool lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zeros(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

}  // namespace

bool valid_traceparent(std::string_view value) {
  if (value.size() < 55) return false;
  std::string_view version = value.substr(0, 2);
  if (!lower_hex(version) || version == "ff") return false;
  // Version 00 is exactly 55 characters; a later version may add fields after a dash.
  if (version == "00" ? value.size() != 55 : (value.size() > 55 && value[55] != '-')) return false;
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return false;
  std::string_view trace_id = value.substr(3, 32);
  std::string_view parent_id = value.substr(36, 16);
  std::string_view flags = value.substr(53, 2);
  return lower_hex(trace_id) && lower_hex(parent_id) && lower_hex(flags) && !all_zeros(trace_id) &&
         !all_zeros(parent_id);
}

std::string new_traceparent() {
  std::string value = "00-";
  if (!base::append_random_hex(value, 16)) return {};
  value += '-';
  if (!base::append_random_hex(value, 8)) return {};
  value += "-01";
  return value;
}

}  // namespace ssegw::upstream
