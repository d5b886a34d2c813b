// The listener's TLS configuration (docs/security.md#tls): one OpenSSL server context made from
// a certificate chain and its key, and the slot the workers take it from.
//
// Rules:
// - A context is immutable once loaded: reload makes a new one, and the connections that started
//   with the old one keep it (each TlsSession holds a reference) until they close.
// - load() runs at start-up and on SIGHUP, on the main thread: it reads files and may take a few
//   milliseconds, which must not stall a worker's loop.
// - TlsContextSlot is the one thing workers and the main thread share: a mutex and a pointer,
//   taken once per accepted connection, never per read or write.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

struct ssl_ctx_st;  // SSL_CTX: OpenSSL stays out of the headers of the layers above

namespace ssegw::net {

// OpenSSL's error queue of this thread as one line ("error:...; error:..."), emptied: for the
// message of a failed call. The upstream layer's client contexts use it too.
std::string openssl_errors();

struct TlsFiles {
  std::string cert_file;   // PEM: the certificate, then its chain
  std::string cert_where;  // where cert_file was configured ("gateway.yaml:12:14"), for errors
  std::string key_file;    // PEM: the unencrypted private key
  std::string key_where;
};

class TlsContext {
 public:
  // Loads and checks the pair: readable, PEM, the key unencrypted and matching the certificate.
  // `alpn` lists the protocols to offer, in the server's order of preference ("h2", "http/1.1").
  // On failure returns null and sets error to "WHERE: tls.key_file: what went wrong".
  static std::shared_ptr<TlsContext> load(const TlsFiles& files,
                                          const std::vector<std::string>& alpn, std::string& error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  ssl_ctx_st* get() const { return ctx_; }
  // The certificate's notAfter, in seconds since the epoch.
  int64_t not_after() const { return not_after_; }

  // The ALPN choice: the first of our protocols that the client offers, or none (then the
  // connection goes on without ALPN, which means HTTP/1.1). `offered` is the wire format of the
  // ClientHello's list (length-prefixed names). Public for the unit tests.
  std::string_view select_alpn(std::string_view offered) const;

 private:
  TlsContext() = default;

  ssl_ctx_st* ctx_ = nullptr;
  std::vector<std::string> alpn_;
  int64_t not_after_ = 0;
};

// The context new connections use; empty when the listener is plain TCP.
class TlsContextSlot {
 public:
  std::shared_ptr<const TlsContext> get() const {
    std::lock_guard lock(mutex_);
    return context_;
  }
  void set(std::shared_ptr<const TlsContext> context) {
    std::lock_guard lock(mutex_);
    context_.swap(context);
    // The old one, if this held its last reference, is freed with the parameter: after unlock.
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const TlsContext> context_;
};

}  // namespace ssegw::net
