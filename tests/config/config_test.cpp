#include "config/config.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

using namespace ssegw;

using namespace std::chrono_literals;

namespace {

// The message of the config::Error that `load_string(text, "t.yaml")` throws, or "" if none.
std::string load_error(const std::string& text) {
  try {
    config::load_string(text, "t.yaml");
  } catch (const config::Error& e) {
    return e.what();
  }
  return "";
}

// Sets an environment variable for one test and restores the old value afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("config: durations") {
  CHECK(config::parse_duration("250ms") == 250ms);
  CHECK(config::parse_duration("15s") == 15s);
  CHECK(config::parse_duration("10m") == 10min);
  CHECK(config::parse_duration("1h") == 1h);
  CHECK(config::parse_duration("2") == 2s);  // bare number: seconds
  CHECK(config::parse_duration("0") == 0ms);
  CHECK(config::parse_duration("0ms") == 0ms);
  CHECK(config::parse_duration("007s") == 7s);
  // The largest value that fits in milliseconds, and one past it.
  CHECK(config::parse_duration("9223372036854775807ms").count() == INT64_MAX);
  CHECK_THROWS_AS(config::parse_duration("9223372036854775808ms"), config::Error);

  for (const char* bad : {"", "s", "ms", "abc", "15 s", " 15s", "15s ", "-1s", "+1s", "1.5s", "15S",
                          "15sec", "1d", "1m30s", "0x10", "99999999999999999999",
                          "2562047788016h",  // * 3600000 overflows int64 milliseconds
                          "18446744073709551616"}) {
    std::string input = bad;
    CAPTURE(input);
    CHECK_THROWS_AS(config::parse_duration(bad), config::Error);
  }
  CHECK_THROWS_WITH(config::parse_duration("15 s"),
                    "invalid duration '15 s': expected a whole number with unit ms, s, m or h, "
                    "such as 250ms or 15s");
  CHECK_THROWS_WITH(config::parse_duration("2562047788016h"),
                    "duration '2562047788016h' is too large");
  CHECK(config::parse_duration("2562047788015h") == 2562047788015h);
}

TEST_CASE("config: sizes") {
  CHECK(config::parse_size("0") == 0);
  CHECK(config::parse_size("512") == 512);
  CHECK(config::parse_size("512B") == 512);
  CHECK(config::parse_size("16KiB") == 16 * 1024);
  CHECK(config::parse_size("1MiB") == 1024 * 1024);
  CHECK(config::parse_size("8MiB") == 8ull << 20);
  CHECK(config::parse_size("1GiB") == 1ull << 30);
  CHECK(config::parse_size("10KB") == 10'000);
  CHECK(config::parse_size("2MB") == 2'000'000);
  CHECK(config::parse_size("3GB") == 3'000'000'000ull);
  CHECK(config::parse_size("18446744073709551615") == UINT64_MAX);
  CHECK(config::parse_size("17179869183GiB") == 17179869183ull << 30);

  for (const char* bad : {"", "KiB", "abc", "1 MiB", "-1", "1.5MiB", "1kib", "1K", "1Ki", "1M",
                          "1TiB", "1MiBs", "18446744073709551616", "17179869184GiB"}) {
    std::string input = bad;
    CAPTURE(input);
    CHECK_THROWS_AS(config::parse_size(bad), config::Error);
  }
  CHECK_THROWS_WITH(config::parse_size("17179869184GiB"), "size '17179869184GiB' is too large");
}

TEST_CASE("config: listen addresses") {
  std::string host;
  uint16_t port = 1;
  config::parse_listen("127.0.0.1:8080", host, port);
  CHECK(host == "127.0.0.1");
  CHECK(port == 8080);
  config::parse_listen("0.0.0.0:0", host, port);
  CHECK(host == "0.0.0.0");
  CHECK(port == 0);
  config::parse_listen("localhost:80", host, port);
  CHECK(host == "localhost");
  CHECK(port == 80);
  config::parse_listen("[::1]:8080", host, port);
  CHECK(host == "::1");
  CHECK(port == 8080);
  config::parse_listen("[::]:0", host, port);
  CHECK(host == "::");
  CHECK(port == 0);
  config::parse_listen("h:65535", host, port);
  CHECK(port == 65535);

  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":8080", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:http", "127.0.0.1:80x", "::1:8080", "[::1]", "[::1]8080",
                          "[::1:8080", "[]:80", "a b:80", "127.0.0.1:99999999999999999999"}) {
    std::string input = bad;
    CAPTURE(input);
    host = "unchanged";
    CHECK_THROWS_AS(config::parse_listen(bad, host, port), config::Error);
    CHECK(host == "unchanged");
  }
  CHECK_THROWS_WITH(config::parse_listen("127.0.0.1", host, port),
                    "invalid listen address '127.0.0.1': expected \"HOST:PORT\" (the port is "
                    "missing)");
}

TEST_CASE("config: environment expansion") {
  ScopedEnv a("SSEGW_TEST_A", "alpha");
  ScopedEnv unset("SSEGW_TEST_UNSET", nullptr);
  CHECK(config::expand_env("plain") == "plain");
  CHECK(config::expand_env("") == "");
  CHECK(config::expand_env("${SSEGW_TEST_A}") == "alpha");
  CHECK(config::expand_env("x-${SSEGW_TEST_A}-${SSEGW_TEST_A}-y") == "x-alpha-alpha-y");
  CHECK(config::expand_env("${SSEGW_TEST_UNSET}") == "");
  CHECK(config::expand_env("$${SSEGW_TEST_A}") == "${SSEGW_TEST_A}");
  // Scanning is left to right: the "$${" starting at the second "$" is the escape.
  CHECK(config::expand_env("$$${SSEGW_TEST_A}") == "$${SSEGW_TEST_A}");
  CHECK(config::expand_env("cost $5 {x} $") == "cost $5 {x} $");
  CHECK(config::expand_env("$SSEGW_TEST_A") == "$SSEGW_TEST_A");  // only the braced form
  CHECK_THROWS_WITH(config::expand_env("a${SSEGW_TEST_A"),
                    "unterminated \"${\" in 'a${SSEGW_TEST_A'");
  CHECK_THROWS_AS(config::expand_env("${}"), config::Error);
  CHECK_THROWS_AS(config::expand_env("${1X}"), config::Error);
  CHECK_THROWS_AS(config::expand_env("${A-B}"), config::Error);
}

