// TLS on the listener (docs/security.md#tls): curl and an OpenSSL client subscribe and publish
// over HTTPS with exact bytes; ALPN and versions; what is not TLS is closed, a handshake that
// never ends too, within limits.header_timeout; SIGHUP swaps the certificate for new connections
// while open streams go on; and a wrong pair stops start-up with the key's file:line.
#include <fcntl.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/pki.hpp"
#include "tests/integration/tls_client.hpp"

using namespace itest;

namespace {

const std::string kSan = "DNS:localhost,IP:127.0.0.1";

std::string tls_yaml(const std::string& cert, const std::string& key) {
  return "tls:\n  cert_file: " + cert + "\n  key_file: " + key + "\n";
}

// The wire of an SSE subscription over HTTP/1.1 up to its first event (docs/protocol.md).
std::string stream_start() {
  return kHead11 + chunk("retry: 2000\n\n");
}

std::string publish_tls(uint16_t port, const std::string& ca, const std::string& ch,
                        const std::string& data) {
  Response r = https(port, ca, post_request("/v1/channels/" + ch + "/events", data));
  REQUIRE_MESSAGE(r.status == 200, printable(r.raw));
  std::string id = extract_id(r.body);
  REQUIRE(!id.empty());
  return id;
}

// A subscriber over TLS whose stream has started.
std::unique_ptr<TlsClient> subscribe_tls(uint16_t port, const std::string& ca,
                                         const std::string& ch) {
  auto client = std::make_unique<TlsClient>(port, TlsClient::Options{.ca = ca});
  REQUIRE_MESSAGE(client->ok(), client->error());
  client->send(get_request("/v1/channels/" + ch + "/events"));
  REQUIRE(
      client->read_until([](const std::string& b) { return b.size() >= stream_start().size(); }));
  CHECK(client->buffer() == stream_start());
  client->buffer().clear();
  return client;
}

// Reads exactly `want` from the stream's buffer and consumes it.
void expect_bytes(TlsClient& client, const std::string& want) {
  client.read_until([&](const std::string& b) { return b.size() >= want.size(); });
  CHECK(printable(client.buffer()) == printable(want));
  client.buffer().clear();
}

// Replaces a file the way a certificate manager should: a new file renamed over the old one.
void replace_file(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to + ".tmp", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(to + ".tmp", to);
}

// Reads a pipe until it holds at least n bytes, or timeout.
bool read_pipe(int fd, std::string& out, size_t n, Ms timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n) {
    auto left = std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got <= 0) return false;
    out.append(buf, static_cast<size_t>(got));
  }
  return true;
}

}  // namespace

