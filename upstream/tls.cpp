#include "upstream/tls.hpp"

#include <arpa/inet.h>
#include <openssl/x509v3.h>

#include "gateway/net/tls_context.hpp"

namespace ssegw::upstream {
namespace {

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::shared_ptr<TlsContext> TlsContext::client(const std::string& ca_file, bool verify,
                                               std::string& error) {
  auto context = std::shared_ptr<TlsContext>(new TlsContext());
  context->ctx_ = SSL_CTX_new(TLS_client_method());
  context->verify_ = verify;
  if (!context->ctx_) {
    error = "SSL_CTX_new: " + net::openssl_errors();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(context->ctx_, TLS1_2_VERSION);
  if (verify) {
    SSL_CTX_set_verify(context->ctx_, SSL_VERIFY_PEER, nullptr);
    int ok = ca_file.empty()
                 ? SSL_CTX_set_default_verify_paths(context->ctx_)
                 : SSL_CTX_load_verify_locations(context->ctx_, ca_file.c_str(), nullptr);
    if (ok != 1) {
      error = "cannot load CA certificates" + (ca_file.empty() ? "" : " from " + ca_file) + ": " +
              net::openssl_errors();
      return nullptr;
    }
  } else {
    SSL_CTX_set_verify(context->ctx_, SSL_VERIFY_NONE, nullptr);
  }
  return context;
}

std::shared_ptr<TlsContext> TlsContext::server(const std::string& cert_file,
                                               const std::string& key_file, std::string& error) {
  auto context = std::shared_ptr<TlsContext>(new TlsContext());
  context->ctx_ = SSL_CTX_new(TLS_server_method());
  if (!context->ctx_ || SSL_CTX_use_certificate_chain_file(context->ctx_, cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(context->ctx_, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot load certificate or key: " + net::openssl_errors();
    return nullptr;
  }
  return context;
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

TlsSession::TlsSession(std::shared_ptr<TlsContext> context, const std::string& host, bool server)
    : context_(std::move(context)) {
  ssl_ = SSL_new(context_->get());
  network_in_ = BIO_new(BIO_s_mem());
  network_out_ = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl_, network_in_, network_out_);
  if (server) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  if (!is_ip_literal(host)) SSL_set_tlsext_host_name(ssl_, host.c_str());
  if (context_->verify()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (is_ip_literal(host))
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    else
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  }
}

TlsSession::~TlsSession() {
  SSL_free(ssl_);
}

bool TlsSession::fail(const char* what) {
  std::string detail = net::openssl_errors();
  long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK)
    detail =
        std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
  error_ = std::string(what) + (detail.empty() ? "" : ": " + detail);
  return false;
}

bool TlsSession::start() {
  return advance();
}

bool TlsSession::advance() {
  if (!handshake_done_) {
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
      return fail("TLS handshake failed");
    }
    handshake_done_ = true;
  }
  if (!pending_plaintext_.empty()) {
    std::string data = std::move(pending_plaintext_);
    pending_plaintext_.clear();
    return write_plaintext(data);
  }
  return true;
}

bool TlsSession::read_ciphertext(const char* data, size_t length, std::string& plaintext) {
  if (length && BIO_write(network_in_, data, static_cast<int>(length)) != static_cast<int>(length))
    return fail("BIO_write");
  if (!advance()) return false;
  if (!handshake_done_) return true;
  char buf[16384];
  for (;;) {
    int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n > 0) {
      plaintext.append(buf, static_cast<size_t>(n));
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
    if (e == SSL_ERROR_ZERO_RETURN) {
      closed_ = true;
      return true;
    }
    return fail("TLS read failed");
  }
}

bool TlsSession::write_plaintext(std::string_view data) {
  if (!handshake_done_) {
    pending_plaintext_.append(data);
    return true;
  }
  while (!data.empty()) {
    int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
    if (n <= 0) return fail("TLS write failed");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string TlsSession::take_ciphertext() {
  std::string out;
  char* data = nullptr;
  long n = BIO_get_mem_data(network_out_, &data);
  if (n > 0) {
    out.assign(data, static_cast<size_t>(n));
    (void)BIO_reset(network_out_);
  }
  return out;
}

}  // namespace ssegw::upstream
