// net::TlsContext: loading the listener's certificate and key (each failure names the file and
// the configuration line that named it), and the ALPN choice.
#include "gateway/net/tls_context.hpp"

#include <doctest/doctest.h>
#include <openssl/ssl.h>

#include <string>

#include "tests/support/test_pki.hpp"

using namespace ssegw;

namespace {

const std::string kCertWhere = "gw.yaml:3:14";
const std::string kKeyWhere = "gw.yaml:4:13";

net::TlsFiles files(const std::string& cert, const std::string& key) {
  return {cert, kCertWhere, key, kKeyWhere};
}

std::string load_error(const std::string& cert, const std::string& key) {
  std::string error;
  auto context = net::TlsContext::load(files(cert, key), {"http/1.1"}, error);
  CHECK(context == nullptr);
  return error;
}

// The wire format of an ALPN list.
std::string alpn_list(std::initializer_list<std::string> names) {
  std::string out;
  for (const std::string& name : names) {
    out += static_cast<char>(name.size());
    out += name;
  }
  return out;
}

}  // namespace

TEST_CASE(
    "tls context: a matching pair loads, with TLS 1.2 at least and the certificate's expiry") {
  test::TestPki pki = test::make_test_pki();
  std::string error;
  auto context = net::TlsContext::load(files(pki.cert, pki.key), {"http/1.1"}, error);
  REQUIRE_MESSAGE(context, error);
  CHECK(error.empty());
  CHECK(SSL_CTX_get_min_proto_version(context->get()) == TLS1_2_VERSION);
  CHECK((SSL_CTX_get_options(context->get()) & SSL_OP_NO_RENEGOTIATION) != 0);
  // make_test_pki: valid for two days from now.
  int64_t in_two_days = static_cast<int64_t>(time(nullptr)) + 2 * 24 * 3600;
  CHECK(context->not_after() > in_two_days - 60);
  CHECK(context->not_after() <= in_two_days + 1);
}

TEST_CASE("tls context: a key of another certificate names the key's line and both files") {
  test::TestPki pki = test::make_test_pki();
  std::string error = load_error(pki.cert, pki.other_key);
  CHECK(error.rfind(kKeyWhere + ": tls.key_file: '" + pki.other_key +
                        "' does not match the certificate in '" + pki.cert + "'",
                    0) == 0);
}

TEST_CASE("tls context: missing files name their own line") {
  test::TestPki pki = test::make_test_pki();
  CHECK(load_error(pki.dir + "/nope.pem", pki.key) ==
        kCertWhere + ": tls.cert_file: cannot open '" + pki.dir +
            "/nope.pem': No such file or directory");
  CHECK(load_error(pki.cert, pki.dir + "/nope.key") == kKeyWhere + ": tls.key_file: cannot open '" +
                                                           pki.dir +
                                                           "/nope.key': No such file or directory");
}

TEST_CASE("tls context: garbage instead of PEM is refused") {
  test::TestPki pki = test::make_test_pki();
  std::string garbage = pki.dir + "/garbage.pem";
  test::write_text(garbage, "this is not PEM\n\x01\x02\x03");
  CHECK(load_error(garbage, pki.key) ==
        kCertWhere + ": tls.cert_file: '" + garbage + "' holds no PEM certificate");
  CHECK(load_error(pki.cert, garbage) ==
        kKeyWhere + ": tls.key_file: '" + garbage + "' holds no PEM private key");
  // A certificate where the key should be, and the other way round.
  CHECK(load_error(pki.cert, pki.cert) ==
        kKeyWhere + ": tls.key_file: '" + pki.cert + "' holds no PEM private key");
  CHECK(load_error(pki.key, pki.key) ==
        kCertWhere + ": tls.cert_file: '" + pki.key + "' holds no PEM certificate");
}

TEST_CASE("tls context: a key with a passphrase is refused at once, without a prompt") {
  test::TestPki pki = test::make_test_pki();
  std::string error = load_error(pki.cert, pki.locked_key);
  CHECK(error.rfind(
            kKeyWhere + ": tls.key_file: '" + pki.locked_key + "' is protected by a passphrase",
            0) == 0);
}

TEST_CASE("tls context: ALPN picks our first protocol that the client offers") {
  test::TestPki pki = test::make_test_pki();
  std::string error;
  auto both = net::TlsContext::load(files(pki.cert, pki.key), {"h2", "http/1.1"}, error);
  REQUIRE_MESSAGE(both, error);
  // Our order wins over the client's.
  CHECK(both->select_alpn(alpn_list({"http/1.1", "h2"})) == "h2");
  CHECK(both->select_alpn(alpn_list({"http/1.1"})) == "http/1.1");
  CHECK(both->select_alpn(alpn_list({"spdy/3", "http/1.0"})) == "");
  CHECK(both->select_alpn("") == "");
  // A list whose length byte runs past its end chooses nothing.
  CHECK(both->select_alpn(std::string("\x09http/1.1", 9)) == "");
  auto one = net::TlsContext::load(files(pki.cert, pki.key), {"http/1.1"}, error);
  REQUIRE_MESSAGE(one, error);
  CHECK(one->select_alpn(alpn_list({"h2", "http/1.1"})) == "http/1.1");
  CHECK(one->select_alpn(alpn_list({"h2"})) == "");
}

TEST_CASE("tls context slot: a reload swaps the context, holders keep theirs") {
  test::TestPki first = test::make_test_pki(1);
  test::TestPki second = test::make_test_pki(2);
  std::string error;
  net::TlsContextSlot slot;
  CHECK(slot.get() == nullptr);
  slot.set(net::TlsContext::load(files(first.cert, first.key), {"http/1.1"}, error));
  std::shared_ptr<const net::TlsContext> held = slot.get();
  REQUIRE(held);
  slot.set(net::TlsContext::load(files(second.cert, second.key), {"http/1.1"}, error));
  CHECK(slot.get() != held);
  CHECK(held.use_count() == 1);  // only ours: the slot let it go
  X509* cert = SSL_CTX_get0_certificate(held->get());
  CHECK(ASN1_INTEGER_get(X509_get0_serialNumber(cert)) == 1);
}
