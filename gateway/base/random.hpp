// Random identifiers from the operating system's CSPRNG (getrandom(2)): never from a seeded PRNG,
// whose seed one observed identifier could give away.
#pragma once

#include <cstddef>
#include <string>

namespace ssegw::base {

// Appends `bytes` random bytes to `out` as 2 * bytes lower-case hex digits. False (and `out`
// unchanged) when the kernel's random source fails; it does not block once seeded.
bool append_random_hex(std::string& out, size_t bytes);

}  // namespace ssegw::base
