#include "bench/options.hpp"

#include <arpa/inet.h>
#include <netdb.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace bench {

const char* publish_mode_name(PublishMode mode) {
  switch (mode) {
    case PublishMode::Ssegw:
      return "ssegw";
    case PublishMode::Nchan:
      return "nchan";
    case PublishMode::Pushpin:
      return "pushpin";
  }
  return "?";
}

std::string expand_channel(const std::string& tmpl, const std::string& channel) {
  std::string out;
  out.reserve(tmpl.size() + channel.size());
  size_t pos = 0;
  for (;;) {
    size_t hit = tmpl.find("{ch}", pos);
    if (hit == std::string::npos) break;
    out.append(tmpl, pos, hit - pos);
    out += channel;
    pos = hit + 4;
  }
  out.append(tmpl, pos, std::string::npos);
  return out;
}

namespace {

bool parse_url(const std::string& text, Url& url, std::string& error) {
  constexpr std::string_view kScheme = "http://";
  if (text.compare(0, kScheme.size(), kScheme) != 0) {
    error = "only http:// URLs are supported: " + text;
    return false;
  }
  size_t host_start = kScheme.size();
  size_t path_start = text.find('/', host_start);
  std::string authority = text.substr(host_start, path_start - host_start);
  url.path_query = path_start == std::string::npos ? "/" : text.substr(path_start);
  size_t colon = authority.rfind(':');
  url.host = authority;
  url.port = 80;
  std::string host_only = authority;
  if (colon != std::string::npos) {
    host_only = authority.substr(0, colon);
    unsigned port = 0;
    auto [end, ec] =
        std::from_chars(authority.data() + colon + 1, authority.data() + authority.size(), port);
    if (ec != std::errc() || end != authority.data() + authority.size() || port == 0 ||
        port > 65535) {
      error = "bad port in URL: " + text;
      return false;
    }
    url.port = static_cast<uint16_t>(port);
  }
  if (host_only.empty() || host_only.find('{') != std::string::npos) {
    error = "bad host in URL: " + text;
    return false;
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host_only.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    error = "cannot resolve " + host_only + " to IPv4: " + gai_strerror(rc);
    return false;
  }
  std::memcpy(&url.addr, res->ai_addr, sizeof(sockaddr_in));
  url.addr.sin_port = htons(url.port);
  freeaddrinfo(res);
  return true;
}

template <typename T>
bool parse_uint(std::string_view s, T& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool parse_double(const std::string& s, double& out) {
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size() && std::isfinite(out) && out >= 0;
}

bool parse_pids(const std::string& s, std::vector<pid_t>& out) {
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    int pid = 0;
    if (!parse_uint(std::string_view(s).substr(pos, comma - pos), pid) || pid <= 0) return false;
    out.push_back(pid);
    pos = comma + 1;
  }
  return !out.empty();
}

}  // namespace

