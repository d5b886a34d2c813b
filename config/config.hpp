// Typed gateway configuration, loaded once from YAML (DESIGN §2).
//
// Rules:
// - Nothing outside config/ looks at YAML nodes: load() turns the file into these structs.
// - Every error names "file:line:column" and is thrown as config::Error; main() exits with 2.
// - Unknown keys are errors, so a typo never falls back to a default in silence.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace config {

using Duration = std::chrono::milliseconds;

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct HistoryConfig {
  uint32_t max_events = 1000;
  uint64_t max_bytes = 8ull << 20;
  Duration ttl = std::chrono::minutes(10);
};

struct SlowConsumerConfig {
  uint64_t max_queued_bytes = 1ull << 20;
};

struct LimitsConfig {
  uint32_t max_connections = 50000;
  uint32_t max_channels = 100000;
  uint32_t max_header_bytes = 16 << 10;
  uint32_t max_event_bytes = 1 << 20;
  Duration header_timeout = std::chrono::seconds(10);
  // An idle keep-alive connection (no byte of a next request) is closed after this.
  Duration idle_timeout = std::chrono::seconds(60);
};

struct CorsConfig {
  std::vector<std::string> allow_origins;  // ["*"] or explicit origins
};

struct AuthConfig {
  std::vector<std::string> publish_tokens;  // empty: publishing is open
};

struct LogConfig {
  std::string level = "info";  // debug | info | warn | error
};

struct DemoConfig {
  bool enabled = false;
};

struct Config {
  std::string source_file;  // the path it was loaded from, for messages
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  uint32_t workers = 1;  // "auto" resolves to the number of cores
  Duration retry = std::chrono::seconds(2);
  Duration heartbeat = std::chrono::seconds(15);
  Duration shutdown_grace = std::chrono::seconds(5);
  HistoryConfig history;
  SlowConsumerConfig slow_consumer;
  LimitsConfig limits;
  CorsConfig cors;
  AuthConfig auth;
  LogConfig log;
  DemoConfig demo;
};

// Parses "250ms", "15s", "10m", "1h" (a bare number is seconds). Throws Error on bad input.
Duration parse_duration(const std::string& text);
// Parses "512", "16KiB", "1MiB", "1GiB", "10KB", "2MB" (KB/MB are powers of 1000). Throws Error.
uint64_t parse_size(const std::string& text);
// Splits "HOST:PORT" or "[v6]:PORT". Throws Error.
void parse_listen(const std::string& text, std::string& host, uint16_t& port);
// Replaces ${VAR} with the environment's value (empty when unset). "$${" escapes a literal "${".
std::string expand_env(const std::string& text);

// Loads and validates a YAML file. Throws Error with "file:line:column: message".
Config load_file(const std::string& path);
// Same, from text (the name is used in messages).
Config load_string(const std::string& yaml_text, const std::string& name);

}  // namespace config
