// `ssegw --probe URL`, the container health check (docker/Dockerfile's HEALTHCHECK): exit 0 on a
// 2xx answer, 1 otherwise with one line on stderr, everything within 2 s.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

// Accepts one connection, reads the request head and writes answer; returns the request.
std::string answer_once(int listen_fd, const std::string& answer) {
  Fd c(accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
  if (!c) return "";
  timeval tv{5, 0};
  setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string request;
  char buf[2048];
  while (request.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = recv(c.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    request.append(buf, static_cast<size_t>(n));
  }
  (void)!write(c.get(), answer.data(), answer.size());
  return request;
}

ProcessResult probe(const std::string& url) {
  return run_ssegw({"--probe", url});
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// The exec-form argv of the Dockerfile's HEALTHCHECK instruction ("HEALTHCHECK [OPTIONS] CMD
// [...]"), continuation lines joined.
std::vector<std::string> dockerfile_healthcheck() {
  std::ifstream in(SSEGW_SOURCE_DIR "/docker/Dockerfile");
  REQUIRE(in.good());
  std::string line, logical;
  std::vector<std::string> argv;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\\') {
      logical += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    logical += line;
    std::smatch m;
    static const std::regex hc(R"(^\s*HEALTHCHECK\b.*\bCMD\s*\[(.*)\]\s*$)", std::regex::icase);
    if (std::regex_match(logical, m, hc)) {
      static const std::regex item(R"re("((?:[^"\\]|\\.)*)")re");
      std::string list = m[1];
      for (auto it = std::sregex_iterator(list.begin(), list.end(), item);
           it != std::sregex_iterator(); ++it)
        argv.push_back((*it)[1]);
    }
    logical.clear();
  }
  return argv;
}

}  // namespace

TEST_CASE("probe: 0 on /healthz, 1 on a 404 and on a closed port") {
  Gateway gw;
  const std::string base = "http://127.0.0.1:" + std::to_string(gw.port());

  ProcessResult ok = probe(base + "/healthz");
  INFO("output: ", ok.output);
  CHECK(ok.status == 0);
  CHECK(ok.output.empty());

  ProcessResult missing = probe(base + "/no-such-path");
  INFO("output: ", missing.output);
  CHECK(missing.status == 1);
  CHECK(count_lines(missing.output) == 1);
  CHECK(missing.output.find("HTTP 404") != std::string::npos);

  // Bound but not listening: the kernel refuses the connection, and the port stays ours.
  const LoopbackSocket closed = bind_loopback();
  ProcessResult refused = probe("http://127.0.0.1:" + std::to_string(closed.port) + "/healthz");
  INFO("output: ", refused.output);
  CHECK(refused.status == 1);
  CHECK(count_lines(refused.output) == 1);
  CHECK(refused.output.find("connect") != std::string::npos);
}

TEST_CASE("probe: the Dockerfile's HEALTHCHECK command passes against a running gateway") {
  std::vector<std::string> argv = dockerfile_healthcheck();
  REQUIRE(argv.size() == 3);
  CHECK(argv[0] == "/usr/local/bin/ssegw");  // where the runtime stage copies the binary
  REQUIRE(argv[1] == "--probe");
  // The image listens on 0.0.0.0:8080; the test gateway on 127.0.0.1:0.
  const std::string image_url = "http://127.0.0.1:8080/healthz";
  REQUIRE(argv[2] == image_url);
  Gateway gw;
  std::string url = "http://127.0.0.1:" + std::to_string(gw.port()) + "/healthz";
  ProcessResult r = run_ssegw({argv[1], url});
  INFO("output: ", r.output);
  CHECK(r.status == 0);
}

TEST_CASE("probe: any 2xx passes, and other statuses, garbage and early close fail") {
  struct Case {
    std::string answer;
    int status;
    std::string says;  // in the failure line
  };
  const std::vector<Case> cases = {
      {"HTTP/1.1 204 No Content\r\n\r\n", 0, ""},
      {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, ""},
      {"HTTP/1.1 299\r\n\r\n", 0, ""},
      {"HTTP/1.1 301 Moved Permanently\r\nLocation: /\r\n\r\n", 1, "HTTP 301"},
      {"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", 1, "HTTP 503"},
      {"SSH-2.0-OpenSSH_9.2\r\n", 1, "malformed status line"},
      {"", 1, "closed the connection without answering"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.answer);
    LoopbackSocket server = bind_loopback(1);
    std::string request;
    std::thread t([&] { request = answer_once(server.fd.get(), c.answer); });
    ProcessResult r = probe("http://127.0.0.1:" + std::to_string(server.port) + "/healthz");
    t.join();
    INFO("output: ", r.output);
    CHECK(r.status == c.status);
    if (c.status == 0) {
      CHECK(r.output.empty());
    } else {
      CHECK(count_lines(r.output) == 1);
      CHECK(r.output.find(c.says) != std::string::npos);
    }
    // One HTTP/1.1 GET of the path with the Host as written in the URL.
    CHECK(request.rfind(
              "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server.port) + "\r\n",
              0) == 0);
  }
}

TEST_CASE("probe: a server that accepts and never answers fails after 2 s") {
  // The kernel completes the handshake from the backlog; nobody ever reads or writes.
  LoopbackSocket silent = bind_loopback(4);
  auto start = Clock::now();
  ProcessResult r = probe("http://127.0.0.1:" + std::to_string(silent.port) + "/healthz");
  auto elapsed = std::chrono::duration_cast<Ms>(Clock::now() - start);
  INFO("output: ", r.output, " elapsed ms: ", elapsed.count());
  CHECK(r.status == 1);
  CHECK(r.output.find("timed out after 2s") != std::string::npos);
  CHECK(elapsed >= 1900ms);  // its 2 s timeout, not earlier; run_process kills it after 10 s
}

TEST_CASE("probe: URLs other than http://HOST[:PORT][/PATH] fail with status 1") {
  for (const std::string url :
       {"https://127.0.0.1:8080/healthz", "127.0.0.1:8080/healthz", "http://", "http://:8080/",
        "http://127.0.0.1:0/", "http://127.0.0.1:99999/", "http://127.0.0.1:80a/",
        "http://user@127.0.0.1:8080/", "http://[::1/", "http://127.0.0.1:8080/a b"}) {
    CAPTURE(url);
    ProcessResult r = probe(url);
    INFO("output: ", r.output);
    CHECK(r.status == 1);
    CHECK(count_lines(r.output) == 1);
    CHECK(r.output.rfind("ssegw: probe ", 0) == 0);
  }
  // A missing URL is a usage error, like every other missing argument.
  CHECK(run_ssegw({"--probe"}).status == 2);
}
