// load_public_key: PEM in, checked PEM out, with OpenSSL.

#include "config/public_key.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <string_view>

#include "config/text.hpp"

namespace ssegw::config {

namespace {

constexpr int kMinRsaBits = 2048;
constexpr size_t kMaxKeyFileBytes = 1 << 20;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

}  // namespace

std::string load_public_key(const std::string& path, JwtAlg alg) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + quoted(path) + ": " + std::strerror(errno));
  std::string text(kMaxKeyFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxKeyFileBytes) throw Error(quoted(path) + " is larger than 1 MiB");

  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();  // the thread's queue would otherwise confuse later TLS calls
  if (!key) {
    throw Error(quoted(path) +
                " holds no PEM public key (expected \"-----BEGIN PUBLIC KEY-----\"; from a "
                "certificate: openssl x509 -pubkey -noout -in CERT)");
  }
  const char* type = EVP_PKEY_get0_type_name(key.get());
  std::string kind = type ? type : "unknown";
  if (alg == JwtAlg::kRS256) {
    if (!EVP_PKEY_is_a(key.get(), "RSA"))
      throw Error(quoted(path) + " holds a key of type " + kind + "; RS256 needs RSA");
    int bits = EVP_PKEY_get_bits(key.get());
    if (bits < kMinRsaBits) {
      throw Error(quoted(path) + " holds a " + std::to_string(bits) +
                  "-bit RSA key; RS256 needs at least " + std::to_string(kMinRsaBits) + " bits");
    }
  } else {
    if (!EVP_PKEY_is_a(key.get(), "EC"))
      throw Error(quoted(path) + " holds a key of type " + kind + "; ES256 needs EC on P-256");
    char group[64] = {0};
    size_t group_len = 0;
    if (!EVP_PKEY_get_group_name(key.get(), group, sizeof group, &group_len)) group[0] = '\0';
    ERR_clear_error();
    if (std::string_view(group) != "prime256v1") {
      throw Error(quoted(path) + " holds an EC key on " +
                  (group[0] ? std::string(group) : std::string("an unnamed curve")) +
                  "; ES256 needs P-256 (prime256v1)");
    }
  }

  std::unique_ptr<BIO, BioFree> out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_PUBKEY(out.get(), key.get()) != 1) {
    ERR_clear_error();
    throw Error("cannot re-encode the key from " + quoted(path));
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace ssegw::config
