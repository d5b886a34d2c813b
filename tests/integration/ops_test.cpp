// /healthz, /readyz, /metrics, CORS and the command line (docs/protocol.md, docs/operations.md).
#include <unistd.h>

#include <regex>
#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

std::string regex_escape(const std::string& s) {
  static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
  return std::regex_replace(s, special, R"(\$&)");
}

// True when output names path:line:column.
bool names_position(const std::string& output, const std::string& path, int line) {
  return std::regex_search(output,
                           std::regex(regex_escape(path) + ":" + std::to_string(line) + ":[0-9]+"));
}

}  // namespace

TEST_CASE("ops: healthz and readyz answer 200") {
  Gateway gw;
  Conn c(gw.port());
  CHECK(c.request(get_request("/healthz")).status == 200);
  CHECK(c.request(get_request("/readyz")).status == 200);
  CHECK(c.request(get_request("/healthz")).status == 200);
}

TEST_CASE("ops: metrics names types and values") {
  Gateway gw;
  const std::string ch = "metrics-chan-xyz";
  SseStream a(gw.port(), ch), b(gw.port(), ch);
  a.expect_ok();
  b.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), ch, 2) == 2);
  std::vector<std::string> ids;
  size_t frame_bytes = 0, chunk_bytes = 0;
  {
    Publisher pub(gw.port());
    for (int i = 0; i < 3; ++i) {
      std::string data = "value " + std::to_string(i);
      ids.push_back(pub.publish(ch, data));
      frame_bytes += sse_frame(ids.back(), data).size();
      chunk_bytes += chunk(sse_frame(ids.back(), data)).size();
    }
  }
  for (int i = 0; i < 3; ++i) {
    CHECK(a.expect_event().id == ids[i]);
    CHECK(b.expect_event().id == ids[i]);
  }

  Response r = http_get(gw.port(), "/metrics");
  CHECK(r.status == 200);
  INFO("content-type: ", r.header("content-type"));
  CHECK(r.header("content-type").rfind("text/plain", 0) == 0);
  CHECK(r.header("content-type").find("version=0.0.4") != std::string::npos);
  const std::vector<std::pair<std::string, std::string>> families = {
      {"ssegw_connections_active", "gauge"},
      {"ssegw_subscribers_active", "gauge"},
      {"ssegw_channels_active", "gauge"},
      {"ssegw_http_requests_total", "counter"},
      {"ssegw_events_published_total", "counter"},
      {"ssegw_events_delivered_total", "counter"},
      {"ssegw_delivered_bytes_total", "counter"},
      {"ssegw_replayed_events_total", "counter"},
      {"ssegw_replay_gaps_total", "counter"},
      {"ssegw_slow_consumer_disconnects_total", "counter"},
      {"ssegw_publish_fanout_seconds", "histogram"},
      {"ssegw_backplane_errors_total", "counter"},
      {"ssegw_backplane_reconnects_total", "counter"},
      {"ssegw_backplane_links_up", "gauge"},
      {"process_resident_memory_bytes", "gauge"},
      {"process_open_fds", "gauge"},
      {"process_cpu_seconds_total", "counter"},
  };
  for (auto& [name, type] : families) {
    CAPTURE(name);
    CHECK(r.body.find("# TYPE " + name + " " + type + "\n") != std::string::npos);
  }
  // No label carries a channel name.
  CHECK(r.body.find(ch) == std::string::npos);

  const uint16_t port = gw.port();
  CHECK(wait_metric(port, "ssegw_events_published_total", 3) == 3);
  CHECK(wait_metric(port, "ssegw_events_delivered_total", 6) == 6);
  CHECK(wait_metric(port, "ssegw_subscribers_active", 2) == 2);
  CHECK(wait_metric(port, "ssegw_channels_active", 1) == 1);
  // The two streams and the /metrics request itself.
  CHECK(wait_metric(port, "ssegw_connections_active", 3) == 3);
  CHECK(wait_metric(port, "ssegw_publish_fanout_seconds_count", 3) == 3);
  CHECK(read_metric(port, "ssegw_slow_consumer_disconnects_total") == 0);
  CHECK(read_metric(port, "ssegw_replayed_events_total") == 0);
  CHECK(read_metric(port, "ssegw_replay_gaps_total") == 0);
  CHECK(read_metric(port, "ssegw_backplane_errors_total") == 0);  // in memory: no backplane
  CHECK(read_metric(port, "ssegw_backplane_links_up") == 0);
  auto bytes = read_metric(port, "ssegw_delivered_bytes_total");
  REQUIRE(bytes.has_value());
  CHECK(*bytes >= 2.0 * frame_bytes);
  CHECK(*bytes <= 2.0 * (chunk_bytes + chunk("retry: 2000\n\n").size()));

  std::string text = http_get(port, "/metrics").body;
  // Both labels of docs/operations.md#metrics: {route,code}.
  CHECK(std::regex_search(text, std::regex(R"(\nssegw_http_requests_total\{)"
                                           R"((code="200",route="[^"]+"|route="[^"]+",code="200"))"
                                           R"(\} [0-9])")));
  CHECK(metric_value(text, "process_open_fds").value_or(0) >= 3);
  CHECK(metric_value(text, "process_resident_memory_bytes").value_or(0) > 1e6);
  CHECK(metric_value(text, "process_cpu_seconds_total").value_or(-1) >= 0);

  a.close();
  b.close();
  CHECK(wait_metric(port, "ssegw_subscribers_active", 0) == 0);
  CHECK(wait_metric(port, "ssegw_connections_active", 1) == 1);
}

