// HS256 JWTs for the integration tests, signed here with OpenSSL's HMAC so that the tests share
// no code with the verifier they check.
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace itest {

inline const std::string kJwtSecret = "0123456789abcdef0123456789abcdef-test";

inline std::string base64url(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

inline std::string sign_hs256(const std::string& header, const std::string& payload,
                              const std::string& secret = kJwtSecret) {
  std::string input = base64url(header) + "." + base64url(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + base64url(std::string(reinterpret_cast<char*>(mac), len));
}

// A token with these claims (a JSON object), signed with kJwtSecret.
inline std::string token(const std::string& claims) {
  return sign_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims);
}

inline long now() {
  return static_cast<long>(std::time(nullptr));
}

// Claims granting these globs (each a comma-separated list of JSON strings, maybe empty).
inline std::string grants(const std::string& subscribe, const std::string& publish, long exp = 0,
                          const std::string& routes = "") {
  std::string claims = "{\"ssegw\":{\"subscribe\":[" + subscribe + "],\"publish\":[" + publish +
                       "],\"routes\":[" + routes + "]}";
  if (exp) claims += ",\"exp\":" + std::to_string(exp);
  return claims + "}";
}

// The auth: section with HS256 and kJwtSecret; extra adds more keys under auth: ("  key: ...\n").
inline std::string jwt_yaml(const std::string& extra = "") {
  return "auth:\n  jwt: { alg: HS256, secret: \"" + kJwtSecret + "\" }\n" + extra;
}

}  // namespace itest