TEST_CASE("config: environment expansion happens before parsing") {
  ScopedEnv port("SSEGW_TEST_PORT", "9090");
  ScopedEnv ttl("SSEGW_TEST_TTL", "30s");
  ScopedEnv token("SSEGW_TEST_TOKEN", "s3cret");
  ScopedEnv bad("SSEGW_TEST_BAD", "soon");
  ScopedEnv unset("SSEGW_TEST_UNSET", nullptr);

  config::Config c = config::load_string(
      "listen: 127.0.0.1:${SSEGW_TEST_PORT}\n"
      "history: { ttl: \"${SSEGW_TEST_TTL}\" }\n"
      "auth:\n"
      "  publish_tokens: [\"${SSEGW_TEST_TOKEN}\", \"literal-$${X}\"]\n",
      "t.yaml");
  CHECK(c.listen_port == 9090);
  CHECK(c.history.ttl == 30s);
  CHECK(c.auth.publish_tokens == std::vector<std::string>{"s3cret", "literal-${X}"});

  CHECK(load_error("retry: ${SSEGW_TEST_BAD}\n") ==
        "t.yaml:1:8: retry: invalid duration 'soon': expected a whole number with unit ms, s, m "
        "or h, such as 250ms or 15s");
  // An unset variable must not become an empty token that matches "Authorization: Bearer ".
  CHECK(load_error("auth:\n  publish_tokens:\n    - ${SSEGW_TEST_UNSET}\n") ==
        "t.yaml:3:7: auth.publish_tokens[0]: empty string (is the environment variable set?)");
  CHECK(load_error("log: { level: \"${oops\" }\n") ==
        "t.yaml:1:15: log.level: unterminated \"${\" in '${oops'");
}

TEST_CASE("config: defaults from empty text") {
  for (const char* text : {"", "\n", "# only a comment\n", "---\n", "~\n"}) {
    std::string input = text;
    CAPTURE(input);
    config::Config c = config::load_string(text, "empty.yaml");
    CHECK(c.source_file == "empty.yaml");
    CHECK(c.listen_host == "127.0.0.1");
    CHECK(c.listen_port == 8080);
    CHECK(c.workers == 1);
    CHECK(c.retry == 2s);
    CHECK(c.heartbeat == 15s);
    CHECK(c.shutdown_grace == 5s);
    CHECK(c.history.max_events == 1000);
    CHECK(c.history.max_bytes == 8ull << 20);
    CHECK(c.history.ttl == 10min);
    CHECK(c.slow_consumer.max_queued_bytes == 1ull << 20);
    CHECK(c.limits.max_connections == 50000);
    CHECK(c.limits.max_channels == 100000);
    CHECK(c.limits.max_header_bytes == 16 * 1024);
    CHECK(c.limits.max_event_bytes == 1024 * 1024);
    CHECK(c.limits.header_timeout == 10s);
    CHECK(c.limits.idle_timeout == 60s);
    CHECK(c.cors.allow_origins.empty());
    CHECK(c.auth.publish_tokens.empty());
    CHECK(c.log.level == "info");
    CHECK(c.demo.enabled == false);
  }
  // An empty section means "all defaults", as when every line under it is commented out.
  config::Config c = config::load_string("history:\nlimits:\ncors:\n  allow_origins:\n", "t.yaml");
  CHECK(c.history.max_events == 1000);
  CHECK(c.cors.allow_origins.empty());
}

TEST_CASE("config: a full file") {
  config::Config c = config::load_string(R"(
listen: "[::1]:0"
workers: 4
retry: 500ms
heartbeat: 1m
shutdown_grace: 0
history:   { max_events: 10, max_bytes: 64KiB, ttl: 1h }
slow_consumer: { max_queued_bytes: 256KB }
limits:
  max_connections: 10
  max_channels: 20
  max_header_bytes: 8KiB
  max_event_bytes: 4096
  header_timeout: 3s
  idle_timeout: 90
cors:  { allow_origins: ["*"] }
auth:
  publish_tokens:
    - one
    - two
log:   { level: debug }
demo:  { enabled: true }
)",
                                         "full.yaml");
  CHECK(c.source_file == "full.yaml");
  CHECK(c.listen_host == "::1");
  CHECK(c.listen_port == 0);
  CHECK(c.workers == 4);
  CHECK(c.retry == 500ms);
  CHECK(c.heartbeat == 1min);
  CHECK(c.shutdown_grace == 0ms);
  CHECK(c.history.max_events == 10);
  CHECK(c.history.max_bytes == 64 * 1024);
  CHECK(c.history.ttl == 1h);
  CHECK(c.slow_consumer.max_queued_bytes == 256'000);
  CHECK(c.limits.max_connections == 10);
  CHECK(c.limits.max_channels == 20);
  CHECK(c.limits.max_header_bytes == 8 * 1024);
  CHECK(c.limits.max_event_bytes == 4096);
  CHECK(c.limits.header_timeout == 3s);
  CHECK(c.limits.idle_timeout == 90s);
  CHECK(c.cors.allow_origins == std::vector<std::string>{"*"});
  CHECK(c.auth.publish_tokens == std::vector<std::string>{"one", "two"});
  CHECK(c.log.level == "debug");
  CHECK(c.demo.enabled == true);
}

