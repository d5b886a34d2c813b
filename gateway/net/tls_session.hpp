// One accepted connection's TLS, over memory BIOs: OpenSSL never touches the socket, so the
// TcpStream keeps its one read buffer, its frame queue and its single write in flight.
//
// Rules:
// - Ciphertext in: feed(), then read() until it returns 0. The handshake runs inside read().
// - Plaintext out: write() (after the handshake only), then output() for the ciphertext to send
//   and consumed() for what the socket took. output() moves OpenSSL's bytes into a buffer of the
//   session that stays where it is until consumed: a uv_write may point into it while a read
//   makes OpenSSL produce more (a TLS 1.3 ticket, an alert), which waits in OpenSSL's BIO.
// - Errors are values: a false or -1 means the connection is beyond repair; close it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/net/tls_context.hpp"

struct ssl_st;
struct bio_st;

namespace ssegw::net {

class TlsSession {
 public:
  explicit TlsSession(std::shared_ptr<const TlsContext> context);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext from the network (copied). False only if OpenSSL could not take it.
  bool feed(const char* data, size_t length);
  // Plaintext into buf: the number of bytes, 0 when OpenSSL needs more ciphertext (or the peer
  // sent close_notify: see peer_closed()), -1 on a fatal error (not TLS, a bad record, a failed
  // handshake).
  long read(char* buf, size_t max);
  // Encrypts all of plaintext into the output. False on error.
  bool write(std::string_view plaintext);
  // Queues close_notify.
  void close_notify();

  // The ciphertext not yet on the wire, from the first unsent byte.
  std::string_view output();
  void consumed(size_t bytes);
  // Ciphertext waiting, in OpenSSL and in the output buffer (no copy).
  size_t output_size() const;

  bool handshake_done() const;
  bool peer_closed() const { return peer_closed_; }
  // The protocol ALPN chose, "" if none.
  std::string_view alpn() const;

 private:
  // Held for the SSL's lifetime: its SSL_CTX, and the ALPN callback's argument (the context).
  std::shared_ptr<const TlsContext> context_;
  ssl_st* ssl_ = nullptr;
  bio_st* network_in_ = nullptr;   // owned by ssl_
  bio_st* network_out_ = nullptr;  // owned by ssl_
  std::string wire_;               // taken from network_out_, sent from wire_offset_ on
  size_t wire_offset_ = 0;
  bool peer_closed_ = false;
};

}  // namespace ssegw::net
