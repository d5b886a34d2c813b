// YAML -> config::Config. Every check that needs the YAML node (its type, its position) happens
// here, so that the rest of the gateway only ever sees typed values.

#include "config/config.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>
#include <utility>

namespace ssegw::config {

namespace {

constexpr uint32_t kMaxWorkers = 64;

// Parses a run of decimal digits that must make up all of `digits`. No sign, no spaces.
bool parse_digits(std::string_view digits, uint64_t& out) {
  if (digits.empty()) return false;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  return ec == std::errc() && end == digits.data() + digits.size();
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Splits "123unit" into the number and the unit; the unit may be empty.
std::pair<std::string_view, std::string_view> split_number(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  return {text.substr(0, i), text.substr(i)};
}

bool valid_env_name(std::string_view name) {
  if (name.empty()) return false;
  if (!(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

constexpr size_t kMinKeyTokenBytes = 16;
constexpr size_t kMinHmacSecretBytes = 32;  // RFC 7518 section 3.2: no shorter than the hash
constexpr int kMinRsaBits = 2048;
constexpr size_t kMaxKeyFileBytes = 1 << 20;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// Reads the public key for RS256 or ES256 from a PEM file, checks that it suits the algorithm,
// and returns it re-encoded as PEM, so that the verifier later parses exactly what was checked.
// Throws Error with a message that does not repeat the key path's YAML position.
std::string load_public_key(const std::string& path, JwtAlg alg) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + quoted(path) + ": " + std::strerror(errno));
  std::string text(kMaxKeyFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxKeyFileBytes) throw Error(quoted(path) + " is larger than 1 MiB");

  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();  // the thread's queue would otherwise confuse later TLS calls
  if (!key) {
    throw Error(quoted(path) +
                " holds no PEM public key (expected \"-----BEGIN PUBLIC KEY-----\"; from a "
                "certificate: openssl x509 -pubkey -noout -in CERT)");
  }
  const char* type = EVP_PKEY_get0_type_name(key.get());
  std::string kind = type ? type : "unknown";
  if (alg == JwtAlg::kRS256) {
    if (!EVP_PKEY_is_a(key.get(), "RSA"))
      throw Error(quoted(path) + " holds a key of type " + kind + "; RS256 needs RSA");
    int bits = EVP_PKEY_get_bits(key.get());
    if (bits < kMinRsaBits) {
      throw Error(quoted(path) + " holds a " + std::to_string(bits) +
                  "-bit RSA key; RS256 needs at least " + std::to_string(kMinRsaBits) + " bits");
    }
  } else {
    if (!EVP_PKEY_is_a(key.get(), "EC"))
      throw Error(quoted(path) + " holds a key of type " + kind + "; ES256 needs EC on P-256");
    char group[64] = {0};
    size_t group_len = 0;
    if (!EVP_PKEY_get_group_name(key.get(), group, sizeof group, &group_len)) group[0] = '\0';
    ERR_clear_error();
    if (std::string_view(group) != "prime256v1") {
      throw Error(quoted(path) + " holds an EC key on " +
                  (group[0] ? std::string(group) : std::string("an unnamed curve")) +
                  "; ES256 needs P-256 (prime256v1)");
    }
  }

  std::unique_ptr<BIO, BioFree> out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_PUBKEY(out.get(), key.get()) != 1) {
    ERR_clear_error();
    throw Error("cannot re-encode the key from " + quoted(path));
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

const char* type_name(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      break;
  }
  return "an undefined node";
}

// Turns one YAML document into a Config. Holds the file name so that every error can say
// "file:line:column: path: what".
class Loader {
 public:
  explicit Loader(std::string name) : name_(std::move(name)) {}

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& message) const {
    if (mark.is_null()) throw Error(name_ + ": " + message);
    throw Error(name_ + ":" + std::to_string(mark.line + 1) + ":" +
                std::to_string(mark.column + 1) + ": " + message);
  }

  // A value and where it came from. `key` is the map key that introduced it, used for the
  // position when the value itself is empty (yaml-cpp then marks the start of the next line).
  struct Field {
    YAML::Node key;
    YAML::Node value;
    std::string path;  // "history.ttl", for messages

    YAML::Mark mark() const { return value.IsNull() ? key.Mark() : value.Mark(); }
  };

  using Handler = std::function<void(const Field&)>;
  using Handlers = std::vector<std::pair<std::string_view, Handler>>;

  Config load(const YAML::Node& root) {
    Config cfg;
    cfg.source_file = name_;
    if (root.IsNull()) return cfg;  // an empty file: all defaults
    if (!root.IsMap()) {
      fail(root.Mark(),
           "the top level must be a map of settings, got " + std::string(type_name(root)));
    }

    read_map(root, "",
             {
                 {"listen",
                  [&](const Field& f) {
                    std::string text = scalar(f, "\"HOST:PORT\"");
                    wrap(f, [&] { parse_listen(text, cfg.listen_host, cfg.listen_port); });
                  }},
                 {"workers", [&](const Field& f) { cfg.workers = workers(f); }},
                 {"retry", [&](const Field& f) { cfg.retry = duration(f, /*allow_zero=*/false); }},
                 {"heartbeat",
                  [&](const Field& f) { cfg.heartbeat = duration(f, /*allow_zero=*/false); }},
                 // Zero is meaningful here: close every connection at once.
                 {"shutdown_grace",
                  [&](const Field& f) { cfg.shutdown_grace = duration(f, /*allow_zero=*/true); }},
                 {"history", [&](const Field& f) { history(f, cfg.history); }},
                 {"slow_consumer", [&](const Field& f) { slow_consumer(f, cfg.slow_consumer); }},
                 {"limits", [&](const Field& f) { limits(f, cfg.limits); }},
                 {"cors", [&](const Field& f) { cors(f, cfg.cors); }},
                 {"auth", [&](const Field& f) { auth(f, cfg.auth); }},
                 {"log", [&](const Field& f) { log(f, cfg.log); }},
                 {"demo", [&](const Field& f) { demo(f, cfg.demo); }},
                 {"backplane", [&](const Field& f) { backplane(f, cfg.backplane); }},
                 {"upstreams", [&](const Field& f) { upstreams(f, cfg.upstreams); }},
                 {"sources", [&](const Field& f) { sources(f, cfg.sources); }},
                 {"routes", [&](const Field& f) { routes(f, cfg.routes); }},
             });
    check_references(cfg);
    return cfg;
  }

 private:
  // Walks a map, dispatching each key to its handler. Unknown and repeated keys are errors; an
  // empty value ("history:" with everything commented out) means all defaults.
  void read_map(const YAML::Node& node, const std::string& path, const Handlers& handlers) {
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      fail(node.Mark(), path + ": expected a map, got " + type_name(node));
    }
    std::set<std::string> seen;
    for (const auto& entry : node) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar()) {
        fail(key.Mark(), "expected a key name, got " + std::string(type_name(key)));
      }
      const std::string& name = key.Scalar();
      auto it = std::find_if(handlers.begin(), handlers.end(),
                             [&](const auto& h) { return h.first == name; });
      if (it == handlers.end()) fail(key.Mark(), "unknown key " + quoted(name));
      if (!seen.insert(name).second) fail(key.Mark(), "duplicate key " + quoted(name));
      it->second(Field{key, entry.second, path.empty() ? name : path + "." + name});
    }
  }

