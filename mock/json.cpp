#include "mock/json.hpp"

#include <cstdint>

namespace ssegw::mock {
namespace {

// Bytes in the UTF-8 sequence starting at s[i] when it encodes a scalar value in its shortest
// form (RFC 3629), else 0.
size_t utf8_sequence(std::string_view s, size_t i) {
  auto lead = static_cast<uint8_t>(s[i]);
  size_t n;
  uint32_t code, least;
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) {
    n = 2, code = lead & 0x1F, least = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    n = 3, code = lead & 0x0F, least = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    n = 4, code = lead & 0x07, least = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  for (size_t k = 1; k < n; ++k) {
    auto next = static_cast<uint8_t>(s[i + k]);
    if ((next & 0xC0) != 0x80) return 0;
    code = code << 6 | (next & 0x3F);
  }
  bool surrogate = code >= 0xD800 && code <= 0xDFFF;
  return code < least || code > 0x10FFFF || surrogate ? 0 : n;
}

}  // namespace

void append_json(std::string& out, std::string_view text) {
  out.reserve(out.size() + text.size() + 2);
  out.push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    auto byte = static_cast<uint8_t>(c);
    if (byte >= 0x80) {
      size_t n = utf8_sequence(text, i);
      if (n == 0) {
        out.append("\\ufffd");
        i += 1;
      } else {
        out.append(text, i, n);
        i += n;
      }
      continue;
    }
    ++i;
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (c == '\t') {
      out.append("\\t");
    } else if (byte < 0x20 || byte == 0x7F) {
      const char* hex = "0123456789abcdef";
      out.append("\\u00");
      out.push_back(hex[byte / 16]);
      out.push_back(hex[byte % 16]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace ssegw::mock
