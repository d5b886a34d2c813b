#include "gateway/api/jwt.hpp"

#include <doctest/doctest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gateway/api/credentials.hpp"
#include "gateway/base/json_value.hpp"

using namespace ssegw;

using api::JwtError;
using api::JwtVerifier;
using api::VerifyResult;

namespace {

constexpr int64_t kNow = 1'700'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef";  // 32 bytes

std::string b64url(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (unsigned char c : in) {
    bits = bits << 8 | c;
    count += 8;
    while (count >= 6) {
      count -= 6;
      out += kAlphabet[bits >> count & 0x3F];
    }
    bits &= (1u << count) - 1;
  }
  if (count > 0) out += kAlphabet[bits << (6 - count) & 0x3F];
  return out;
}

std::string b64url_decoded(std::string_view in) {
  std::string out;
  REQUIRE(api::base64url_decode(in, out));
  return out;
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey generate(const char* type, int rsa_bits, const char* curve) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  REQUIRE(ctx);
  REQUIRE(EVP_PKEY_keygen_init(ctx) == 1);
  if (rsa_bits) REQUIRE(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, rsa_bits) == 1);
  if (curve) REQUIRE(EVP_PKEY_CTX_set_group_name(ctx, curve) == 1);
  EVP_PKEY* key = nullptr;
  REQUIRE(EVP_PKEY_keygen(ctx, &key) == 1);
  EVP_PKEY_CTX_free(ctx);
  return Pkey(key);
}

std::string public_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PUBKEY(bio, key) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

// Made once: RSA key generation takes a moment.
struct Keys {
  Pkey rsa = generate("RSA", 2048, nullptr);
  Pkey ec = generate("EC", 0, "P-256");
  std::string rsa_pem = public_pem(rsa.get());
  std::string ec_pem = public_pem(ec.get());
};

const Keys& keys() {
  static const Keys k;
  return k;
}

std::string hs256(std::string_view key, std::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
               reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len));
  return std::string(reinterpret_cast<char*>(mac), len);
}

// RS256 (PKCS#1 v1.5) or ES256, whose DER signature becomes the JWS r || s form.
std::string sign(EVP_PKEY* key, std::string_view input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  REQUIRE(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1);
  size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  REQUIRE(EVP_DigestSign(ctx, nullptr, &len, data, input.size()) == 1);
  std::string sig(len, '\0');
  REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, data,
                         input.size()) == 1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

std::string der_to_raw(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  REQUIRE(sig);
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  REQUIRE(BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32) == 32);
  REQUIRE(BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32) == 32);
  ECDSA_SIG_free(sig);
  return raw;
}

enum class Signer { kHS256, kRS256, kES256 };

std::string header_for(Signer s) {
  switch (s) {
    case Signer::kHS256:
      return R"({"alg":"HS256","typ":"JWT"})";
    case Signer::kRS256:
      return R"({"alg":"RS256","typ":"JWT"})";
    case Signer::kES256:
      return R"({"alg":"ES256","typ":"JWT"})";
  }
  return "";
}

// The raw signature bytes of "header.payload" made with the test keys.
std::string signature(Signer s, std::string_view input) {
  switch (s) {
    case Signer::kHS256:
      return hs256(kSecret, input);
    case Signer::kRS256:
      return sign(keys().rsa.get(), input);
    case Signer::kES256:
      return der_to_raw(sign(keys().ec.get(), input));
  }
  return "";
}

std::string token(Signer s, std::string_view payload, std::string header = "") {
  if (header.empty()) header = header_for(s);
  std::string input = b64url(header) + "." + b64url(payload);
  return input + "." + b64url(signature(s, input));
}

config::JwtConfig hs256_config() {
  config::JwtConfig c;
  c.alg = config::JwtAlg::kHS256;
  c.secret = kSecret;
  return c;
}

config::JwtConfig rs256_config() {
  config::JwtConfig c;
  c.alg = config::JwtAlg::kRS256;
  c.public_key_pem = keys().rsa_pem;
  return c;
}

config::JwtConfig es256_config() {
  config::JwtConfig c;
  c.alg = config::JwtAlg::kES256;
  c.public_key_pem = keys().ec_pem;
  return c;
}

JwtVerifier verifier_for(Signer s) {
  switch (s) {
    case Signer::kHS256:
      return JwtVerifier(hs256_config());
    case Signer::kRS256:
      return JwtVerifier(rs256_config());
    case Signer::kES256:
      break;
  }
  return JwtVerifier(es256_config());
}

const char* name_of(Signer s) {
  return s == Signer::kHS256 ? "HS256" : s == Signer::kRS256 ? "RS256" : "ES256";
}

const std::string kGrants = R"({"sub":"u1","exp":1700000060,"nbf":1699999990,)"
                            R"("ssegw":{"subscribe":["chat.*","news"],"publish":["chat.42"]}})";

// Replaces one part (0 header, 1 payload, 2 signature) of a token.
std::string with_part(const std::string& jwt, int index, const std::string& part) {
  size_t a = jwt.find('.');
  size_t b = jwt.find('.', a + 1);
  std::string parts[3] = {jwt.substr(0, a), jwt.substr(a + 1, b - a - 1), jwt.substr(b + 1)};
  parts[index] = part;
  return parts[0] + "." + parts[1] + "." + parts[2];
}

