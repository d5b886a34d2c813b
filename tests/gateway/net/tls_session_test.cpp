// net::TlsSession against an OpenSSL client, both over memory: the handshake, ALPN, bytes both
// ways, and what the session does with bytes that are not TLS. No sockets: the socket side is
// TcpStream's (tests/integration/tls_listener_test.cpp).
#include "gateway/net/tls_session.hpp"

#include <doctest/doctest.h>
#include <openssl/ssl.h>

#include <string>
#include <vector>

#include "tests/support/test_pki.hpp"

using namespace ssegw;

namespace {

std::shared_ptr<const net::TlsContext> server_context(const std::vector<std::string>& alpn) {
  static test::TestPki pki = test::make_test_pki();
  std::string error;
  auto context = net::TlsContext::load({pki.cert, "", pki.key, ""}, alpn, error);
  REQUIRE_MESSAGE(context, error);
  return context;
}

// An OpenSSL client over memory BIOs, wired to a TlsSession by pump().
class Client {
 public:
  explicit Client(const std::string& alpn_wire, int max_version = 0) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (max_version) {
      SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
      SSL_CTX_set_max_proto_version(ctx_, max_version);
      SSL_CTX_set_security_level(ctx_, 0);
    }
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
    if (!alpn_wire.empty())
      SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(alpn_wire.data()),
                          static_cast<unsigned>(alpn_wire.size()));
  }
  ~Client() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }

  // Client and session exchange bytes until neither has anything to say. False when the session
  // failed (read() returned -1). The session's plaintext goes to `received`.
  bool pump(net::TlsSession& session, std::string& received) {
    for (int round = 0; round < 20; ++round) {
      SSL_do_handshake(ssl_);
      char buf[16384];
      int n;
      while ((n = SSL_read(ssl_, buf, sizeof buf)) > 0) client_received.append(buf, n);
      bool moved = false;
      char* data = nullptr;
      long pending = BIO_get_mem_data(out_, &data);
      if (pending > 0) {
        REQUIRE(session.feed(data, static_cast<size_t>(pending)));
        (void)BIO_reset(out_);
        moved = true;
      }
      long got;
      while ((got = session.read(buf, sizeof buf)) > 0) received.append(buf, got);
      std::string_view out = session.output();
      if (!out.empty()) {
        BIO_write(in_, out.data(), static_cast<int>(out.size()));
        session.consumed(out.size());
        moved = true;
      }
      if (got < 0) return false;
      if (!moved) return true;
    }
    return true;
  }

  // Bytes of the session's output, as the socket would carry them.
  void deliver(std::string_view ciphertext) {
    BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size()));
  }
  void send(std::string_view text) {
    REQUIRE(SSL_write(ssl_, text.data(), static_cast<int>(text.size())) ==
            static_cast<int>(text.size()));
  }
  std::string_view alpn() const {
    const unsigned char* name = nullptr;
    unsigned length = 0;
    SSL_get0_alpn_selected(ssl_, &name, &length);
    return name ? std::string_view(reinterpret_cast<const char*>(name), length) : "";
  }
  SSL* ssl() { return ssl_; }

  std::string client_received;

 private:
  SSL_CTX* ctx_;
  SSL* ssl_;
  BIO* in_;
  BIO* out_;
};

const std::string kOffersBoth = std::string("\x02h2\x08http/1.1", 12);

}  // namespace

TEST_CASE("tls session: handshake, ALPN and exact bytes both ways") {
  net::TlsSession session(server_context({"http/1.1"}));
  Client client(kOffersBoth);
  std::string received;
  CHECK_FALSE(session.handshake_done());
  REQUIRE(client.pump(session, received));
  CHECK(session.handshake_done());
  CHECK(session.alpn() == "http/1.1");
  CHECK(client.alpn() == "http/1.1");

  client.send("GET / HTTP/1.1\r\n\r\n");
  REQUIRE(client.pump(session, received));
  CHECK(received == "GET / HTTP/1.1\r\n\r\n");

  std::string big(100 * 1024, 'x');  // several records
  REQUIRE(session.write("HTTP/1.1 200 OK\r\n\r\n"));
  REQUIRE(session.write(big));
  CHECK(session.output_size() > big.size());  // record overhead included
  REQUIRE(client.pump(session, received));
  CHECK(client.client_received == "HTTP/1.1 200 OK\r\n\r\n" + big);
  CHECK(session.output_size() == 0);
}

