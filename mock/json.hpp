// JSON strings for the mock's bodies, events and log lines.
#pragma once

#include <string>
#include <string_view>

namespace ssegw::mock {

// Appends `text` as a quoted JSON string. Control bytes become \uXXXX (\n, \r, \t and the quote
// and backslash get their short forms); a byte that does not start well-formed UTF-8 becomes
// \ufffd, so any knob text or feed name gives valid JSON.
void append_json(std::string& out, std::string_view text);

}  // namespace ssegw::mock
