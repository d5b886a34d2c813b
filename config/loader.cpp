// The Loader's core: the walk over maps and lists, the scalar readers, the top level, and the
// entry points load_string and load_file.

#include "config/loader.hpp"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "config/text.hpp"

namespace ssegw::config {

namespace {

constexpr uint32_t kMaxWorkers = 64;

}  // namespace

void Loader::fail(const YAML::Mark& mark, const std::string& message) const {
  throw Error(where(mark) + ": " + message);
}

std::string Loader::where(const YAML::Mark& mark) const {
  if (mark.is_null()) return name_;
  return name_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

const char* Loader::type_name(const YAML::Node& node) {
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

Config Loader::load(const YAML::Node& root) {
  Config cfg;
  cfg.source_file = name_;
  if (root.IsNull()) return cfg;  // an empty file: all defaults
  if (!root.IsMap()) {
    fail(root.Mark(),
         "the top level must be a map of settings, got " + std::string(type_name(root)));
  }

  read_map(
      root, "",
      {
          {"listen",
           [&](const Field& f) {
             std::string text = scalar(f, "\"HOST:PORT\"");
             wrap(f, [&] { parse_listen(text, cfg.listen_host, cfg.listen_port); });
           }},
          {"workers", [&](const Field& f) { cfg.workers = workers(f); }},
          {"retry", [&](const Field& f) { cfg.retry = duration(f, /*allow_zero=*/false); }},
          {"heartbeat", [&](const Field& f) { cfg.heartbeat = duration(f, /*allow_zero=*/false); }},
          // Zero is meaningful here: close every connection at once.
          {"shutdown_grace",
           [&](const Field& f) { cfg.shutdown_grace = duration(f, /*allow_zero=*/true); }},
          {"history", [&](const Field& f) { history(f, cfg.history); }},
          {"slow_consumer", [&](const Field& f) { slow_consumer(f, cfg.slow_consumer); }},
          {"limits", [&](const Field& f) { limits(f, cfg.limits); }},
          {"http2", [&](const Field& f) { http2(f, cfg.http2); }},
          {"cors", [&](const Field& f) { cors(f, cfg.cors); }},
          {"auth", [&](const Field& f) { auth(f, cfg.auth); }},
          {"log", [&](const Field& f) { log(f, cfg.log); }},
          {"demo", [&](const Field& f) { demo(f, cfg.demo); }},
          {"fanout", [&](const Field& f) { fanout(f, cfg.fanout); }},
          {"backplane", [&](const Field& f) { backplane(f, cfg.backplane); }},
          {"tls", [&](const Field& f) { listener_tls(f, cfg.tls); }},
          {"upstreams", [&](const Field& f) { upstreams(f, cfg.upstreams); }},
          {"sources", [&](const Field& f) { sources(f, cfg.sources); }},
          {"routes", [&](const Field& f) { routes(f, cfg.routes); }},
      });
  check_references(cfg);
  return cfg;
}

void Loader::read_map(const YAML::Node& node, const std::string& path, const Handlers& handlers) {
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

std::string Loader::scalar(const Field& f, const std::string& expected) {
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

std::string Loader::nonempty(const Field& f, const std::string& expected) {
  std::string text = scalar(f, expected);
  if (text.empty()) fail(f.mark(), f.path + ": must not be empty");
  return text;
}

Duration Loader::duration(const Field& f, bool allow_zero) {
  std::string text = scalar(f, "a duration such as 250ms or 15s");
  Duration d{};
  wrap(f, [&] { d = parse_duration(text); });
  if (!allow_zero && d.count() == 0) fail(f.mark(), f.path + ": must be greater than 0");
  return d;
}

uint64_t Loader::size(const Field& f, uint64_t max) {
  std::string text = scalar(f, "a size such as 512, 16KiB or 1MiB");
  uint64_t n = 0;
  wrap(f, [&] { n = parse_size(text); });
  if (n == 0) fail(f.mark(), f.path + ": must be greater than 0");
  if (n > max) {
    fail(f.mark(), f.path + ": " + quoted(text) + " is too large (at most " + std::to_string(max) +
                       " bytes)");
  }
  return n;
}

uint32_t Loader::size32(const Field& f) {
  return static_cast<uint32_t>(size(f, std::numeric_limits<uint32_t>::max()));
}

uint64_t Loader::count(const Field& f, uint64_t max) {
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

uint32_t Loader::count32(const Field& f) {
  return static_cast<uint32_t>(count(f, std::numeric_limits<uint32_t>::max()));
}

uint32_t Loader::workers(const Field& f) {
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

bool Loader::boolean(const Field& f) {
  std::string text = scalar(f, "true or false");
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  fail(f.mark(), f.path + ": expected true or false, got " + quoted(text));
}

std::string Loader::log_level(const Field& f) {
  std::string text = scalar(f, "debug, info, warn or error");
  if (text == "debug" || text == "info" || text == "warn" || text == "error") return text;
  fail(f.mark(), f.path + ": expected debug, info, warn or error, got " + quoted(text));
}

std::vector<std::string> Loader::string_list(const Field& f) {
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

void Loader::check_references(const Config& cfg) {
  for (const Reference& ref : references_) {
    if (!cfg.find_upstream(ref.name))
      fail(ref.mark, ref.path + ": unknown upstream " + quoted(ref.name));
  }
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