std::string signature_part(const std::string& jwt) {
  return jwt.substr(jwt.rfind('.') + 1);
}

}  // namespace

TEST_CASE("api/jwt: valid HS256, RS256 and ES256 tokens give their claims") {
  for (Signer s : {Signer::kHS256, Signer::kRS256, Signer::kES256}) {
    CAPTURE(name_of(s));
    JwtVerifier v = verifier_for(s);
    CHECK(std::string(config::jwt_alg_name(v.alg())) == name_of(s));
    VerifyResult r = v.verify(token(s, kGrants), kNow);
    CHECK(r.error == JwtError::kNone);
    CHECK(r.ok());
    CHECK(r.message.empty());
    CHECK(r.claims.subscribe == std::vector<std::string>{"chat.*", "news"});
    CHECK(r.claims.publish == std::vector<std::string>{"chat.42"});
    CHECK(r.claims.exp == 1700000060);
  }
}

TEST_CASE("api/jwt: ES256 signatures are 64 raw bytes, not DER") {
  JwtVerifier v(es256_config());
  std::string input = b64url(header_for(Signer::kES256)) + "." + b64url(kGrants);
  std::string der = sign(keys().ec.get(), input);
  // A DER signature (what OpenSSL makes, and a common issuer bug) is refused by its length.
  VerifyResult r = v.verify(input + "." + b64url(der), kNow);
  CHECK(r.error == JwtError::kBadSignature);
  CHECK(r.message == "an ES256 signature is 64 bytes (r || s), got " + std::to_string(der.size()));
  std::string raw = der_to_raw(der);
  for (size_t len : {size_t{0}, size_t{32}, size_t{63}, size_t{65}, size_t{128}}) {
    CAPTURE(len);
    std::string sig = raw;
    sig.resize(len, '\x01');
    VerifyResult bad = v.verify(input + "." + b64url(sig), kNow);
    CHECK(bad.error == JwtError::kBadSignature);
    CHECK(bad.message == "an ES256 signature is 64 bytes (r || s), got " + std::to_string(len));
  }
  CHECK(v.verify(input + "." + b64url(raw), kNow).ok());
  // r = s = 0 has the right length but can never verify.
  CHECK(v.verify(input + "." + b64url(std::string(64, '\0')), kNow).error ==
        JwtError::kBadSignature);
}

TEST_CASE("api/jwt: a flipped byte anywhere breaks the signature") {
  for (Signer s : {Signer::kHS256, Signer::kRS256, Signer::kES256}) {
    CAPTURE(name_of(s));
    JwtVerifier v = verifier_for(s);
    std::string good = token(s, kGrants);
    REQUIRE(v.verify(good, kNow).ok());

    std::string sig = b64url_decoded(signature_part(good));
    for (size_t at : {size_t{0}, sig.size() / 2, sig.size() - 1}) {
      CAPTURE(at);
      std::string flipped = sig;
      flipped[at] = static_cast<char>(flipped[at] ^ 0x01);
      VerifyResult r = v.verify(with_part(good, 2, b64url(flipped)), kNow);
      CHECK(r.error == JwtError::kBadSignature);
      CHECK(r.message ==
            (s == Signer::kHS256 ? "the HMAC does not match" : "the signature does not match"));
    }
    // Claims changed after signing: a wider grant must not get through.
    std::string wider = R"({"ssegw":{"subscribe":["*"],"publish":["*"]}})";
    CHECK(v.verify(with_part(good, 1, b64url(wider)), kNow).error == JwtError::kBadSignature);
    // An empty signature part.
    CHECK(v.verify(with_part(good, 2, ""), kNow).error == JwtError::kBadSignature);
    // A signature from another key of the same type.
    if (s == Signer::kHS256) {
      std::string input = good.substr(0, good.rfind('.'));
      std::string other = hs256("another secret of thirty-two bytes", input);
      CHECK(v.verify(input + "." + b64url(other), kNow).error == JwtError::kBadSignature);
    }
  }
  Pkey other_rsa = generate("RSA", 2048, nullptr);
  std::string input = b64url(header_for(Signer::kRS256)) + "." + b64url(kGrants);
  CHECK(JwtVerifier(rs256_config())
            .verify(input + "." + b64url(sign(other_rsa.get(), input)), kNow)
            .error == JwtError::kBadSignature);
}

