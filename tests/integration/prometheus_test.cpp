// A real Prometheus server (Debian's prometheus package) scrapes ssegw on loopback, and its HTTP
// query API must return the values that the traffic of the test implies (issue 5, item 2).
// `promtool check metrics` on /metrics is covered by ops_test.cpp.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

const char* const kPrometheus = "/usr/bin/prometheus";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// One prometheus server with its own config, TSDB folder and log file, all in a temporary
// folder that the destructor removes after killing the server. It listens on a ReservedPort
// (Go's listeners set SO_REUSEADDR), which nothing else can take before it binds.
class Prometheus {
 public:
  explicit Prometheus(uint16_t target_port) {
    char dir_template[] = "/tmp/ssegw-prometheus-XXXXXX";
    if (!::mkdtemp(dir_template)) {
      throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
    }
    dir_ = dir_template;
    const std::string config_path = dir_ + "/prometheus.yml";
    std::ofstream(config_path) << "global:\n"
                                  "  scrape_interval: 1s\n"
                                  "  scrape_timeout: 1s\n"
                                  "  evaluation_interval: 1s\n"
                                  "scrape_configs:\n"
                                  "  - job_name: ssegw\n"
                                  "    static_configs:\n"
                                  "      - targets: [\"127.0.0.1:"
                               << target_port << "\"]\n";
    log_path_ = dir_ + "/prometheus.log";
    std::vector<std::string> args = {
        kPrometheus,
        "--config.file=" + config_path,
        "--storage.tsdb.path=" + dir_ + "/data",
        "--web.listen-address=127.0.0.1:" + std::to_string(port()),
        "--log.level=warn",
    };
    spawn(args);
  }

  ~Prometheus() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  Prometheus(const Prometheus&) = delete;
  Prometheus& operator=(const Prometheus&) = delete;

  uint16_t port() const { return port_.port(); }
  std::string log() const { return read_file(log_path_); }

  // True when the server is still running. Reaps it when it has exited.
  bool running() {
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == 0) return true;
    pid_ = -1;
    return false;
  }

  // Waits for GET /-/ready to answer 200. False on timeout or when the server exits.
  bool wait_ready(Ms timeout) {
    bool ready = false;
    wait_until(
        [&] {
          if (!running()) return true;
          try {
            ready = http_get(port(), "/-/ready", 1s).status == 200;
          } catch (const std::exception&) {
            // Not listening yet.
          }
          return ready;
        },
        timeout, 100ms);
    return ready;
  }

  // The body of GET /api/v1/query?query=expr (expr needs no URL escaping here).
  std::string query(const std::string& expr) {
    Response r = http_get(port(), "/api/v1/query?query=" + expr, 2s);
    if (r.status != 200) {
      throw std::runtime_error("query " + expr + ": status " + std::to_string(r.status) + ": " +
                               r.body);
    }
    return r.body;
  }

 private:
  void spawn(std::vector<std::string> all) {
    Fd log(::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!log) throw std::runtime_error("open " + log_path_ + ": " + std::strerror(errno));
    pid_ = spawn_process(std::move(all), -1, log.get(), log.get());
  }

  std::string dir_;
  std::string log_path_;
  ReservedPort port_;
  pid_t pid_ = -1;
};

// The value of a single-sample instant-vector answer:
// {"status":"success","data":{"resultType":"vector","result":[{"metric":{...},"value":[t,"30"]}]}}
// nullopt while the result is empty (no scrape yet) or holds more than one series.
std::optional<double> single_value(const std::string& json) {
  if (json.find("\"status\":\"success\"") == std::string::npos) return std::nullopt;
  const std::string key = "\"value\":[";
  size_t at = json.find(key);
  if (at == std::string::npos || json.find(key, at + 1) != std::string::npos) return std::nullopt;
  size_t open = json.find(",\"", at + key.size());
  if (open == std::string::npos) return std::nullopt;
  size_t close = json.find('"', open + 2);
  if (close == std::string::npos) return std::nullopt;
  return std::strtod(json.substr(open + 2, close - open - 2).c_str(), nullptr);
}

}  // namespace

TEST_CASE("prometheus: a real server scrapes ssegw and its query API holds the traffic's counts") {
  if (::access(kPrometheus, X_OK) != 0) {
    MESSAGE("prometheus is not installed (Debian package prometheus); skipped");
    return;
  }
  const auto started = Clock::now();
  Gateway gw;
  Prometheus prom(gw.port());
  INFO("prometheus log:\n", prom.log());
  REQUIRE_MESSAGE(prom.wait_ready(15s), "prometheus did not become ready; log:\n", prom.log());

  // 3 subscribers, 10 events: 30 deliveries.
  const std::string ch = "prom-traffic";
  std::vector<SseStream> subs;
  for (int i = 0; i < 3; ++i) subs.emplace_back(gw.port(), ch);
  for (auto& s : subs) s.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), ch, 3) == 3);
  std::vector<std::string> ids;
  {
    Publisher pub(gw.port());
    for (int i = 0; i < 10; ++i) ids.push_back(pub.publish(ch, "event " + std::to_string(i)));
  }
  for (auto& s : subs) {
    for (int i = 0; i < 10; ++i) CHECK(s.expect_event().id == ids[i]);
  }
  // The gateway's own view first, so that a mismatch below is Prometheus's, not the traffic's.
  REQUIRE(wait_metric(gw.port(), "ssegw_events_delivered_total", 30) == 30);
  REQUIRE(wait_metric(gw.port(), "ssegw_subscribers_active", 3) == 3);

  // Prometheus scrapes every second; poll its query API until a scrape after the traffic lands.
  std::optional<double> delivered, active;
  std::string delivered_json, active_json, up_json;
  wait_until(
      [&] {
        delivered_json = prom.query("ssegw_events_delivered_total");
        active_json = prom.query("ssegw_subscribers_active");
        delivered = single_value(delivered_json);
        active = single_value(active_json);
        return delivered == 30.0 && active == 3.0;
      },
      20s, 250ms);
  up_json = prom.query("up");
  INFO("ssegw_events_delivered_total: ", delivered_json);
  INFO("ssegw_subscribers_active: ", active_json);
  INFO("up: ", up_json);
  CHECK(delivered == 30.0);
  CHECK(active == 3.0);
  // The scrape target is healthy and labelled as configured.
  CHECK(up_json.find("\"job\":\"ssegw\"") != std::string::npos);
  CHECK(single_value(up_json) == 1.0);
  CHECK(prom.running());
  MESSAGE("real Prometheus check took ",
          std::chrono::duration_cast<Ms>(Clock::now() - started).count(), " ms");
}
