// YAML -> config::Config. Every check that needs the YAML node (its type, its position) happens
// in the Loader, so that the rest of the gateway only ever sees typed values.
//
// Internal to config/: users of config/ call load_file or load_string (config/config.hpp), and
// only config/ includes yaml-cpp. One class, its methods in four files:
// - loader.cpp: the walk over maps and lists, the scalar readers, the top level, load_string and
//   load_file;
// - loader_sections.cpp: history, slow_consumer, limits, http2, cors, log, demo, backplane, tls;
// - loader_auth.cpp: auth, auth.keys, auth.jwt;
// - loader_upstreams.cpp: upstreams, sources, routes.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace ssegw::config {

// Turns one YAML document into a Config. Holds the file name so that every error can say
// "file:line:column: path: what".
class Loader {
 public:
  explicit Loader(std::string name) : name_(std::move(name)) {}

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& message) const;

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

  // The whole document; an empty one gives all defaults.
  Config load(const YAML::Node& root);

 private:
  // "a map", "a list", ...: what a node is, for messages.
  static const char* type_name(const YAML::Node& node);

  // Walks a map, dispatching each key to its handler. Unknown and repeated keys are errors; an
  // empty value ("history:" with everything commented out) means all defaults.
  void read_map(const YAML::Node& node, const std::string& path, const Handlers& handlers);

  // Runs a parse_* function, adding the position and key path to its message.
  template <typename F>
  void wrap(const Field& f, F&& parse) {
    try {
      parse();
    } catch (const Error& e) {
      fail(f.mark(), f.path + ": " + e.what());
    }
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

  // The scalar's text after ${VAR} expansion. `expected` describes the value for messages.
  std::string scalar(const Field& f, const std::string& expected);
  // A scalar that must not be empty.
  std::string nonempty(const Field& f, const std::string& expected);
  Duration duration(const Field& f, bool allow_zero);
  // A positive size in bytes, at most `max`.
  uint64_t size(const Field& f, uint64_t max = std::numeric_limits<uint64_t>::max());
  uint32_t size32(const Field& f);
  // A positive integer that fits in `max`.
  uint64_t count(const Field& f, uint64_t max);
  uint32_t count32(const Field& f);
  // A number of workers, or "auto" for one per core.
  uint32_t workers(const Field& f);
  bool boolean(const Field& f);
  std::string log_level(const Field& f);
  // A list of non-empty strings. An empty item is refused because it is almost always an unset
  // ${VAR}, and an empty publish token must never match a request.
  std::vector<std::string> string_list(const Field& f);

  // The sections (loader_sections.cpp).
  void history(const Field& f, HistoryConfig& h);
  void slow_consumer(const Field& f, SlowConsumerConfig& s);
  void limits(const Field& f, LimitsConfig& l);
  void cors(const Field& f, CorsConfig& c);
  void http2(const Field& f, Http2Config& h);
  void log(const Field& f, LogConfig& l);
  void demo(const Field& f, DemoConfig& d);
  void fanout(const Field& f, FanoutConfig& o);
  void backplane(const Field& f, BackplaneConfig& b);
  void listener_tls(const Field& f, ListenerTlsConfig& t);
  // "file:line:column" of a mark, as fail() prefixes it.
  std::string where(const YAML::Mark& mark) const;

  // auth (loader_auth.cpp).
  void auth(const Field& f, AuthConfig& a);
  // auth.keys: named static tokens with grants. A key's name becomes a metrics label, so it is
  // short and plain; its token must be long enough not to be guessed.
  void keys(const Field& f, std::vector<KeyConfig>& out);
  // tokens_per_minute, requests_per_minute and max_concurrent, into b (which must outlive them).
  Handlers budget_limits(BudgetLimits& b);
  // Every combination is checked once all keys are read, since YAML keeps no order among them.
  JwtConfig jwt(const Field& f);

  // What connects upstream (loader_upstreams.cpp). Sources and routes name an upstream, which
  // may stand later in the file: check_references looks the names up once all is read.
  void upstreams(const Field& f, std::vector<UpstreamConfig>& out);
  void sources(const Field& f, std::vector<SourceConfig>& out);
  void routes(const Field& f, std::vector<RouteConfig>& out);
  void check_references(const Config& cfg);

  struct Reference {
    std::string name;
    YAML::Mark mark;
    std::string path;
  };
  std::vector<Reference> references_;
  std::string name_;
};

}  // namespace ssegw::config