void print_usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [options]\n"
               "  --mode M                 fanout (subscribers and a publisher) | llm (streamed\n"
               "                           chat completions from ssegw-mock-llm) (fanout)\n"
               "Subscribers:\n"
               "  --subscribers N          SSE connections to open (100)\n"
               "  --channels K             subscriber i reads channel <prefix><i %% K> (1)\n"
               "  --channel-prefix P       (bench)\n"
               "  --url-template URL       subscribe URL, {ch} is the channel\n"
               "                           (http://127.0.0.1:8080/v1/channels/{ch}/events)\n"
               "  --last-event-id ID       send Last-Event-ID on every subscribe\n"
               "  --connect-rate R         new connections per second (2000)\n"
               "  --max-pending N          connections awaiting their response head (512)\n"
               "  --source-ips N           bind to 127.0.0.1..127.0.0.N for loopback targets (8)\n"
               "  --http2 N                N subscribers share each connection, one HTTP/2 stream\n"
               "                           each (h2c, prior knowledge); 0: HTTP/1.1 (0)\n"
               "  --connect-timeout S      per connection, and for the connect phase after the\n"
               "                           last connection was started (10)\n"
               "  --settle S               wait between connect phase and publishing (0.5)\n"
               "Publisher:\n"
               "  --publish-mode M         ssegw | nchan | pushpin (ssegw)\n"
               "  --publish-url-template U ssegw: the subscribe template; nchan:\n"
               "                           http://127.0.0.1:8080/pub/{ch}; pushpin:\n"
               "                           http://127.0.0.1:5561/publish/\n"
               "  --publishers N           keep-alive publisher connections (4); channel c is\n"
               "                           always published on connection c %% N, keeping order\n"
               "  --pipeline N             requests in flight per publisher connection (16);\n"
               "                           1 waits for each answer before the next request\n"
               "  --publish-token T        send Authorization: Bearer T\n"
               "  --rate R                 events per second over all channels (100)\n"
               "  --size S                 payload bytes (256; at least the timestamp header)\n"
               "  --duration S             publish window in seconds (5)\n"
               "  --drain S                wait after the last publish for stragglers (2)\n"
               "LLM streams (--mode llm; also --connect-rate, --max-pending, --source-ips,\n"
               "--connect-timeout):\n"
               "  --url URL                POST target\n"
               "                           (http://127.0.0.1:8080/v1/chat/completions)\n"
               "  --streams N              streamed completions to run (100)\n"
               "  --tokens T               X-Mock-Tokens: chunks per stream (200)\n"
               "  --interval-ms I          X-Mock-Interval-Ms: gap between chunks (20)\n"
               "  --concurrency C          streams open at once (all of them)\n"
               "  --duration-limit S       stop after S seconds whatever happens (derived from\n"
               "                           the streams' nominal length)\n"
               "Measurement and output:\n"
               "  --pid PID[,PID...]       server processes: RSS and CPU from /proc, summed\n"
               "  --threads N              event loops for subscribers (1)\n"
               "  --json                   JSON on stdout only (default: JSON and a table on\n"
               "                           stderr)\n"
               "  --table                  table on stderr only\n"
               "  --quiet                  no progress lines on stderr\n"
               "  --expect-all             exit 1 unless every subscriber connected, stayed, and\n"
               "                           received every event in order (llm: every stream\n"
               "                           completed with all its chunks and its terminator)\n",
               argv0);
}

