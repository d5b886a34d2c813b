// Certificates and keys made in-process with OpenSSL for the TLS unit tests: no openssl binary,
// no fixture files that expire. Each call writes PEM files into a fresh temporary directory.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <cstdio>
#include <string>

namespace test {

inline EVP_PKEY* make_ec_key() {
  return EVP_EC_gen("P-256");
}

// A self-signed certificate for CN=localhost with the given serial, valid for `days`.
inline X509* make_cert(EVP_PKEY* key, long serial, long days = 2) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), days * 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_sign(cert, key, EVP_sha256());
  return cert;
}

inline std::string temp_dir() {
  char tmpl[] = "/tmp/ssegw-pki-XXXXXX";
  return mkdtemp(tmpl) ? std::string(tmpl) : std::string();
}

inline void write_cert(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  PEM_write_X509(f, cert);
  std::fclose(f);
}

// passphrase non-empty: the key is written encrypted with it.
inline void write_key(const std::string& path, EVP_PKEY* key, const std::string& passphrase = "") {
  FILE* f = std::fopen(path.c_str(), "w");
  if (passphrase.empty())
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  else
    PEM_write_PrivateKey(f, key, EVP_aes_256_cbc(),
                         reinterpret_cast<const unsigned char*>(passphrase.data()),
                         static_cast<int>(passphrase.size()), nullptr, nullptr);
  std::fclose(f);
}

inline void write_text(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "w");
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

// A certificate and its key in dir/cert.pem and dir/key.pem, plus a second key that does not
// match in dir/other.key, and the key encrypted in dir/locked.key.
struct TestPki {
  std::string dir, cert, key, other_key, locked_key;
  long serial = 0;
};

inline TestPki make_test_pki(long serial = 1) {
  TestPki p;
  p.dir = temp_dir();
  p.cert = p.dir + "/cert.pem";
  p.key = p.dir + "/key.pem";
  p.other_key = p.dir + "/other.key";
  p.locked_key = p.dir + "/locked.key";
  p.serial = serial;
  EVP_PKEY* key = make_ec_key();
  EVP_PKEY* other = make_ec_key();
  X509* cert = make_cert(key, serial);
  write_cert(p.cert, cert);
  write_key(p.key, key);
  write_key(p.other_key, other);
  write_key(p.locked_key, key, "secret-passphrase");
  X509_free(cert);
  EVP_PKEY_free(other);
  EVP_PKEY_free(key);
  return p;
}

}  // namespace test
