// The upstream client: its pure decisions, then Client and Exchange in-process, on a real loop
// against a raw-libuv server on loopback (tests/support/uv_peer.hpp). Each exchange ends with
// exactly one of on_end() and on_failure(), or nothing after cancel(); every test ends with the
// loop closed and uv_loop_close() == 0.
#include "upstream/http_client.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gateway/net/loop.hpp"
#include "tests/support/thread_pool_blocker.hpp"
#include "tests/support/uv_peer.hpp"

using namespace ssegw;
using namespace std::chrono_literals;

using upstream::Failure;

TEST_CASE("http_client: HEAD, 1xx, 204 and 304 answers have no body") {
  for (int status : {200, 201, 206, 400, 404, 429, 500, 502}) {
    CAPTURE(status);
    CHECK(upstream::response_has_body(false, status));
    CHECK_FALSE(upstream::response_has_body(true, status));
  }
  for (int status : {100, 103, 199, 204, 304}) {
    CAPTURE(status);
    CHECK_FALSE(upstream::response_has_body(false, status));
    CHECK_FALSE(upstream::response_has_body(true, status));
  }
}

TEST_CASE("http_client: failure messages name the kind and no address") {
  for (Failure f : {Failure::kResolve, Failure::kConnect, Failure::kConnectTimeout, Failure::kTls,
                    Failure::kFirstByteTimeout, Failure::kIdleTimeout, Failure::kDisconnected,
                    Failure::kProtocol}) {
    const std::string message = upstream::failure_message(f);
    const std::string kind = std::string("(") + upstream::failure_name(f) + ")";
    CAPTURE(message);
    CHECK(message.rfind("the upstream ", 0) == 0);
    CHECK(message.size() > kind.size());
    CHECK(message.substr(message.size() - kind.size()) == kind);
    CHECK(message.find(':') == std::string::npos);  // no host:port, no "what: detail"
  }
}

// ---- in-process: Client and Exchange against a loopback server -------------------------------

namespace {

class Recorder final : public upstream::ExchangeHandler {
 public:
  int status = 0;
  std::vector<http::Header> headers;
  std::string body;
  int heads = 0, ends = 0, failures = 0;
  std::vector<size_t> body_at_read_done;  // body.size() at each on_read_done()
  Failure failure = Failure::kProtocol;
  std::string detail;
  std::function<void()> after_head;
  std::function<void()> after_body;

  // The last call came: on_end() or on_failure().
  bool done() const { return ends + failures > 0; }

  void on_head(int s, const std::vector<http::Header>& h) override {
    ++heads;
    status = s;
    headers = h;
    if (after_head) after_head();
  }
  void on_body(std::string_view data) override {
    body.append(data);
    if (after_body) after_body();
  }
  void on_read_done() override { body_at_read_done.push_back(body.size()); }
  void on_end() override { ++ends; }
  void on_failure(Failure f, const std::string& d) override {
    ++failures;
    failure = f;
    detail = d;
  }
};

// A loop, a server on 127.0.0.1:0 and a Client of it. The server answers each complete request
// head (the requests here have no body) with respond(request), unless respond is empty.
struct Fixture {
  explicit Fixture(const std::function<void(config::UpstreamConfig&)>& adjust = {})
      : server(loop.uv()) {
    config.name = "test";
    config.host = "127.0.0.1";
    config.port = server.port();
    config.url = "http://127.0.0.1:" + std::to_string(config.port) + "/base";
    config.base_path = "/base";
    config.connect_timeout = 2s;
    config.first_byte_timeout = 5s;
    config.idle_timeout = 5s;
    if (adjust) adjust(config);
    client = std::make_unique<upstream::Client>(loop, config);
    server.on_accept = [this](test::Peer& peer) {
      peer.on_data = [this](test::Peer& p) {
        size_t& answered = answered_[&p];
        size_t end;
        while ((end = p.received.find("\r\n\r\n", answered)) != std::string::npos) {
          std::string request = p.received.substr(answered, end + 4 - answered);
          answered = end + 4;
          ++requests;
          if (respond) p.write(respond(request));
        }
      };
    };
  }
  ~Fixture() { finish(); }