  // Runs a parse_* function, adding the position and key path to its message.
  template <typename F>
  void wrap(const Field& f, F&& parse) {
    try {
      parse();
    } catch (const Error& e) {
      fail(f.mark(), f.path + ": " + e.what());
    }
  }

  // The scalar's text after ${VAR} expansion. `expected` describes the value for messages.
  std::string scalar(const Field& f, const std::string& expected) {
    if (f.value.IsNull()) fail(f.mark(), f.path + ": missing value, expected " + expected);
    if (!f.value.IsScalar()) {
      std::string hint;
      if (f.path == "listen" && f.value.IsSequence())
        hint = " (quote IPv6 addresses: \"[::1]:8080\")";
      fail(f.mark(), f.path + ": expected " + expected + ", got " + type_name(f.value) + hint);
    }
    std::string text;
    wrap(f, [&] { text = expand_env(f.value.Scalar()); });
    return text;
  }

  Duration duration(const Field& f, bool allow_zero) {
    std::string text = scalar(f, "a duration such as 250ms or 15s");
    Duration d{};
    wrap(f, [&] { d = parse_duration(text); });
    if (!allow_zero && d.count() == 0) fail(f.mark(), f.path + ": must be greater than 0");
    return d;
  }

  uint64_t size(const Field& f, uint64_t max = std::numeric_limits<uint64_t>::max()) {
    std::string text = scalar(f, "a size such as 512, 16KiB or 1MiB");
    uint64_t n = 0;
    wrap(f, [&] { n = parse_size(text); });
    if (n == 0) fail(f.mark(), f.path + ": must be greater than 0");
    if (n > max) {
      fail(f.mark(), f.path + ": " + quoted(text) + " is too large (at most " +
                         std::to_string(max) + " bytes)");
    }
    return n;
  }

  uint32_t size32(const Field& f) {
    return static_cast<uint32_t>(size(f, std::numeric_limits<uint32_t>::max()));
  }

