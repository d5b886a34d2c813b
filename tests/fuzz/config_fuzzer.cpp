// Fuzz target: the config loader, config::load_string (config/config.hpp).
//
// The input is a YAML file. load_string() must return a Config or throw config::Error, and
// nothing else: any other exception escapes this function, so that libFuzzer (and the replay
// test) report it. A Config it returns must satisfy what the loader promises to check, since
// the rest of the gateway trusts it without looking again.
//
// Deep nesting: yaml-cpp 0.7 (Debian 12) stops at about 500 levels of flow collections and 1000
// of block collections with YAML::DeepRecursion, whose message is just "bad file"; the loader
// turns it into config::Error like any parse error. It does not overflow the stack, in the gcc
// build or under ASan, so the target takes any input and corpus/config_fuzzer/deep_*.yaml keep
// it that way.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace ssegw;

namespace {

void check(const config::Config& c) {
  FUZZ_CHECK(c.source_file == "fuzz.yaml");
  FUZZ_CHECK(c.workers >= 1 && c.workers <= 64);
  FUZZ_CHECK(c.retry.count() > 0 && c.heartbeat.count() > 0 && c.shutdown_grace.count() >= 0);
  FUZZ_CHECK(!c.listen_host.empty());
  FUZZ_CHECK(c.history.max_events > 0 && c.history.max_bytes > 0 && c.history.ttl.count() > 0);
  FUZZ_CHECK(c.slow_consumer.max_queued_bytes > 0);
  FUZZ_CHECK(c.limits.max_connections > 0 && c.limits.max_channels > 0);
  FUZZ_CHECK(c.limits.max_header_bytes > 0 && c.limits.max_event_bytes > 0);
  FUZZ_CHECK(c.limits.header_timeout.count() > 0 && c.limits.idle_timeout.count() > 0);
  for (const std::string& o : c.cors.allow_origins) FUZZ_CHECK(!o.empty());
  for (const std::string& t : c.auth.publish_tokens) FUZZ_CHECK(!t.empty());
  if (!c.auth.anonymous_subscribe) FUZZ_CHECK(c.auth.jwt.has_value());
  if (c.auth.jwt && c.auth.jwt->alg == config::JwtAlg::kHS256)
    FUZZ_CHECK(c.auth.jwt->secret.size() >= 32);
  FUZZ_CHECK(c.log.level == "debug" || c.log.level == "info" || c.log.level == "warn" ||
             c.log.level == "error");
  for (const config::UpstreamConfig& u : c.upstreams) {
    FUZZ_CHECK(!u.url.empty() && !u.host.empty() && u.port != 0);
    FUZZ_CHECK(u.base_path.empty() || (u.base_path[0] == '/' && u.base_path.back() != '/'));
    FUZZ_CHECK(u.connect_timeout.count() > 0 && u.first_byte_timeout.count() > 0 &&
               u.idle_timeout.count() > 0 && u.max_idle_connections > 0);
  }
  for (const config::SourceConfig& s : c.sources) {
    FUZZ_CHECK(!s.channels.empty() && !s.path.empty() && s.path[0] == '/');
    FUZZ_CHECK(c.find_upstream(s.upstream) != nullptr);
    FUZZ_CHECK(s.reconnect_min.count() > 0 && s.reconnect_min <= s.reconnect_max);
  }
  for (size_t i = 0; i < c.routes.size(); ++i) {
    const config::RouteConfig& r = c.routes[i];
    FUZZ_CHECK(!r.path.empty() && r.path[0] == '/');
    FUZZ_CHECK(c.find_upstream(r.upstream) != nullptr);
    FUZZ_CHECK(r.low_water_bytes <= r.high_water_bytes && r.low_water_bytes > 0);
    FUZZ_CHECK(r.resumable || r.on_disconnect == config::DisconnectPolicy::kCancel);
    for (size_t j = 0; j < i; ++j) FUZZ_CHECK(c.routes[j].path != r.path);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  // ${VAR} expansion reads the environment: give the corpus a few names that exist.
  static const bool env_set = [] {
    setenv("SSEGW_FUZZ_TOKEN", "t0ken", 1);
    setenv("SSEGW_FUZZ_EMPTY", "", 1);
    setenv("SSEGW_FUZZ_HOST", "127.0.0.1:9000", 1);
    return true;
  }();
  (void)env_set;
  try {
    check(config::load_string(text, "fuzz.yaml"));
  } catch (const config::Error& e) {
    // Every error names the file, so that an operator knows what to fix.
    FUZZ_CHECK(std::string_view(e.what()).starts_with("fuzz.yaml"));
  }
  return 0;
}
