// One parsed HTTP/1.x request, owned (copied out of llhttp's slices).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw::http {

struct Header {
  std::string name;  // lower-case
  std::string value;
};

struct Request {
  uint8_t method = 0;  // llhttp_method_t
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
  bool keep_alive = true;
  bool expect_continue = false;
  std::string target;  // path and query, as sent
  std::vector<Header> headers;
  std::string body;

  // The first header with this (lower-case) name, or an empty view.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  std::string_view path() const;
  std::string_view query() const;  // without '?'
  bool http10() const { return version_major == 1 && version_minor == 0; }

  void clear();
};

enum class QueryParam { kAbsent, kMalformed, kPresent };
// The decoded value of a query parameter (first occurrence). A malformed escape is reported as
// such, never as absent: the caller must refuse it rather than fall back to a default.
QueryParam query_param(std::string_view query, std::string_view name, std::string& value);
// Percent-decodes; false on a malformed escape.
bool percent_decode(std::string_view in, std::string& out);

}  // namespace ssegw::http