TEST_CASE("ops: metrics pass promtool check metrics") {
  const std::string promtool = "/usr/bin/promtool";
  if (::access(promtool.c_str(), X_OK) != 0) {
    MESSAGE("promtool is not installed (Debian package prometheus); skipped");
    return;
  }
  Gateway gw;
  // Exercise every family first so that labelled series exist.
  SseStream s(gw.port(), "p");
  s.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), "p", 1) == 1);
  publish(gw.port(), "p", "x");
  s.expect_event();
  http_get(gw.port(), "/nope");
  std::string text = http_get(gw.port(), "/metrics").body;
  ProcessResult r = run_process({promtool, "check", "metrics"}, text);
  INFO("promtool: ", r.output);
  CHECK(r.status == 0);
  CHECK(r.output == "");
}

TEST_CASE("cors: preflight and stream headers for a listed origin") {
  Gateway gw("cors: {allow_origins: [\"http://a.example\"]}\n");
  Response r = http(gw.port(),
                    "OPTIONS /v1/channels/a/events HTTP/1.1\r\nHost: x\r\n"
                    "Origin: http://a.example\r\nAccess-Control-Request-Method: GET\r\n"
                    "Access-Control-Request-Headers: last-event-id\r\n\r\n");
  INFO("preflight: \"", printable(r.raw), "\"");
  CHECK(r.status == 204);
  CHECK(r.body.empty());
  CHECK(r.header("access-control-allow-origin") == "http://a.example");
  CHECK(r.header("access-control-allow-credentials") == "true");
  auto headers = split_list(lower(r.header("access-control-allow-headers")));
  CHECK(headers.count("last-event-id") == 1);
  CHECK(headers.count("authorization") == 1);
  auto methods = split_list(r.header("access-control-allow-methods"));
  CHECK(methods.count("GET") == 1);
  CHECK(methods.count("POST") == 1);

  // The stream carries the CORS headers after the fixed ones.
  SseStream s(gw.port(), "a", {.extra_headers = "Origin: http://a.example\r\n"});
  s.expect_ok();
  const std::string& head = s.head().head;
  INFO("stream head: \"", printable(head), "\"");
  CHECK(head.substr(0, kHead11.size() - 2) == kHead11.substr(0, kHead11.size() - 2));
  CHECK(head.find("\r\nAccess-Control-Allow-Origin: http://a.example\r\n") != std::string::npos);
  CHECK(head.find("\r\nAccess-Control-Allow-Credentials: true\r\n") != std::string::npos);

  Response p =
      http(gw.port(), post_request("/v1/channels/a/events", "x", "Origin: http://a.example\r\n"));
  CHECK(p.status == 200);
  CHECK(p.header("access-control-allow-origin") == "http://a.example");

  // An origin that is not listed gets no CORS grant, but CORS is not authentication.
  Response other = http(gw.port(),
                        "OPTIONS /v1/channels/a/events HTTP/1.1\r\nHost: x\r\n"
                        "Origin: http://b.example\r\nAccess-Control-Request-Method: GET\r\n\r\n");
  CHECK_FALSE(other.has("access-control-allow-origin"));
  SseStream foreign(gw.port(), "a", {.extra_headers = "Origin: http://b.example\r\n"});
  foreign.expect_ok();
  CHECK(foreign.head().head == kHead11);
  SseStream plain(gw.port(), "a");
  plain.expect_ok();
  CHECK(plain.head().head == kHead11);
}

