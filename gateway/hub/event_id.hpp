// Event ids in the Redis Streams form "<unix-ms>-<seq>", strictly increasing per channel.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ssegw::hub {

struct EventId {
  uint64_t ms = 0;
  uint64_t seq = 0;

  auto operator<=>(const EventId&) const = default;

  // The id that follows this one at wall-clock time now_ms: time based, but never going back
  // when the clock does.
  EventId next(uint64_t now_ms) const {
    if (now_ms > ms) return {now_ms, 0};
    return {ms, seq + 1};
  }
  std::string str() const;
  // Writes the id into dst (at least kMaxLength bytes) and returns its length.
  size_t format(char* dst) const;
  // Accepts exactly "<digits>-<digits>" with values that fit in 64 bits.
  static std::optional<EventId> parse(std::string_view text);

  static constexpr size_t kMaxLength = 41;
};

}  // namespace ssegw::hub