TEST_CASE("api/jwt: alg none is refused, with or without a signature part") {
  for (Signer s : {Signer::kHS256, Signer::kRS256, Signer::kES256}) {
    CAPTURE(name_of(s));
    JwtVerifier v = verifier_for(s);
    std::string unsigned_token = b64url(R"({"alg":"none","typ":"JWT"})") + "." + b64url(kGrants);
    VerifyResult r = v.verify(unsigned_token + ".", kNow);
    CHECK(r.error == JwtError::kUnsupportedAlg);
    CHECK(r.message == "alg 'none': unsigned tokens are never accepted");
    // With the signature of a valid token pasted on.
    std::string valid_sig = signature_part(token(s, kGrants));
    CHECK(v.verify(unsigned_token + "." + valid_sig, kNow).error == JwtError::kUnsupportedAlg);
    // Without the third part at all: not even a JWS.
    CHECK(v.verify(unsigned_token, kNow).error == JwtError::kMalformed);
    // Case variants are other algorithms, refused as well.
    for (const char* alg : {"None", "NONE", "nOnE"}) {
      CAPTURE(alg);
      std::string header = std::string(R"({"alg":")") + alg + R"("})";
      VerifyResult variant = v.verify(b64url(header) + "." + b64url(kGrants) + ".", kNow);
      CHECK(variant.error == JwtError::kUnsupportedAlg);
      CHECK(variant.message ==
            std::string("alg '") + alg + "' is not the configured " + name_of(s));
    }
  }
}

TEST_CASE("api/jwt: key confusion: an HS256 token keyed with the RS256 public key is refused") {
  // The classic attack: the verifier's public key is public, so an attacker signs with HMAC
  // using the PEM text as the secret and sets alg HS256.
  std::string input = b64url(R"({"alg":"HS256","typ":"JWT"})") + "." +
                      b64url(R"({"ssegw":{"subscribe":["*"],"publish":["*"]}})");
  std::string forged = input + "." + b64url(hs256(keys().rsa_pem, input));
  VerifyResult r = JwtVerifier(rs256_config()).verify(forged, kNow);
  CHECK(r.error == JwtError::kUnsupportedAlg);
  CHECK(r.message == "alg 'HS256' is not the configured RS256");
  // The forgery is otherwise perfect: a verifier that let the token pick HMAC would accept it.
  config::JwtConfig confused = hs256_config();
  confused.secret = keys().rsa_pem;
  CHECK(JwtVerifier(confused).verify(forged, kNow).ok());

  std::string forged_ec = input + "." + b64url(hs256(keys().ec_pem, input));
  CHECK(JwtVerifier(es256_config()).verify(forged_ec, kNow).error == JwtError::kUnsupportedAlg);
}

TEST_CASE("api/jwt: a token is checked against the configured algorithm only") {
  JwtVerifier hs(hs256_config());
  JwtVerifier rs(rs256_config());
  JwtVerifier es(es256_config());
  CHECK(hs.verify(token(Signer::kRS256, kGrants), kNow).message ==
        "alg 'RS256' is not the configured HS256");
  CHECK(rs.verify(token(Signer::kES256, kGrants), kNow).error == JwtError::kUnsupportedAlg);
  CHECK(es.verify(token(Signer::kRS256, kGrants), kNow).error == JwtError::kUnsupportedAlg);
  CHECK(es.verify(token(Signer::kHS256, kGrants), kNow).error == JwtError::kUnsupportedAlg);
  // Related algorithms are not the configured one either.
  for (const char* alg : {"HS384", "HS512", "PS256", "RS512", "ES384", "EdDSA"}) {
    CAPTURE(alg);
    std::string header = std::string(R"({"alg":")") + alg + R"("})";
    CHECK(rs.verify(b64url(header) + "." + b64url(kGrants) + ".AAAA", kNow).error ==
          JwtError::kUnsupportedAlg);
  }
  // A hostile alg string is not repeated in the message.
  std::string header = R"({"alg":"RS256\n{\"level\":\"fake\"}"})";
  VerifyResult r = rs.verify(b64url(header) + "." + b64url(kGrants) + ".AAAA", kNow);
  CHECK(r.error == JwtError::kUnsupportedAlg);
  CHECK(r.message == "alg (not shown) is not the configured RS256");
  // alg must be a string.
  for (const char* bad :
       {R"({"typ":"JWT"})", R"({"alg":256})", R"({"alg":null})", R"({"alg":["HS256"]})"}) {
    CAPTURE(bad);
    VerifyResult m = hs.verify(token(Signer::kHS256, kGrants, bad), kNow);
    CHECK(m.error == JwtError::kMalformed);
    CHECK(m.message == "the header has no alg string");
  }
}

TEST_CASE("api/jwt: a crit header is refused before the signature is checked") {
  JwtVerifier v(hs256_config());
  std::string header = R"({"alg":"HS256","crit":["exp"],"exp":1})";
  VerifyResult r = v.verify(token(Signer::kHS256, kGrants, header), kNow);
  CHECK(r.error == JwtError::kUnsupportedAlg);
  CHECK(r.message == "the header lists crit extensions, and none is supported");
  // Other header members (kid, typ, cty) are ignored.
  CHECK(
      v.verify(token(Signer::kHS256, kGrants, R"({"kid":"k1","typ":"at+jwt","alg":"HS256"})"), kNow)
          .ok());
  // Two alg members could make two readers disagree on the algorithm.
  VerifyResult twice =
      v.verify(token(Signer::kHS256, kGrants, R"({"alg":"HS256","alg":"none"})"), kNow);
  CHECK(twice.error == JwtError::kMalformed);
  CHECK(twice.message == "the header is not JSON: offset 0: duplicate key in an object");
}

TEST_CASE("api/jwt: exp and nbf, with no leeway") {
  JwtVerifier v(hs256_config());
  auto check = [&](const std::string& claims) {
    return v.verify(token(Signer::kHS256, claims), kNow);
  };

  VerifyResult at_exp = check(R"({"exp":1700000000})");
  CHECK(at_exp.error == JwtError::kExpired);
  CHECK(at_exp.message == "expired at 1700000000, now is 1700000000");
  CHECK(check(R"({"exp":1699999000})").error == JwtError::kExpired);
  CHECK(check(R"({"exp":0})").error == JwtError::kExpired);
  CHECK(check(R"({"exp":-5})").error == JwtError::kExpired);
  VerifyResult before_exp = check(R"({"exp":1700000001})");
  CHECK(before_exp.ok());
  CHECK(before_exp.claims.exp == 1700000001);

  VerifyResult early = check(R"({"nbf":1700000001})");
  CHECK(early.error == JwtError::kNotYetValid);
  CHECK(early.message == "not valid before 1700000001, now is 1700000000");
  CHECK(check(R"({"nbf":1700000000})").ok());

  // No exp: the token does not expire.
  VerifyResult forever = check(R"({"ssegw":{"subscribe":["a"]}})");
  CHECK(forever.ok());
  CHECK(forever.claims.exp == 0);

  // Fractional dates round towards refusal; huge ones saturate.
  CHECK(check(R"({"exp":1700000000.5})").error == JwtError::kExpired);
  CHECK(check(R"({"exp":1700000001.5})").claims.exp == 1700000001);
  CHECK(check(R"({"nbf":1699999999.5})").ok());
  CHECK(check(R"({"nbf":1700000000.001})").error == JwtError::kNotYetValid);
  CHECK(check(R"({"exp":1e300})").claims.exp == INT64_MAX);
  CHECK(check(R"({"exp":99999999999999999999})").claims.exp == INT64_MAX);
  CHECK(check(R"({"exp":-1e300})").error == JwtError::kExpired);

  for (const char* bad : {R"({"exp":"1700000060"})", R"({"exp":null})", R"({"exp":true})"}) {
    CAPTURE(bad);
    VerifyResult r = check(bad);
    CHECK(r.error == JwtError::kMalformed);
    CHECK(r.message == "exp is not a number");
  }
  CHECK(check(R"({"nbf":[1]})").message == "nbf is not a number");

  // exp is only believed once the signature holds: a tampered exp is a bad signature.
  std::string good = token(Signer::kHS256, R"({"exp":1700000060})");
  CHECK(v.verify(with_part(good, 1, b64url(R"({"exp":1600000000})")), kNow).error ==
        JwtError::kBadSignature);
}

TEST_CASE("api/jwt: malformed tokens") {
  JwtVerifier v(hs256_config());
  std::string good = token(Signer::kHS256, kGrants);
  auto verify = [&](const std::string& t) { return v.verify(t, kNow); };

  // Segment counts.
  for (const std::string& t :
       {std::string(), std::string("abc"), std::string("a.b"), good.substr(0, good.rfind('.')),
        good + ".", good + ".x", std::string("...."), std::string("a.b.c.d.e")}) {
    CAPTURE(t);
    VerifyResult r = verify(t);
    CHECK(r.error == JwtError::kMalformed);
    CHECK(r.message.starts_with("expected 3 parts separated by '.', got "));
  }
  CHECK(verify("a.b").message == "expected 3 parts separated by '.', got 2");
  CHECK(verify(good + ".").message == "expected 3 parts separated by '.', got 4");

  // Bad base64url in each part: standard base64 characters, padding, spaces, a length that
  // cannot be, non-zero unused bits.
  std::string header = good.substr(0, good.find('.'));
  for (const std::string& part : {header + "=", header + "+", std::string("eyJ/"), " " + header,
                                  header + "A", std::string()}) {
    CAPTURE(part);
    VerifyResult r = verify(with_part(good, 0, part));
    CHECK(r.error == JwtError::kMalformed);
  }
  CHECK(verify(with_part(good, 0, header + "=")).message == "the header is not base64url");
  CHECK(verify(with_part(good, 0, "")).message ==
        "the header is not JSON: offset 0: unexpected end of text, expected a value");
  CHECK(verify(with_part(good, 1, "e30=")).message == "the payload is not base64url");
  CHECK(verify(with_part(good, 1, "e3%")).message == "the payload is not base64url");
  CHECK(verify(with_part(good, 2, signature_part(good) + "=")).message ==
        "the signature is not base64url");
  // "e31" decodes only with its unused low bits set: a second spelling of "{}", refused.
  CHECK(b64url("{}") == "e30");
  CHECK(verify(with_part(good, 0, "e31")).message == "the header is not base64url");

  // Base64url of something that is not a JSON object.
  CHECK(verify(with_part(good, 0, b64url("HS256"))).message ==
        "the header is not JSON: offset 0: unexpected character, expected a value");
  CHECK(verify(with_part(good, 0, b64url(R"(["HS256"])"))).message ==
        "the header is not a JSON object");
  CHECK(verify(with_part(good, 0, b64url(R"({"alg":"HS256"} x)"))).message ==
        "the header is not JSON: offset 16: unexpected text after the value");

  // A payload that is signed but is not a JSON object.
  VerifyResult not_json = verify(token(Signer::kHS256, "{\"exp\":1700000060"));
  CHECK(not_json.error == JwtError::kMalformed);
  CHECK(not_json.message ==
        "the payload is not JSON: offset 17: unexpected end of text, expected ',' or '}'");
  CHECK(verify(token(Signer::kHS256, "[]")).message == "the payload is not a JSON object");
  CHECK(verify(token(Signer::kHS256, "\"\xff\"")).message ==
        "the payload is not JSON: offset 1: invalid UTF-8 in a string");
}

TEST_CASE("api/jwt: tokens over 8 KiB are malformed") {
  JwtVerifier v(hs256_config());
  std::string padding(8 << 10, 'a');
  std::string big = token(Signer::kHS256, R"({"pad":")" + padding + R"("})");
  REQUIRE(big.size() > api::kMaxTokenBytes);
  VerifyResult r = v.verify(big, kNow);
  CHECK(r.error == JwtError::kMalformed);
  CHECK(r.message == "the token is longer than 8192 bytes");
  CHECK(v.verify(std::string(api::kMaxTokenBytes + 1, '.'), kNow).message ==
        "the token is longer than 8192 bytes");

  // A token of exactly 8 KiB is still read, and one byte more is not. Unpadded base64url makes
  // any length but 4k+1, so pad the header with spaces until the payload's share fits.
  for (std::string header = header_for(Signer::kHS256);; header.insert(1, " ")) {
    size_t room = api::kMaxTokenBytes - b64url(header).size() - 1 - 1 - 43;  // 43: HMAC part
    if (room % 4 == 1) continue;
    size_t bytes = room / 4 * 3 + (room % 4 == 0 ? 0 : room % 4 - 1);
    std::string claims = R"({"pad":")" + std::string(bytes - 10, 'a') + R"("})";
    std::string exact = token(Signer::kHS256, claims, header);
    REQUIRE(exact.size() == api::kMaxTokenBytes);
    CHECK(v.verify(exact, kNow).ok());
    CHECK(v.verify(exact + "A", kNow).message == "the token is longer than 8192 bytes");
    break;
  }
}

TEST_CASE("api/jwt: claims without ssegw are valid and grant nothing") {
  JwtVerifier v(rs256_config());
  VerifyResult r = v.verify(token(Signer::kRS256, R"({"sub":"u1","exp":1700000060})"), kNow);
  CHECK(r.ok());
  CHECK(r.claims.subscribe.empty());
  CHECK(r.claims.publish.empty());
  CHECK_FALSE(api::allows(r.claims.subscribe, "chat.1"));
  CHECK_FALSE(api::allows(r.claims.publish, "chat.1"));

  VerifyResult empty = v.verify(token(Signer::kRS256, "{}"), kNow);
  CHECK(empty.ok());
  CHECK(empty.claims.exp == 0);

  // Unknown members of ssegw (Mercure's "payload", say) are ignored.
  VerifyResult extra =
      v.verify(token(Signer::kRS256, R"({"ssegw":{"publish":["a"],"payload":{"x":1}}})"), kNow);
  CHECK(extra.ok());
  CHECK(extra.claims.publish == std::vector<std::string>{"a"});
  CHECK(extra.claims.subscribe.empty());

  // Grants of the wrong type are refused rather than read as "nothing".
  CHECK(v.verify(token(Signer::kRS256, R"({"ssegw":["*"]})"), kNow).message ==
        "the ssegw claim is not a JSON object");
  CHECK(v.verify(token(Signer::kRS256, R"({"ssegw":{"subscribe":"*"}})"), kNow).message ==
        "ssegw.subscribe is not a list of strings");
  CHECK(v.verify(token(Signer::kRS256, R"({"ssegw":{"publish":["a",1]}})"), kNow).message ==
        "ssegw.publish is not a list of strings");
}

TEST_CASE("api/jwt: allows matches channel globs") {
  std::vector<std::string> globs = {"chat.*", "news", "user.*.inbox"};
  CHECK(api::allows(globs, "chat.42"));
  CHECK(api::allows(globs, "chat."));
  CHECK(api::allows(globs, "news"));
  CHECK(api::allows(globs, "user.7.inbox"));
  CHECK_FALSE(api::allows(globs, "news2"));
  CHECK_FALSE(api::allows(globs, "chat"));
  CHECK_FALSE(api::allows(globs, "user.7.outbox"));
  CHECK_FALSE(api::allows({}, "news"));
  CHECK(api::allows({"*"}, "anything"));
}

TEST_CASE("api/credentials: the token comes from the header, then the cookie, then the query") {
  auto find_token = [](std::string_view authorization, std::string_view cookie,
                       std::string_view query) {
    return api::find_credential(authorization, cookie, query).token;
  };
  CHECK(find_token("Bearer h.h.h", "ssegw_token=c.c.c", "access_token=q.q.q") == "h.h.h");
  CHECK(find_token("", "ssegw_token=c.c.c", "access_token=q.q.q") == "c.c.c");
  CHECK(find_token("", "", "access_token=q.q.q") == "q.q.q");
  CHECK(find_token("", "", "") == "");

  // The scheme is case-insensitive; other schemes and empty tokens fall through.
  CHECK(find_token("bearer h.h.h", "", "") == "h.h.h");
  CHECK(find_token("BEARER   h.h.h  ", "", "") == "h.h.h");
  CHECK(find_token("Basic dXNlcjpwYXNz", "ssegw_token=c.c.c", "") == "c.c.c");
  CHECK(find_token("Bearer", "ssegw_token=c.c.c", "") == "c.c.c");
  CHECK(find_token("Bearer   ", "", "access_token=q.q.q") == "q.q.q");
  CHECK(find_token("Bearerh.h.h", "", "access_token=q.q.q") == "q.q.q");

  // Cookie parsing.
  CHECK(find_token("", "a=1; ssegw_token=XYZ; b=2", "") == "XYZ");
  CHECK(find_token("", "a=1;ssegw_token=XYZ;b=2", "") == "XYZ");
  CHECK(find_token("", "ssegw_token=XYZ", "") == "XYZ");
  CHECK(find_token("", "a=1; ssegw_token=\"XYZ\"", "") == "XYZ");
  CHECK(find_token("", "x_ssegw_token=no; ssegw_token_old=no; ssegw_token=yes", "") == "yes");
  CHECK(find_token("", "a=ssegw_token=no; b=2", "") == "");
  CHECK(find_token("", "ssegw_token=first; ssegw_token=second", "") == "first");
  CHECK(find_token("", "ssegw_token=; ssegw_token=second", "") == "second");
  CHECK(find_token("", "ssegw_token=a.b=c", "") == "a.b=c");  // '=' inside the value
  CHECK(find_token("", "garbage; ; =; ssegw_token=XYZ", "") == "XYZ");
  CHECK(find_token("", "a=1; b=2", "access_token=q.q.q") == "q.q.q");

  // Query parameters are percent-decoded; a malformed escape is handed on as written, so that
  // verification refuses it instead of the request counting as anonymous.
  CHECK(find_token("", "", "x=1&access_token=a%2Eb.c&y=2") == "a.b.c");
  CHECK(find_token("", "", "access_token=a%zzb") == "a%zzb");
  CHECK(find_token("", "", "access_tokens=no&access_token=yes") == "yes");
  CHECK(find_token("", "", "access_token=") == "");
  JwtVerifier v(hs256_config());
  CHECK(v.verify(find_token("", "", "access_token=a%zzb"), kNow).error == JwtError::kMalformed);

  // A real token round trip through each carrier.
  std::string t = token(Signer::kHS256, kGrants);
  CHECK(v.verify(find_token("Bearer " + t, "", ""), kNow).ok());
  CHECK(v.verify(find_token("", "theme=dark; ssegw_token=" + t, ""), kNow).ok());
  CHECK(v.verify(find_token("", "", "access_token=" + t), kNow).ok());
}

TEST_CASE("api/jwt: verify is safe from several threads on one verifier") {
  for (Signer s : {Signer::kHS256, Signer::kRS256, Signer::kES256}) {
    CAPTURE(name_of(s));
    JwtVerifier v = verifier_for(s);
    std::string good = token(s, kGrants);
    std::string bad = with_part(good, 1, b64url(R"({"ssegw":{"subscribe":["*"]}})"));
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 50; ++i) {
          if (!v.verify(good, kNow).ok()) ++wrong;
          if (v.verify(bad, kNow).error != JwtError::kBadSignature) ++wrong;
        }
      });
    }
    for (std::thread& t : threads) t.join();
    CHECK(wrong == 0);
  }
}

