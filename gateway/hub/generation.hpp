// Names of generation channels: the channels a resumable answer is recorded into.
//
// A generation's name is the only thing that lets a client read that answer when anonymous
// subscribing is allowed, so it is a capability: "gen-" and 32 hex digits, 128 bits from the
// operating system's CSPRNG (getrandom(2)), never from a seeded PRNG whose seed one observed name
// could give away. The prefix is reserved: clients cannot publish into such a channel.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ssegw::hub {

inline constexpr std::string_view kGenerationPrefix = "gen-";
inline constexpr size_t kGenerationHexDigits = 32;

// A fresh name, or nullopt when the kernel's random source fails (it does not block once seeded).
std::optional<std::string> make_generation_name();

// "gen-" followed by exactly 32 lower-case hex digits.
bool is_generation_name(std::string_view channel);

// Any name with the reserved prefix, well-formed or not: such channels are written only by their
// answer.
inline bool has_generation_prefix(std::string_view channel) {
  return channel.starts_with(kGenerationPrefix);
}

}  // namespace ssegw::hub
