// Upstream framing and failures on routes: what a client learns of a failed upstream.
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

std::string route_yaml(const std::string& path, const std::string& extra = "") {
  return "  - {path: " + path + ", upstream: llm" + extra + "}\n";
}

const std::string kChat = "/v1/chat/completions";
const std::string kPlainBody = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

// A loopback port with nothing listening on it.
uint16_t closed_port() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  return ntohs(addr.sin_port);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// What a client learns of a failed upstream

TEST_CASE("upstream framing: a 502 names no upstream address; the log line does") {
  const uint16_t port = closed_port();
  const std::string port_text = std::to_string(port);
  Gateway gw("upstreams:\n  llm: {url: \"http://127.0.0.1:" + port_text +
             "\", connect_timeout: 2s}\nroutes:\n" + route_yaml(kChat));
  Conn c(gw.port());
  Response r = c.request(post_request(kChat, kPlainBody));
  INFO("response: \"", printable(r.raw), "\"");
  CHECK(r.status == 502);
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.body ==
        "{\"error\":{\"code\":\"upstream_unavailable\",\"message\":\"the upstream could not be "
        "reached (connect)\"}}\n");
  CHECK(r.raw.find("127.0.0.1") == std::string::npos);
  CHECK(r.raw.find(port_text) == std::string::npos);
  const std::string line =
      wait_log_line(gw, {"upstream request failed", "\"failure\":\"connect\""});
  INFO("log line: ", line);
  CHECK(line.find("\"level\":\"warn\"") != std::string::npos);
  CHECK(line.find("\"upstream\":\"llm\"") != std::string::npos);
  CHECK(line.find("\"route\":\"/v1/chat/completions\"") != std::string::npos);
  CHECK(line.find("127.0.0.1:" + port_text) != std::string::npos);
  CHECK(c.request(get_request("/healthz")).status == 200);
}
