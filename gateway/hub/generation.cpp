#include "gateway/hub/generation.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

namespace ssegw::hub {

std::optional<std::string> make_generation_name() {
  uint8_t bytes[kGenerationHexDigits / 2];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name(kGenerationPrefix);
  for (uint8_t b : bytes) {
    name += kHex[b >> 4];
    name += kHex[b & 15];
  }
  return name;
}

bool is_generation_name(std::string_view channel) {
  if (channel.size() != kGenerationPrefix.size() + kGenerationHexDigits ||
      !has_generation_prefix(channel))
    return false;
  return std::all_of(channel.begin() + kGenerationPrefix.size(), channel.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace ssegw::hub
