#include "gateway/net/tls_session.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <climits>

namespace ssegw::net {
namespace {

// The output buffer keeps its capacity between writes up to this; past it, an emptied buffer is
// freed, so that a connection idle after a burst (most subscribers) holds nothing.
constexpr size_t kKeptWireCapacity = 16 * 1024;

}  // namespace

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context) : context_(std::move(context)) {
  ssl_ = SSL_new(context_->get());
  network_in_ = BIO_new(BIO_s_mem());
  network_out_ = BIO_new(BIO_s_mem());
  // An empty memory BIO answers "retry" rather than EOF: the handshake then waits for bytes.
  BIO_set_mem_eof_return(network_in_, -1);
  SSL_set_bio(ssl_, network_in_, network_out_);
  SSL_set_accept_state(ssl_);
}

TlsSession::~TlsSession() {
  SSL_free(ssl_);
}

bool TlsSession::feed(const char* data, size_t length) {
  if (length > INT_MAX) return false;
  return BIO_write(network_in_, data, static_cast<int>(length)) == static_cast<int>(length);
}

long TlsSession::read(char* buf, size_t max) {
  int n = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(max, INT_MAX)));
  if (n > 0) return n;
  int e = SSL_get_error(ssl_, n);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  if (e == SSL_ERROR_ZERO_RETURN) {
    peer_closed_ = true;
    return 0;
  }
  // The thread's error queue would otherwise be blamed on the next connection of this worker.
  ERR_clear_error();
  return -1;
}

bool TlsSession::write(std::string_view plaintext) {
  if (plaintext.empty()) return true;
  if (plaintext.size() > INT_MAX) return false;
  int n = SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size()));
  if (n == static_cast<int>(plaintext.size())) return true;
  ERR_clear_error();
  return false;
}

void TlsSession::close_notify() {
  if (SSL_shutdown(ssl_) < 0) ERR_clear_error();
}

std::string_view TlsSession::output() {
  char* data = nullptr;
  long n = BIO_get_mem_data(network_out_, &data);
  if (n > 0) {
    if (wire_offset_ == wire_.size()) {
      wire_.clear();
      wire_offset_ = 0;
    }
    wire_.append(data, static_cast<size_t>(n));
    (void)BIO_reset(network_out_);
  }
  return std::string_view(wire_).substr(wire_offset_);
}

void TlsSession::consumed(size_t bytes) {
  wire_offset_ += bytes;
  if (wire_offset_ < wire_.size()) return;
  wire_offset_ = 0;
  if (wire_.capacity() > kKeptWireCapacity)
    std::string().swap(wire_);
  else
    wire_.clear();
}

size_t TlsSession::output_size() const {
  return wire_.size() - wire_offset_ + BIO_ctrl_pending(network_out_);
}

bool TlsSession::handshake_done() const {
  return SSL_is_init_finished(ssl_) == 1;
}

std::string_view TlsSession::alpn() const {
  const unsigned char* name = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_, &name, &length);
  return name ? std::string_view(reinterpret_cast<const char*>(name), length) : std::string_view();
}

}  // namespace ssegw::net
