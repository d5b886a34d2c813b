#include "gateway/hub/generation.hpp"

#include <algorithm>

#include "gateway/base/random.hpp"

namespace ssegw::hub {

std::optional<std::string> make_generation_name() {
  std::string name(kGenerationPrefix);
  if (!base::append_random_hex(name, kGenerationHexDigits / 2)) return std::nullopt;
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