TEST_CASE("cors: wildcard origin") {
  Gateway gw("cors: {allow_origins: [\"*\"]}\n");
  Response r = http(gw.port(),
                    "OPTIONS /v1/channels/a/events HTTP/1.1\r\nHost: x\r\n"
                    "Origin: http://any.example\r\nAccess-Control-Request-Method: POST\r\n"
                    "Access-Control-Request-Headers: authorization\r\n\r\n");
  CHECK(r.status == 204);
  CHECK(r.header("access-control-allow-origin") == "*");
  CHECK_FALSE(r.has("access-control-allow-credentials"));
  CHECK(split_list(lower(r.header("access-control-allow-headers"))).count("authorization") == 1);
  SseStream s(gw.port(), "a", {.extra_headers = "Origin: http://any.example\r\n"});
  s.expect_ok();
  CHECK(s.head().head.find("\r\nAccess-Control-Allow-Origin: *\r\n") != std::string::npos);
}

TEST_CASE(
    "config: --check-config exits 2 with file:line:col for a bad file and 0 for the default") {
  ProcessResult good = run_ssegw({"--check-config", SSEGW_SOURCE_DIR "/config/gateway.yaml"});
  INFO("output: ", good.output);
  CHECK(good.status == 0);

  struct Bad {
    std::string text;
    int line;  // 0: a syntax error, reported where yaml-cpp noticed it
  };
  const std::vector<Bad> bad = {
      {"listen: 127.0.0.1:0\nhistroy:\n  max_events: 5\n", 2},
      {"listen: 127.0.0.1:0\nretry: 2s\nheartbeat: banana\n", 3},
      {"limits:\n  max_header_bytes: 16KiB\n  max_event_bytes: 12 parsecs\n", 3},
      {"workers: 1\nhistory: {max_events: 5, max_bytes: lots}\n", 2},
      {"log: {level: info}\ncors: {allow_origins: [\"http://a\"\n", 0},
  };
  for (auto& b : bad) {
    std::string path = write_temp_file(b.text);
    ProcessResult r = run_ssegw({"--check-config", path});
    CAPTURE(b.text);
    INFO("output: ", r.output);
    CHECK(r.status == 2);
    if (b.line == 0) {
      CHECK(std::regex_search(r.output, std::regex(regex_escape(path) + ":[0-9]+:[0-9]+")));
    } else {
      CHECK(names_position(r.output, path, b.line));
    }
    // Starting with the same file fails the same way, without listening.
    ProcessResult run = run_ssegw({"--config", path});
    CHECK(run.status == 2);
    CHECK(run.output.find("\"listening\"") == std::string::npos);
    ::unlink(path.c_str());
  }
  ProcessResult missing = run_ssegw({"--check-config", "/nonexistent/ssegw.yaml"});
  CHECK(missing.status == 2);
  CHECK(missing.output.find("/nonexistent/ssegw.yaml") != std::string::npos);
}

TEST_CASE("config: --listen overrides the file") {
  Gateway gw(GatewayOptions{.yaml = "listen: 127.0.0.1:1\n",
                            .args = {"--listen", "127.0.0.1:0"},
                            .listen_any_port = false});
  CHECK(gw.port() != 1);
  CHECK(gw.first_line().find("\"addr\":\"127.0.0.1:" + std::to_string(gw.port()) + "\"") !=
        std::string::npos);
  CHECK(http_get(gw.port(), "/healthz").status == 200);
}

TEST_CASE("ops: --version prints the project version and exits 0, --help lists it") {
  ProcessResult version = run_ssegw({"--version"});
  INFO("output: ", version.output);
  CHECK(version.status == 0);
  CHECK(version.output == "ssegw " SSEGW_VERSION "\n");  // CMake's project(VERSION)
  CHECK(std::regex_match(version.output, std::regex("ssegw [0-9]+\\.[0-9]+\\.[0-9]+\n")));
  ProcessResult help = run_ssegw({"--help"});
  CHECK(help.status == 0);
  CHECK(help.output.find("  --version ") != std::string::npos);
}
