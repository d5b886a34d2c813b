// The policy stage (docs/security.md): every kind of request is authenticated, authorized and
// limited in one place before a handler runs. Each case here is a finding of the security review
// that the old gateway got wrong, checked against the real binary.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/jwt_tokens.hpp"
#include "tests/integration/redis_server.hpp"

using namespace itest;

namespace {

// An upstream that records every request it gets, raw, and answers each with a complete SSE
// stream: what the mock LLM cannot show (it echoes no request header).
class CaptureUpstream {
 public:
  static constexpr std::string_view kAnswer =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 14\r\n\r\n"
      "data: [DONE]\n\n";

  CaptureUpstream() : listener_(bind_loopback(16, /*nonblocking=*/true)) {
    thread_ = std::thread([this] { run(); });
  }
  ~CaptureUpstream() {
    stop_ = true;
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(listener_.port); }
  // The raw requests (head and body) received so far, waiting until there are n.
  std::vector<std::string> wait_requests(size_t n, Ms timeout = kTimeout) {
    std::vector<std::string> got;
    wait_until(
        [&] {
          std::lock_guard lock(mu_);
          got = requests_;
          return got.size() >= n;
        },
        timeout, 5ms);
    return got;
  }

 private:
  struct Client {
    Fd fd;
    std::string in;
  };

