#include "gateway/api/authorizer.hpp"

#include <strings.h>

namespace api {
namespace {

// Compares without an early exit, so that the time taken does not reveal a matching prefix.
bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string_view bearer(const http::Request& request) {
  std::string_view auth = request.header("authorization");
  if (auth.size() > 7 && strncasecmp(auth.data(), "Bearer ", 7) == 0) return auth.substr(7);
  return {};
}

using Verdict = Access::Verdict;

}  // namespace

Authorizer::Authorizer(const config::AuthConfig& config)
    : publish_tokens_(config.publish_tokens), anonymous_subscribe_(config.anonymous_subscribe) {
  if (config.jwt) jwt_ = std::make_unique<JwtVerifier>(*config.jwt);
}

Access Authorizer::check_jwt(const http::Request& request, std::string_view channel, bool publish,
                             int64_t now_unix) const {
  std::string token =
      find_token(request.header("authorization"), request.header("cookie"), request.query());
  if (token.empty()) return {Verdict::kUnauthorized, "a token is needed"};
  VerifyResult result = jwt_->verify(token, now_unix);
  if (!result.ok())
    return {Verdict::kUnauthorized,
            std::string("invalid token (") + jwt_error_name(result.error) + ")"};
  const auto& globs = publish ? result.claims.publish : result.claims.subscribe;
  if (!allows(globs, channel))
    return {Verdict::kForbidden, std::string("the token does not allow ") +
                                     (publish ? "publishing into" : "subscribing to") +
                                     " this channel"};
  return {Verdict::kAllowed, ""};
}

Access Authorizer::subscribe(const http::Request& request, std::string_view channel,
                             int64_t now_unix) const {
  if (!jwt_) return {Verdict::kAllowed, ""};
  bool has_token =
      !find_token(request.header("authorization"), request.header("cookie"), request.query())
           .empty();
  // A token that is sent is always checked, even where anonymous subscribing is allowed: a bad
  // one is a client bug worth a clear 401.
  if (!has_token && anonymous_subscribe_) return {Verdict::kAllowed, ""};
  return check_jwt(request, channel, /*publish=*/false, now_unix);
}

Access Authorizer::publish(const http::Request& request, std::string_view channel,
                           int64_t now_unix) const {
  if (!publish_restricted()) return {Verdict::kAllowed, ""};
  std::string_view token = bearer(request);
  bool static_match = false;
  for (const std::string& t : publish_tokens_) static_match |= constant_time_equal(token, t);
  if (static_match) return {Verdict::kAllowed, ""};
  if (!jwt_) return {Verdict::kUnauthorized, "publishing needs Authorization: Bearer <token>"};
  return check_jwt(request, channel, /*publish=*/true, now_unix);
}

}  // namespace api