  // A positive integer that fits in `max`.
  uint64_t count(const Field& f, uint64_t max) {
    std::string text = scalar(f, "a positive integer");
    uint64_t n = 0;
    bool ok = parse_digits(text, n);
    if (!ok && !all_digits(text)) {
      fail(f.mark(), f.path + ": expected a positive integer, got " + quoted(text));
    }
    if (!ok || n > max) {  // digits only, so !ok means it overflowed uint64_t
      fail(f.mark(),
           f.path + ": " + quoted(text) + " is too large (at most " + std::to_string(max) + ")");
    }
    if (n == 0) fail(f.mark(), f.path + ": must be greater than 0");
    return n;
  }

  uint32_t count32(const Field& f) {
    return static_cast<uint32_t>(count(f, std::numeric_limits<uint32_t>::max()));
  }

  uint32_t workers(const Field& f) {
    const std::string expected = "a number from 1 to " + std::to_string(kMaxWorkers) + " or auto";
    std::string text = scalar(f, expected);
    if (text == "auto") {
      unsigned cores = std::thread::hardware_concurrency();  // 0 when unknown
      return std::clamp<uint32_t>(cores, 1, kMaxWorkers);
    }
    uint64_t n = 0;
    if (!parse_digits(text, n) || n == 0 || n > kMaxWorkers) {
      fail(f.mark(), f.path + ": expected " + expected + ", got " + quoted(text));
    }
    return static_cast<uint32_t>(n);
  }

  bool boolean(const Field& f) {
    std::string text = scalar(f, "true or false");
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
    fail(f.mark(), f.path + ": expected true or false, got " + quoted(text));
  }

  std::string log_level(const Field& f) {
    std::string text = scalar(f, "debug, info, warn or error");
    if (text == "debug" || text == "info" || text == "warn" || text == "error") return text;
    fail(f.mark(), f.path + ": expected debug, info, warn or error, got " + quoted(text));
  }

  // A list of non-empty strings. An empty item is refused because it is almost always an unset
  // ${VAR}, and an empty publish token must never match a request.
  std::vector<std::string> string_list(const Field& f) {
    std::vector<std::string> out;
    if (f.value.IsNull()) return out;
    if (!f.value.IsSequence()) {
      fail(f.mark(), f.path + ": expected a list of strings, got " + type_name(f.value));
    }
    for (size_t i = 0; i < f.value.size(); ++i) {
      Field item{f.key, f.value[i], f.path + "[" + std::to_string(i) + "]"};
      if (item.value.IsNull()) fail(item.value.Mark(), item.path + ": empty item");
      std::string text = scalar(item, "a string");
      if (text.empty()) {
        fail(item.mark(), item.path + ": empty string (is the environment variable set?)");
      }
      out.push_back(std::move(text));
    }
    return out;
  }

  void history(const Field& f, HistoryConfig& h) {
    read_map(f.value, f.path,
             {
                 {"max_events", [&](const Field& g) { h.max_events = count32(g); }},
                 {"max_bytes", [&](const Field& g) { h.max_bytes = size(g); }},
                 {"ttl", [&](const Field& g) { h.ttl = duration(g, /*allow_zero=*/false); }},
                 {"max_total_bytes", [&](const Field& g) { h.max_total_bytes = size(g); }},
             });
  }

  void backplane(const Field& f, BackplaneConfig& b) {
    std::optional<Field> url;
    std::string type = "memory";
    read_map(f.value, f.path,
             {
                 {"type",
                  [&](const Field& g) {
                    type = scalar(g, "memory or redis");
                    if (type != "memory" && type != "redis")
                      fail(g.mark(), g.path + ": expected memory or redis, got " + quoted(type));
                  }},
                 {"url", [&](const Field& g) { url = g; }},
                 {"key_prefix",
                  [&](const Field& g) {
                    b.key_prefix = scalar(g, "a string");
                    if (b.key_prefix.size() > 64)
                      fail(g.mark(), g.path + ": at most 64 characters");
                  }},
                 {"lease_ttl",
                  [&](const Field& g) {
                    b.lease_ttl = duration(g, /*allow_zero=*/false);
                    if (b.lease_ttl < std::chrono::milliseconds(300))
                      fail(g.mark(), g.path + ": must be at least 300ms");
                  }},
             });
    if (type == "memory") {
      if (url) fail(url->mark(), url->path + ": only used with type: redis");
      return;
    }
    b.type = BackplaneConfig::Type::kRedis;
    if (!url) fail(f.mark(), f.path + ": type redis needs a url (redis://127.0.0.1:6379/0)");
    std::string text = scalar(*url, "a URL such as redis://127.0.0.1:6379/0");
    wrap(*url, [&] { parse_redis_url(text, b); });
  }

