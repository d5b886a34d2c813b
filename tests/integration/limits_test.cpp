// Per-client-address limits (limits.max_connections_per_ip, publish_rate_per_ip): 429 with
// Retry-After, counted in ssegw_client_limit_rejections_total, and per address.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

// A connection from another loopback address, to show that limits are per address.
Fd connect_from(const char* source, uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, source, &local.sin_addr);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) == 0);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) == 0);
  return fd;
}

std::string read_all_until_close(int fd) {
  std::string got;
  while (read_some(fd, got, 2s) == ReadStatus::kData) {
  }
  return got;
}

// Polls ssegw_connections_active until it equals n, scraping from 127.0.0.3: an address of its own,
// so that the scrape neither counts against 127.0.0.1's connections nor is refused by their limit.
// The scrape's own connection is one of the n.
bool wait_connections_active(uint16_t port, double n) {
  return wait_until([&] {
    Fd fd = connect_from("127.0.0.3", port);
    send_all(fd.get(), "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string text = read_all_until_close(fd.get());
    size_t body = text.find("\r\n\r\n");
    return body != std::string::npos &&
           metric_value(text.substr(body + 4), "ssegw_connections_active") == n;
  });
}
}  // namespace

TEST_CASE("limits: connections per client address get 429 with Retry-After over the cap") {
  Gateway gw("limits: {max_connections_per_ip: 3}\n");
  std::vector<std::unique_ptr<Conn>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<Conn>(gw.port()));
    CHECK(open.back()->request(get_request("/healthz")).status == 200);
  }
  Conn fourth(gw.port());
  Response r = fourth.read_response();  // answered at once, without a request
  CHECK(r.status == 429);
  CHECK(r.header("retry-after") == "1");
  CHECK(r.body.find("\"code\":\"too_many_connections_per_ip\"") != std::string::npos);
  CHECK(fourth.wait_closed(2s));
  // Another address has its own count.
  Fd other = connect_from("127.0.0.2", gw.port());
  send_all(other.get(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(read_all_until_close(other.get()).starts_with("HTTP/1.1 200 OK\r\n"));
  // A freed slot is reused, once the gateway has seen the close: two connections left, and the
  // scrape's.
  open.pop_back();
  REQUIRE(wait_connections_active(gw.port(), 2 + 1));
  {
    Conn again(gw.port());
    CHECK(again.request(get_request("/healthz")).status == 200);
  }
  open.clear();
  REQUIRE(wait_connections_active(gw.port(), 1));
  CHECK(read_metric(gw.port(),
                    "ssegw_client_limit_rejections_total{limit=\"connections_per_ip\"}") == 1);
}

TEST_CASE("limits: publishes per client address are a token bucket with 429 and Retry-After") {
  Gateway gw("limits: {publish_rate_per_ip: 2, publish_burst_per_ip: 3}\n");
  Conn c(gw.port());
  auto post = [&](Conn& conn) {
    return conn.request(post_request("/v1/channels/rate/events", "x"));
  };
  for (int i = 0; i < 3; ++i) CHECK(post(c).status == 200);  // the burst
  Response limited = post(c);
  CHECK(limited.status == 429);
  CHECK(limited.header("retry-after") == "1");
  CHECK(limited.body.find("\"code\":\"rate_limited\"") != std::string::npos);
  // The connection stays usable, and 2 per second refill: one more after 600 ms, not two before
  // a full second (the wait is the point: a token must come back).
  std::this_thread::sleep_for(600ms);
  CHECK(post(c).status == 200);
  CHECK(post(c).status == 429);
  // Another address has its own bucket.
  Fd other = connect_from("127.0.0.2", gw.port());
  send_all(other.get(),
           "POST /v1/channels/rate/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
           "Connection: close\r\n\r\ny");
  CHECK(read_all_until_close(other.get()).starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(read_metric(gw.port(),
                    "ssegw_client_limit_rejections_total{limit=\"publish_rate_per_ip\"}") == 2);
  // Rejected publishes were not stored.
  CHECK(json_number(http_get(gw.port(), "/v1/channels/rate").body, "retained") == 5);
}
