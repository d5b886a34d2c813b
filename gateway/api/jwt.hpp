// JWT verification for subscribe and publish (docs/security.md): HS256, RS256 and ES256 compact JWS
// through OpenSSL, with Mercure-style claims:
//   {"ssegw": {"subscribe": ["glob", ...], "publish": ["glob", ...], "routes": ["glob", ...]},
//    "sub": ..., "exp": ..., "nbf": ...}
//
// Rules:
// - The configuration fixes the algorithm; a token's "alg" header only has to name the same
//   one. "none" and every other value are refused before any signature is computed, which
//   closes the key-confusion attack (an HS256 token whose HMAC key is the RS256 public key).
//   A "crit" header is refused too: this verifier understands no JWS extension.
// - The signature is checked before the claims are parsed.
// - No clock leeway: a token is expired when exp <= now and not yet valid when nbf > now. The
//   issuer and the gateway are expected to keep NTP time; clients refresh tokens before exp.
//   Fractional NumericDates are rounded towards refusal (exp down, nbf up).
// - Tokens need no "ssegw" claim: without it a valid token simply grants nothing. "aud",
//   "iss" and "iat" are not checked; grants come only from the "ssegw" claim.
// - verify() keeps no state and is safe to call from several workers at once on one
//   JwtVerifier: the OpenSSL key is built once and only read afterwards, and every call uses
//   its own EVP_MD_CTX. A failed OpenSSL call clears the thread's error queue, so that TLS code
//   on the same worker never sees a stale error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace ssegw::api {

// Longer tokens are malformed: they would only ever come from an attacker, and the bound keeps
// the JSON parsed for each request small.
constexpr size_t kMaxTokenBytes = 8 << 10;

// A token whose "sub" is longer is refused: the subject names a budget account and the starter of
// generations, and two subjects cut to the same bytes would share them.
constexpr size_t kMaxSubjectBytes = 256;

struct Claims {
  std::vector<std::string> subscribe;  // channel globs ('*' matches any run of characters)
  std::vector<std::string> publish;
  std::vector<std::string> routes;  // route path globs
  std::string subject;              // "sub", empty when absent
  int64_t exp = 0;                  // unix seconds; 0 = the token does not expire
};

enum class JwtError {
  kNone,
  kMalformed,       // not 3 base64url parts, bad base64url or JSON, claims of the wrong type
  kUnsupportedAlg,  // alg "none", an alg other than the configured one, or a "crit" header
  kBadSignature,
  kExpired,      // exp <= now
  kNotYetValid,  // nbf > now
};
// "malformed", "unsupported_alg", "bad_signature", "expired", "not_yet_valid" ("ok" for kNone).
const char* jwt_error_name(JwtError error);

struct VerifyResult {
  JwtError error = JwtError::kNone;
  std::string message;  // for the log line; never holds the token, a key or a raw header value
  Claims claims;        // meaningful only when ok()

  bool ok() const { return error == JwtError::kNone; }
};

class JwtVerifier {
 public:
  // Builds the OpenSSL key once. config::load_file() has already checked the key, so a throw
  // (std::runtime_error) here means a JwtConfig that did not come from the loader.
  explicit JwtVerifier(const config::JwtConfig& config);
  ~JwtVerifier();
  JwtVerifier(JwtVerifier&&) noexcept;
  JwtVerifier& operator=(JwtVerifier&&) noexcept;
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  VerifyResult verify(std::string_view token, int64_t now_unix) const;
  config::JwtAlg alg() const { return alg_; }

 private:
  struct Keys;  // OpenSSL objects, kept out of this header

  bool signature_ok(std::string_view signing_input, std::string_view signature,
                    std::string& why) const;

  config::JwtAlg alg_;
  std::string secret_;  // HS256
  std::unique_ptr<Keys> keys_;
};

// True when one glob matches the channel name (config::glob_match).
bool allows(const std::vector<std::string>& globs, std::string_view channel);

// Strict unpadded base64url (RFC 7515 section 2): no '=', no whitespace, and the unused low bits
// of the last character must be zero, so that each byte string has exactly one encoding.
bool base64url_decode(std::string_view in, std::string& out);

}  // namespace ssegw::api
