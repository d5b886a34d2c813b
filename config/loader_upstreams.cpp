// The Loader's readers for what connects upstream: upstreams, sources and routes.

#include "config/loader.hpp"
#include "config/text.hpp"

namespace ssegw::config {

void Loader::upstreams(const Field& f, std::vector<UpstreamConfig>& out) {
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
            {"max_idle_connections", [&](const Field& g) { u.max_idle_connections = count32(g); }},
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

void Loader::sources(const Field& f, std::vector<SourceConfig>& out) {
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

// A route's fallback list and attempts stay small: each attempt may wait a first_byte_timeout.
constexpr size_t kMaxRouteUpstreams = 8;
constexpr uint64_t kMaxRouteAttempts = 10;

void Loader::routes(const Field& f, std::vector<RouteConfig>& out) {
  each_item(f, [&](const Field& item) {
    RouteConfig r;
    bool has_path = false, has_upstream = false, has_attempts = false;
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
                    if (has_upstream) fail(g.mark(), g.path + ": give upstream or upstreams");
                    r.upstreams = {nonempty(g, "an upstream name")};
                    references_.push_back({r.upstreams[0], g.mark(), g.path});
                    has_upstream = true;
                  }},
                 {"upstreams",
                  [&](const Field& g) {
                    if (has_upstream) fail(g.mark(), g.path + ": give upstream or upstreams");
                    r.upstreams = string_list(g);
                    if (r.upstreams.empty() || r.upstreams.size() > kMaxRouteUpstreams)
                      fail(g.mark(), g.path + ": expected 1 to " +
                                         std::to_string(kMaxRouteUpstreams) + " upstream names");
                    for (const std::string& name : r.upstreams)
                      references_.push_back({name, g.mark(), g.path});
                    has_upstream = true;
                  }},
                 {"max_attempts",
                  [&](const Field& g) {
                    r.max_attempts = static_cast<uint32_t>(count(g, kMaxRouteAttempts));
                    has_attempts = true;
                  }},
                 {"retry_on",
                  [&](const Field& g) {
                    r.retry_on = 0;
                    for (const std::string& reason : string_list(g)) {
                      if (reason == "connect_error")
                        r.retry_on |= kRetryConnectError;
                      else if (reason == "first_byte_timeout")
                        r.retry_on |= kRetryFirstByteTimeout;
                      else if (reason == "5xx")
                        r.retry_on |= kRetry5xx;
                      else if (reason == "429")
                        r.retry_on |= kRetry429;
                      else
                        fail(g.mark(), g.path + ": expected connect_error, first_byte_timeout, " +
                                           "5xx or 429, got " + quoted(reason));
                    }
                  }},
                 {"include_usage", [&](const Field& g) { r.include_usage = boolean(g); }},
                 {"resumable", [&](const Field& g) { r.resumable = boolean(g); }},
                 {"on_disconnect",
                  [&](const Field& g) {
                    std::string text = scalar(g, "cancel or continue");
                    if (text == "cancel")
                      r.on_disconnect = DisconnectPolicy::kCancel;
                    else if (text == "continue")
                      r.on_disconnect = DisconnectPolicy::kContinue;
                    else
                      fail(g.mark(), g.path + ": expected cancel or continue, got " + quoted(text));
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
    if (!has_path || !has_upstream)
      fail(item.mark(), item.path + ": needs path and upstream (or upstreams)");
    r.upstream = r.upstreams[0];
    if (!has_attempts) r.max_attempts = static_cast<uint32_t>(r.upstreams.size());
    if (r.low_water_bytes > r.high_water_bytes)
      fail(item.mark(), item.path + ": low_water_bytes is above high_water_bytes");
    if (r.on_disconnect == DisconnectPolicy::kContinue && !r.resumable)
      fail(item.mark(), item.path + ": on_disconnect: continue needs resumable: true");
    out.push_back(std::move(r));
  });
}

}  // namespace ssegw::config
