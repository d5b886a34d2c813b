// Who may subscribe to and publish into which channel (DESIGN §1.2, §1.5): static publish tokens
// and Mercure-style JWTs. One instance is shared by all workers; it is read-only after start.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "gateway/api/jwt.hpp"
#include "gateway/http/request.hpp"

namespace api {

struct Access {
  enum class Verdict { kAllowed, kUnauthorized, kForbidden };
  Verdict verdict;
  std::string message;  // for the 401/403 answer; never holds the token
  bool allowed() const { return verdict == Verdict::kAllowed; }
};

class Authorizer {
 public:
  explicit Authorizer(const config::AuthConfig& config);

  // A token from Authorization: Bearer, the ssegw_token cookie or ?access_token=, in that order.
  Access subscribe(const http::Request& request, std::string_view channel, int64_t now_unix) const;
  // A static publish token, or a JWT whose publish claims cover the channel.
  Access publish(const http::Request& request, std::string_view channel, int64_t now_unix) const;
  // Publishing needs credentials at all.
  bool publish_restricted() const { return !publish_tokens_.empty() || jwt_ != nullptr; }

 private:
  Access check_jwt(const http::Request& request, std::string_view channel, bool publish,
                   int64_t now_unix) const;

  std::vector<std::string> publish_tokens_;
  std::unique_ptr<JwtVerifier> jwt_;
  bool anonymous_subscribe_;
};

}  // namespace api
