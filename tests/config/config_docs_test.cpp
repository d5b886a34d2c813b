// The configuration reference is checked against the loader (issue 5, item 5): a key that the
// loader accepts but docs/configuration.md's key table or config/gateway.yaml does not mention
// fails this test.
//
// tests/config/all_keys.yaml sets every key, except those that cannot stand beside its own
// (auth.jwt.public_key_file excludes auth.jwt.secret), which tests/config/all_keys_es256.yaml sets.
// Three checks keep the two complete and the docs honest:
// - it loads, and every value differs from the built-in default (so each handler stored it);
// - each of its map keys, renamed to zz_unknown, makes the loader fail with "unknown key
//   'zz_unknown'", which proves the loader recognised the key where it stands;
// - every handler name of the read_map tables in config/*.cpp occurs in them as a key.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"

using namespace ssegw;

using namespace std::chrono_literals;

namespace {

const std::string kSourceDir = SSEGW_SOURCE_DIR;
const std::string kConfigDir = kSourceDir + "/tests/config";
const std::string kAllKeys = kConfigDir + "/all_keys.yaml";
const std::string kAllKeysEs256 = kConfigDir + "/all_keys_es256.yaml";
const std::vector<std::string> kAllKeysFiles = {kAllKeys, kAllKeysEs256};

// all_keys_es256.yaml finds its PEM file through ${SSEGW_TEST_CONFIG_DIR}.
void set_config_dir() {
  ::setenv("SSEGW_TEST_CONFIG_DIR", kConfigDir.c_str(), 1);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot open ", path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// One map key of a YAML document: its documented path ("upstreams.NAME.tls.ca_file",
// "sources[].format") and where it stands, for renaming it in place.
struct KeyAt {
  std::string path;
  std::string name;
  YAML::Mark mark;
};

// The keys a user writes, found by walking a parsed document. Names chosen by the user are not
// config keys: the children of `upstreams` become NAME, and `headers` maps are leaves.
struct KeyWalk {
  std::vector<KeyAt> keys;       // every config key, containers included
  std::set<std::string> leaves;  // paths of keys whose values are settings, not sections

  void walk(const YAML::Node& node, const std::string& path) {
    if (node.IsMap()) {
      for (const auto& entry : node) {
        const std::string name = entry.first.Scalar();
        if (path == "upstreams") {
          walk(entry.second, path + ".NAME");
          continue;
        }
        std::string child = path.empty() ? name : path + "." + name;
        keys.push_back({child, name, entry.first.Mark()});
        if (name == "headers" || !(entry.second.IsMap() || entry.second.IsSequence())) {
          leaves.insert(child);
        } else {
          walk(entry.second, child);
        }
      }
    } else if (node.IsSequence()) {
      bool maps = false;
      for (const auto& item : node) {
        if (item.IsMap()) {
          maps = true;
          walk(item, path + "[]");
        }
      }
      if (!maps) leaves.insert(path);  // a list of values, such as cors.allow_origins
    }
  }
};

KeyWalk walk_file(const std::string& path) {
  KeyWalk w;
  w.walk(YAML::LoadFile(path), "");
  return w;
}

// The keys of all the all_keys*.yaml files together.
KeyWalk walk_all_keys() {
  KeyWalk w;
  for (const std::string& path : kAllKeysFiles) w.walk(YAML::LoadFile(path), "");
  return w;
}

// The byte offset of a yaml-cpp mark (0-based line and column) in text.
size_t offset_of(const std::string& text, const YAML::Mark& mark) {
  size_t at = 0;
  for (int line = 0; line < mark.line; ++line) at = text.find('\n', at) + 1;
  return at + static_cast<size_t>(mark.column);
}

// The key names of the table in docs/configuration.md's "## Keys" section. A first cell may name
// several keys, "`sources[].reconnect_min` / `reconnect_max`": a later name without its own
// prefix takes the first one's ("sources[].reconnect_max").
std::set<std::string> documented_keys(const std::string& doc) {
  std::set<std::string> out;
  size_t begin = doc.find("\n## Keys\n");
  REQUIRE_MESSAGE(begin != std::string::npos, "docs/configuration.md has no \"## Keys\" section");
  size_t end = doc.find("\n## ", begin + 1);
  std::istringstream section(doc.substr(begin, end - begin));
  std::string line;
  static const std::regex code("`([^`]+)`");
  while (std::getline(section, line)) {
    if (line.rfind("| `", 0) != 0) continue;
    std::string cell = line.substr(1, line.find('|', 1) - 1);
    std::string prefix;
    for (auto it = std::sregex_iterator(cell.begin(), cell.end(), code);
         it != std::sregex_iterator(); ++it) {
      std::string key = (*it)[1];
      if (prefix.empty()) {
        size_t dot = key.rfind('.');
        prefix = dot == std::string::npos ? "" : key.substr(0, dot + 1);
      } else if (key.find('.') == std::string::npos) {
        key = prefix + key;
      }
      out.insert(key);
    }
  }
  return out;
}

// Text after '#' on each line of a YAML file (a '#' inside quotes is rare enough in
// gateway.yaml's values to ignore).
std::string comments_of(const std::string& yaml) {
  std::string out;
  std::istringstream in(yaml);
  std::string line;
  while (std::getline(in, line)) {
    size_t hash = line.find('#');
    if (hash != std::string::npos) out += line.substr(hash) + "\n";
  }
  return out;
}

std::string last_segment(const std::string& path) {
  size_t dot = path.rfind('.');
  std::string s = dot == std::string::npos ? path : path.substr(dot + 1);
  if (s.ends_with("[]")) s.resize(s.size() - 2);
  return s;
}

}  // namespace

TEST_CASE("config docs: all_keys.yaml loads and sets every key to a value other than the default") {
  set_config_dir();
  config::Config c = config::load_file(kAllKeys);
  const config::Config d;
  CHECK(c.listen_host != d.listen_host);
  CHECK(c.listen_port != d.listen_port);
  CHECK(c.workers != d.workers);
  CHECK(c.retry != d.retry);
  CHECK(c.heartbeat != d.heartbeat);
  CHECK(c.shutdown_grace != d.shutdown_grace);
  CHECK(c.history.max_events != d.history.max_events);
  CHECK(c.history.max_bytes != d.history.max_bytes);
  CHECK(c.history.ttl != d.history.ttl);
  CHECK(c.history.max_total_bytes != d.history.max_total_bytes);
  CHECK(c.slow_consumer.max_queued_bytes != d.slow_consumer.max_queued_bytes);
  CHECK(c.slow_consumer.stall_timeout != d.slow_consumer.stall_timeout);
  CHECK(c.limits.max_connections != d.limits.max_connections);
  CHECK(c.limits.max_channels != d.limits.max_channels);
  CHECK(c.limits.max_channels_per_stream != d.limits.max_channels_per_stream);
  CHECK(c.limits.max_sources != d.limits.max_sources);
  CHECK(c.limits.max_header_bytes != d.limits.max_header_bytes);
  CHECK(c.limits.max_event_bytes != d.limits.max_event_bytes);
  CHECK(c.limits.header_timeout != d.limits.header_timeout);
  CHECK(c.limits.idle_timeout != d.limits.idle_timeout);
  CHECK(c.limits.max_streams_per_ip != d.limits.max_streams_per_ip);
  CHECK(c.limits.owner_timeout != d.limits.owner_timeout);
  CHECK(c.http2.enabled != d.http2.enabled);
  CHECK(c.http2.max_concurrent_streams != d.http2.max_concurrent_streams);
  CHECK(c.http2.initial_window_size != d.http2.initial_window_size);
  CHECK(c.cors.allow_origins.size() == 2);
  CHECK(c.auth.publish_tokens.size() == 2);
  REQUIRE(c.auth.keys.size() == 1);
  CHECK(c.auth.keys[0].name == "web-app");
  CHECK(c.auth.keys[0].token == "key-token-0123456789");
  CHECK(c.auth.keys[0].routes == std::vector<std::string>{"/v1/*"});
  CHECK(c.auth.keys[0].publish == std::vector<std::string>{"chat.*"});
  CHECK(c.auth.keys[0].subscribe == std::vector<std::string>{"chat.*"});
  CHECK(c.auth.keys[0].limits.tokens_per_minute == 90000);
  CHECK(c.auth.keys[0].limits.requests_per_minute == 600);
  CHECK(c.auth.keys[0].limits.max_concurrent == 20);
  REQUIRE(c.auth.jwt.has_value());
  CHECK(c.auth.jwt->alg == config::JwtAlg::kHS256);
  CHECK(c.auth.jwt->secret == "0123456789abcdef0123456789abcdef-docs");
  CHECK(c.auth.jwt->subject_limits.tokens_per_minute == 20000);
  CHECK(c.auth.jwt->subject_limits.requests_per_minute == 60);
  CHECK(c.auth.jwt->subject_limits.max_concurrent == 2);
  CHECK(c.auth.jwt->max_subjects != config::JwtConfig{}.max_subjects);
  CHECK(c.auth.anonymous_subscribe);  // the default with jwt set is false
  CHECK(c.log.level != d.log.level);
  CHECK(c.demo.enabled != d.demo.enabled);
  CHECK(c.fanout.io_uring != d.fanout.io_uring);
  CHECK(c.fanout.coalesce == std::chrono::milliseconds(5));
  CHECK(c.backplane.type != d.backplane.type);
  CHECK(c.backplane.url == "redis://:secret@10.0.0.7:6380/3");
  CHECK(c.backplane.host == "10.0.0.7");
  CHECK(c.backplane.port == 6380);
  CHECK(c.backplane.db == 3);
  CHECK(c.backplane.password == "secret");
  CHECK(c.backplane.key_prefix != d.backplane.key_prefix);
  CHECK(c.backplane.lease_ttl != d.backplane.lease_ttl);
  CHECK(c.tls.cert_file != d.tls.cert_file);
  CHECK(c.tls.key_file != d.tls.key_file);

  CHECK(c.log.access != d.log.access);
  REQUIRE(c.upstreams.size() == 2);
  const config::UpstreamConfig& u = c.upstreams[0];
  const config::UpstreamConfig du;
  CHECK(u.name == "llm");
  CHECK(u.tls);
  CHECK(u.host == "llm.example");
  CHECK(u.port == 8443);
  CHECK(u.base_path == "/base");
  CHECK(u.connect_timeout != du.connect_timeout);
  CHECK(u.first_byte_timeout != du.first_byte_timeout);
  CHECK(u.idle_timeout != du.idle_timeout);
  CHECK(u.max_idle_connections != du.max_idle_connections);
  CHECK(u.max_concurrent != du.max_concurrent);
  CHECK(u.headers.size() == 2);
  CHECK(u.tls_options.ca_file != du.tls_options.ca_file);
  CHECK(u.tls_options.insecure_skip_verify != du.tls_options.insecure_skip_verify);

  REQUIRE(c.sources.size() == 1);
  const config::SourceConfig& s = c.sources[0];
  const config::SourceConfig ds;
  CHECK(s.channels == "ticker.*");
  CHECK(s.upstream == "llm");
  CHECK(s.path == "/stream/{channel}");
  CHECK(s.format != ds.format);
  CHECK(s.idle_close != ds.idle_close);
  CHECK(s.reconnect_min != ds.reconnect_min);
  CHECK(s.reconnect_max != ds.reconnect_max);

  REQUIRE(c.routes.size() == 2);
  const config::RouteConfig& r = c.routes[0];
  const config::RouteConfig dr;
  CHECK(r.path == "/v1/messages");
  CHECK(r.upstream == "llm");
  CHECK(r.resumable != dr.resumable);
  CHECK(r.on_disconnect != dr.on_disconnect);
  CHECK(r.auth != dr.auth);
  CHECK(r.high_water_bytes != dr.high_water_bytes);
  CHECK(r.low_water_bytes != dr.low_water_bytes);
  CHECK(r.stall_timeout != dr.stall_timeout);
  const config::RouteConfig& f = c.routes[1];
  CHECK(f.upstreams == std::vector<std::string>{"llm", "backup"});
  CHECK(f.max_attempts == 3);
  CHECK(f.retry_on == (config::kRetryConnectError | config::kRetry5xx));
  CHECK(f.include_usage != dr.include_usage);
  CHECK(f.usage != dr.usage);

  config::Config e = config::load_file(kAllKeysEs256);
  REQUIRE(e.auth.jwt.has_value());
  CHECK(e.auth.jwt->alg == config::JwtAlg::kES256);
  CHECK(e.auth.jwt->public_key_file == kConfigDir + "/jwt_es256_public.pem");
  CHECK(e.auth.jwt->public_key_pem.rfind("-----BEGIN PUBLIC KEY-----", 0) == 0);
}

TEST_CASE("config docs: every key of all_keys*.yaml is one the loader recognises") {
  set_config_dir();
  REQUIRE(walk_all_keys().keys.size() > 40);
  for (const std::string& file : kAllKeysFiles) {
    const std::string text = read_text(file);
    for (const KeyAt& key : walk_file(file).keys) {
      std::string renamed = text;
      size_t at = offset_of(text, key.mark);
      REQUIRE(renamed.compare(at, key.name.size(), key.name) == 0);
      renamed.replace(at, key.name.size(), "zz_unknown");
      std::string error;
      try {
        config::load_string(renamed, "all_keys.yaml");
      } catch (const config::Error& e) {
        error = e.what();
      }
      INFO(file, ": key ", key.path, " renamed: ", error);
      CHECK(error.find("unknown key 'zz_unknown'") != std::string::npos);
      // The error names the renamed key's own line and column.
      CHECK(error.rfind("all_keys.yaml:" + std::to_string(key.mark.line + 1) + ":" +
                            std::to_string(key.mark.column + 1) + ":",
                        0) == 0);
    }
  }
}

TEST_CASE("config docs: every key name of the loader's handler tables is in all_keys*.yaml") {
  // The loader's tables are spread over config/loader*.cpp; every config/*.cpp is read, so that
  // a table moved to a new file is still found.
  std::vector<std::string> sources;
  for (const auto& entry : std::filesystem::directory_iterator(kSourceDir + "/config")) {
    if (entry.is_regular_file() && entry.path().extension() == ".cpp")
      sources.push_back(entry.path().filename().string());
  }
  // A handler table entry: {"name", [&](const Field& f) { ... }}.
  static const std::regex handler(R"re(\{"([A-Za-z_][A-Za-z0-9_]*)",\s*\[&\])re");
  std::map<std::string, std::string> names;  // key name -> the first file that handles it
  for (const std::string& file : sources) {
    const std::string source = read_text(kSourceDir + "/config/" + file);
    for (auto it = std::sregex_iterator(source.begin(), source.end(), handler);
         it != std::sregex_iterator(); ++it) {
      names.emplace((*it)[1], "config/" + file);
    }
  }
  // Guards the pattern and the file scan: the loader has more than 40 distinct key names.
  REQUIRE(names.size() > 40);
  std::set<std::string> in_file;
  for (const KeyAt& key : walk_all_keys().keys) in_file.insert(key.name);
  for (const auto& [name, file] : names) {
    INFO(file, " handles '", name, "': add it to tests/config/all_keys.yaml");
    CHECK(in_file.count(name) == 1);
  }
}

TEST_CASE("config docs: docs/configuration.md's key table names every key") {
  const std::set<std::string> documented =
      documented_keys(read_text(kSourceDir + "/docs/configuration.md"));
  REQUIRE(!documented.empty());
  const KeyWalk w = walk_all_keys();
  for (const std::string& path : w.leaves) {
    INFO("docs/configuration.md's key table lacks `", path, "`");
    CHECK(documented.count(path) == 1);
  }
  // And the table names no key that the loader does not know.
  for (const std::string& key : documented) {
    INFO("docs/configuration.md documents `", key, "`, which all_keys*.yaml do not set");
    CHECK(w.leaves.count(key) == 1);
  }
}

TEST_CASE("config docs: config/gateway.yaml shows every key, as a key or in a comment") {
  const std::string path = kSourceDir + "/config/gateway.yaml";
  const KeyWalk shown = walk_file(path);
  std::set<std::string> shown_paths;
  for (const KeyAt& key : shown.keys) shown_paths.insert(key.path);
  const std::string comments = comments_of(read_text(path));
  for (const std::string& key : walk_all_keys().leaves) {
    if (shown_paths.count(key)) continue;
    INFO("config/gateway.yaml neither sets `", key, "` nor names \"", last_segment(key),
         ":\" in a comment");
    CHECK(comments.find(last_segment(key) + ":") != std::string::npos);
  }
}

TEST_CASE("config docs: the internet-facing example loads, and the docs show it as it is") {
  ::setenv("SSEGW_WEB_KEY", "web-key-0123456789abcdef", 1);
  ::setenv("OPENAI_API_KEY", "sk-docs", 1);
  ::setenv("SSEGW_JWT_KEY_FILE", (kConfigDir + "/jwt_es256_public.pem").c_str(), 1);
  const std::string path = kSourceDir + "/config/internet-facing.yaml";
  config::Config c = config::load_file(path);
  CHECK(c.auth.guards_routes());
  CHECK_FALSE(c.auth.anonymous_subscribe);
  CHECK(c.limits.max_streams_per_ip == 8);
  REQUIRE(c.routes.size() == 1);
  CHECK(c.routes[0].auth == config::RouteAuth::kRequired);
  // The block that README.md and docs/security.md show is the file without its comment lines.
  std::istringstream in(read_text(path));
  std::string yaml, line;
  while (std::getline(in, line))
    if (line.rfind('#', 0) != 0) yaml += line + "\n";
  for (const char* doc : {"/README.md", "/docs/security.md"}) {
    CAPTURE(doc);
    CHECK(read_text(kSourceDir + doc).find("```yaml\n" + yaml + "```\n") != std::string::npos);
  }
}