TEST_CASE("tls session: output stays put until consumed, whatever OpenSSL adds meanwhile") {
  net::TlsSession session(server_context({"http/1.1"}));
  Client client(kOffersBoth);
  std::string received;
  REQUIRE(client.pump(session, received));
  REQUIRE(session.write("first"));
  std::string_view out = session.output();
  std::string copy(out);
  client.deliver(out.substr(0, 3));
  session.consumed(3);  // a partial write: libuv writes the rest from the same memory
  std::string_view in_flight = out.substr(3);
  REQUIRE(session.write(std::string(50000, 'y')));  // goes to OpenSSL's BIO, not our buffer
  CHECK(session.output_size() > in_flight.size() + 50000);
  CHECK(in_flight == std::string_view(copy).substr(3));  // unmoved, unchanged
  client.deliver(in_flight);
  session.consumed(in_flight.size());
  REQUIRE(client.pump(session, received));
  CHECK(client.client_received == "first" + std::string(50000, 'y'));
}

TEST_CASE("tls session: our first protocol wins, and none in common goes on without ALPN") {
  SUBCASE("h2 first") {
    net::TlsSession session(server_context({"h2", "http/1.1"}));
    Client client(std::string("\x08http/1.1\x02h2", 12));
    std::string received;
    REQUIRE(client.pump(session, received));
    CHECK(session.alpn() == "h2");
  }
  SUBCASE("nothing in common: no alert, no ALPN") {
    net::TlsSession session(server_context({"http/1.1"}));
    Client client(std::string("\x06spdy/3", 7));
    std::string received;
    REQUIRE(client.pump(session, received));
    CHECK(session.handshake_done());
    CHECK(session.alpn() == "");
  }
  SUBCASE("the client offers none") {
    net::TlsSession session(server_context({"http/1.1"}));
    Client client("");
    std::string received;
    REQUIRE(client.pump(session, received));
    CHECK(session.handshake_done());
    CHECK(session.alpn() == "");
  }
}

TEST_CASE("tls session: bytes that are not TLS fail the session") {
  char buf[1024];
  SUBCASE("plain HTTP") {
    net::TlsSession session(server_context({"http/1.1"}));
    std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(session.feed(request.data(), request.size()));
    CHECK(session.read(buf, sizeof buf) == -1);
  }
  SUBCASE("garbage") {
    net::TlsSession session(server_context({"http/1.1"}));
    std::string garbage(300, '\x16');  // a handshake type byte, then nonsense versions
    REQUIRE(session.feed(garbage.data(), garbage.size()));
    CHECK(session.read(buf, sizeof buf) == -1);
  }
  SUBCASE("a partial record waits for more") {
    net::TlsSession session(server_context({"http/1.1"}));
    std::string head("\x16\x03\x01\x02\x00", 5);  // a 512-byte handshake record, not sent
    REQUIRE(session.feed(head.data(), head.size()));
    CHECK(session.read(buf, sizeof buf) == 0);
    CHECK_FALSE(session.handshake_done());
  }
}

TEST_CASE("tls session: TLS 1.1 is refused with an alert") {
  net::TlsSession session(server_context({"http/1.1"}));
  Client client("", TLS1_1_VERSION);
  std::string received;
  CHECK_FALSE(client.pump(session, received));
  CHECK_FALSE(session.handshake_done());
}

TEST_CASE("tls session: the client's close_notify reads as the end") {
  net::TlsSession session(server_context({"http/1.1"}));
  Client client(kOffersBoth);
  std::string received;
  REQUIRE(client.pump(session, received));
  SSL_shutdown(client.ssl());
  REQUIRE(client.pump(session, received));
  CHECK(session.peer_closed());
}
