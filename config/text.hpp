// Text helpers (text.cpp) shared by the value parsers (values.cpp), the key check (public_key.cpp)
// and the YAML loader (loader*.cpp). Internal to config/: not for users of config/config.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ssegw::config {

// Parses a run of decimal digits that must make up all of `digits`. No sign, no spaces.
bool parse_digits(std::string_view digits, uint64_t& out);
bool all_digits(std::string_view s);
// A value as messages show it: 'value'.
std::string quoted(std::string_view s);

}  // namespace ssegw::config