  upstream::Exchange* get(Recorder& recorder, std::string target = "/v1/x") {
    upstream::OutgoingRequest request;
    request.target = std::move(target);
    return client->start(std::move(request), &recorder);
  }
  bool run_until(const std::function<bool()>& done, uint64_t timeout_ms = 5000) {
    return test::run_until(loop.uv(), done, timeout_ms);
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(config.port); }

  void finish() {
    if (finished) return;
    finished = true;
    client->close_all();
    server.close();
    loop.close();
    CHECK(loop.finish() == 0);
    CHECK(client->open_connections() == 0);
    client.reset();
  }

  net::Loop loop;
  test::Peers server;
  config::UpstreamConfig config;
  std::unique_ptr<upstream::Client> client;
  std::function<std::string(const std::string& request)> respond;
  int requests = 0;
  bool finished = false;

 private:
  std::map<test::Peer*, size_t> answered_;
};

const std::string kHello = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

}  // namespace

TEST_CASE("http_client: a request, its answer, and the connection reused from the pool") {
  Fixture f;
  f.respond = [](const std::string&) { return kHello; };
  Recorder first;
  upstream::OutgoingRequest request;
  request.target = "/v1/x?q=1";
  request.headers = {{"x-request", "1"}};
  upstream::Exchange* exchange = f.client->start(std::move(request), &first);
  CHECK_FALSE(exchange->reused());
  CHECK(f.run_until([&] { return first.done(); }));
  CHECK(first.heads == 1);
  CHECK(first.status == 200);
  CHECK(first.body == "hello");
  CHECK(first.ends == 1);
  CHECK(first.failures == 0);
  REQUIRE(f.server.size() == 1);
  CHECK(f.server[0].received ==
        "GET /base/v1/x?q=1 HTTP/1.1\r\nHost: " + f.host() + "\r\nx-request: 1\r\n\r\n");
  CHECK(f.client->open_connections() == 1);  // kept alive, in the pool

  Recorder second;
  upstream::Exchange* again = f.get(second, "/v1/y");
  CHECK(again->reused());
  CHECK(f.run_until([&] { return second.done(); }));
  CHECK(second.ends == 1);
  CHECK(second.body == "hello");
  CHECK(f.server.size() == 1);  // the same connection
  CHECK(f.requests == 2);
}

TEST_CASE("http_client: the chunks of one read come before one on_read_done, the end after none") {
  Fixture f;
  std::function<void(const std::string&)> send;  // writes to the server's connection
  f.server.on_accept = [&](test::Peer& peer) {
    send = [&peer](const std::string& bytes) { peer.write(bytes); };
  };
  Recorder r;
  f.get(r);
  REQUIRE(f.run_until([&] { return static_cast<bool>(send); }));
  // The head and three chunks in one write: the parser calls on_body once per chunk.
  send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n1\r\nf\r\n");
  CHECK(f.run_until([&] { return r.body == "abcdef"; }));
  CHECK(r.body_at_read_done == std::vector<size_t>{6});
  send("1\r\ng\r\n");
  CHECK(f.run_until([&] { return r.body_at_read_done.size() == 2; }));
  CHECK(r.body_at_read_done == std::vector<size_t>{6, 7});
  send("0\r\n\r\n");  // the end: on_end(), and no on_read_done() after it
  CHECK(f.run_until([&] { return r.done(); }));
  CHECK(r.ends == 1);
  CHECK(r.body == "abcdefg");
  CHECK(r.body_at_read_done == std::vector<size_t>{6, 7});
}

TEST_CASE("http_client: an answer with Connection: close is not pooled") {
  Fixture f;
  f.respond = [](const std::string&) {
    return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
  };
  Recorder r;
  f.get(r);
  CHECK(f.run_until([&] { return r.done() && f.client->open_connections() == 0; }));
  CHECK(r.ends == 1);
  Recorder again;
  CHECK_FALSE(f.get(again)->reused());
  CHECK(f.run_until([&] { return again.done(); }));
  CHECK(f.server.size() == 2);
}

