// A TLS client for the listener tests: OpenSSL on a blocking socket, verifying the gateway
// against the test CA, with the ALPN list and the highest version the test chooses. It tells the
// negotiated protocol and the certificate the server showed (a SHA-256 fingerprint), and reads
// with a deadline.
#pragma once

#include <openssl/ssl.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/harness.hpp"

namespace itest {

class TlsClient {
 public:
  struct Options {
    std::string ca;                                // PEM file to verify the server with
    std::vector<std::string> alpn = {"http/1.1"};  // {}: offer no ALPN
    int max_version = 0;                           // e.g. TLS1_1_VERSION; 0: OpenSSL's highest
    int rcvbuf = 0;                                // SO_RCVBUF; 0: the system's
  };
  // Connects and completes the handshake; ok() says whether it did.
  TlsClient(uint16_t port, const Options& options, Ms timeout = kTimeout);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  std::string alpn() const;
  std::string version() const { return SSL_get_version(ssl_); }
  // SHA-256 of the certificate the server sent, in hex.
  std::string fingerprint() const;

  void send(std::string_view data);
  // Reads until done(buffer()) holds; false on timeout or when the connection ends first.
  bool read_until(const std::function<bool(const std::string&)>& done, Ms timeout = kTimeout);
  // Reads until the server closes (true) or timeout (false).
  bool wait_closed(Ms timeout = kTimeout);
  // Reads one response with a Content-Length body (the tests' GETs and POSTs) and removes it
  // from the buffer. Throws on timeout.
  Response read_response(Ms timeout = kTimeout);
  Response request(std::string_view raw, Ms timeout = kTimeout) {
    send(raw);
    return read_response(timeout);
  }
  std::string& buffer() { return buf_; }
  bool closed() const { return closed_; }
  // The server ended the stream with close_notify (not a bare FIN).
  bool got_close_notify() const { return (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0; }

 private:
  // One read into buf_: false on timeout; sets closed_ at the end of the stream.
  bool read_some(Ms timeout);

  Fd fd_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
  bool closed_ = false;
  std::string error_;
  std::string buf_;
};

// SHA-256 of the first certificate of a PEM file, in hex: to compare with fingerprint().
std::string file_fingerprint(const std::string& pem_path);

// One HTTPS request on a new connection; throws when the handshake fails.
Response https(uint16_t port, const std::string& ca, std::string_view raw);
// A series of GET /metrics over HTTPS (metric_value on the body).
std::optional<double> tls_metric(uint16_t port, const std::string& ca, const std::string& series);
// Polls tls_metric until it equals value. Returns the last value seen.
std::optional<double> wait_tls_metric(uint16_t port, const std::string& ca,
                                      const std::string& series, double value,
                                      Ms timeout = kTimeout);

}  // namespace itest