  void limits(const Field& f, LimitsConfig& l) {
    read_map(
        f.value, f.path,
        {
            {"max_connections", [&](const Field& g) { l.max_connections = count32(g); }},
            {"max_channels", [&](const Field& g) { l.max_channels = count32(g); }},
            {"max_sources", [&](const Field& g) { l.max_sources = count32(g); }},
            {"max_header_bytes", [&](const Field& g) { l.max_header_bytes = size32(g); }},
            {"max_event_bytes", [&](const Field& g) { l.max_event_bytes = size32(g); }},
            {"header_timeout",
             [&](const Field& g) { l.header_timeout = duration(g, /*allow_zero=*/false); }},
            {"idle_timeout",
             [&](const Field& g) { l.idle_timeout = duration(g, /*allow_zero=*/false); }},
            {"max_connections_per_ip",
             [&](const Field& g) { l.max_connections_per_ip = count32(g); }},
            {"publish_rate_per_ip", [&](const Field& g) { l.publish_rate_per_ip = count32(g); }},
            {"publish_burst_per_ip", [&](const Field& g) { l.publish_burst_per_ip = count32(g); }},
            {"max_streams_per_ip", [&](const Field& g) { l.max_streams_per_ip = count32(g); }},
            {"owner_timeout",
             [&](const Field& g) { l.owner_timeout = duration(g, /*allow_zero=*/false); }},
        });
  }

  void slow_consumer(const Field& f, SlowConsumerConfig& s) {
    read_map(f.value, f.path,
             {
                 {"max_queued_bytes", [&](const Field& g) { s.max_queued_bytes = size(g); }},
                 {"stall_timeout",
                  [&](const Field& g) { s.stall_timeout = duration(g, /*allow_zero=*/false); }},
             });
  }

  void cors(const Field& f, CorsConfig& c) {
    read_map(f.value, f.path,
             {{"allow_origins", [&](const Field& g) { c.allow_origins = string_list(g); }}});
  }

  void auth(const Field& f, AuthConfig& a) {
    std::optional<Field> anonymous;
    std::optional<Field> publish_tokens;
    read_map(f.value, f.path,
             {
                 {"publish_tokens",
                  [&](const Field& g) {
                    a.publish_tokens = string_list(g);
                    publish_tokens = g;
                  }},
                 {"keys", [&](const Field& g) { keys(g, a.keys); }},
                 {"jwt", [&](const Field& g) { a.jwt = jwt(g); }},
                 {"anonymous_subscribe", [&](const Field& g) { anonymous = g; }},
             });
    a.anonymous_subscribe = anonymous ? boolean(*anonymous) : !a.guards_routes();
    if (!a.anonymous_subscribe && !a.guards_routes()) {
      fail(anonymous->mark(), anonymous->path +
                                  ": false needs auth.jwt or auth.keys (without them no "
                                  "subscriber could ever be let in)");
    }
    if (publish_tokens) {
      for (const KeyConfig& key : a.keys)
        for (const std::string& token : a.publish_tokens)
          if (token == key.token)
            fail(publish_tokens->mark(), publish_tokens->path +
                                             ": a publish token is also the "
                                             "token of key " +
                                             quoted(key.name));
    }
  }