TEST_CASE("api/jwt: the verifier refuses a config the loader would refuse") {
  config::JwtConfig short_secret = hs256_config();
  short_secret.secret = "short";
  CHECK_THROWS_WITH(JwtVerifier{short_secret}, "jwt: the HS256 secret is shorter than 32 bytes");
  config::JwtConfig wrong_type = rs256_config();
  wrong_type.public_key_pem = keys().ec_pem;
  CHECK_THROWS_WITH(JwtVerifier{wrong_type}, "jwt: RS256 needs a PEM RSA public key");
  config::JwtConfig no_key = es256_config();
  no_key.public_key_pem = "not a key";
  CHECK_THROWS_WITH(JwtVerifier{no_key}, "jwt: ES256 needs a PEM EC public key");
}

TEST_CASE("api/jwt: error names") {
  CHECK(std::string(api::jwt_error_name(JwtError::kNone)) == "ok");
  CHECK(std::string(api::jwt_error_name(JwtError::kMalformed)) == "malformed");
  CHECK(std::string(api::jwt_error_name(JwtError::kUnsupportedAlg)) == "unsupported_alg");
  CHECK(std::string(api::jwt_error_name(JwtError::kBadSignature)) == "bad_signature");
  CHECK(std::string(api::jwt_error_name(JwtError::kExpired)) == "expired");
  CHECK(std::string(api::jwt_error_name(JwtError::kNotYetValid)) == "not_yet_valid");
}

