// The value parsers of config/config.hpp: durations, sizes, listen addresses, ${VAR} expansion,
// upstream and Redis URLs, channel globs. They know nothing of YAML; the loader adds the
// position and key path to their messages.

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <utility>

#include "config/config.hpp"
#include "config/text.hpp"

namespace ssegw::config {

namespace {

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
    host_port += ':';
    host_port += std::to_string(u.port);
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

}  // namespace ssegw::config