  // auth.keys: named static tokens with grants. A key's name becomes a metrics label, so it is
  // short and plain; its token must be long enough not to be guessed.
  void keys(const Field& f, std::vector<KeyConfig>& out) {
    each_item(f, [&](const Field& item) {
      KeyConfig k;
      bool has_name = false, has_token = false;
      read_map(
          item.value, item.path,
          {
              {"name",
               [&](const Field& g) {
                 k.name = nonempty(g, "a key name");
                 bool plain =
                     k.name.size() <= 64 && std::all_of(k.name.begin(), k.name.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                              c == '-';
                     });
                 if (!plain)
                   fail(g.mark(),
                        g.path + ": 1 to 64 characters of [A-Za-z0-9_.-], got " + quoted(k.name));
                 if (k.name == "anonymous" || k.name == "jwt")
                   fail(g.mark(), g.path + ": " + quoted(k.name) +
                                      " is reserved (it names requests without a key)");
                 for (const KeyConfig& other : out)
                   if (other.name == k.name)
                     fail(g.mark(), g.path + ": duplicate key name " + quoted(k.name));
                 has_name = true;
               }},
              {"token",
               [&](const Field& g) {
                 k.token = scalar(g, "a token of at least 16 bytes");
                 if (k.token.empty())
                   fail(g.mark(), g.path + ": empty string (is the environment variable set?)");
                 if (k.token.size() < kMinKeyTokenBytes)
                   fail(g.mark(), g.path + ": refusing a short token: " +
                                      std::to_string(k.token.size()) + " bytes, at least " +
                                      std::to_string(kMinKeyTokenBytes) + " are needed");
                 for (const KeyConfig& other : out)
                   if (other.token == k.token)
                     fail(g.mark(), g.path + ": the same token as key " + quoted(other.name));
                 has_token = true;
               }},
              {"routes", [&](const Field& g) { k.routes = string_list(g); }},
              {"publish", [&](const Field& g) { k.publish = string_list(g); }},
              {"subscribe", [&](const Field& g) { k.subscribe = string_list(g); }},
          });
      if (!has_name || !has_token) fail(item.mark(), item.path + ": needs name and token");
      out.push_back(std::move(k));
    });
  }

  // Every combination is checked once all keys are read, since YAML keeps no order among them.
  JwtConfig jwt(const Field& f) {
    std::optional<Field> alg, secret, key_file;
    read_map(f.value, f.path,
             {
                 {"alg", [&](const Field& g) { alg = g; }},
                 {"secret", [&](const Field& g) { secret = g; }},
                 {"public_key_file", [&](const Field& g) { key_file = g; }},
             });
    // An empty jwt: (every line under it commented out) must not silently open subscriptions.
    if (!alg) {
      fail(f.mark(), f.path + ": missing key 'alg' (HS256, RS256 or ES256); remove " + f.path +
                         " to turn JWT off");
    }
    JwtConfig j;
    std::string name = scalar(*alg, "HS256, RS256 or ES256");
    if (name == "HS256") {
      j.alg = JwtAlg::kHS256;
    } else if (name == "RS256") {
      j.alg = JwtAlg::kRS256;
    } else if (name == "ES256") {
      j.alg = JwtAlg::kES256;
    } else {
      fail(alg->mark(), alg->path + ": expected HS256, RS256 or ES256, got " + quoted(name) +
                            (name == "none" ? " (unsigned tokens are never accepted)" : ""));
    }

    if (j.alg == JwtAlg::kHS256) {
      if (key_file) {
        fail(key_file->key.Mark(),
             key_file->path + ": HS256 verifies with a secret, not a public key file");
      }
      if (!secret) fail(f.mark(), f.path + ": HS256 needs a secret");
      j.secret = scalar(*secret, "a secret of at least 32 bytes");
      if (j.secret.empty()) {
        fail(secret->mark(), secret->path + ": empty string (is the environment variable set?)");
      }
      if (j.secret.size() < kMinHmacSecretBytes) {
        fail(secret->mark(), secret->path + ": refusing a weak HMAC key: " +
                                 std::to_string(j.secret.size()) + " bytes, HS256 needs at least " +
                                 std::to_string(kMinHmacSecretBytes) + " (RFC 7518 section 3.2)");
      }
    } else {
      if (secret) {
        fail(secret->key.Mark(),
             secret->path + ": " + name + " verifies with public_key_file; a secret is not used");
      }
      if (!key_file) fail(f.mark(), f.path + ": " + name + " needs public_key_file");
      j.public_key_file = nonempty(*key_file, "a PEM public key file");
      try {
        j.public_key_pem = load_public_key(j.public_key_file, j.alg);
      } catch (const Error& e) {
        fail(key_file->mark(), key_file->path + ": " + e.what());
      }
    }
    return j;
  }

  void log(const Field& f, LogConfig& l) {
    read_map(f.value, f.path, {{"level", [&](const Field& g) { l.level = log_level(g); }}});
  }

  void demo(const Field& f, DemoConfig& d) {
    read_map(f.value, f.path, {{"enabled", [&](const Field& g) { d.enabled = boolean(g); }}});
  }

  // Each item of a list, as a Field with its index in the path.
  template <typename F>
  void each_item(const Field& f, F&& item) {
    if (f.value.IsNull()) return;
    if (!f.value.IsSequence()) {
      fail(f.mark(), f.path + ": expected a list, got " + type_name(f.value));
    }
    for (size_t i = 0; i < f.value.size(); ++i)
      item(Field{f.key, f.value[i], f.path + "[" + std::to_string(i) + "]"});
  }

  std::string nonempty(const Field& f, const std::string& expected) {
    std::string text = scalar(f, expected);
    if (text.empty()) fail(f.mark(), f.path + ": must not be empty");
    return text;
  }

  void upstreams(const Field& f, std::vector<UpstreamConfig>& out) {
    if (f.value.IsNull()) return;
    if (!f.value.IsMap()) fail(f.mark(), f.path + ": expected a map of name -> settings");
    for (const auto& entry : f.value) {
      UpstreamConfig u;
      u.name = entry.first.Scalar();
      Field item{entry.first, entry.second, f.path + "." + u.name};
      bool has_url = false;
      read_map(
          item.value, item.path,
          {
              {"url",
               [&](const Field& g) {
                 u.url = nonempty(g, "a URL such as http://127.0.0.1:9000");
                 wrap(g, [&] { parse_upstream_url(u.url, u); });
                 has_url = true;
               }},
              {"connect_timeout", [&](const Field& g) { u.connect_timeout = duration(g, false); }},
              {"first_byte_timeout",
               [&](const Field& g) { u.first_byte_timeout = duration(g, false); }},
              {"idle_timeout", [&](const Field& g) { u.idle_timeout = duration(g, false); }},
              {"max_idle_connections",
               [&](const Field& g) { u.max_idle_connections = count32(g); }},
              {"max_concurrent", [&](const Field& g) { u.max_concurrent = count32(g); }},
              {"headers",
               [&](const Field& g) {
                 if (g.value.IsNull()) return;
                 if (!g.value.IsMap()) fail(g.mark(), g.path + ": expected a map of headers");
                 for (const auto& h : g.value) {
                   Field hv{h.first, h.second, g.path + "." + h.first.Scalar()};
                   u.headers.emplace_back(h.first.Scalar(), scalar(hv, "a header value"));
                 }
               }},
              {"tls",
               [&](const Field& g) {
                 read_map(
                     g.value, g.path,
                     {
                         {"ca_file",
                          [&](const Field& t) {
                            u.tls_options.ca_file = nonempty(t, "a PEM file path");
                          }},
                         {"insecure_skip_verify",
                          [&](const Field& t) { u.tls_options.insecure_skip_verify = boolean(t); }},
                     });
               }},
          });
      if (!has_url) fail(entry.first.Mark(), item.path + ": missing key 'url'");
      out.push_back(std::move(u));
    }
  }

  void sources(const Field& f, std::vector<SourceConfig>& out) {
    each_item(f, [&](const Field& item) {
      SourceConfig s;
      bool has_channels = false, has_upstream = false, has_path = false;
      read_map(item.value, item.path,
               {
                   {"channels",
                    [&](const Field& g) {
                      s.channels = nonempty(g, "a channel glob such as feed.*");
                      has_channels = true;
                    }},
                   {"upstream",
                    [&](const Field& g) {
                      s.upstream = nonempty(g, "an upstream name");
                      references_.push_back({s.upstream, g.mark(), g.path});
                      has_upstream = true;
                    }},
                   {"path",
                    [&](const Field& g) {
                      s.path = nonempty(g, "a path such as /feed/{channel}");
                      if (s.path[0] != '/') fail(g.mark(), g.path + ": must start with '/'");
                      has_path = true;
                    }},
                   {"format",
                    [&](const Field& g) {
                      std::string text = scalar(g, "sse or ndjson");
                      if (text == "sse")
                        s.format = StreamFormat::kSse;
                      else if (text == "ndjson")
                        s.format = StreamFormat::kNdjson;
                      else
                        fail(g.mark(), g.path + ": expected sse or ndjson, got " + quoted(text));
                    }},
                   {"idle_close", [&](const Field& g) { s.idle_close = duration(g, true); }},
                   {"reconnect_min", [&](const Field& g) { s.reconnect_min = duration(g, false); }},
                   {"reconnect_max", [&](const Field& g) { s.reconnect_max = duration(g, false); }},
               });
      if (!has_channels || !has_upstream || !has_path)
        fail(item.mark(), item.path + ": needs channels, upstream and path");
      if (s.reconnect_max < s.reconnect_min)
        fail(item.mark(), item.path + ": reconnect_max is below reconnect_min");
      out.push_back(std::move(s));
    });
  }

  void routes(const Field& f, std::vector<RouteConfig>& out) {
    each_item(f, [&](const Field& item) {
      RouteConfig r;
      bool has_path = false, has_upstream = false;
      read_map(item.value, item.path,
               {
                   {"path",
                    [&](const Field& g) {
                      r.path = nonempty(g, "a path such as /v1/chat/completions");
                      if (r.path[0] != '/') fail(g.mark(), g.path + ": must start with '/'");
                      if (r.path.starts_with("/v1/channels") || r.path == "/healthz" ||
                          r.path == "/readyz" || r.path == "/metrics" || r.path == "/")
                        fail(g.mark(), g.path + ": " + quoted(r.path) + " is a gateway path");
                      for (const RouteConfig& other : out)
                        if (other.path == r.path)
                          fail(g.mark(), g.path + ": duplicate route " + quoted(r.path));
                      has_path = true;
                    }},
                   {"upstream",
                    [&](const Field& g) {
                      r.upstream = nonempty(g, "an upstream name");
                      references_.push_back({r.upstream, g.mark(), g.path});
                      has_upstream = true;
                    }},
                   {"resumable", [&](const Field& g) { r.resumable = boolean(g); }},
                   {"on_disconnect",
                    [&](const Field& g) {
                      std::string text = scalar(g, "cancel or continue");
                      if (text == "cancel")
                        r.on_disconnect = DisconnectPolicy::kCancel;
                      else if (text == "continue")
                        r.on_disconnect = DisconnectPolicy::kContinue;
                      else
                        fail(g.mark(),
                             g.path + ": expected cancel or continue, got " + quoted(text));
                    }},
                   {"auth",
                    [&](const Field& g) {
                      std::string text = scalar(g, "required or none");
                      if (text == "required")
                        r.auth = RouteAuth::kRequired;
                      else if (text == "none")
                        r.auth = RouteAuth::kNone;
                      else
                        fail(g.mark(), g.path + ": expected required or none, got " + quoted(text));
                    }},
                   {"high_water_bytes", [&](const Field& g) { r.high_water_bytes = size(g); }},
                   {"low_water_bytes", [&](const Field& g) { r.low_water_bytes = size(g); }},
                   {"stall_timeout", [&](const Field& g) { r.stall_timeout = duration(g, false); }},
               });
      if (!has_path || !has_upstream) fail(item.mark(), item.path + ": needs path and upstream");
      if (r.low_water_bytes > r.high_water_bytes)
        fail(item.mark(), item.path + ": low_water_bytes is above high_water_bytes");
      if (r.on_disconnect == DisconnectPolicy::kContinue && !r.resumable)
        fail(item.mark(), item.path + ": on_disconnect: continue needs resumable: true");
      out.push_back(std::move(r));
    });
  }

  void check_references(const Config& cfg) {
    for (const Reference& ref : references_) {
      if (!cfg.find_upstream(ref.name))
        fail(ref.mark, ref.path + ": unknown upstream " + quoted(ref.name));
    }
  }

  struct Reference {
    std::string name;
    YAML::Mark mark;
    std::string path;
  };
  std::vector<Reference> references_;
  std::string name_;
};

}  // namespace