TEST_CASE("api/jwt: base64url decoding is strict") {
  std::string out;
  CHECK(api::base64url_decode("", out));
  CHECK(out.empty());
  CHECK(api::base64url_decode("YQ", out));
  CHECK(out == "a");
  CHECK(api::base64url_decode("YWI", out));
  CHECK(out == "ab");
  CHECK(api::base64url_decode("YWJj", out));
  CHECK(out == "abc");
  CHECK(api::base64url_decode("-_-_", out));
  CHECK(out == "\xfb\xff\xbf");
  for (const char* bad : {"Y", "YQ==", "YQ=", "+/+/", "YW J", "YR", "YWJ=", "YWK", "\xff\xff"}) {
    CAPTURE(bad);
    CHECK_FALSE(api::base64url_decode(bad, out));
  }
  // Every byte value round-trips.
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t len = 0; len <= all.size(); len += 37) {
    CHECK(api::base64url_decode(b64url(all.substr(0, len)), out));
    CHECK(out == all.substr(0, len));
  }
}

// The JSON reader (gateway/base/json_value.hpp) exists for the JWT verifier; its tests sit here
// with their only user.
TEST_CASE("api/jwt: json reader values") {
  using base::JsonValue;
  base::JsonResult r = base::parse_json(
      R"( {"s":"a\"b\\c\/d\b\f\n\r\t","i":-42,"d":1.5e2,"big":12345678901234567890,)"
      R"("t":true,"f":false,"n":null,"a":[1,[2,{}],[]],"o":{"k":"v"},"zero":-0} )");
  REQUIRE(r.ok());
  CHECK(r.error.empty());
  const JsonValue& v = *r.value;
  CHECK(v.type() == JsonValue::Type::kObject);
  REQUIRE(v.as_object());
  CHECK(v.as_object()->size() == 10);
  CHECK(*v.find("s")->as_string() == "a\"b\\c/d\b\f\n\r\t");
  CHECK(v.find("i")->as_int() == -42);
  CHECK(v.find("i")->as_number() == -42.0);
  CHECK_FALSE(v.find("d")->as_int());
  CHECK(v.find("d")->as_number() == 150.0);
  CHECK(v.find("big")->type() == JsonValue::Type::kDouble);
  CHECK(v.find("big")->as_number() == 12345678901234567890.0);
  CHECK(v.find("t")->as_bool() == true);
  CHECK(v.find("f")->as_bool() == false);
  CHECK(v.find("n")->is_null());
  CHECK(v.find("zero")->as_int() == 0);
  const JsonValue::Array* a = v.find("a")->as_array();
  REQUIRE(a);
  REQUIRE(a->size() == 3);
  CHECK((*a)[1].as_array()->size() == 2);
  CHECK((*a)[1].as_array()->at(1).as_object()->empty());
  CHECK(*v.find("o")->find("k")->as_string() == "v");
  CHECK(v.find("missing") == nullptr);
  CHECK(v.find("s")->find("x") == nullptr);  // not an object
  CHECK_FALSE(v.find("s")->as_int());
  CHECK(v.find("s")->as_array() == nullptr);
  CHECK(v.find("t")->as_string() == nullptr);

  for (const char* scalar :
       {"0", "-1", "\"x\"", "true", "null", " 1 ", "9223372036854775807", "-9223372036854775808"}) {
    CAPTURE(scalar);
    CHECK(base::parse_json(scalar).ok());
  }
  CHECK(base::parse_json("9223372036854775807").value->as_int() == INT64_MAX);
  CHECK(base::parse_json("-9223372036854775808").value->as_int() == INT64_MIN);
  CHECK(base::parse_json("9223372036854775808").value->type() == JsonValue::Type::kDouble);
}

