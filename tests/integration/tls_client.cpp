#include "tests/integration/tls_client.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <stdexcept>

namespace itest {
namespace {

std::string hex_digest(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(cert, EVP_sha256(), md, &n);
  std::string out;
  char byte[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", md[i]);
    out += byte;
  }
  return out;
}

std::string errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += buf;
    out += "; ";
  }
  return out;
}

}  // namespace

TlsClient::TlsClient(uint16_t port, const Options& options, Ms timeout)
    : fd_(connect_to(port, timeout, options.rcvbuf)) {
  // OpenSSL writes with write(), not send(MSG_NOSIGNAL): a write after the gateway reset the
  // connection (a refused or failed handshake) would kill the whole test process with SIGPIPE,
  // and leave its gateway running. Children get their signals back at exec (spawn_process).
  static const bool sigpipe_ignored = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)sigpipe_ignored;
  ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_load_verify_locations(ctx_, options.ca.c_str(), nullptr);
  if (options.max_version) {
    SSL_CTX_set_security_level(ctx_, 0);  // let OpenSSL offer TLS 1.1 at all
    SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx_, options.max_version);
  }
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_.get());
  SSL_set_tlsext_host_name(ssl_, "localhost");
  X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl_), "localhost", 0);
  std::string wire;
  for (const std::string& name : options.alpn) {
    wire += static_cast<char>(name.size());
    wire += name;
  }
  if (!wire.empty())
    SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()),
                        static_cast<unsigned>(wire.size()));
  // Blocking, with a receive timeout that bounds a handshake that never ends.
  ::fcntl(fd_.get(), F_SETFL, ::fcntl(fd_.get(), F_GETFL) & ~O_NONBLOCK);
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int r = SSL_connect(ssl_);
  ok_ = r == 1;
  if (!ok_) error_ = "SSL_connect: " + std::to_string(SSL_get_error(ssl_, r)) + " " + errors();
}

TlsClient::~TlsClient() {
  SSL_free(ssl_);
  SSL_CTX_free(ctx_);
}

std::string TlsClient::alpn() const {
  const unsigned char* name = nullptr;
  unsigned length = 0;
  SSL_get0_alpn_selected(ssl_, &name, &length);
  return name ? std::string(reinterpret_cast<const char*>(name), length) : "";
}

std::string TlsClient::fingerprint() const {
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (!cert) return "";
  std::string out = hex_digest(cert);
  X509_free(cert);
  return out;
}

void TlsClient::send(std::string_view data) {
  REQUIRE(ok_);
  REQUIRE(SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
          static_cast<int>(data.size()));
}

bool TlsClient::read_some(Ms timeout) {
  if (SSL_pending(ssl_) == 0) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  }
  char buf[16384];
  int n = SSL_read(ssl_, buf, sizeof buf);
  if (n > 0) {
    buf_.append(buf, static_cast<size_t>(n));
    return true;
  }
  int e = SSL_get_error(ssl_, n);
  if (e == SSL_ERROR_WANT_READ) return true;  // a record that carried no data (a ticket)
  closed_ = true;                             // close_notify, EOF or reset
  ERR_clear_error();
  return true;
}

bool TlsClient::read_until(const std::function<bool(const std::string&)>& done, Ms timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done(buf_)) {
    if (closed_) return false;
    auto left = std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !read_some(left)) return false;
  }
  return true;
}

bool TlsClient::wait_closed(Ms timeout) {
  read_until([this](const std::string&) { return closed_; }, timeout);
  return closed_;
}

Response TlsClient::read_response(Ms timeout) {
  size_t head_end = std::string::npos, total = 0;
  bool complete = read_until(
      [&](const std::string& b) {
        head_end = b.find("\r\n\r\n");
        if (head_end == std::string::npos) return false;
        Response head = parse_head(std::string_view(b).substr(0, head_end + 4));
        std::string length = head.header("content-length");
        total = head_end + 4 + (length.empty() ? 0 : std::stoul(length));
        return b.size() >= total;
      },
      timeout);
  if (!complete) throw std::runtime_error("no complete response over TLS: " + printable(buf_));
  Response r = parse_head(std::string_view(buf_).substr(0, head_end + 4));
  r.body = buf_.substr(head_end + 4, total - head_end - 4);
  r.raw = buf_.substr(0, total);
  buf_.erase(0, total);
  return r;
}

std::string file_fingerprint(const std::string& pem_path) {
  FILE* f = std::fopen(pem_path.c_str(), "r");
  REQUIRE(f != nullptr);
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  REQUIRE(cert != nullptr);
  std::string out = hex_digest(cert);
  X509_free(cert);
  return out;
}

Response https(uint16_t port, const std::string& ca, std::string_view raw) {
  TlsClient client(port, {.ca = ca});
  if (!client.ok()) throw std::runtime_error("TLS handshake failed: " + client.error());
  return client.request(raw);
}

std::optional<double> tls_metric(uint16_t port, const std::string& ca, const std::string& series) {
  return metric_value(https(port, ca, get_request("/metrics")).body, series);
}

std::optional<double> wait_tls_metric(uint16_t port, const std::string& ca,
                                      const std::string& series, double value, Ms timeout) {
  std::optional<double> last;
  wait_until(
      [&] {
        last = tls_metric(port, ca, series);
        return last && *last == value;
      },
      timeout, 20ms);
  return last;
}

}  // namespace itest