TEST_CASE("tls listener: curl subscribes over https and receives a published event, exact bytes") {
  Pki pki = make_pki(kSan);
  Gateway g(tls_yaml(pki.cert, pki.key));
  std::string url = "https://127.0.0.1:" + std::to_string(g.port()) + "/v1/channels/news/events";

  int out[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  pid_t curl = spawn_process({"/usr/bin/curl", "-sN", "--cacert", pki.ca, url}, -1, out[1], out[1]);
  ::close(out[1]);
  std::string body;
  // curl prints the de-chunked body: the retry line first, once the subscription is live.
  CHECK(read_pipe(out[0], body, 13, kTimeout));
  CHECK(body == "retry: 2000\n\n");

  ProcessResult published = run_process(
      {"/usr/bin/curl", "-sS", "--cacert", pki.ca, "--data-binary", "hello over tls", url});
  REQUIRE_MESSAGE(published.status == 0, published.output);
  std::string id = extract_id(published.output);
  REQUIRE(!id.empty());
  std::string want = "retry: 2000\n\n" + sse_frame(id, "hello over tls");
  CHECK(read_pipe(out[0], body, want.size(), kTimeout));
  CHECK(body == want);

  ::kill(curl, SIGTERM);
  int status = 0;
  ::waitpid(curl, &status, 0);
  ::close(out[0]);
  CHECK(wait_tls_metric(g.port(), pki.ca, "ssegw_tls_handshakes_total{result=\"failed\"}", 0) == 0);
  CHECK(g.stop_and_wait() == 0);
}

TEST_CASE("tls listener: ALPN picks http/1.1, TLS 1.2 is accepted and TLS 1.1 refused") {
  Pki pki = make_pki(kSan);
  Gateway g(tls_yaml(pki.cert, pki.key));

  auto subscriber = subscribe_tls(g.port(), pki.ca, "alpn");
  SUBCASE("our order: h2 first, whatever the client's order") {
    TlsClient client(g.port(), {.ca = pki.ca, .alpn = {"http/1.1", "h2"}});
    REQUIRE_MESSAGE(client.ok(), client.error());
    CHECK(client.alpn() == "h2");
  }
  SUBCASE("http/1.1 offered: http/1.1") {
    TlsClient client(g.port(), {.ca = pki.ca, .alpn = {"http/1.1"}});
    REQUIRE_MESSAGE(client.ok(), client.error());
    CHECK(client.alpn() == "http/1.1");
    Response r = client.request(get_request("/healthz"));
    CHECK(r.status == 200);
    CHECK(r.body == "{\"status\":\"ok\"}\n");
  }
  SUBCASE("nothing in common: no ALPN, and HTTP/1.1 works") {
    TlsClient client(g.port(), {.ca = pki.ca, .alpn = {"spdy/3"}});
    REQUIRE_MESSAGE(client.ok(), client.error());
    CHECK(client.alpn() == "");
    CHECK(client.request(get_request("/healthz")).status == 200);
  }
  SUBCASE("TLS 1.2 publishes") {
    TlsClient client(g.port(), {.ca = pki.ca, .max_version = TLS1_2_VERSION});
    REQUIRE_MESSAGE(client.ok(), client.error());
    CHECK(client.version() == "TLSv1.2");
    Response r = client.request(post_request("/v1/channels/alpn/events", "over 1.2"));
    REQUIRE(r.status == 200);
    expect_bytes(*subscriber, chunk(sse_frame(extract_id(r.body), "over 1.2")));
  }
  SUBCASE("TLS 1.1 is refused") {
    TlsClient client(g.port(), {.ca = pki.ca, .max_version = TLS1_1_VERSION});
    CHECK_FALSE(client.ok());
    CHECK(wait_tls_metric(g.port(), pki.ca, "ssegw_tls_handshakes_total{result=\"failed\"}", 1) ==
          1);
  }
}

TEST_CASE("tls listener: plain HTTP, garbage and stalled handshakes are closed") {
  Pki pki = make_pki(kSan);
  Gateway g(tls_yaml(pki.cert, pki.key) + "limits:\n  header_timeout: 1s\n");

  {
    Conn plain(g.port());
    plain.send(get_request("/healthz"));
    CHECK(plain.wait_closed(kTimeout));
    CHECK(plain.buffer().rfind("HTTP/", 0) == std::string::npos);  // at most a TLS alert
  }
  {
    Conn garbage(g.port());
    std::string junk;
    for (int i = 0; i < 200; ++i) junk += static_cast<char>((i * 73 + 11) & 0xff);
    garbage.send(junk);
    CHECK(garbage.wait_closed(kTimeout));
  }
  // A record header announcing a ClientHello that never comes, and a client that sends nothing:
  // both closed by the header timeout (1s, checked every 250ms), not before.
  auto start = std::chrono::steady_clock::now();
  Conn partial(g.port());
  partial.send(std::string("\x16\x03\x01\x02\x00", 5));
  Conn silent(g.port());
  CHECK(partial.wait_closed(3s));
  CHECK(silent.wait_closed(3s));
  auto waited = std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - start);
  CHECK(waited >= 900ms);
  CHECK(waited < 2500ms);
  CHECK(partial.buffer().empty());

  // The listener still serves, and counted the four failures.
  CHECK(https(g.port(), pki.ca, get_request("/healthz")).status == 200);
  CHECK(wait_tls_metric(g.port(), pki.ca, "ssegw_tls_handshakes_total{result=\"failed\"}", 4) == 4);
  CHECK(g.stop_and_wait() == 0);
}