bool parse_options(int argc, char** argv, Options& o, std::string& error, bool& help) {
  help = false;
  bool json_only = false, table_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    auto flag = [&](const char* name) { return arg == name; };
    auto take = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) {
        error = "missing value for " + arg;
        return false;
      }
      value = argv[++i];
      return true;
    };
    auto bad = [&]() {
      error = "bad value for " + arg + ": " + value;
      return false;
    };
    auto u32 = [&](uint32_t& out, uint32_t min) {
      if (!take()) return false;
      if (!parse_uint(value, out) || out < min) return bad();
      return true;
    };
    auto dbl = [&](double& out) {
      if (!take()) return false;
      if (!parse_double(value, out)) return bad();
      return true;
    };
    auto str = [&](std::string& out) {
      if (!take()) return false;
      out = value;
      return true;
    };
    bool ok = true;
    if (flag("--help") || flag("-h")) {
      help = true;
      return false;
    } else if (flag("--mode")) {
      ok = take();
      if (ok && value == "fanout") {
        o.mode = Mode::Fanout;
      } else if (ok && value == "llm") {
        o.mode = Mode::Llm;
      } else if (ok) {
        ok = bad();
      }
    } else if (flag("--url")) {
      ok = str(o.url);
    } else if (flag("--streams")) {
      ok = u32(o.streams, 1);
    } else if (flag("--tokens")) {
      ok = u32(o.tokens, 0);
    } else if (flag("--interval-ms")) {
      ok = u32(o.interval_ms, 0);
    } else if (flag("--concurrency")) {
      ok = u32(o.concurrency, 1);
    } else if (flag("--duration-limit")) {
      ok = dbl(o.duration_limit) && (o.duration_limit > 0 || bad());
    } else if (flag("--subscribers")) {
      ok = u32(o.subscribers, 0);
    } else if (flag("--http2")) {
      ok = u32(o.http2, 0);
    } else if (flag("--channels")) {
      ok = u32(o.channels, 1);
    } else if (flag("--channel-prefix")) {
      ok = str(o.channel_prefix);
    } else if (flag("--url-template")) {
      ok = str(o.url_template);
    } else if (flag("--last-event-id")) {
      ok = str(o.last_event_id);
    } else if (flag("--connect-rate")) {
      ok = dbl(o.connect_rate) && (o.connect_rate > 0 || bad());
    } else if (flag("--max-pending")) {
      ok = u32(o.max_pending, 1);
    } else if (flag("--source-ips")) {
      ok = u32(o.source_ips, 0) && (o.source_ips <= 254 || bad());
    } else if (flag("--connect-timeout")) {
      ok = dbl(o.connect_timeout) && (o.connect_timeout > 0 || bad());
    } else if (flag("--settle")) {
      ok = dbl(o.settle);
    } else if (flag("--publish-mode")) {
      ok = take();
      if (ok && value == "ssegw") {
        o.publish_mode = PublishMode::Ssegw;
      } else if (ok && value == "nchan") {
        o.publish_mode = PublishMode::Nchan;
      } else if (ok && value == "pushpin") {
        o.publish_mode = PublishMode::Pushpin;
      } else if (ok) {
        ok = bad();
      }
    } else if (flag("--publish-url-template")) {
      ok = str(o.publish_url_template);
    } else if (flag("--publishers")) {
      ok = u32(o.publishers, 1);
    } else if (flag("--pipeline")) {
      ok = u32(o.pipeline, 1);
    } else if (flag("--publish-token")) {
      ok = str(o.publish_token);
    } else if (flag("--rate")) {
      ok = dbl(o.rate);
    } else if (flag("--size")) {
      ok = u32(o.size, 0) && (o.size <= (64u << 20) || bad());
    } else if (flag("--duration")) {
      ok = dbl(o.duration);
    } else if (flag("--drain")) {
      ok = dbl(o.drain);
    } else if (flag("--pid")) {
      ok = take() && (parse_pids(value, o.pids) || bad());
    } else if (flag("--threads")) {
      ok = u32(o.threads, 1) && (o.threads <= 64 || bad());
    } else if (flag("--json")) {
      json_only = true;
    } else if (flag("--table")) {
      table_only = true;
    } else if (flag("--quiet")) {
      o.quiet = true;
    } else if (flag("--expect-all")) {
      o.expect_all = true;
    } else {
      error = "unknown option " + arg;
      return false;
    }
    if (!ok) return false;
  }
  if (json_only && table_only) {
    error = "--json and --table exclude each other (the default prints both)";
    return false;
  }
  o.print_json = !table_only;
  o.print_table = !json_only;
  if (o.publish_url_template.empty()) {
    switch (o.publish_mode) {
      case PublishMode::Ssegw:
        o.publish_url_template = o.url_template;
        break;
      case PublishMode::Nchan:
        o.publish_url_template = "http://127.0.0.1:8080/pub/{ch}";
        break;
      case PublishMode::Pushpin:
        o.publish_url_template = "http://127.0.0.1:5561/publish/";
        break;
    }
  }
  if (o.mode == Mode::Llm) {
    if (o.concurrency > o.streams) o.concurrency = o.streams;
    return parse_url(o.url, o.llm_url, error);
  }
  if (o.threads > o.subscribers && o.subscribers > 0) o.threads = o.subscribers;
  if (!parse_url(o.url_template, o.subscribe_url, error)) return false;
  if (!parse_url(o.publish_url_template, o.publish_url, error)) return false;
  return true;
}

}  // namespace bench