TEST_CASE("http_client: a refused connection fails once with kConnect") {
  test::RefusingPort refusing;
  Fixture f([&](config::UpstreamConfig& c) { c.port = refusing.port(); });
  Recorder r;
  f.get(r);
  CHECK(r.failures == 0);  // never from inside start()
  CHECK(f.run_until([&] { return r.done(); }));
  CHECK(r.failures == 1);
  CHECK(r.ends == 0);
  CHECK(r.failure == Failure::kConnect);
  CHECK(r.detail.find("connection refused") != std::string::npos);
  test::run_for(f.loop.uv(), 250);  // past two ticks: nothing more comes
  CHECK(r.failures == 1);
}

TEST_CASE("http_client: an upstream at an IP address connects while the thread pool is busy") {
  // Every thread of libuv's pool waits on the blocker (slow DNS of other lookups would do the
  // same): a host given as an address needs none of them, a name waits for one.
  Fixture f;
  f.respond = [](const std::string&) { return kHello; };
  Fixture named([](config::UpstreamConfig& c) { c.host = "localhost"; });
  named.respond = f.respond;  // localhost may be 127.0.0.1 (answered) or ::1 first (refused)
  test::ThreadPoolBlocker blocker(f.loop.uv());
  Recorder by_address, by_name;
  f.get(by_address);
  named.get(by_name);
  CHECK(by_address.done() == false);  // never from inside start()
  CHECK(f.run_until([&] { return by_address.done(); }));
  CHECK(by_address.ends == 1);
  CHECK(by_address.body == "hello");
  // The name's lookup is queued behind the blockers: its exchange cannot have moved.
  test::run_for(named.loop.uv(), 100);
  CHECK_FALSE(by_name.done());
  blocker.release();
  CHECK(f.run_until([&] { return blocker.all_done(); }));
  CHECK(named.run_until([&] { return by_name.done(); }));  // answered or refused: it moved
}

TEST_CASE("http_client: an address the kernel refuses at once fails from the tick, with kConnect") {
  // A link-local IPv6 address without a zone: connect() fails on the spot (EINVAL), inside
  // start(), which must not call the handler.
  Fixture f([](config::UpstreamConfig& c) { c.host = "fe80::1"; });
  Recorder r;
  f.get(r);
  CHECK(r.failures == 0);
  CHECK(f.run_until([&] { return r.done(); }));
  CHECK(r.failures == 1);
  CHECK(r.failure == Failure::kConnect);
  CHECK(r.detail.rfind("connect: ", 0) == 0);
  test::run_for(f.loop.uv(), 250);  // past two ticks: nothing more comes
  CHECK(r.failures == 1);
}

TEST_CASE("http_client: first_byte_timeout and idle_timeout are deadlines") {
  SUBCASE("no answer at all") {
    Fixture f([](config::UpstreamConfig& c) { c.first_byte_timeout = 150ms; });
    Recorder r;
    f.get(r);
    CHECK(f.run_until([&] { return r.done(); }));
    CHECK(r.failure == Failure::kFirstByteTimeout);
    CHECK(r.failures == 1);
    CHECK(r.heads == 0);
  }
  SUBCASE("a head, then silence") {
    Fixture f([](config::UpstreamConfig& c) { c.idle_timeout = 150ms; });
    f.respond = [](const std::string&) {
      return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial";
    };
    Recorder r;
    f.get(r);
    CHECK(f.run_until([&] { return r.done(); }));
    CHECK(r.heads == 1);
    CHECK(r.body == "partial");
    CHECK(r.failure == Failure::kIdleTimeout);
    CHECK(r.failures == 1);
    CHECK(r.ends == 0);
  }
}

TEST_CASE("http_client: a paused exchange reads nothing and has no idle deadline") {
  Fixture f([](config::UpstreamConfig& c) { c.idle_timeout = 100ms; });
  f.respond = [](const std::string&) {
    return "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
  };
  Recorder r;
  upstream::Exchange* exchange = f.get(r);
  r.after_body = [&] { exchange->pause(); };
  CHECK(f.run_until([&] { return r.body == "hello"; }));
  r.after_body = nullptr;
  f.server[0].write("world");
  test::run_for(f.loop.uv(), 400);  // four idle timeouts: the silence is ours, not the upstream's
  CHECK(r.body == "hello");
  CHECK_FALSE(r.done());
  exchange->resume();
  CHECK(f.run_until([&] { return r.done(); }));
  CHECK(r.body == "helloworld");
  CHECK(r.ends == 1);
  CHECK(r.failures == 0);
}

