// TLS over memory BIOs, so that OpenSSL never touches a socket and runs on the gateway's own loop.
//
// Rules:
// - Ciphertext from the network goes in through read_ciphertext(); plaintext comes out of it.
// - Plaintext to send goes in through write_plaintext(); what to put on the wire is then taken
//   with take_ciphertext(). Plaintext written before the handshake ends waits inside.
// - Errors are values: a failed call leaves a message in error() and the session unusable.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

namespace ssegw::upstream {

class TlsContext {
 public:
  // A client context: verifies peers against ca_file, or the system store when it is empty.
  static std::shared_ptr<TlsContext> client(const std::string& ca_file, bool verify,
                                            std::string& error);
  // A server context (for test servers): PEM certificate chain and key.
  static std::shared_ptr<TlsContext> server(const std::string& cert_file,
                                            const std::string& key_file, std::string& error);
  ~TlsContext();
  SSL_CTX* get() const { return ctx_; }
  bool verify() const { return verify_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  bool verify_ = true;
};

class TlsSession {
 public:
  // Client: host is used for SNI and certificate name checks. Server: host is ignored.
  TlsSession(std::shared_ptr<TlsContext> context, const std::string& host, bool server);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Starts the client handshake (the ClientHello is then in take_ciphertext()).
  bool start();
  // Feeds bytes from the network; appends decrypted bytes to plaintext. False on error. Sets
  // closed() when the peer sent close_notify.
  bool read_ciphertext(const char* data, size_t length, std::string& plaintext);
  bool write_plaintext(std::string_view data);
  // Bytes to send to the peer (may be empty).
  std::string take_ciphertext();

  bool handshake_done() const { return handshake_done_; }
  bool closed() const { return closed_; }
  const std::string& error() const { return error_; }

 private:
  bool advance();
  bool fail(const char* what);

  std::shared_ptr<TlsContext> context_;
  SSL* ssl_ = nullptr;
  BIO* network_in_ = nullptr;   // owned by ssl_
  BIO* network_out_ = nullptr;  // owned by ssl_
  std::string pending_plaintext_;
  std::string error_;
  bool handshake_done_ = false;
  bool closed_ = false;
};

}  // namespace ssegw::upstream
