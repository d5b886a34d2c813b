#include "gateway/api/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>
#include <utility>

#include "gateway/base/json_value.hpp"

namespace ssegw::api {

namespace {

constexpr size_t kMinHmacSecretBytes = 32;
constexpr size_t kEs256SignatureBytes = 64;  // r || s, 32 bytes each (RFC 7518 section 3.4)

// A token is at most 8 KiB, so its JSON parts are at most 6 KiB.
constexpr base::JsonLimits kJsonLimits{kMaxTokenBytes, 32};

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdFree {
  void operator()(EVP_MD* md) const { EVP_MD_free(md); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

VerifyResult refuse(JwtError error, std::string message) {
  VerifyResult r;
  r.error = error;
  r.message = std::move(message);
  return r;
}

// The header's alg as it may appear in a log line: short algorithm-like names are quoted,
// anything else is not repeated.
std::string printable_alg(const std::string& alg) {
  bool plain = !alg.empty() && alg.size() <= 16 && std::all_of(alg.begin(), alg.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '+';
  });
  return plain ? "'" + alg + "'" : "(not shown)";
}

// A NumericDate (RFC 7519 section 2) as whole seconds, rounded in the direction that refuses
// rather than admits; nullopt when the claim is not a number.
std::optional<int64_t> numeric_date(const base::JsonValue& value, bool round_up) {
  if (std::optional<int64_t> n = value.as_int()) return n;
  std::optional<double> d = value.as_number();
  if (!d) return std::nullopt;
  double r = round_up ? std::ceil(*d) : std::floor(*d);
  // 2^63 is exact as a double; anything at or past it saturates.
  constexpr double kLimit = 9223372036854775808.0;
  if (r >= kLimit) return std::numeric_limits<int64_t>::max();
  if (r < -kLimit) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(r);
}

// Reads ssegw.subscribe, ssegw.publish or ssegw.routes; false when present but not a list of
// strings.
bool glob_list(const base::JsonValue& grants, std::string_view key, std::vector<std::string>& out) {
  const base::JsonValue* value = grants.find(key);
  if (!value) return true;
  const base::JsonValue::Array* items = value->as_array();
  if (!items) return false;
  out.reserve(items->size());
  for (const base::JsonValue& item : *items) {
    const std::string* glob = item.as_string();
    if (!glob) return false;
    out.push_back(*glob);
  }
  return true;
}

// The JWS form of an ECDSA signature (r || s) as the DER SEQUENCE that OpenSSL verifies.
bool es256_to_der(std::string_view raw, std::string& der) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(bytes, kEs256SignatureBytes / 2, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + kEs256SignatureBytes / 2, kEs256SignatureBytes / 2, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  // r and s belong to sig now.
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return false;
  der.resize(static_cast<size_t>(len));
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  return i2d_ECDSA_SIG(sig.get(), &out) == len;
}

int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

struct JwtVerifier::Keys {
  std::unique_ptr<EVP_MD, MdFree> sha256;          // fetched once rather than on every call
  std::unique_ptr<EVP_PKEY, PkeyFree> public_key;  // RS256 and ES256
};

JwtVerifier::JwtVerifier(const config::JwtConfig& config)
    : alg_(config.alg), keys_(std::make_unique<Keys>()) {
  keys_->sha256.reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  if (!keys_->sha256) {
    ERR_clear_error();
    throw std::runtime_error("jwt: SHA-256 is not available from OpenSSL");
  }
  if (alg_ == config::JwtAlg::kHS256) {
    if (config.secret.size() < kMinHmacSecretBytes)
      throw std::runtime_error("jwt: the HS256 secret is shorter than 32 bytes");
    secret_ = config.secret;
    return;
  }
  const std::string& pem = config.public_key_pem;
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio) keys_->public_key.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  const char* type = alg_ == config::JwtAlg::kRS256 ? "RSA" : "EC";
  if (!keys_->public_key || !EVP_PKEY_is_a(keys_->public_key.get(), type)) {
    throw std::runtime_error(std::string("jwt: ") + config::jwt_alg_name(alg_) + " needs a PEM " +
                             type + " public key");
  }
}

JwtVerifier::~JwtVerifier() = default;
JwtVerifier::JwtVerifier(JwtVerifier&&) noexcept = default;
JwtVerifier& JwtVerifier::operator=(JwtVerifier&&) noexcept = default;

VerifyResult JwtVerifier::verify(std::string_view token, int64_t now_unix) const {
  if (token.size() > kMaxTokenBytes) {
    return refuse(JwtError::kMalformed,
                  "the token is longer than " + std::to_string(kMaxTokenBytes) + " bytes");
  }
  size_t dots = static_cast<size_t>(std::count(token.begin(), token.end(), '.'));
  if (dots != 2) {
    return refuse(JwtError::kMalformed,
                  "expected 3 parts separated by '.', got " + std::to_string(dots + 1));
  }
  size_t first_dot = token.find('.');
  size_t second_dot = token.find('.', first_dot + 1);
  std::string_view header_part = token.substr(0, first_dot);
  std::string_view payload_part = token.substr(first_dot + 1, second_dot - first_dot - 1);
  std::string_view signature_part = token.substr(second_dot + 1);

  // The header decides nothing but whether to go on: its alg must be the configured one.
  std::string header_json;
  if (!base64url_decode(header_part, header_json))
    return refuse(JwtError::kMalformed, "the header is not base64url");
  base::JsonResult header = base::parse_json(header_json, kJsonLimits);
  if (!header.ok()) return refuse(JwtError::kMalformed, "the header is not JSON: " + header.error);
  if (!header.value->as_object())
    return refuse(JwtError::kMalformed, "the header is not a JSON object");
  const base::JsonValue* alg_value = header.value->find("alg");
  const std::string* alg = alg_value ? alg_value->as_string() : nullptr;
  if (!alg) return refuse(JwtError::kMalformed, "the header has no alg string");
  const char* expected = config::jwt_alg_name(alg_);
  if (*alg == "none")
    return refuse(JwtError::kUnsupportedAlg, "alg 'none': unsigned tokens are never accepted");
  if (*alg != expected) {
    return refuse(JwtError::kUnsupportedAlg,
                  "alg " + printable_alg(*alg) + " is not the configured " + expected);
  }
  if (header.value->find("crit")) {
    return refuse(JwtError::kUnsupportedAlg,
                  "the header lists crit extensions, and none is supported");
  }

  std::string payload_json;
  std::string signature;
  if (!base64url_decode(payload_part, payload_json))
    return refuse(JwtError::kMalformed, "the payload is not base64url");
  if (!base64url_decode(signature_part, signature))
    return refuse(JwtError::kMalformed, "the signature is not base64url");
  std::string why;
  if (!signature_ok(token.substr(0, second_dot), signature, why))
    return refuse(JwtError::kBadSignature, why);

  base::JsonResult payload = base::parse_json(payload_json, kJsonLimits);
  if (!payload.ok())
    return refuse(JwtError::kMalformed, "the payload is not JSON: " + payload.error);
  const base::JsonValue& claims = *payload.value;
  if (!claims.as_object()) return refuse(JwtError::kMalformed, "the payload is not a JSON object");

  VerifyResult result;
  if (const base::JsonValue* exp = claims.find("exp")) {
    std::optional<int64_t> t = numeric_date(*exp, /*round_up=*/false);
    if (!t) return refuse(JwtError::kMalformed, "exp is not a number");
    if (*t <= now_unix) {
      return refuse(JwtError::kExpired,
                    "expired at " + std::to_string(*t) + ", now is " + std::to_string(now_unix));
    }
    result.claims.exp = *t;
  }
  if (const base::JsonValue* nbf = claims.find("nbf")) {
    std::optional<int64_t> t = numeric_date(*nbf, /*round_up=*/true);
    if (!t) return refuse(JwtError::kMalformed, "nbf is not a number");
    if (*t > now_unix) {
      return refuse(JwtError::kNotYetValid, "not valid before " + std::to_string(*t) + ", now is " +
                                                std::to_string(now_unix));
    }
  }
  if (const base::JsonValue* grants = claims.find("ssegw")) {
    if (!grants->as_object())
      return refuse(JwtError::kMalformed, "the ssegw claim is not a JSON object");
    if (!glob_list(*grants, "subscribe", result.claims.subscribe))
      return refuse(JwtError::kMalformed, "ssegw.subscribe is not a list of strings");
    if (!glob_list(*grants, "publish", result.claims.publish))
      return refuse(JwtError::kMalformed, "ssegw.publish is not a list of strings");
    if (!glob_list(*grants, "routes", result.claims.routes))
      return refuse(JwtError::kMalformed, "ssegw.routes is not a list of strings");
  }
  if (const base::JsonValue* sub = claims.find("sub")) {
    const std::string* subject = sub->as_string();
    if (!subject) return refuse(JwtError::kMalformed, "sub is not a string");
    // Refused, not cut: two subjects cut to the same bytes would share a budget and each other's
    // generations.
    if (subject->size() > kMaxSubjectBytes)
      return refuse(JwtError::kMalformed, "sub is longer than 256 bytes");
    result.claims.subject = *subject;
  }
  return result;
}

bool JwtVerifier::signature_ok(std::string_view signing_input, std::string_view signature,
                               std::string& why) const {
  const auto* input = reinterpret_cast<const unsigned char*>(signing_input.data());
  if (alg_ == config::JwtAlg::kHS256) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(keys_->sha256.get(), secret_.data(), static_cast<int>(secret_.size()), input,
              signing_input.size(), mac, &mac_len)) {
      ERR_clear_error();
      why = "HMAC-SHA256 failed";
      return false;
    }
    // The length is public (32 bytes for everyone); the comparison of the bytes is not.
    if (signature.size() != mac_len || CRYPTO_memcmp(mac, signature.data(), mac_len) != 0) {
      why = "the HMAC does not match";
      return false;
    }
    return true;
  }

