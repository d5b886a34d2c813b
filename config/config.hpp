// Typed gateway configuration, loaded once from YAML (docs/configuration.md).
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
#include <string_view>
#include <vector>

namespace ssegw::config {

using Duration = std::chrono::milliseconds;

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct HistoryConfig {
  uint32_t max_events = 1000;
  uint64_t max_bytes = 8ull << 20;
  Duration ttl = std::chrono::minutes(10);
  // Every channel's retained events together, all workers; past it the oldest go first.
  uint64_t max_total_bytes = 256ull << 20;
};

struct SlowConsumerConfig {
  uint64_t max_queued_bytes = 1ull << 20;
  // A subscriber with bytes waiting that the kernel takes none of for this long is cut: its
  // queue (a replay may hold up to history.max_bytes) would otherwise stay pinned for good.
  Duration stall_timeout = std::chrono::seconds(30);
};

// The most limits.max_channels_per_stream may allow: a stream's resume cursor (docs/protocol.md
// "Multi-channel streams") grows with its channels and must fit in a Last-Event-ID header.
inline constexpr uint32_t kMaxChannelsPerStream = 256;

struct LimitsConfig {
  uint32_t max_connections = 50000;
  uint32_t max_channels = 100000;
  // Channels one multi-channel stream (GET /v1/events?channel=...) may name; more is 400.
  uint32_t max_channels_per_stream = 64;
  // Upstream sources open at once, all workers (in-memory hub; with Redis, leases decide).
  uint32_t max_sources = 1024;
  uint32_t max_header_bytes = 16 << 10;
  uint32_t max_event_bytes = 1 << 20;
  Duration header_timeout = std::chrono::seconds(10);
  // An idle keep-alive connection (no byte of a next request) is closed after this.
  Duration idle_timeout = std::chrono::seconds(60);
  // Per client address (all workers together); over either, the answer is 429 with Retry-After.
  // The defaults only stop runaways: a gateway facing the internet should set them lower.
  uint32_t max_connections_per_ip = 50000;
  uint32_t publish_rate_per_ip = 100000;   // publishes per second, refilled continuously
  uint32_t publish_burst_per_ip = 100000;  // bucket size
  // Proxied streams and detached generations started by one client address and still running.
  uint32_t max_streams_per_ip = 64;
  // How long a request may wait for the worker that owns its channel (and, with Redis, for
  // Redis) before it is answered 503 owner_timeout.
  Duration owner_timeout = std::chrono::seconds(10);
};

// HTTP/2 on the client side (docs/protocol.md "HTTP/2"): h2c with prior knowledge on the plain
// listener, h2 by ALPN over TLS.
struct Http2Config {
  bool enabled = true;
  // Streams a client may have open on one connection (SETTINGS_MAX_CONCURRENT_STREAMS). 128:
  // RFC 9113 advises no less than 100, and each open stream may hold up to
  // slow_consumer.max_queued_bytes, so the bound is also a memory bound per connection.
  uint32_t max_concurrent_streams = 128;
  // The window each stream (and the connection) gives a client's request body
  // (SETTINGS_INITIAL_WINDOW_SIZE). Request bodies are publishes of at most
  // limits.max_event_bytes; 64 KiB lets a typical one arrive in one round trip.
  uint32_t initial_window_size = 65535;
};

struct CorsConfig {
  std::vector<std::string> allow_origins;  // ["*"] or explicit origins
};

enum class JwtAlg { kHS256, kRS256, kES256 };
const char* jwt_alg_name(JwtAlg alg);  // "HS256", "RS256", "ES256"

// A spend budget (docs/protocol.md#budgets): per fixed wall-clock minute (unix seconds / 60, so
// that instances agree without talking) and at once. 0 = unlimited (the key was absent).
struct BudgetLimits {
  uint64_t tokens_per_minute = 0;    // refused once the minute's charged tokens reach it
  uint32_t requests_per_minute = 0;  // each admitted request counts 1
  uint32_t max_concurrent = 0;       // answers running at once
  bool any() const { return tokens_per_minute || requests_per_minute || max_concurrent; }
};

// auth.jwt (docs/security.md). Plain data: the loader already checked that the key can be used,
// and the verifier (gateway/api/jwt.hpp) builds its OpenSSL objects from these fields.
struct JwtConfig {
  JwtAlg alg = JwtAlg::kHS256;
  std::string secret;           // HS256: the HMAC key as raw bytes, at least 32 of them
  std::string public_key_file;  // RS256/ES256: the path as written, for messages
  // RS256/ES256: the key from public_key_file, re-encoded as a PEM SubjectPublicKeyInfo
  // ("-----BEGIN PUBLIC KEY-----"): RSA of at least 2048 bits, or EC on P-256.
  std::string public_key_pem;
  // The budget of each subject ("sub") separately; a token without sub is refused while it is set.
  BudgetLimits subject_limits;
  // Subjects the in-memory budgets track at once (with the Redis backplane they live in Redis).
  uint32_t max_subjects = 100000;
};

// auth.keys[]: a named static bearer token with the same three grant lists as a JWT's claims.
struct KeyConfig {
  std::string name;   // for logs and metrics labels: [A-Za-z0-9_.-], 1 to 64 characters
  std::string token;  // at least 16 bytes
  std::vector<std::string> routes;     // route path globs
  std::vector<std::string> publish;    // channel globs
  std::vector<std::string> subscribe;  // channel globs
  BudgetLimits limits;                 // the key's budget, on routes
};

struct AuthConfig {
  std::vector<std::string> publish_tokens;  // empty: publishing is open (unless jwt or keys)
  std::vector<KeyConfig> keys;
  std::optional<JwtConfig> jwt;  // unset: JWTs are neither needed nor read
  // Subscribing without a token. Defaults to true without jwt and keys, to false with either.
  bool anonymous_subscribe = true;