const char* jwt_alg_name(JwtAlg alg) {
  switch (alg) {
    case JwtAlg::kHS256:
      return "HS256";
    case JwtAlg::kRS256:
      return "RS256";
    case JwtAlg::kES256:
      return "ES256";
  }
  return "?";
}

const UpstreamConfig* Config::find_upstream(const std::string& name) const {
  for (const UpstreamConfig& u : upstreams)
    if (u.name == name) return &u;
  return nullptr;
}

void parse_upstream_url(const std::string& url, UpstreamConfig& u) {
  std::string_view rest(url);
  if (rest.starts_with("http://")) {
    u.tls = false;
    u.port = 80;
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    u.tls = true;
    u.port = 443;
    rest.remove_prefix(8);
  } else {
    throw Error("invalid upstream URL " + quoted(url) + ": expected http:// or https://");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  u.base_path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!u.base_path.empty() && u.base_path.back() == '/') u.base_path.pop_back();
  if (u.base_path.find_first_of("?#") != std::string::npos)
    throw Error("invalid upstream URL " + quoted(url) + ": no query or fragment allowed");
  if (authority.empty()) throw Error("invalid upstream URL " + quoted(url) + ": no host");
  std::string host_port(authority);
  if (host_port.find(':') == std::string::npos ||
      (host_port.front() == '[' && host_port.back() == ']')) {
    host_port += ":" + std::to_string(u.port);
  }
  try {
    parse_listen(host_port, u.host, u.port);
  } catch (const Error& e) {
    throw Error("invalid upstream URL " + quoted(url) + ": " + e.what());
  }
  if (u.port == 0) throw Error("invalid upstream URL " + quoted(url) + ": port 0");
}

