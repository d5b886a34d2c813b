// HTTPS upstreams (docs/protocol.md): a route to a TLS server made by the test, with a CA the test
// creates. The server is OpenSSL on a blocking socket in a thread: it records the SNI name the
// gateway sent and answers one SSE stream per connection.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/pki.hpp"

using namespace itest;

namespace {

const std::string kBody =
    "data: {\"choices\":[{\"delta\":{\"content\":\"secure \"}}]}\n\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}\n\n"
    "data: [DONE]\n\n";

class TlsServer {
 public:
  explicit TlsServer(const Pki& pki) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    REQUIRE(SSL_CTX_use_certificate_chain_file(ctx_, pki.cert.c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, pki.key.c_str(), SSL_FILETYPE_PEM) == 1);
    // Dual-stack, so that "localhost" works whichever address the gateway tries first.
    fd_ = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int zero = 0, one = 1;
    setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_any;
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin6_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TlsServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  uint16_t port() const { return port_; }
  int handshakes() const { return handshakes_; }
  std::string sni() {
    std::lock_guard lock(mu_);
    return sni_;
  }
  std::string request() {
    std::lock_guard lock(mu_);
    return request_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      timeval tv{5, 0};
      setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, client);
      if (SSL_accept(ssl) == 1) {
        ++handshakes_;
        const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        std::string got;
        char buf[4096];
        while (got.find("\r\n\r\n") == std::string::npos) {
          int n = SSL_read(ssl, buf, sizeof(buf));
          if (n <= 0) break;
          got.append(buf, static_cast<size_t>(n));
        }
        {
          std::lock_guard lock(mu_);
          sni_ = name ? name : "";
          request_ = got;
        }
        std::string answer =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: " +
            std::to_string(kBody.size()) + "\r\nConnection: close\r\n\r\n" + kBody;
        SSL_write(ssl, answer.data(), static_cast<int>(answer.size()));
        SSL_shutdown(ssl);
      }
      SSL_free(ssl);
      ::close(client);
    }
  }

  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> handshakes_{0};
  std::mutex mu_;
  std::string sni_, request_;
};

std::string gateway_yaml(const std::string& url, const std::string& tls) {
  return "upstreams:\n  secure: { url: \"" + url + "\", connect_timeout: 3s" +
         (tls.empty() ? "" : ", tls: " + tls) +
         " }\nroutes:\n  - { path: /v1/chat/completions, upstream: secure }\n";
}

Response chat(uint16_t port) {
  return http(port, post_request("/v1/chat/completions", "{\"stream\":true}"));
}

}  // namespace

TEST_CASE("tls: a route streams from an HTTPS upstream verified against tls.ca_file") {
  Pki pki = make_pki("DNS:localhost,IP:127.0.0.1");
  TlsServer server(pki);
  Gateway gw(gateway_yaml("https://localhost:" + std::to_string(server.port()),
                          "{ ca_file: \"" + pki.ca + "\" }"));
  Response r = chat(gw.port());
  CHECK(r.status == 200);
  CHECK(r.body == kBody);
  CHECK(server.sni() == "localhost");  // SNI carries the upstream's host name
  CHECK(server.request().find("Host: localhost:" + std::to_string(server.port()) + "\r\n") !=
        std::string::npos);
  CHECK(server.request().starts_with("POST /v1/chat/completions HTTP/1.1\r\n"));
}

TEST_CASE("tls: an IP address upstream is verified against the certificate's IP SAN") {
  Pki pki = make_pki("IP:127.0.0.1");
  TlsServer server(pki);
  Gateway gw(gateway_yaml("https://127.0.0.1:" + std::to_string(server.port()),
                          "{ ca_file: \"" + pki.ca + "\" }"));
  Response r = chat(gw.port());
  CHECK(r.status == 200);
  CHECK(r.body == kBody);
  CHECK(server.sni() == "");  // no SNI for an IP literal (RFC 6066)
}

TEST_CASE("tls: an untrusted certificate is refused with 502") {
  Pki pki = make_pki("IP:127.0.0.1");
  TlsServer server(pki);
  // No ca_file: the system store does not know the test's CA.
  Gateway gw(gateway_yaml("https://127.0.0.1:" + std::to_string(server.port()), ""));
  Response r = chat(gw.port());
  CHECK(r.status == 502);
  CHECK(r.body.find("\"code\":\"upstream_unavailable\"") != std::string::npos);
  // The client learns the kind of failure; the log has the reason.
  CHECK(r.body.find("(tls)") != std::string::npos);
  CHECK(wait_log_line(gw, {"\"failure\":\"tls\"", "certificate verification failed"}) != "");
  CHECK(read_metric(gw.port(), "ssegw_upstream_requests_total{code=\"tls\",upstream=\"secure\"}") ==
        1);
}

TEST_CASE("tls: a certificate for another name is refused with 502") {
  Pki pki = make_pki("DNS:other.example");
  TlsServer server(pki);
  Gateway gw(gateway_yaml("https://127.0.0.1:" + std::to_string(server.port()),
                          "{ ca_file: \"" + pki.ca + "\" }"));
  Response r = chat(gw.port());
  CHECK(r.status == 502);
  CHECK(r.body.find("(tls)") != std::string::npos);
  CHECK(wait_log_line(gw, {"\"failure\":\"tls\"", "certificate verification failed"}) != "");
}

TEST_CASE("tls: insecure_skip_verify accepts an untrusted certificate") {
  Pki pki = make_pki("DNS:other.example");
  TlsServer server(pki);
  Gateway gw(gateway_yaml("https://127.0.0.1:" + std::to_string(server.port()),
                          "{ insecure_skip_verify: true }"));
  Response r = chat(gw.port());
  CHECK(r.status == 200);
  CHECK(r.body == kBody);
}