TEST_CASE("api/jwt: json reader strings and unicode escapes") {
  auto str = [](const char* json) {
    base::JsonResult r = base::parse_json(json);
    REQUIRE(r.ok());
    REQUIRE(r.value->as_string());
    return *r.value->as_string();
  };
  CHECK(str(R"("\u0041\u00e9\u20AC")") == "A\xc3\xa9\xe2\x82\xac");
  CHECK(str(R"("\ud83d\ude00")") == "\xf0\x9f\x98\x80");  // a surrogate pair: U+1F600
  CHECK(str(R"("\uDBFF\uDFFF")") == "\xf4\x8f\xbf\xbf");  // U+10FFFF
  CHECK(str(R"("\u0000")") == std::string(1, '\0'));
  CHECK(str("\"\xc3\xa9\xf0\x9f\x98\x80\"") == "\xc3\xa9\xf0\x9f\x98\x80");  // raw UTF-8

  auto error = [](std::string_view json) { return base::parse_json(json).error; };
  CHECK(error(R"("\ud83d")") == "offset 1: lone high surrogate");
  CHECK(error(R"("\ud83dx")") == "offset 1: lone high surrogate");
  CHECK(error(R"("\ud83d\u0041")") == "offset 1: lone high surrogate");
  CHECK(error(R"("\ude00")") == "offset 1: lone low surrogate");
  CHECK(error(R"("\u12")") == "offset 3: truncated \\u escape");
  CHECK(error(R"("\u12g4")") == "offset 5: invalid hex digit in a \\u escape");
  CHECK(error(R"("\x")") == "offset 1: invalid escape");
  CHECK(error(R"("\')") == "offset 1: invalid escape");
  CHECK(error("\"a\tb\"") == "offset 2: control character in a string");
  CHECK(error(std::string_view("\"a\0b\"", 5)) == "offset 2: control character in a string");
  CHECK(error("\"abc") == "offset 4: unterminated string");
  CHECK(error("\"abc\\") == "offset 5: unterminated string");
  CHECK(error("\"\xc0\xaf\"") == "offset 1: invalid UTF-8 in a string");      // overlong '/'
  CHECK(error("\"\xed\xa0\x80\"") == "offset 1: invalid UTF-8 in a string");  // raw surrogate
  CHECK(error("\"ab\xe2\x82\"") == "offset 1: invalid UTF-8 in a string");    // truncated
}

TEST_CASE("api/jwt: json reader refuses what RFC 8259 does not allow") {
  auto error = [](std::string_view json) { return base::parse_json(json).error; };
  CHECK(error("") == "offset 0: unexpected end of text, expected a value");
  CHECK(error("   ") == "offset 3: unexpected end of text, expected a value");
  CHECK(error("\xef\xbb\xbf{}") == "offset 0: unexpected character, expected a value");  // BOM
  CHECK(error("{} {}") == "offset 3: unexpected text after the value");
  CHECK(error("{\"a\":1,}") == "offset 7: expected a string key");
  CHECK(error("[1,]") == "offset 3: unexpected character, expected a value");
  CHECK(error("[1 2]") == "offset 3: expected ',' or ']'");
  CHECK(error("{\"a\" 1}") == "offset 5: expected ':' after a key");
  CHECK(error("{a:1}") == "offset 1: expected a string key");
  CHECK(error("{\"a\":1 \"b\":2}") == "offset 7: expected ',' or '}'");
  CHECK(error("[1") == "offset 2: unexpected end of text, expected ',' or ']'");
  CHECK(error("{\"a\":1,\"b\":2,\"a\":3}") == "offset 0: duplicate key in an object");
  CHECK(error("[{\"k\":1,\"k\":1}]") == "offset 1: duplicate key in an object");
  CHECK(error("tru") == "offset 0: invalid literal");
  CHECK(error("True") == "offset 0: unexpected character, expected a value");
  CHECK(error("nul") == "offset 0: invalid literal");
  CHECK(error("'a'") == "offset 0: unexpected character, expected a value");
  CHECK(error("\v1") == "offset 0: unexpected character, expected a value");
  for (const char* bad : {"01", "-01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "1.e5", "--1",
                          "NaN", "Infinity", "-Infinity"}) {
    CAPTURE(bad);
    CHECK_FALSE(base::parse_json(bad).ok());
  }
  CHECK(error("01") == "offset 0: leading zero");
  CHECK(error("1e400") == "offset 0: number out of range");
  CHECK(error("-1e400") == "offset 0: number out of range");
  CHECK(base::parse_json("1E+2").value->as_number() == 100.0);
  CHECK(base::parse_json("-0.0e-0").value->as_number() == 0.0);
}

TEST_CASE("api/jwt: json reader bounds depth and size") {
  base::JsonLimits limits;
  limits.max_depth = 32;
  std::string ok = std::string(32, '[') + std::string(32, ']');
  CHECK(base::parse_json(ok, limits).ok());
  std::string deep = std::string(33, '[') + std::string(33, ']');
  CHECK(base::parse_json(deep, limits).error == "offset 32: nested deeper than 32 levels");
  // Far past the limit: no stack overflow, the same answer.
  std::string very_deep(1 << 20, '[');
  limits.max_bytes = very_deep.size();
  CHECK(base::parse_json(very_deep, limits).error == "offset 32: nested deeper than 32 levels");
  std::string objects;
  for (int i = 0; i < 40; ++i) objects += "{\"a\":";
  CHECK(base::parse_json(objects, limits).error == "offset 160: nested deeper than 32 levels");

  limits.max_bytes = 8;
  CHECK(base::parse_json("[1,2,3]", limits).ok());
  CHECK(base::parse_json("[1,2,3,4]", limits).error ==
        "offset 0: the document is larger than 8 bytes");
  CHECK(base::parse_json("[1,2,3,4]", limits).error_offset == 0);

  // Many keys: the duplicate check stays fast.
  std::string wide = "{";
  for (int i = 0; i < 5000; ++i) wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
  wide += "}";
  CHECK(base::parse_json(wide).ok());
}

TEST_CASE("api/jwt: a sub of 256 bytes is kept whole, a longer one refuses the token") {
  JwtVerifier v(rs256_config());
  const std::string sub256(256, 's');
  VerifyResult kept =
      v.verify(token(Signer::kRS256, R"({"sub":")" + sub256 + R"(","exp":1700000060})"), kNow);
  REQUIRE(kept.ok());
  CHECK(kept.claims.subject == sub256);
  // Cut, two subjects could share a budget and each other's generations: refused instead.
  VerifyResult refused =
      v.verify(token(Signer::kRS256, R"({"sub":")" + sub256 + R"(x","exp":1700000060})"), kNow);
  CHECK_FALSE(refused.ok());
  CHECK(refused.message == "sub is longer than 256 bytes");
}