  std::string der;
  if (alg_ == config::JwtAlg::kES256) {
    if (signature.size() != kEs256SignatureBytes) {
      why = "an ES256 signature is 64 bytes (r || s), got " + std::to_string(signature.size());
      return false;
    }
    if (!es256_to_der(signature, der)) {
      ERR_clear_error();
      why = "cannot convert the ES256 signature";
      return false;
    }
    signature = der;
  }

  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pkey_ctx = nullptr;  // owned by ctx
  bool ready = ctx && EVP_DigestVerifyInit(ctx.get(), &pkey_ctx, keys_->sha256.get(), nullptr,
                                           keys_->public_key.get()) == 1;
  if (ready && alg_ == config::JwtAlg::kRS256)
    ready = EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, RSA_PKCS1_PADDING) > 0;
  if (!ready) {
    ERR_clear_error();
    why = "cannot set up the signature check";
    return false;
  }
  int verified =
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), input, signing_input.size());
  ERR_clear_error();
  if (verified != 1) {
    why = "the signature does not match";
    return false;
  }
  return true;
}

const char* jwt_error_name(JwtError error) {
  switch (error) {
    case JwtError::kNone:
      return "ok";
    case JwtError::kMalformed:
      return "malformed";
    case JwtError::kUnsupportedAlg:
      return "unsupported_alg";
    case JwtError::kBadSignature:
      return "bad_signature";
    case JwtError::kExpired:
      return "expired";
    case JwtError::kNotYetValid:
      return "not_yet_valid";
  }
  return "unknown";
}

bool allows(const std::vector<std::string>& globs, std::string_view channel) {
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& glob) { return config::glob_match(glob, channel); });
}

bool base64url_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 == 1) return false;  // 6 bits cannot make a byte
  out.reserve(in.size() / 4 * 3 + 2);
  uint32_t bits = 0;
  int count = 0;  // bits held in `bits`
  for (char c : in) {
    int v = base64url_value(c);
    if (v < 0) return false;
    bits = bits << 6 | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>(bits >> count & 0xFF);
      bits &= (1u << count) - 1;
    }
  }
  return bits == 0;  // the 2 or 4 padding bits of the last character
}

}  // namespace ssegw::api