TEST_CASE("http_client: cancel() silences the handler and closes the connection") {
  SUBCASE("from inside on_head") {
    Fixture f;
    f.respond = [](const std::string&) { return kHello; };
    Recorder r;
    upstream::Exchange* exchange = f.get(r);
    r.after_head = [&] { exchange->cancel(); };
    CHECK(f.run_until([&] { return f.server.size() == 1 && f.server[0].eof; }));
    CHECK(r.heads == 1);
    CHECK(r.body.empty());
    CHECK_FALSE(r.done());
    CHECK(f.run_until([&] { return f.client->open_connections() == 0; }));
  }
  SUBCASE("while resolving") {
    Fixture f;
    Recorder r;
    f.get(r)->cancel();
    CHECK(f.run_until([&] { return f.client->open_connections() == 0; }));
    CHECK(r.heads + r.ends + r.failures == 0);
  }
}

TEST_CASE("http_client: close_all() fails what is pending") {
  Fixture f;  // the server never answers
  Recorder r;
  f.get(r);
  CHECK(f.run_until([&] { return f.requests == 1; }));
  f.client->close_all();
  CHECK(f.run_until([&] { return r.done(); }));
  CHECK(r.failures == 1);
  CHECK(r.failure == Failure::kDisconnected);
  CHECK(r.ends == 0);
}

TEST_CASE("http_client: how a response can end") {
  SUBCASE("the upstream closes mid-body: kDisconnected") {
    Fixture f;
    f.respond = [](const std::string&) {
      return "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel";
    };
    f.server.on_accept = [&, accept = f.server.on_accept](test::Peer& peer) {
      accept(peer);
      peer.on_data = [&, on_data = peer.on_data](test::Peer& p) {
        on_data(p);
        p.shutdown();
      };
    };
    Recorder r;
    f.get(r);
    CHECK(f.run_until([&] { return r.done(); }));
    CHECK(r.body == "hel");
    CHECK(r.failure == Failure::kDisconnected);
    CHECK(r.failures == 1);
  }
  SUBCASE("a body delimited by the close ends with it") {
    Fixture f;
    f.respond = [](const std::string&) { return "HTTP/1.1 200 OK\r\n\r\nuntil the end"; };
    f.server.on_accept = [&, accept = f.server.on_accept](test::Peer& peer) {
      accept(peer);
      peer.on_data = [&, on_data = peer.on_data](test::Peer& p) {
        on_data(p);
        p.shutdown();
      };
    };
    Recorder r;
    f.get(r);
    CHECK(f.run_until([&] { return r.done(); }));
    CHECK(r.body == "until the end");
    CHECK(r.ends == 1);
    CHECK(r.failures == 0);
  }
  SUBCASE("bytes after the response: kProtocol") {
    Fixture f;
    f.respond = [](const std::string&) { return kHello + "HTTP/1.1 200 OK\r\n"; };
    Recorder r;
    f.get(r);
    CHECK(f.run_until([&] { return r.done(); }));
    CHECK(r.failure == Failure::kProtocol);
    CHECK(r.detail == "bytes after the end of the response");
  }
  SUBCASE("a 101: kProtocol") {
    Fixture f;
    f.respond = [](const std::string&) { return "HTTP/1.1 101 Switching Protocols\r\n\r\n"; };
    Recorder r;
    f.get(r);
    CHECK(f.run_until([&] { return r.done(); }));
    CHECK(r.failure == Failure::kProtocol);
    CHECK(r.detail == "malformed response: 101 Switching Protocols, but no upgrade was asked for");
    CHECK(r.heads == 0);
  }
  SUBCASE("interim heads are dropped") {
    Fixture f;
    f.respond = [](const std::string&) { return "HTTP/1.1 103 Early Hints\r\n\r\n" + kHello; };
    Recorder r;
    f.get(r);
    CHECK(f.run_until([&] { return r.done(); }));
    CHECK(r.heads == 1);
    CHECK(r.status == 200);
    CHECK(r.ends == 1);
  }
}