  void run() {
    std::vector<Client> clients;
    while (!stop_) {
      std::vector<pollfd> fds{{listener_.fd.get(), POLLIN, 0}};
      for (Client& c : clients) fds.push_back({c.fd.get(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int fd = ::accept4(listener_.fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) clients.push_back({Fd(fd), {}});
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
        Client& c = clients[i - 1];
        if (read_some(c.fd.get(), c.in, 0ms) == ReadStatus::kEof) c.fd.reset();
        take_requests(c);
      }
      std::erase_if(clients, [](const Client& c) { return !c.fd; });
    }
  }

  void take_requests(Client& c) {
    for (;;) {
      size_t end = c.in.find("\r\n\r\n");
      if (end == std::string::npos) return;
      size_t length = 0;
      std::string head = lower(c.in.substr(0, end));
      if (size_t at = head.find("\r\ncontent-length:"); at != std::string::npos)
        length = std::stoul(head.substr(at + 17));
      if (c.in.size() < end + 4 + length) return;
      {
        std::lock_guard lock(mu_);
        requests_.push_back(c.in.substr(0, end + 4 + length));
      }
      c.in.erase(0, end + 4 + length);
      if (c.fd) send_all(c.fd.get(), kAnswer);
    }
  }

  LoopbackSocket listener_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

const std::string kChatBody =
    "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

std::string bearer(const std::string& t) {
  return "Authorization: Bearer " + t + "\r\n";
}

// A routes: section with /v1/chat/completions on the upstream llm.
std::string chat_route(const std::string& extra = "") {
  return "routes:\n  - {path: /v1/chat/completions, upstream: llm" + extra + "}\n";
}

std::string upstream_at(const std::string& url, const std::string& extra = "") {
  return "upstreams:\n  llm: {url: \"" + url + "\"" + extra + "}\n";
}

Response chat(uint16_t port, const std::string& headers, const std::string& path_suffix = "") {
  return http(port, post_request("/v1/chat/completions" + path_suffix, kChatBody, headers));
}

// The value of a request header in a raw request head ("" when absent); names are compared in
// lower case.
std::string header_of(const std::string& raw, const std::string& name) {
  std::string head = lower(raw.substr(0, raw.find("\r\n\r\n") + 2));
  size_t at = head.find("\r\n" + name + ":");
  if (at == std::string::npos) return "";
  size_t begin = raw.find_first_not_of(' ', at + 3 + name.size());
  return raw.substr(begin, raw.find("\r\n", begin) - begin);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Finding 1: routes never checked auth; Prefer: respond-async started upstream requests for anyone

TEST_CASE("policy: with auth.jwt a route needs a token whose routes claim covers its path") {
  MockLlm mock;
  Gateway gw(jwt_yaml() + upstream_at(mock.url()) +
             "routes:\n"
             "  - {path: /v1/chat/completions, upstream: llm, resumable: true}\n"
             "  - {path: /v1/responses, upstream: llm, auth: none}\n");
  std::string chat_token = token(grants("", "", 0, "\"/v1/chat/*\""));
  std::string other_token = token(grants("\"*\"", "\"*\"", 0, "\"/v2/*\""));

  Response none = chat(gw.port(), "X-Mock-Tokens: 2\r\n");
  check_error(none, 401, "unauthorized");
  CHECK(none.header("www-authenticate") == "Bearer");
  check_error(chat(gw.port(), bearer("not.a.jwt")), 401, "unauthorized");
  check_error(chat(gw.port(), bearer(other_token)), 403, "forbidden");
  // The detached form went around the check before: it must not start anything either.
  check_error(chat(gw.port(), "Prefer: respond-async\r\n"), 401, "unauthorized");
  check_error(chat(gw.port(), "Prefer: respond-async\r\n" + bearer(other_token)), 403, "forbidden");
  CHECK(mock.stat("requests") == 0);

  Response ok = chat(gw.port(), "X-Mock-Tokens: 2\r\n" + bearer(chat_token));
  CHECK(ok.status == 200);
  CHECK(ok.body.find("data: [DONE]") != std::string::npos);
  Response async =
      chat(gw.port(), "Prefer: respond-async\r\nX-Mock-Tokens: 2\r\n" + bearer(chat_token));
  CHECK(async.status == 202);
  // A route that says auth: none stays open.
  Response open = http(gw.port(), post_request("/v1/responses", kChatBody, "X-Mock-Tokens: 1\r\n"));
  CHECK(open.status == 200);
  mock.wait_stat("/v1/chat/completions", 2);
  CHECK(read_metric(gw.port(), "ssegw_auth_refusals_total{reason=\"unauthorized\"}") == 3);
  CHECK(read_metric(gw.port(), "ssegw_auth_refusals_total{reason=\"forbidden\"}") == 2);
}

TEST_CASE("policy: auth.keys are named static tokens with routes, publish and subscribe grants") {
  MockLlm mock;
  Gateway gw(upstream_at(mock.url()) + chat_route() +
             "auth:\n"
             "  keys:\n"
             "    - {name: web, token: \"web-key-0123456789\", routes: [\"/v1/chat/*\"],\n"
             "       publish: [\"chat.*\"], subscribe: [\"chat.*\"]}\n"
             "    - {name: feed, token: \"feed-key-0123456789\", subscribe: [\"feed.*\"]}\n");
  const std::string web = bearer("web-key-0123456789");
  const std::string feed = bearer("feed-key-0123456789");
  CHECK(chat(gw.port(), "X-Mock-Tokens: 1\r\n" + web).status == 200);
  check_error(chat(gw.port(), feed), 403, "forbidden");
  check_error(chat(gw.port(), ""), 401, "unauthorized");
  check_error(chat(gw.port(), bearer("web-key-0123456789x")), 401, "unauthorized");

  auto publish_status = [&](const std::string& ch, const std::string& headers) {
    return http(gw.port(), post_request("/v1/channels/" + ch + "/events", "x", headers)).status;
  };
  CHECK(publish_status("chat.1", web) == 200);
  CHECK(publish_status("feed.1", web) == 403);
  CHECK(publish_status("chat.1", feed) == 403);
  CHECK(publish_status("chat.1", "") == 401);  // keys make publishing need a token

  // With keys, subscribing needs a token too (anonymous_subscribe defaults to false).
  auto subscribe_status = [&](const std::string& ch, const std::string& headers) {
    Conn c(gw.port());
    return c.request(get_request("/v1/channels/" + ch + "/events", headers)).status;
  };
  CHECK(subscribe_status("feed.x", "") == 401);
  CHECK(subscribe_status("chat.x", feed) == 403);
  SseStream s(gw.port(), "feed.x", {.extra_headers = feed});
  s.expect_ok();
}

TEST_CASE("policy: teeing an answer into a channel needs publish rights, also on open routes") {
  MockLlm mock;
  Gateway gw(jwt_yaml() + upstream_at(mock.url()) +
             "routes:\n  - {path: /v1/chat/completions, upstream: llm, resumable: true, "
             "auth: none}\n");
  check_error(chat(gw.port(), "SSE-Channel: room.1\r\n"), 401, "unauthorized");
  check_error(chat(gw.port(), "SSE-Channel: room.1\r\n" + bearer(token(grants("\"*\"", "")))), 403,
              "forbidden");
  Response ok = chat(gw.port(), "X-Mock-Tokens: 1\r\nSSE-Channel: room.1\r\n" +
                                    bearer(token(grants("", "\"room.*\""))));
  CHECK(ok.status == 200);
  CHECK(mock.stat("/v1/chat/completions") == 1);
}

// ---------------------------------------------------------------------------------------------
// Finding 7: the gateway's own credentials reached the upstream

TEST_CASE("policy: the token the gateway checked never reaches the upstream") {
  CaptureUpstream upstream;
  Gateway gw(upstream_at(upstream.url(), ", headers: {X-Api-Key: \"operator\"}") +
             "routes:\n"
             "  - {path: /v1/chat/completions, upstream: llm}\n"
             "  - {path: /v1/open, upstream: llm, auth: none}\n"
             "auth:\n  keys:\n"
             "    - {name: web, token: \"web-key-0123456789\", routes: [\"/v1/*\"]}\n");
  SUBCASE("from the Authorization header") {
    REQUIRE(chat(gw.port(), bearer("web-key-0123456789") + "X-Test: 1\r\n").status == 200);
    std::string got = upstream.wait_requests(1).at(0);
    INFO("upstream saw: ", printable(got));
    CHECK(header_of(got, "authorization") == "");
    CHECK(header_of(got, "x-test") == "1");
    CHECK(header_of(got, "x-api-key") == "operator");
  }
  SUBCASE("from the cookie: the other cookies stay") {
    REQUIRE(
        chat(gw.port(), "Cookie: theme=dark; ssegw_token=web-key-0123456789; lang=en\r\n").status ==
        200);
    std::string got = upstream.wait_requests(1).at(0);
    INFO("upstream saw: ", printable(got));
    CHECK(header_of(got, "cookie") == "theme=dark; lang=en");
  }
  SUBCASE("from the query: the other parameters stay") {
    REQUIRE(chat(gw.port(), "", "?a=1&access_token=web-key-0123456789&b=2").status == 200);
    std::string got = upstream.wait_requests(1).at(0);
    INFO("upstream saw: ", printable(got));
    CHECK(got.rfind("POST /v1/chat/completions?a=1&b=2 HTTP/1.1\r\n", 0) == 0);
  }
  SUBCASE("a route with auth: none passes the client's Authorization unchanged") {
    REQUIRE(http(gw.port(), post_request("/v1/open", kChatBody, bearer("sk-client-own"))).status ==
            200);
    std::string got = upstream.wait_requests(1).at(0);
    CHECK(header_of(got, "authorization") == "Bearer sk-client-own");
  }
}

// ---------------------------------------------------------------------------------------------
// Finding 1 (continued) and the bounded-resources items: streams per client, upstream slots

TEST_CASE("policy: limits.max_streams_per_ip bounds running answers, detached ones included") {
  MockLlm mock;
  Gateway gw(upstream_at(mock.url()) +
             "routes:\n  - {path: /v1/chat/completions, upstream: llm, resumable: true, "
             "on_disconnect: continue}\n"
             "limits: {max_streams_per_ip: 2}\n");
  // Two detached answers that run for a while (10 tokens, 200 ms apart).
  const std::string slow =
      "Prefer: respond-async\r\nX-Mock-Tokens: 10\r\nX-Mock-Interval-Ms: 200\r\n";
  CHECK(chat(gw.port(), slow).status == 202);
  CHECK(chat(gw.port(), slow).status == 202);
  Response third = chat(gw.port(), slow);
  check_error(third, 429, "too_many_streams");
  CHECK(third.header("retry-after") == "1");
  CHECK(read_metric(gw.port(), "ssegw_client_limit_rejections_total{limit=\"streams_per_ip\"}") ==
        1);
  // Once both have finished their slots are back.
  CHECK(mock.wait_stat("completed", 2, 10s) == 2);
  wait_metric(gw.port(), "ssegw_upstream_requests_active{upstream=\"llm\"}", 0);
  CHECK(chat(gw.port(), "Prefer: respond-async\r\nX-Mock-Tokens: 1\r\n").status == 202);
}

TEST_CASE("policy: upstreams.NAME.max_concurrent answers 503 upstream_busy, and a cancel frees") {
  MockLlm mock;
  Gateway gw(upstream_at(mock.url(), ", max_concurrent: 2") + chat_route());
  const std::string endless = post_request("/v1/chat/completions", kChatBody,
                                           "X-Mock-Tokens: 10000\r\nX-Mock-Interval-Ms: 100\r\n");
  auto a = std::make_unique<SseStream>(SseStream::raw(gw.port(), endless));
  SseStream b = SseStream::raw(gw.port(), endless);
  a->wait_head();
  b.wait_head();
  CHECK(read_metric(gw.port(), "ssegw_upstream_requests_active{upstream=\"llm\"}") == 2);
  Response busy = chat(gw.port(), "");
  check_error(busy, 503, "upstream_busy");
  CHECK(busy.header("retry-after") == "1");
  CHECK(busy.body.find("127.0.0.1") == std::string::npos);
  CHECK(read_metric(gw.port(), "ssegw_upstream_busy_total{upstream=\"llm\"}") == 1);
  a.reset();  // the client leaves: the upstream is cancelled and its slot comes back
  wait_metric(gw.port(), "ssegw_upstream_requests_active{upstream=\"llm\"}", 1);
  CHECK(chat(gw.port(), "X-Mock-Tokens: 1\r\n").status == 200);
}

// ---------------------------------------------------------------------------------------------
// Finding 11: a cookie-authenticated request from a foreign Origin (CSRF)

TEST_CASE("policy: a token from the cookie is accepted only from a trusted or the same Origin") {
  Gateway gw(jwt_yaml() + "cors: {allow_origins: [\"https://app.example\"]}\n");
  std::string t = token(grants("", "\"news.*\""));
  auto post = [&](const std::string& headers) {
    return http(gw.port(), post_request("/v1/channels/news.a/events", "x", headers));
  };
  const std::string cookie = "Cookie: ssegw_token=" + t + "\r\n";
  check_error(post(cookie + "Origin: https://evil.example\r\n"), 403, "forbidden_origin");
  check_error(post(cookie + "Origin: null\r\n"), 403, "forbidden_origin");
  CHECK(post(cookie + "Origin: https://app.example\r\n").status == 200);
  // The gateway's own page (the demo) is same-origin: Origin names the Host.
  CHECK(post(cookie + "Origin: http://127.0.0.1\r\n").status == 200);  // Host: 127.0.0.1
  CHECK(post(cookie).status == 200);  // no Origin: not a cross-site browser request
  // A header token cannot be attached by another site's page: the Origin does not matter.
  CHECK(post(bearer(t) + "Origin: https://evil.example\r\n").status == 200);
  // A top-level navigation from another site carries no Origin, but says where it comes from.
  check_error(post(cookie + "Sec-Fetch-Site: cross-site\r\n"), 403, "forbidden_origin");
  CHECK(post(cookie + "Sec-Fetch-Site: same-origin\r\n").status == 200);
  CHECK(read_metric(gw.port(), "ssegw_auth_refusals_total{reason=\"forbidden_origin\"}") == 3);

  // "*" lets any page read answers, but never lends a cookie to a foreign page.
  Gateway any(jwt_yaml() + "cors: {allow_origins: [\"*\"]}\n");
  Response r = http(any.port(), post_request("/v1/channels/news.a/events", "x",
                                             cookie + "Origin: https://evil.example\r\n"));
  check_error(r, 403, "forbidden_origin");
  CHECK(http(any.port(), post_request("/v1/channels/news.a/events", "x",
                                      bearer(t) + "Origin: https://evil.example\r\n"))
            .status == 200);
}

// ---------------------------------------------------------------------------------------------
// Finding 12: channel information without subscribe rights

TEST_CASE("policy: channel info needs the same rights as subscribing") {
  Gateway gw(jwt_yaml());
  std::string news = token(grants("\"news.*\"", ""));
  std::string sports = token(grants("\"sports.*\"", ""));
  check_error(http_get(gw.port(), "/v1/channels/news.a"), 401, "unauthorized");
  check_error(http(gw.port(), get_request("/v1/channels/news.a", bearer(sports))), 403,
              "forbidden");
  Response ok = http(gw.port(), get_request("/v1/channels/news.a", bearer(news)));
  CHECK(ok.status == 200);
  CHECK(json_body(ok) == info_json("news.a", 0, 0, "", ""));

  Gateway open(jwt_yaml("  anonymous_subscribe: true\n"));
  CHECK(http_get(open.port(), "/v1/channels/news.a").status == 200);
}

// ---------------------------------------------------------------------------------------------
// Finding 3 (continued): generation channels are written only by their answer

TEST_CASE("policy: gen-* channels cannot be published into or tee'd into by clients") {
  MockLlm mock;
  Gateway gw(upstream_at(mock.url()) +
             "routes:\n  - {path: /v1/chat/completions, upstream: llm, resumable: true}\n");
  Response async = chat(gw.port(), "Prefer: respond-async\r\nX-Mock-Tokens: 3\r\n");
  REQUIRE(async.status == 202);
  std::string gen = async.header("sse-channel");
  CHECK(gen.size() == 36);
  check_error(http(gw.port(), post_request("/v1/channels/" + gen + "/events", "forged")), 403,
              "reserved_channel");
  check_error(chat(gw.port(), "SSE-Channel: " + gen + "\r\n"), 403, "reserved_channel");
  check_error(http(gw.port(), post_request("/v1/channels/gen-anything/events", "x")), 403,
              "reserved_channel");
}

// ---------------------------------------------------------------------------------------------
// Finding 8: a request waiting for its channel's owner had no deadline

TEST_CASE("policy: limits.owner_timeout answers a subscribe that Redis does not answer") {
  RedisServer redis;
  Gateway gw("backplane: {type: redis, url: \"" + redis.url() +
             "\"}\n"
             "limits: {owner_timeout: 1s}\n");
  wait_metric(gw.port(), "ssegw_backplane_links_up", 1);
  ::kill(redis.pid(), SIGSTOP);  // frozen: the connection stays up, nothing is answered
  Conn c(gw.port());
  Response r = c.request(get_request("/v1/channels/frozen/events"), 8s);
  ::kill(redis.pid(), SIGCONT);
  check_error(r, 503, "owner_timeout");
  CHECK(r.header("retry-after") == "1");
  CHECK(c.wait_closed(2s));
  CHECK(read_metric(gw.port(), "ssegw_owner_timeouts_total") == 1);
  wait_metric(gw.port(), "ssegw_backplane_links_up", 1, 10s);
  CHECK(publish(gw.port(), "after", "x").size() > 0);
}
