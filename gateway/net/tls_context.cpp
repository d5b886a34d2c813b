#include "gateway/net/tls_context.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

namespace ssegw::net {
namespace {

// A certificate chain or a key is a few KiB; a bigger file is a wrong path.
constexpr size_t kMaxPemBytes = 1 << 20;

// TLS 1.2 suites: forward secrecy and AEAD only (Mozilla's "intermediate" list without DHE,
// which would need parameters of its own). TLS 1.3 suites are OpenSSL's defaults, all AEAD.
constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// "WHERE: tls.KEY: message", as the config loader words its errors.
std::string located(const std::string& where, const char* key, const std::string& message) {
  std::string out = where;
  if (!out.empty()) out += ": ";
  out += "tls.";
  out += key;
  out += ": ";
  out += message;
  return out;
}

bool read_pem(const std::string& path, std::string& text, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot open '" + path;
    error += "': ";
    error += std::strerror(errno);
    return false;
  }
  text.assign(kMaxPemBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxPemBytes) {
    error = "'" + path;
    error += "' is larger than 1 MiB";
    return false;
  }
  return true;
}

// The key's passphrase callback: there is none to give. Without it OpenSSL would prompt on the
// terminal and block start-up (or a reload) on a read nobody answers.
int no_passphrase(char*, int, int, void* asked) {
  *static_cast<bool*>(asked) = true;
  return -1;
}

int select_alpn_cb(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                   unsigned int inlen, void* arg) {
  const auto* context = static_cast<const TlsContext*>(arg);
  std::string_view chosen =
      context->select_alpn(std::string_view(reinterpret_cast<const char*>(in), inlen));
  if (chosen.empty()) return SSL_TLSEXT_ERR_NOACK;  // go on without ALPN: HTTP/1.1
  *out = reinterpret_cast<const unsigned char*>(chosen.data());
  *outlen = static_cast<unsigned char>(chosen.size());
  return SSL_TLSEXT_ERR_OK;
}

int64_t not_after_of(const X509* cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::shared_ptr<TlsContext> TlsContext::load(const TlsFiles& files,
                                             const std::vector<std::string>& alpn,
                                             std::string& error) {
  ERR_clear_error();
  auto fail = [&](const std::string& where, const char* key, const std::string& message) {
    std::string detail = openssl_errors();
    error = located(where, key, detail.empty() ? message : message + " (" + detail + ")");
    return nullptr;
  };
  for (const std::string& name : alpn) {
    if (name.empty() || name.size() > 255)
      return fail("", "alpn", "a protocol name of 1-255 bytes");
  }
  std::shared_ptr<TlsContext> context(new TlsContext());
  context->alpn_ = alpn;

  std::string text, problem;
  if (!read_pem(files.cert_file, text, problem))
    return fail(files.cert_where, "cert_file", problem);
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  std::unique_ptr<X509, X509Free> cert(
      bio ? PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) {
    ERR_clear_error();  // "no start line" says less than the message
    return fail(files.cert_where, "cert_file",
                "'" + files.cert_file + "' holds no PEM certificate");
  }
  context->ctx_ = SSL_CTX_new(TLS_server_method());
  SSL_CTX* ctx = context->ctx_;
  if (!ctx || SSL_CTX_use_certificate(ctx, cert.get()) != 1)
    return fail(files.cert_where, "cert_file", "cannot use the certificate");
  // The rest of the file is the chain, up to (not necessarily including) the root.
  for (;;) {
    X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (!extra) break;
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      return fail(files.cert_where, "cert_file", "cannot add a chain certificate");
    }
  }
  ERR_clear_error();  // the end of the chain reads as "no start line"

  if (!read_pem(files.key_file, text, problem)) return fail(files.key_where, "key_file", problem);
  bio.reset(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  bool asked = false;
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, &asked) : nullptr);
  if (!key) {
    ERR_clear_error();
    if (asked) {
      return fail(files.key_where, "key_file",
                  "'" + files.key_file +
                      "' is protected by a passphrase, which the gateway cannot be given: "
                      "store it unencrypted (openssl pkey -in KEY -out KEY.plain) and restrict "
                      "who may read it");
    }
    return fail(files.key_where, "key_file", "'" + files.key_file + "' holds no PEM private key");
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return fail(
        files.key_where, "key_file",
        "'" + files.key_file + "' does not match the certificate in '" + files.cert_file + "'");
  }

  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, kCiphers12) != 1)
    return fail(files.cert_where, "cert_file", "no TLS 1.2 cipher suite suits the certificate");
  // Stateless tickets resume sessions; a server-side cache would be one more table to bound.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // An idle connection (most subscribers) gives its ~34 KiB of record buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn_cb, context.get());
  context->not_after_ = not_after_of(cert.get());
  ERR_clear_error();
  return context;
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

std::string_view TlsContext::select_alpn(std::string_view offered) const {
  for (const std::string& ours : alpn_) {
    std::string_view rest = offered;
    while (!rest.empty()) {
      size_t length = static_cast<unsigned char>(rest[0]);
      if (length + 1 > rest.size()) return {};  // a malformed list: choose nothing
      if (rest.substr(1, length) == ours) return ours;
      rest.remove_prefix(length + 1);
    }
  }
  return {};
}

}  // namespace ssegw::net
