// Where a request carries a gateway token, and how to take it out again before forwarding.
//
// A token is read from the first of these that has one (docs/security.md):
// - the Authorization header, when its scheme is Bearer (any case);
// - the ssegw_token cookie ("a=1; ssegw_token=XYZ; b=2"; a value in double quotes loses them);
// - the access_token query parameter, percent-decoded. A malformed escape hands on the raw
//   value, which no key matches and the JWT check refuses: the request is answered 401 rather
//   than treated as anonymous.
// An empty value counts as absent.
#pragma once

#include <string>
#include <string_view>

#include "gateway/http/request.hpp"

namespace ssegw::api {

inline constexpr std::string_view kTokenCookie = "ssegw_token";
inline constexpr std::string_view kTokenParameter = "access_token";

struct Credential {
  enum class Source { kNone, kHeader, kCookie, kQuery };
  Source source = Source::kNone;
  std::string token;

  bool present() const { return source != Source::kNone; }
};

Credential find_credential(std::string_view authorization, std::string_view cookie_header,
                           std::string_view query);
inline Credential find_credential(const http::Request& request) {
  return find_credential(request.header("authorization"), request.header("cookie"),
                         request.query());
}

// The token of "Bearer <token>", or empty.
std::string_view bearer_token(std::string_view authorization);
// A Cookie header value without its ssegw_token entries, the others unchanged and in order; empty
// when none is left.
std::string without_token_cookie(std::string_view cookie_header);
// A request target (path and query) without its access_token parameters, the others unchanged and
// in order.
std::string without_token_parameter(std::string_view target);

}  // namespace ssegw::api
