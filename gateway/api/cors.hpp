// CORS (docs/protocol.md#cors): which origins may read answers, and preflight replies.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ssegw::api {

class CorsPolicy {
 public:
  explicit CorsPolicy(std::vector<std::string> allow_origins);

  // Header lines ("Name: value\r\n"...) for an answer to a request with this Origin; empty when
  // the origin is absent or not allowed.
  std::string response_headers(std::string_view origin) const;
  // The extra lines of a preflight answer (methods, headers, max age), for an allowed origin.
  std::string preflight_headers(std::string_view origin, std::string_view allow_methods) const;
  bool allows(std::string_view origin) const;
  // Listed by name: "*" does not count (a cookie-authenticated request needs a trusted origin).
  bool lists(std::string_view origin) const;

 private:
  std::vector<std::string> origins_;
  bool any_ = false;
};

}  // namespace ssegw::api