TEST_CASE("config: history.max_total_bytes") {
  CHECK(config::load_string("", "t.yaml").history.max_total_bytes == 256ull << 20);
  CHECK(config::load_string("history:\n  max_total_bytes: 32MiB\n", "t.yaml")
            .history.max_total_bytes == 32ull << 20);
  CHECK(
      config::load_string("history: { max_total_bytes: 1GB }", "t.yaml").history.max_total_bytes ==
      1'000'000'000);
  CHECK(config::load_string("history: { max_total_bytes: 64GiB }", "t.yaml")
            .history.max_total_bytes == 64ull << 30);
  CHECK(load_error("history:\n  max_total_bytes: 0\n") ==
        "t.yaml:2:20: history.max_total_bytes: must be greater than 0");
  CHECK(load_error("history:\n  max_total_bytes: lots\n") ==
        "t.yaml:2:20: history.max_total_bytes: invalid size 'lots': expected a whole number of "
        "bytes, optionally with unit B, KiB, MiB, GiB, KB, MB or GB, such as 16KiB");
}

TEST_CASE("config: limits.max_sources") {
  CHECK(config::load_string("", "t.yaml").limits.max_sources == 1024);
  CHECK(config::load_string("limits:\n  max_sources: 3\n", "t.yaml").limits.max_sources == 3);
  CHECK(load_error("limits:\n  max_sources: 0\n") ==
        "t.yaml:2:16: limits.max_sources: must be greater than 0");
  CHECK(load_error("limits: { max_sources: many }\n") ==
        "t.yaml:1:24: limits.max_sources: expected a positive integer, got 'many'");
  CHECK(load_error("limits: { max_sources: 4294967296 }\n") ==
        "t.yaml:1:24: limits.max_sources: '4294967296' is too large (at most 4294967295)");
}

TEST_CASE("config: limits.max_channels_per_stream") {
  CHECK(config::load_string("", "t.yaml").limits.max_channels_per_stream == 64);
  CHECK(config::load_string("limits: { max_channels_per_stream: 256 }", "t.yaml")
            .limits.max_channels_per_stream == 256);
  CHECK(load_error("limits: { max_channels_per_stream: 0 }\n") ==
        "t.yaml:1:36: limits.max_channels_per_stream: must be greater than 0");
  CHECK(load_error("limits: { max_channels_per_stream: 257 }\n") ==
        "t.yaml:1:36: limits.max_channels_per_stream: '257' is too large (at most 256)");
}

TEST_CASE("config: workers") {
  CHECK(config::load_string("workers: 64", "t.yaml").workers == 64);
  uint32_t cores = std::thread::hardware_concurrency();
  uint32_t expected = cores == 0 ? 1 : (cores > 64 ? 64 : cores);
  CHECK(config::load_string("workers: auto", "t.yaml").workers == expected);
  CHECK(config::load_string("workers: \"auto\"", "t.yaml").workers == expected);
  CHECK(load_error("workers: 0") ==
        "t.yaml:1:10: workers: expected a number from 1 to 64 or "
        "auto, got '0'");
  CHECK(load_error("workers: 65") ==
        "t.yaml:1:10: workers: expected a number from 1 to 64 or "
        "auto, got '65'");
  CHECK(load_error("workers: -1") ==
        "t.yaml:1:10: workers: expected a number from 1 to 64 or "
        "auto, got '-1'");
  CHECK(load_error("workers: Auto") ==
        "t.yaml:1:10: workers: expected a number from 1 to 64 or "
        "auto, got 'Auto'");
}

TEST_CASE("config: unknown keys name the key and its position") {
  CHECK(load_error("history:\n  max_evnts: 5\n") == "t.yaml:2:3: unknown key 'max_evnts'");
  CHECK(load_error("listen: 127.0.0.1:8080\nworkers: 1\nhistroy:\n  max_events: 5\n") ==
        "t.yaml:3:1: unknown key 'histroy'");
  CHECK(load_error("limits: { max_conections: 1 }\n") ==
        "t.yaml:1:11: unknown key 'max_conections'");
  CHECK(load_error("demo:\n  enabled: true\n  extra: 1\n") == "t.yaml:3:3: unknown key 'extra'");
  // yaml-cpp keeps both copies of a repeated key; the second would silently win.
  CHECK(load_error("retry: 1s\nretry: 2s\n") == "t.yaml:2:1: duplicate key 'retry'");
}

TEST_CASE("config: upstreams, sources and routes") {
  setenv("SSEGW_TEST_KEY", "sk-test", 1);
  const std::string yaml =
      "upstreams:\n"
      "  llm: { url: \"http://127.0.0.1:9000/base/\", connect_timeout: 2s,\n"
      "         headers: { Authorization: \"Bearer ${SSEGW_TEST_KEY}\" } }\n"
      "  cloud: { url: \"https://api.example.com\", tls: { insecure_skip_verify: true } }\n"
      "sources:\n"
      "  - { channels: \"feed.*\", upstream: llm, path: \"/feed/{channel}\", format: ndjson,\n"
      "      idle_close: 0s }\n"
      "routes:\n"
      "  - { path: /v1/chat/completions, upstream: cloud, resumable: true, on_disconnect: "
      "continue }\n";
  config::Config c = config::load_string(yaml, "t.yaml");
  REQUIRE(c.upstreams.size() == 2);
  const config::UpstreamConfig& llm = c.upstreams[0];
  CHECK(llm.name == "llm");
  CHECK(!llm.tls);
  CHECK(llm.host == "127.0.0.1");
  CHECK(llm.port == 9000);
  CHECK(llm.base_path == "/base");
  CHECK(llm.connect_timeout == std::chrono::seconds(2));
  REQUIRE(llm.headers.size() == 1);
  CHECK(llm.headers[0].first == "Authorization");
  CHECK(llm.headers[0].second == "Bearer sk-test");
  const config::UpstreamConfig& cloud = c.upstreams[1];
  CHECK(cloud.tls);
  CHECK(cloud.port == 443);
  CHECK(cloud.host == "api.example.com");
  CHECK(cloud.tls_options.insecure_skip_verify);
  REQUIRE(c.sources.size() == 1);
  CHECK(c.sources[0].format == config::StreamFormat::kNdjson);
  CHECK(c.sources[0].idle_close.count() == 0);
  REQUIRE(c.routes.size() == 1);
  CHECK(c.routes[0].resumable);
  CHECK(c.routes[0].on_disconnect == config::DisconnectPolicy::kContinue);
  CHECK(c.find_upstream("cloud") == &c.upstreams[1]);
  CHECK(c.find_upstream("nope") == nullptr);
}

TEST_CASE("config: upstream, source and route errors") {
  CHECK(load_error("routes:\n  - { path: /x, upstream: nope }\n") ==
        "t.yaml:2:27: routes[0].upstream: unknown upstream 'nope'");
  CHECK(load_error("upstreams:\n  a: { url: \"ftp://x\" }\n") ==
        "t.yaml:2:13: upstreams.a.url: invalid upstream URL 'ftp://x': expected http:// or "
        "https://");
  CHECK(load_error("upstreams:\n  a: { connect_timeout: 1s }\n") ==
        "t.yaml:2:3: upstreams.a: missing key 'url'");
  CHECK(load_error("upstreams:\n  a: { url: \"http://h:1\", tls: { verify: 1 } }\n") ==
        "t.yaml:2:34: unknown key 'verify'");
  const std::string up = "upstreams: { a: { url: \"http://h:1\" } }\n";
  CHECK(load_error(up + "routes:\n  - { path: /v1/channels/x, upstream: a }\n") ==
        "t.yaml:3:13: routes[0].path: '/v1/channels/x' is a gateway path");
  CHECK(load_error(up + "routes:\n  - { path: /a, upstream: a, on_disconnect: continue }\n") ==
        "t.yaml:3:5: routes[0]: on_disconnect: continue needs resumable: true");
  CHECK(load_error(up +
                   "sources:\n  - { channels: \"x.*\", upstream: a, path: /f, format: xml }\n") ==
        "t.yaml:3:55: sources[0].format: expected sse or ndjson, got 'xml'");
  CHECK(load_error(up + "sources:\n  - { channels: \"x.*\", upstream: a }\n") ==
        "t.yaml:3:5: sources[0]: needs channels, upstream and path");
}

TEST_CASE("config: routes[].stall_timeout") {
  const std::string head = "upstreams: { a: { url: \"http://h:1\" } }\nroutes:\n";
  CHECK(config::load_string(head + "  - { path: /a, upstream: a }\n", "t.yaml")
            .routes[0]
            .stall_timeout == 60s);
  CHECK(
      config::load_string(head + "  - { path: /a, upstream: a, stall_timeout: 1500ms }\n", "t.yaml")
          .routes[0]
          .stall_timeout == 1500ms);
  CHECK(load_error(head + "  - { path: /a, upstream: a, stall_timeout: soon }\n") ==
        "t.yaml:3:45: routes[0].stall_timeout: invalid duration 'soon': expected a whole number "
        "with unit ms, s, m or h, such as 250ms or 15s");
  CHECK(load_error(head + "  - { path: /a, upstream: a,\n      stall_timeout: 0s }\n") ==
        "t.yaml:4:22: routes[0].stall_timeout: must be greater than 0");
  CHECK(load_error(head + "  - { path: /a, upstream: a, stall_timeout: [1s] }\n") ==
        "t.yaml:3:45: routes[0].stall_timeout: expected a duration such as 250ms or 15s, got a "
        "list");
}

TEST_CASE("config: glob_match") {
  CHECK(config::glob_match("feed.*", "feed.a"));
  CHECK(config::glob_match("feed.*", "feed."));
  CHECK_FALSE(config::glob_match("feed.*", "feed"));
  CHECK(config::glob_match("*", ""));
  CHECK(config::glob_match("a*b*c", "axxbyyc"));
  CHECK_FALSE(config::glob_match("a*b*c", "axxbyy"));
  CHECK(config::glob_match("exact", "exact"));
  CHECK_FALSE(config::glob_match("exact", "exactly"));
  CHECK(config::glob_match("**x", "abx"));
}

TEST_CASE("config: type and range errors name the line and column") {
  // Scalars where a map is expected and the reverse.
  CHECK(load_error("history: 5\n") == "t.yaml:1:10: history: expected a map, got a scalar");
  CHECK(load_error("retry:\n  a: 1\n") ==
        "t.yaml:2:3: retry: expected a duration such as 250ms or 15s, got a map");
  CHECK(load_error("retry: [1s]\n") ==
        "t.yaml:1:8: retry: expected a duration such as 250ms or 15s, got a list");
  CHECK(load_error("retry:\n") ==
        "t.yaml:1:1: retry: missing value, expected a duration such as 250ms or 15s");
  CHECK(load_error("[1, 2]\n") ==
        "t.yaml:1:1: the top level must be a map of settings, got a list");
  CHECK(load_error("just text\n") ==
        "t.yaml:1:1: the top level must be a map of settings, got a scalar");

  // Numbers.
  CHECK(load_error("history:\n  max_events: abc\n") ==
        "t.yaml:2:15: history.max_events: expected a positive integer, got 'abc'");
  CHECK(load_error("history:\n  max_events: -5\n") ==
        "t.yaml:2:15: history.max_events: expected a positive integer, got '-5'");
  CHECK(load_error("history:\n  max_events: 0\n") ==
        "t.yaml:2:15: history.max_events: must be greater than 0");
  CHECK(load_error("history:\n  max_events: 1.5\n") ==
        "t.yaml:2:15: history.max_events: expected a positive integer, got '1.5'");
  CHECK(load_error("limits: { max_connections: 4294967296 }\n") ==
        "t.yaml:1:28: limits.max_connections: '4294967296' is too large (at most 4294967295)");
  CHECK(load_error("limits: { max_channels: 99999999999999999999999 }\n") ==
        "t.yaml:1:25: limits.max_channels: '99999999999999999999999' is too large (at most "
        "4294967295)");
  CHECK(config::load_string("limits: { max_connections: 4294967295 }", "t.yaml")
            .limits.max_connections == 4294967295u);

  // Sizes that must fit in 32 bits, and zero sizes.
  CHECK(load_error("limits:\n  max_header_bytes: 4GiB\n") ==
        "t.yaml:2:21: limits.max_header_bytes: '4GiB' is too large (at most 4294967295 bytes)");
  CHECK(config::load_string("limits: { max_event_bytes: 4294967295 }", "t.yaml")
            .limits.max_event_bytes == 4294967295u);
  CHECK(config::load_string("history: { max_bytes: 4GiB }", "t.yaml").history.max_bytes ==
        4ull << 30);
  CHECK(load_error("slow_consumer: { max_queued_bytes: 0KiB }\n") ==
        "t.yaml:1:36: slow_consumer.max_queued_bytes: must be greater than 0");
  CHECK(load_error("limits: { max_event_bytes: 1 MiB }\n") ==
        "t.yaml:1:28: limits.max_event_bytes: invalid size '1 MiB': expected a whole number of "
        "bytes, optionally with unit B, KiB, MiB, GiB, KB, MB or GB, such as 16KiB");

  // Durations where zero makes no sense; shutdown_grace may be zero.
  CHECK(load_error("retry: 0ms\n") == "t.yaml:1:8: retry: must be greater than 0");
  CHECK(load_error("heartbeat: 0\n") == "t.yaml:1:12: heartbeat: must be greater than 0");
  CHECK(load_error("history: { ttl: 0s }\n") == "t.yaml:1:17: history.ttl: must be greater than 0");
  CHECK(load_error("limits: { idle_timeout: 0 }\n") ==
        "t.yaml:1:25: limits.idle_timeout: must be greater than 0");
  CHECK(load_error("limits: { header_timeout: 0 }\n") ==
        "t.yaml:1:27: limits.header_timeout: must be greater than 0");
  CHECK(load_error("heartbeat: -1s\n") ==
        "t.yaml:1:12: heartbeat: invalid duration '-1s': expected a whole number with unit ms, s, "
        "m or h, such as 250ms or 15s");
  CHECK(config::load_string("shutdown_grace: 0s", "t.yaml").shutdown_grace == 0ms);

  // Strings with a fixed set of values, lists and booleans.
  CHECK(load_error("log:\n  level: verbose\n") ==
        "t.yaml:2:10: log.level: expected debug, info, warn or error, got 'verbose'");
  CHECK(load_error("demo: { enabled: maybe }\n") ==
        "t.yaml:1:18: demo.enabled: expected true or false, got 'maybe'");
  CHECK(load_error("cors: { allow_origins: \"*\" }\n") ==
        "t.yaml:1:24: cors.allow_origins: expected a list of strings, got a scalar");
  CHECK(load_error("cors:\n  allow_origins:\n    - a\n    - { x: 1 }\n") ==
        "t.yaml:4:7: cors.allow_origins[1]: expected a string, got a map");
  CHECK(load_error("auth: { publish_tokens: [\"\"] }\n") ==
        "t.yaml:1:26: auth.publish_tokens[0]: empty string (is the environment variable set?)");

  // Listen addresses; an unquoted IPv6 address parses as a YAML list.
  CHECK(load_error("listen: 127.0.0.1\n") ==
        "t.yaml:1:9: listen: invalid listen address '127.0.0.1': expected \"HOST:PORT\" (the "
        "port is missing)");
  CHECK(load_error("listen: localhost:70000\n") ==
        "t.yaml:1:9: listen: invalid listen address 'localhost:70000': the port must be a number "
        "from 0 to 65535");
  CHECK(load_error("listen: [::1]\n") ==
        "t.yaml:1:9: listen: expected \"HOST:PORT\", got a list (quote IPv6 addresses: "
        "\"[::1]:8080\")");
}

TEST_CASE("config: YAML syntax errors carry the position") {
  CHECK(load_error("history: { max_events: 5\n") == "t.yaml:2:1: end of map flow not found");
  CHECK(load_error("retry: 1s\n\tworkers: 2\n") ==
        "t.yaml:2:1: illegal tab when looking for indentation");
  CHECK(load_error("retry: 1s\n---\nretry: 2s\n") ==
        "t.yaml:2:1: only one YAML document is allowed");
}

TEST_CASE("config: load_file") {
  std::string path = "/tmp/ssegw_config_test_" + std::to_string(::getpid()) + ".yaml";
  {
    std::ofstream out(path);
    out << "workers: 2\nhistory:\n  ttl: 5\n";
  }
  config::Config c = config::load_file(path);
  CHECK(c.source_file == path);
  CHECK(c.workers == 2);
  CHECK(c.history.ttl == 5s);
  {
    std::ofstream out(path);
    out << "workers: 2\nlimits:\n  header_timeot: 5\n";
  }
  CHECK_THROWS_WITH(config::load_file(path), (path + ":3:3: unknown key 'header_timeot'").c_str());
  std::remove(path.c_str());
  CHECK_THROWS_WITH(config::load_file(path),
                    (path + ": cannot open: No such file or directory").c_str());
}

TEST_CASE("config: the shipped gateway.yaml loads") {
  config::Config c = config::load_file(SSEGW_SOURCE_DIR "/config/gateway.yaml");
  CHECK(c.listen_host == "127.0.0.1");
  CHECK(c.listen_port == 8080);
  CHECK(c.workers == 1);
  CHECK(c.demo.enabled);
  REQUIRE(c.upstreams.size() == 1);
  CHECK(c.upstreams[0].name == "llm");
  CHECK(c.upstreams[0].port == 9000);
  REQUIRE(c.routes.size() == 5);
  CHECK(c.routes[0].path == "/v1/chat/completions");
  CHECK(c.routes[0].resumable);
  for (const config::RouteConfig& route : c.routes)
    CHECK(route.stall_timeout == config::RouteConfig{}.stall_timeout);
  REQUIRE(c.sources.size() == 1);
  CHECK(c.sources[0].channels == "feed.*");
  CHECK(c.cors.allow_origins ==
        std::vector<std::string>{"http://localhost:8080", "http://127.0.0.1:8080"});
  // Everything else is written out at its built-in default.
  config::Config d;
  CHECK(c.retry == d.retry);
  CHECK(c.heartbeat == d.heartbeat);
  CHECK(c.shutdown_grace == d.shutdown_grace);
  CHECK(c.history.max_events == d.history.max_events);
  CHECK(c.history.max_bytes == d.history.max_bytes);
  CHECK(c.history.ttl == d.history.ttl);
  CHECK(c.history.max_total_bytes == d.history.max_total_bytes);
  CHECK(c.slow_consumer.max_queued_bytes == d.slow_consumer.max_queued_bytes);
  CHECK(c.limits.max_connections == d.limits.max_connections);
  CHECK(c.limits.max_channels == d.limits.max_channels);
  CHECK(c.limits.max_sources == d.limits.max_sources);
  CHECK(c.limits.max_header_bytes == d.limits.max_header_bytes);
  CHECK(c.limits.max_event_bytes == d.limits.max_event_bytes);
  CHECK(c.limits.header_timeout == d.limits.header_timeout);
  CHECK(c.limits.idle_timeout == d.limits.idle_timeout);
  CHECK(c.auth.publish_tokens.empty());
  CHECK(c.log.level == d.log.level);
}

// --- auth.jwt (docs/protocol.md#authentication) ---

namespace {

// Public keys only (made with openssl genpkey, then pkey -pubout); nothing secret here.
const char* const kRsa2048Pem = R"(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmnmWj3iKPwhmR6cNd+JW
AVUNPpUs8RvRv/2mB/6jvsocOdl25LaAj5yWFIKA7UZxiyzKRvLKd2GHqApwTZK4
An4rNArGPAQn5nTC9Z8lp1gZwIfnV9QJ+m0kp4LAcMQ2EB+zgBRGKbvD94/XRzFx
MPricj52v78uLEnynEw//bCIBhqOufpf6i1YX0RElbOAegSisOgu07JaauVlXuwC
rORHSgYWcnw66Mu93KwhYlsdP2woky9Zdr9rnF2atWx8Uyi6G0sb/Yu4x8NRIbbG
pNWuoMMo4ZQiaue3n7qMkzacIua9RONl65K7y3ehwU3CKPNGCWxqJpvZp5blmvPr
hQIDAQAB
-----END PUBLIC KEY-----
)";

const char* const kRsa1024Pem = R"(-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkPFIsacUFyrZJmxOtYwLBnAiS
7cZIU0rxB4rNA0t4RNvrdqjzfYkWWgdseZZi+pSOfTbeTIElLgdJfyv8unA9TT5S
Jpem7LOAIFNj9Zmos0p/icElB5stpgzBqpP7h41H16m52oyDrTLpl6A18meY4VTl
qyrKn+P4fsaRxTlnvQIDAQAB
-----END PUBLIC KEY-----
)";