void parse_redis_url(const std::string& url, BackplaneConfig& b) {
  constexpr std::string_view kScheme = "redis://";
  if (url.rfind(kScheme, 0) != 0)
    throw Error("expected redis://host[:port][/db], got " + quoted(url));
  b.url = url;
  std::string_view rest = std::string_view(url).substr(kScheme.size());
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    // redis://:password@host or redis://user:password@host (only the password is used).
    size_t colon = auth.find(':');
    b.password = std::string(colon == std::string_view::npos ? auth : auth.substr(colon + 1));
  }
  std::string_view db;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  std::string host;
  uint16_t port = 6379;
  if (rest.find(':') != std::string_view::npos) {
    parse_listen(std::string(rest), host, port);
  } else {
    host = std::string(rest);
  }
  if (host.empty()) throw Error("missing host in " + quoted(url));
  b.host = host;
  b.port = port;
  uint64_t n = 0;
  if (!db.empty() && (!parse_digits(db, n) || n > 15))
    throw Error("the database must be a number from 0 to 15, got " + quoted(std::string(db)));
  b.db = static_cast<uint32_t>(n);
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative matcher with one backtrack point: linear-ish, no recursion on hostile patterns.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Duration parse_duration(const std::string& text) {
  auto [digits, unit] = split_number(text);
  uint64_t n = 0;
  int64_t factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit == "s" || unit.empty()) {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60 * 1000;
  } else if (unit == "h") {
    factor = 60 * 60 * 1000;
  }
  if (factor == 0 || digits.empty()) {
    throw Error("invalid duration " + quoted(text) +
                ": expected a whole number with unit ms, s, m or h, such as 250ms or 15s");
  }
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<Duration::rep>::max());
  if (!parse_digits(digits, n) || n > kMax / static_cast<uint64_t>(factor)) {
    throw Error("duration " + quoted(text) + " is too large");
  }
  return Duration(static_cast<Duration::rep>(n) * factor);
}

