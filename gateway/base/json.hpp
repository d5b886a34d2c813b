// The little JSON the gateway writes: escaped strings for answers and error bodies.
#pragma once

#include <string>
#include <string_view>

namespace ssegw::base {

// Appends text as a quoted JSON string. Control characters and invalid UTF-8 bytes are escaped
// (invalid bytes as \ufffd), so that hostile input can never break the document.
void append_json_string(std::string& out, std::string_view text);

// {"error":{"<kind_key>":<kind>,"message":<message>}}: the shape of every error the gateway
// writes, as an HTTP body ("code") or as the data of a stream's error event ("type").
std::string json_error_object(std::string_view kind_key, std::string_view kind,
                              std::string_view message);

// True when text is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text);

}  // namespace ssegw::base