const char* const kP256Pem = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEO1zUWh9hLPrcG5JtmbjXu8Kr/jmG
JCd1+1l6ivsi9RYDKa93nO/DybCIOaOE7VAlP615MVE0seTnt2dbbJZNHg==
-----END PUBLIC KEY-----
)";

const char* const kP384Pem = R"(-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE1JIoIZOQKTd84uEWYEw/NnDUn7jKOXGy
s8NMLkGJdxFP005bq1acm4jzV+eQBd3bT40sYwdz1HHtAJbfMtKiqF7PDnF74ScQ
RMVoYbvsnv9IY6B1/jal85pabWktZDBh
-----END PUBLIC KEY-----
)";

const char* const kEd25519Pem = R"(-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAkzrmNwFf2rCi8FyO1CA9pMMBgIQn8WxlVreJqjRldqM=
-----END PUBLIC KEY-----
)";

// The same RSA key in the PKCS#1 form, which PEM_read_bio_PUBKEY does not read.
const char* const kRsaPkcs1Pem = R"(-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAmnmWj3iKPwhmR6cNd+JWAVUNPpUs8RvRv/2mB/6jvsocOdl25LaA
-----END RSA PUBLIC KEY-----
)";

// A file under /tmp holding `text`, removed at the end of the test.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& text)
      : path_("/tmp/ssegw_config_test_" + std::to_string(::getpid()) + "_" + name) {
    std::ofstream out(path_, std::ios::binary);
    out << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

TEST_CASE("config: auth without jwt lets anyone subscribe") {
  config::Config c = config::load_string("auth: { publish_tokens: [p] }\n", "t.yaml");
  CHECK_FALSE(c.auth.jwt.has_value());
  CHECK(c.auth.anonymous_subscribe);
  CHECK(config::load_string("", "t.yaml").auth.anonymous_subscribe);
  CHECK(config::load_string("auth:\n  anonymous_subscribe: true\n", "t.yaml")
            .auth.anonymous_subscribe);
  // false without jwt would let no subscriber in at all.
  CHECK(load_error("auth:\n  anonymous_subscribe: false\n") ==
        "t.yaml:2:24: auth.anonymous_subscribe: false needs auth.jwt or auth.keys (without them no "
        "subscriber could ever be let in)");
  CHECK(load_error("auth: { anonymous_subscribe: maybe }\n") ==
        "t.yaml:1:30: auth.anonymous_subscribe: expected true or false, got 'maybe'");
}

TEST_CASE("config: auth.jwt HS256") {
  ScopedEnv secret("SSEGW_TEST_JWT_SECRET", "0123456789abcdef0123456789abcdef");
  config::Config c = config::load_string(
      "auth:\n"
      "  publish_tokens: [p]\n"
      "  jwt: { alg: HS256, secret: \"${SSEGW_TEST_JWT_SECRET}\" }\n",
      "t.yaml");
  REQUIRE(c.auth.jwt.has_value());
  CHECK(c.auth.jwt->alg == config::JwtAlg::kHS256);
  CHECK(c.auth.jwt->secret == "0123456789abcdef0123456789abcdef");
  CHECK(c.auth.jwt->public_key_file.empty());
  CHECK(c.auth.jwt->public_key_pem.empty());
  CHECK_FALSE(c.auth.anonymous_subscribe);  // the default once jwt is set
  CHECK(c.auth.publish_tokens == std::vector<std::string>{"p"});
  CHECK(std::string(config::jwt_alg_name(config::JwtAlg::kHS256)) == "HS256");
  CHECK(std::string(config::jwt_alg_name(config::JwtAlg::kRS256)) == "RS256");
  CHECK(std::string(config::jwt_alg_name(config::JwtAlg::kES256)) == "ES256");

  config::Config open = config::load_string(
      "auth:\n"
      "  anonymous_subscribe: true\n"
      "  jwt:\n"
      "    alg: HS256\n"
      "    secret: ${SSEGW_TEST_JWT_SECRET}\n",
      "t.yaml");
  REQUIRE(open.auth.jwt.has_value());
  CHECK(open.auth.anonymous_subscribe);
}

TEST_CASE("config: auth.jwt HS256 errors") {
  ScopedEnv unset("SSEGW_TEST_UNSET", nullptr);
  ScopedEnv short_secret("SSEGW_TEST_SHORT", "0123456789abcdef0123456789abcde");  // 31 bytes
  CHECK(load_error("auth: { jwt: { alg: HS256 } }\n") ==
        "t.yaml:1:14: auth.jwt: HS256 needs a secret");
  CHECK(load_error("auth:\n  jwt:\n    alg: HS256\n    secret: ${SSEGW_TEST_UNSET}\n") ==
        "t.yaml:4:13: auth.jwt.secret: empty string (is the environment variable set?)");
  CHECK(load_error("auth:\n  jwt:\n    alg: HS256\n    secret: \"${SSEGW_TEST_SHORT}\"\n") ==
        "t.yaml:4:13: auth.jwt.secret: refusing a weak HMAC key: 31 bytes, HS256 needs at least "
        "32 (RFC 7518 section 3.2)");
  CHECK(load_error("auth: { jwt: { alg: HS256, secret: [a] } }\n") ==
        "t.yaml:1:36: auth.jwt.secret: expected a secret of at least 32 bytes, got a list");
  CHECK(load_error("auth:\n  jwt:\n    alg: HS256\n    secret: 0123456789abcdef0123456789abcdef\n"
                   "    public_key_file: /k.pem\n") ==
        "t.yaml:5:5: auth.jwt.public_key_file: HS256 verifies with a secret, not a public key "
        "file");
}

TEST_CASE("config: auth.jwt alg errors") {
  CHECK(load_error("auth: { jwt: { alg: none } }\n") ==
        "t.yaml:1:21: auth.jwt.alg: expected HS256, RS256 or ES256, got 'none' (unsigned tokens "
        "are never accepted)");
  CHECK(load_error("auth: { jwt: { alg: hs256 } }\n") ==
        "t.yaml:1:21: auth.jwt.alg: expected HS256, RS256 or ES256, got 'hs256'");
  CHECK(load_error("auth: { jwt: { alg: PS256 } }\n") ==
        "t.yaml:1:21: auth.jwt.alg: expected HS256, RS256 or ES256, got 'PS256'");
  CHECK(load_error("auth: { jwt: { secret: x } }\n") ==
        "t.yaml:1:14: auth.jwt: missing key 'alg' (HS256, RS256 or ES256); remove auth.jwt to "
        "turn JWT off");
  // Every line under jwt: commented out must not quietly open subscriptions.
  CHECK(load_error("auth:\n  jwt:\n  #  alg: HS256\n") ==
        "t.yaml:2:3: auth.jwt: missing key 'alg' (HS256, RS256 or ES256); remove auth.jwt to "
        "turn JWT off");
  CHECK(load_error("auth: { jwt: { alg: HS256, secert: x } }\n") ==
        "t.yaml:1:28: unknown key 'secert'");
  CHECK(load_error("auth: { jwt: HS256 }\n") ==
        "t.yaml:1:14: auth.jwt: expected a map, got a scalar");
}

TEST_CASE("config: auth.jwt RS256 and ES256 keys") {
  TempFile rsa("rsa2048.pem", kRsa2048Pem);
  config::Config c = config::load_string(
      "auth:\n  jwt: { alg: RS256, public_key_file: \"" + rsa.path() + "\" }\n", "t.yaml");
  REQUIRE(c.auth.jwt.has_value());
  CHECK(c.auth.jwt->alg == config::JwtAlg::kRS256);
  CHECK(c.auth.jwt->public_key_file == rsa.path());
  CHECK(c.auth.jwt->public_key_pem == kRsa2048Pem);  // already in the canonical encoding
  CHECK(c.auth.jwt->secret.empty());
  CHECK_FALSE(c.auth.anonymous_subscribe);

  // Text around the PEM block is dropped: the struct holds just the key.
  TempFile ec("p256.pem", std::string("a comment line\n") + kP256Pem + "trailing\n");
  config::Config e = config::load_string(
      "auth:\n  jwt:\n    alg: ES256\n    public_key_file: " + ec.path() + "\n", "t.yaml");
  REQUIRE(e.auth.jwt.has_value());
  CHECK(e.auth.jwt->alg == config::JwtAlg::kES256);
  CHECK(e.auth.jwt->public_key_pem == kP256Pem);
}

TEST_CASE("config: auth.jwt RS256 and ES256 errors") {
  TempFile rsa("rsa2048.pem", kRsa2048Pem);
  TempFile rsa1024("rsa1024.pem", kRsa1024Pem);
  TempFile p256("p256.pem", kP256Pem);
  TempFile p384("p384.pem", kP384Pem);
  TempFile ed("ed25519.pem", kEd25519Pem);
  TempFile pkcs1("pkcs1.pem", kRsaPkcs1Pem);
  TempFile junk("junk.pem", "hello\n");
  std::string missing = "/tmp/ssegw_config_test_" + std::to_string(::getpid()) + "_missing.pem";

  auto key_error = [](const char* alg, const std::string& path) {
    return load_error(std::string("auth:\n  jwt:\n    alg: ") + alg +
                      "\n    public_key_file: " + path + "\n");
  };
  const std::string at = "t.yaml:4:22: auth.jwt.public_key_file: ";
  CHECK(key_error("RS256", missing) ==
        at + "cannot open '" + missing + "': No such file or directory");
  const std::string no_pem =
      " holds no PEM public key (expected \"-----BEGIN PUBLIC KEY-----\"; from a certificate: "
      "openssl x509 -pubkey -noout -in CERT)";
  CHECK(key_error("RS256", junk.path()) == at + "'" + junk.path() + "'" + no_pem);
  CHECK(key_error("RS256", pkcs1.path()) == at + "'" + pkcs1.path() + "'" + no_pem);
  CHECK(key_error("ES256", "/tmp") == at + "'/tmp'" + no_pem);
  CHECK(key_error("RS256", p256.path()) ==
        at + "'" + p256.path() + "' holds a key of type EC; RS256 needs RSA");
  CHECK(key_error("RS256", rsa1024.path()) ==
        at + "'" + rsa1024.path() + "' holds a 1024-bit RSA key; RS256 needs at least 2048 bits");
  CHECK(key_error("ES256", rsa.path()) ==
        at + "'" + rsa.path() + "' holds a key of type RSA; ES256 needs EC on P-256");
  CHECK(key_error("ES256", ed.path()) ==
        at + "'" + ed.path() + "' holds a key of type ED25519; ES256 needs EC on P-256");
  CHECK(key_error("ES256", p384.path()) ==
        at + "'" + p384.path() + "' holds an EC key on secp384r1; ES256 needs P-256 (prime256v1)");

  CHECK(load_error("auth: { jwt: { alg: RS256 } }\n") ==
        "t.yaml:1:14: auth.jwt: RS256 needs public_key_file");
  CHECK(load_error("auth: { jwt: { alg: ES256, public_key_file: \"\" } }\n") ==
        "t.yaml:1:45: auth.jwt.public_key_file: must not be empty");
  CHECK(load_error("auth:\n  jwt:\n    alg: RS256\n    secret: 0123456789abcdef0123456789abcdef\n"
                   "    public_key_file: " +
                   rsa.path() + "\n") ==
        "t.yaml:4:5: auth.jwt.secret: RS256 verifies with public_key_file; a secret is not used");
  CHECK(load_error("auth: { jwt: { secret: s, alg: ES256 } }\n") ==
        "t.yaml:1:16: auth.jwt.secret: ES256 verifies with public_key_file; a secret is not used");
}

TEST_CASE("config: backplane defaults to memory and parses a Redis URL") {
  config::Config d = config::load_string("", "t.yaml");
  CHECK(d.backplane.type == config::BackplaneConfig::Type::kMemory);
  config::Config c = config::load_string(
      "backplane: { type: redis, url: \"redis://127.0.0.1:6390\" }\n", "t.yaml");
  CHECK(c.backplane.type == config::BackplaneConfig::Type::kRedis);
  CHECK(c.backplane.host == "127.0.0.1");
  CHECK(c.backplane.port == 6390);
  CHECK(c.backplane.db == 0);
  CHECK(c.backplane.password.empty());
  CHECK(c.backplane.key_prefix == "ssegw:");
  config::Config h = config::load_string(
      "backplane: { type: redis, url: \"redis://user:pw@redis.internal/2\" }\n", "t.yaml");
  CHECK(h.backplane.host == "redis.internal");
  CHECK(h.backplane.port == 6379);
  CHECK(h.backplane.db == 2);
  CHECK(h.backplane.password == "pw");
}

TEST_CASE("config: backplane errors name the key and the problem") {
  CHECK(load_error("backplane: { type: redis }\n") ==
        "t.yaml:1:12: backplane: type redis needs a url (redis://127.0.0.1:6379/0)");
  CHECK(load_error("backplane: { type: bogus }\n") ==
        "t.yaml:1:20: backplane.type: expected memory or redis, got 'bogus'");
  CHECK(load_error("backplane: { type: redis, url: \"http://x:1\" }\n") ==
        "t.yaml:1:32: backplane.url: expected redis://host[:port][/db], got 'http://x:1'");
  CHECK(load_error("backplane: { type: redis, url: \"redis://h:1/16\" }\n") ==
        "t.yaml:1:32: backplane.url: the database must be a number from 0 to 15, got '16'");
  CHECK(load_error("backplane: { url: \"redis://h:1\" }\n") ==
        "t.yaml:1:19: backplane.url: only used with type: redis");
  CHECK(load_error("backplane: { type: redis, url: \"redis://h:1\", lease_ttl: 100ms }\n") ==
        "t.yaml:1:58: backplane.lease_ttl: must be at least 300ms");
}

TEST_CASE("config: routes[].upstreams, retry_on, max_attempts and include_usage") {
  const std::string head =
      "upstreams: { a: { url: \"http://h:1\" }, b: { url: \"http://h:2\" } }\nroutes:\n";
  config::Config one = config::load_string(head + "  - { path: /a, upstream: a }\n", "t.yaml");
  CHECK(one.routes[0].upstreams == std::vector<std::string>{"a"});
  CHECK(one.routes[0].upstream == "a");
  CHECK(one.routes[0].max_attempts == 1);
  CHECK(one.routes[0].retry_on == (config::kRetryConnectError | config::kRetryFirstByteTimeout |
                                   config::kRetry5xx | config::kRetry429));
  CHECK(one.routes[0].include_usage);
  config::Config two =
      config::load_string(head + "  - { path: /a, upstreams: [a, b], retry_on: [] }\n", "t.yaml");
  CHECK(two.routes[0].upstreams == std::vector<std::string>{"a", "b"});
  CHECK(two.routes[0].max_attempts == 2);  // one per upstream
  CHECK(two.routes[0].retry_on == 0);
  CHECK(load_error(head + "  - { path: /a, upstream: a, upstreams: [b] }\n") ==
        "t.yaml:3:41: routes[0].upstreams: give upstream or upstreams");
  CHECK(load_error(head + "  - { path: /a, upstreams: [a, c] }\n") ==
        "t.yaml:3:28: routes[0].upstreams: unknown upstream 'c'");
  CHECK(load_error(head + "  - { path: /a, upstreams: [] }\n") ==
        "t.yaml:3:28: routes[0].upstreams: expected 1 to 8 upstream names");
  CHECK(load_error(head + "  - { path: /a, upstream: a, retry_on: [timeout] }\n") ==
        "t.yaml:3:40: routes[0].retry_on: expected connect_error, first_byte_timeout, 5xx or "
        "429, got 'timeout'");
  CHECK(load_error(head + "  - { path: /a, upstream: a, max_attempts: 11 }\n")
            .find("routes[0].max_attempts") != std::string::npos);
  CHECK(load_error(head + "  - { path: /a, upstream: a, max_attempts: 0 }\n")
            .find("routes[0].max_attempts") != std::string::npos);
}

TEST_CASE("config: http2") {
  config::Config d = config::load_string("", "t.yaml");
  CHECK(d.http2.enabled);
  CHECK(d.http2.max_concurrent_streams == 128);
  CHECK(d.http2.initial_window_size == 65535);
  config::Config c = config::load_string(
      "http2: {enabled: false, max_concurrent_streams: 8, initial_window_size: 1MiB}\n", "t.yaml");
  CHECK(!c.http2.enabled);
  CHECK(c.http2.max_concurrent_streams == 8);
  CHECK(c.http2.initial_window_size == 1u << 20);
  CHECK(config::load_string("http2: {initial_window_size: 2147483647}\n", "t.yaml")
            .http2.initial_window_size == 2147483647u);
  CHECK(load_error("http2:\n  initial_window_size: 1KiB\n") ==
        "t.yaml:2:24: http2.initial_window_size: must be between 16KiB and 2147483647 bytes");
  CHECK(load_error("http2:\n  initial_window_size: 2GiB\n") ==
        "t.yaml:2:24: http2.initial_window_size: must be between 16KiB and 2147483647 bytes");
  CHECK(load_error("http2:\n  max_concurrent_streams: 0\n")
            .find("t.yaml:2:27: http2.max_concurrent_streams:") == 0);
  CHECK(load_error("http2:\n  push: true\n").find("t.yaml:2:3:") == 0);
}