uint64_t parse_size(const std::string& text) {
  auto [digits, unit] = split_number(text);
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"", 1},
      {"B", 1},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"KB", 1000},
      {"MB", 1000 * 1000},
      {"GB", 1000 * 1000 * 1000},
  };
  uint64_t factor = 0;
  for (const auto& [name, value] : kUnits) {
    if (unit == name) factor = value;
  }
  if (factor == 0 || digits.empty()) {
    throw Error("invalid size " + quoted(text) +
                ": expected a whole number of bytes, optionally with unit B, KiB, MiB, GiB, KB, "
                "MB or GB, such as 16KiB");
  }
  uint64_t n = 0;
  if (!parse_digits(digits, n) || n > std::numeric_limits<uint64_t>::max() / factor) {
    throw Error("size " + quoted(text) + " is too large");
  }
  return n * factor;
}

void parse_listen(const std::string& text, std::string& host, uint16_t& port) {
  auto bad = [&](const std::string& why) -> Error {
    return Error("invalid listen address " + quoted(text) + ": " + why);
  };
  std::string_view h;
  std::string_view p;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) throw bad("missing ']' after the IPv6 address");
    h = std::string_view(text).substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      throw bad("expected \"[ADDRESS]:PORT\"");
    }
    p = std::string_view(text).substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) throw bad("expected \"HOST:PORT\" (the port is missing)");
    h = std::string_view(text).substr(0, colon);
    p = std::string_view(text).substr(colon + 1);
    if (h.find(':') != std::string_view::npos) {
      throw bad("IPv6 addresses need brackets, such as \"[::1]:8080\"");
    }
  }
  if (h.empty()) throw bad("the host is empty");
  if (std::any_of(h.begin(), h.end(), [](char c) {
        return std::isspace(static_cast<unsigned char>(c)) || c == '[' || c == ']' || c == '/';
      })) {
    throw bad("the host contains an invalid character");
  }
  uint64_t n = 0;
  if (p.empty()) throw bad("the port is missing");
  if (!parse_digits(p, n) || n > 65535) throw bad("the port must be a number from 0 to 65535");
  host = std::string(h);
  port = static_cast<uint16_t>(n);
}

std::string expand_env(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
    } else if (text.compare(i, 2, "${") == 0) {
      size_t close = text.find('}', i + 2);
      if (close == std::string::npos) throw Error("unterminated \"${\" in " + quoted(text));
      std::string name = text.substr(i + 2, close - i - 2);
      if (!valid_env_name(name)) {
        throw Error("invalid environment variable name " + quoted(name) + " in " + quoted(text));
      }
      if (const char* value = std::getenv(name.c_str())) out += value;
      i = close + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

namespace {

// Notes where each document starts; the parse events themselves are not needed.
class DocumentCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
  std::vector<YAML::Mark> starts;
};

}  // namespace

Config load_string(const std::string& yaml_text, const std::string& name) {
  Loader loader(name);
  YAML::Node doc;
  try {
    // yaml-cpp's LoadAll never returns on some inputs (a lone "," was found by the fuzzer): its
    // loop asks for the next document forever. Count documents with a bounded loop instead.
    std::istringstream in(yaml_text);
    YAML::Parser parser(in);
    DocumentCounter counter;
    for (int i = 0; i < 2 && parser.HandleNextDocument(counter); ++i) {
    }
    if (counter.starts.size() > 1)
      loader.fail(counter.starts[1], "only one YAML document is allowed");
    doc = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    loader.fail(e.mark, e.msg);
  }
  try {
    return loader.load(doc);
  } catch (const YAML::Exception& e) {
    // Not expected: every node is type-checked before it is read. Keep the position anyway.
    loader.fail(e.mark, e.msg);
  }
}

Config load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(path + ": cannot read: " + std::strerror(errno));
  return load_string(text.str(), path);
}

}  // namespace ssegw::config