  // The gateway checks tokens on routes: with auth.jwt or auth.keys.
  bool guards_routes() const { return jwt.has_value() || !keys.empty(); }
  // Some token is configured: a token a request carries is then always checked.
  bool reads_tokens() const { return guards_routes() || !publish_tokens.empty(); }
  bool publish_restricted() const { return reads_tokens(); }
};

struct LogConfig {
  std::string level = "info";  // debug | info | warn | error
  // A usage record per proxied route request, as a JSON line, whatever the level.
  bool access = true;
};

struct DemoConfig {
  bool enabled = false;
};

struct FanoutConfig {
  // Each loop turn's writes as one io_uring submission (gateway/net/send_batch.hpp).
  bool io_uring = false;
  // A busy channel's events wait up to this long to leave together (gateway/hub/coalescer.hpp);
  // 0: every event leaves at once. At most kMaxCoalesce.
  Duration coalesce{0};
  static constexpr Duration kMaxCoalesce{50};
};

struct TlsConfig {
  std::string ca_file;                // PEM bundle; empty = the system CA store
  bool insecure_skip_verify = false;  // development only
};

// TLS on the listener (docs/security.md#tls). Empty: plain TCP. The *_where strings say where
// each path was configured ("gateway.yaml:12:14"), so that a certificate or key that fails to
// load, at start-up or on SIGHUP, is reported like any other configuration error.
struct ListenerTlsConfig {
  std::string cert_file;
  std::string cert_where;
  std::string key_file;
  std::string key_where;
  bool enabled() const { return !cert_file.empty(); }
};

// An upstream server (docs/protocol.md#routes): where sources and routes connect.
struct UpstreamConfig {
  std::string name;
  std::string url;   // as written: http[s]://host[:port][/base]
  bool tls = false;  // https
  std::string host;  // without brackets for IPv6
  uint16_t port = 80;
  std::string base_path;  // "" or "/prefix" (no trailing slash), put before request paths
  Duration connect_timeout = std::chrono::seconds(5);
  Duration first_byte_timeout = std::chrono::seconds(300);   // reasoning models think a while
  Duration idle_timeout = std::chrono::seconds(120);         // between two chunks
  std::vector<std::pair<std::string, std::string>> headers;  // added to every request
  uint32_t max_idle_connections = 16;                        // keep-alive pool size
  // Requests open at once to this upstream, all workers together, detached answers and sources
  // included; a route request over it gets 503 upstream_busy.
  uint32_t max_concurrent = 1024;
  TlsConfig tls_options;
};

// Where channels live (docs/operations.md#scaling-out): this process, or Redis Streams shared
// by every instance.
struct BackplaneConfig {
  enum class Type { kMemory, kRedis };
  Type type = Type::kMemory;
  std::string url;  // as written: redis://[:password@]host[:port][/db]
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  uint32_t db = 0;
  std::string password;
  std::string key_prefix = "ssegw:";
  // How long a source's ownership lasts without renewal: when its owner dies, another instance
  // takes the source over after at most this long.
  Duration lease_ttl = std::chrono::seconds(5);
};

enum class StreamFormat { kSse, kNdjson };

// An upstream feed bound to the channels whose names match a glob.
struct SourceConfig {
  std::string channels;  // glob: '*' matches any run of characters
  std::string upstream;  // an upstreams key
  std::string path;      // "{channel}" is replaced by the channel name
  StreamFormat format = StreamFormat::kSse;
  Duration idle_close = std::chrono::seconds(30);
  Duration reconnect_min = std::chrono::milliseconds(100);  // backoff floor
  Duration reconnect_max = std::chrono::seconds(30);        // backoff ceiling
};

enum class DisconnectPolicy { kCancel, kContinue };
// Whether a route needs a gateway token when auth.jwt or auth.keys is configured.
enum class RouteAuth { kRequired, kNone };

// What moves a route request on to its next attempt, before anything reached the client.
enum RetryOn : uint32_t {
  kRetryConnectError = 1,      // resolve, connect, connect timeout, TLS: the request never arrived
  kRetryFirstByteTimeout = 2,  // the upstream's first_byte_timeout passed without a head
  kRetry5xx = 4,               // a 5xx head
  kRetry429 = 8,               // a 429 head
};

// A streaming reverse-proxy route for LLM APIs.
struct RouteConfig {
  std::string path;  // exact request path, e.g. /v1/chat/completions
  // The upstreams keys to try, in order: `upstream: a` is [a]. The first is the primary.
  std::vector<std::string> upstreams;
  std::string upstream;  // upstreams[0]
  // Attempts in all, each on the next upstream of the list (round again when it is shorter);
  // defaults to the number of upstreams.
  uint32_t max_attempts = 1;
  uint32_t retry_on = kRetryConnectError | kRetryFirstByteTimeout | kRetry5xx | kRetry429;
  // Ask OpenAI chat upstreams for the usage of streamed answers (docs/protocol.md "Usage").
  bool include_usage = true;
  // Keep the books (docs/protocol.md "Usage"): read each answer's token counts, write its usage
  // record and the ssegw_llm_* series. false for a route that is no LLM API: nothing is read.
  bool usage = true;
  bool resumable = false;
  DisconnectPolicy on_disconnect = DisconnectPolicy::kCancel;
  RouteAuth auth = RouteAuth::kRequired;
  uint64_t high_water_bytes = 64 << 10;  // stop reading the upstream above this unsent output
  uint64_t low_water_bytes = 16 << 10;   // and resume below this
  // A client that takes no byte for this long while the upstream is paused for it is cut off,
  // and the upstream request cancelled: a reader that stopped must not hold an upstream forever.
  Duration stall_timeout = std::chrono::seconds(60);
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
  Http2Config http2;
  CorsConfig cors;
  AuthConfig auth;
  LogConfig log;
  DemoConfig demo;
  FanoutConfig fanout;
  BackplaneConfig backplane;
  ListenerTlsConfig tls;
  std::vector<UpstreamConfig> upstreams;
  std::vector<SourceConfig> sources;
  std::vector<RouteConfig> routes;

  const UpstreamConfig* find_upstream(const std::string& name) const;
};

// Parses an upstream URL into scheme, host, port and base path. Throws Error.
void parse_upstream_url(const std::string& url, UpstreamConfig& upstream);
// Parses a Redis URL, redis://[:password@]host[:port][/db], into backplane. Throws Error.
void parse_redis_url(const std::string& url, BackplaneConfig& backplane);
// '*' matches any run of characters (also none); everything else matches itself.
bool glob_match(std::string_view pattern, std::string_view text);

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

}  // namespace ssegw::config