TEST_CASE("tls listener: SIGHUP reloads the certificate for new connections, streams go on") {
  Pki pki = make_pki(kSan);
  issue_certificate(pki, "next", kSan);
  issue_certificate(pki, "third", kSan);
  std::string cert = pki.dir + "/live.pem", key = pki.dir + "/live.key";
  replace_file(pki.cert, cert);
  replace_file(pki.key, key);
  Gateway g(tls_yaml(cert, key) + "workers: 2\n");
  const std::string reloads = "ssegw_tls_certificate_reloads_total{result=";
  const uint16_t port = g.port();

  auto old = subscribe_tls(port, pki.ca, "reload");
  CHECK(old->fingerprint() == file_fingerprint(pki.cert));
  std::string id = publish_tls(port, pki.ca, "reload", "before");
  expect_bytes(*old, chunk(sse_frame(id, "before")));

  replace_file(pki.dir + "/next.pem", cert);
  replace_file(pki.dir + "/next.key", key);
  g.signal(SIGHUP);
  CHECK(wait_tls_metric(port, pki.ca, reloads + "\"ok\"}", 1) == 1);
  // Every new connection, whichever worker accepts it, sees the new certificate.
  for (int i = 0; i < 6; ++i) {
    TlsClient client(port, {.ca = pki.ca});
    REQUIRE_MESSAGE(client.ok(), client.error());
    CHECK(client.fingerprint() == file_fingerprint(pki.dir + "/next.pem"));
  }
  id = publish_tls(port, pki.ca, "reload", "after");
  expect_bytes(*old, chunk(sse_frame(id, "after")));

  // A key that does not match: counted, logged, and the current pair stays.
  replace_file(pki.dir + "/third.key", key);
  g.signal(SIGHUP);
  CHECK(wait_tls_metric(port, pki.ca, reloads + "\"failed\"}", 1) == 1);
  // The log comes through a pipe and the harness's reader thread: waited for, not read at once.
  CHECK(wait_log_line(
            g, {"certificate reload failed", "tls.key_file: '" + key + "' does not match"}) != "");
  {
    TlsClient client(port, {.ca = pki.ca});
    REQUIRE_MESSAGE(client.ok(), client.error());
    CHECK(client.fingerprint() == file_fingerprint(pki.dir + "/next.pem"));
  }
  id = publish_tls(port, pki.ca, "reload", "still");
  expect_bytes(*old, chunk(sse_frame(id, "still")));

  // Fixed: the next SIGHUP takes it.
  replace_file(pki.dir + "/third.pem", cert);
  g.signal(SIGHUP);
  CHECK(wait_tls_metric(port, pki.ca, reloads + "\"ok\"}", 2) == 2);
  TlsClient client(port, {.ca = pki.ca});
  REQUIRE_MESSAGE(client.ok(), client.error());
  CHECK(client.fingerprint() == file_fingerprint(pki.dir + "/third.pem"));
  CHECK(old->fingerprint() == file_fingerprint(pki.cert));
  id = publish_tls(port, pki.ca, "reload", "last");
  expect_bytes(*old, chunk(sse_frame(id, "last")));
  CHECK(g.stop_and_wait() == 0);
}

TEST_CASE("tls listener: a wrong pair stops start-up and --check-config with the key's line") {
  Pki pki = make_pki(kSan);
  issue_certificate(pki, "other", kSan);
  std::string path =
      write_temp_file("listen: 127.0.0.1:0\n" + tls_yaml(pki.cert, pki.dir + "/other.key"));
  std::string want = "ssegw: " + path + ":4:13: tls.key_file: '" + pki.dir +
                     "/other.key' does not match the certificate in '" + pki.cert + "'";
  ProcessResult check = run_ssegw({"--check-config", path});
  CHECK(check.status == 2);
  CHECK(check.output.rfind(want, 0) == 0);
  ProcessResult start = run_ssegw({"--config", path});
  CHECK(start.status == 2);
  CHECK(start.output.rfind(want, 0) == 0);

  std::string missing =
      write_temp_file("listen: 127.0.0.1:0\n" + tls_yaml(pki.dir + "/none.pem", pki.key));
  ProcessResult none = run_ssegw({"--check-config", missing});
  CHECK(none.status == 2);
  CHECK(none.output == "ssegw: " + missing + ":3:14: tls.cert_file: cannot open '" + pki.dir +
                           "/none.pem': No such file or directory\n");
}

TEST_CASE("tls listener: a subscriber that stops reading is cut, a reading one gets every byte") {
  Pki pki = make_pki(kSan);
  Gateway g(tls_yaml(pki.cert, pki.key) +
            "slow_consumer: {max_queued_bytes: 64KiB}\nheartbeat: 60s\n");
  const uint16_t port = g.port();
  // The slow one takes its stream's start, then never reads again.
  TlsClient slow(port, {.ca = pki.ca, .rcvbuf = 4096});
  REQUIRE_MESSAGE(slow.ok(), slow.error());
  slow.send(get_request("/v1/channels/slow/events"));
  REQUIRE(slow.read_until([](const std::string& b) { return b.size() >= stream_start().size(); }));
  auto fast = subscribe_tls(port, pki.ca, "slow");

  std::atomic<size_t> want{SIZE_MAX};
  std::thread reader([&] {
    // In short slices: `want` is known only once publishing is over.
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (fast->buffer().size() < want.load() && !fast->closed() &&
           std::chrono::steady_clock::now() < deadline)
      fast->read_until([&](const std::string& b) { return b.size() >= want.load(); }, 50ms);
  });
  struct Join {  // a failed REQUIRE below must not leave the thread running
    std::thread& t;
    std::atomic<size_t>& want;
    ~Join() {
      if (t.joinable()) {
        want = 0;
        t.join();
      }
    }
  } join{reader, want};
  // 16 KiB events until the slow one is cut: the kernel's buffers on loopback take a few MiB
  // first (how much depends on the machine); stop at 32 MiB.
  TlsClient publisher(port, {.ca = pki.ca});
  REQUIRE_MESSAGE(publisher.ok(), publisher.error());
  std::string expected;
  std::optional<double> cut;
  for (size_t i = 0; expected.size() < (32u << 20); ++i) {
    std::string data(16384, static_cast<char>('a' + i % 26));
    Response r = publisher.request(post_request("/v1/channels/slow/events", data));
    REQUIRE(r.status == 200);
    expected += chunk(sse_frame(extract_id(r.body), data));
    if (i % 64 == 63 &&
        (cut = tls_metric(port, pki.ca, "ssegw_slow_consumer_disconnects_total")) == 1)
      break;
  }
  want = expected.size();
  reader.join();
  CHECK(cut == 1);
  CHECK(fast->buffer().size() == expected.size());
  CHECK((fast->buffer() == expected));
  CHECK(slow.wait_closed(kTimeout));
  CHECK(g.stop_and_wait() == 0);
}

