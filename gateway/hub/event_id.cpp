#include "gateway/hub/event_id.hpp"

#include <charconv>

namespace ssegw::hub {

size_t EventId::format(char* dst) const {
  char* end = std::to_chars(dst, dst + 20, ms).ptr;
  *end++ = '-';
  end = std::to_chars(end, end + 20, seq).ptr;
  return static_cast<size_t>(end - dst);
}

std::string EventId::str() const {
  char buf[kMaxLength];
  return std::string(buf, format(buf));
}

static bool parse_part(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

std::optional<EventId> EventId::parse(std::string_view text) {
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  EventId id;
  if (!parse_part(text.substr(0, dash), id.ms) || !parse_part(text.substr(dash + 1), id.seq))
    return std::nullopt;
  return id;
}

}  // namespace ssegw::hub
