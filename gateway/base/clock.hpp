// Wall-clock milliseconds since the epoch: the time part of event ids.
#pragma once

#include <chrono>
#include <cstdint>

namespace ssegw::base {

inline uint64_t wall_clock_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace ssegw::base