TEST_CASE("tls listener: Connection: close ends with close_notify, then FIN") {
  Pki pki = make_pki(kSan);
  Gateway g(tls_yaml(pki.cert, pki.key));
  TlsClient client(g.port(), {.ca = pki.ca});
  REQUIRE_MESSAGE(client.ok(), client.error());
  Response r = client.request(get_request("/healthz", "Connection: close\r\n"));
  CHECK(r.status == 200);
  CHECK(r.body == "{\"status\":\"ok\"}\n");
  CHECK(client.wait_closed(kTimeout));
  CHECK(client.got_close_notify());
  CHECK(client.buffer().empty());
}

TEST_CASE("tls listener: a connection over a limit is closed before its handshake") {
  Pki pki = make_pki(kSan);
  Gateway g(tls_yaml(pki.cert, pki.key) + "limits:\n  max_connections_per_ip: 1\n");
  TlsClient first(g.port(), {.ca = pki.ca});
  REQUIRE_MESSAGE(first.ok(), first.error());
  // No 429 can reach it without a handshake, and none is spent on it.
  TlsClient second(g.port(), {.ca = pki.ca});
  CHECK_FALSE(second.ok());
  std::string metrics = first.request(get_request("/metrics")).body;
  CHECK(metric_value(metrics, "ssegw_tls_handshakes_total{result=\"failed\"}") == 1);
  CHECK(metric_value(metrics, "ssegw_tls_handshakes_total{result=\"ok\"}") == 1);
  CHECK(metric_value(metrics,
                     "ssegw_client_limit_rejections_total{limit=\"connections_per_ip\"}") == 1);
}

TEST_CASE("tls listener: without http2, ALPN offers http/1.1 only") {
  Pki pki = make_pki(kSan);
  Gateway g(tls_yaml(pki.cert, pki.key) + "http2: {enabled: false}\n");
  TlsClient client(g.port(), {.ca = pki.ca, .alpn = {"h2", "http/1.1"}});
  REQUIRE_MESSAGE(client.ok(), client.error());
  CHECK(client.alpn() == "http/1.1");
}

TEST_CASE("tls listener: curl negotiates h2 by ALPN, subscribes and publishes, exact bytes") {
  Pki pki = make_pki(kSan);
  Gateway g(tls_yaml(pki.cert, pki.key));
  std::string url = "https://127.0.0.1:" + std::to_string(g.port()) + "/v1/channels/h2/events";

  int out[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  pid_t curl = spawn_process({"/usr/bin/curl", "-sN", "--http2", "--cacert", pki.ca, url}, -1,
                             out[1], out[1]);
  ::close(out[1]);
  std::string body;
  CHECK(read_pipe(out[0], body, 13, kTimeout));
  CHECK(body == "retry: 2000\n\n");

  ProcessResult published =
      run_process({"/usr/bin/curl", "-sS", "--http2", "--cacert", pki.ca, "--data-binary",
                   "hello over h2", "-w", "\n%{http_version}", url});
  REQUIRE_MESSAGE(published.status == 0, published.output);
  CHECK(published.output.substr(published.output.size() - 2) == "\n2");
  std::string id = extract_id(published.output);
  REQUIRE(!id.empty());
  std::string want = "retry: 2000\n\n" + sse_frame(id, "hello over h2");
  CHECK(read_pipe(out[0], body, want.size(), kTimeout));
  CHECK(body == want);

  std::string metrics = https(g.port(), pki.ca, get_request("/metrics")).body;
  CHECK(metric_value(metrics, "ssegw_http2_connections_active") == 1);  // curl's subscription
  ::kill(curl, SIGTERM);
  int status = 0;
  ::waitpid(curl, &status, 0);
  ::close(out[0]);
  CHECK(g.stop_and_wait() == 0);
}
