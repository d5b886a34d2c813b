// The Loader's readers for the plain sections: history, slow_consumer, limits, http2, cors, log,
// demo, fanout, backplane and tls.

#include <chrono>
#include <optional>

#include "config/loader.hpp"
#include "config/text.hpp"

namespace ssegw::config {

void Loader::history(const Field& f, HistoryConfig& h) {
  read_map(f.value, f.path,
           {
               {"max_events", [&](const Field& g) { h.max_events = count32(g); }},
               {"max_bytes", [&](const Field& g) { h.max_bytes = size(g); }},
               {"ttl", [&](const Field& g) { h.ttl = duration(g, /*allow_zero=*/false); }},
               {"max_total_bytes", [&](const Field& g) { h.max_total_bytes = size(g); }},
           });
}

void Loader::slow_consumer(const Field& f, SlowConsumerConfig& s) {
  read_map(f.value, f.path,
           {
               {"max_queued_bytes", [&](const Field& g) { s.max_queued_bytes = size(g); }},
               {"stall_timeout",
                [&](const Field& g) { s.stall_timeout = duration(g, /*allow_zero=*/false); }},
           });
}

void Loader::limits(const Field& f, LimitsConfig& l) {
  read_map(
      f.value, f.path,
      {
          {"max_connections", [&](const Field& g) { l.max_connections = count32(g); }},
          {"max_channels", [&](const Field& g) { l.max_channels = count32(g); }},
          {"max_channels_per_stream",
           [&](const Field& g) {
             l.max_channels_per_stream = static_cast<uint32_t>(count(g, kMaxChannelsPerStream));
           }},
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

void Loader::http2(const Field& f, Http2Config& h) {
  read_map(f.value, f.path,
           {
               {"enabled", [&](const Field& g) { h.enabled = boolean(g); }},
               {"max_concurrent_streams",
                [&](const Field& g) { h.max_concurrent_streams = count32(g); }},
               // RFC 9113 6.5.2: at most 2^31-1. Below 16 KiB a publish would crawl.
               {"initial_window_size",
                [&](const Field& g) {
                  uint64_t v = size(g);
                  if (v < 16384 || v > 0x7fffffff)
                    fail(g.mark(), g.path + ": must be between 16KiB and 2147483647 bytes");
                  h.initial_window_size = static_cast<uint32_t>(v);
                }},
           });
}

void Loader::cors(const Field& f, CorsConfig& c) {
  read_map(f.value, f.path,
           {{"allow_origins", [&](const Field& g) { c.allow_origins = string_list(g); }}});
}

void Loader::log(const Field& f, LogConfig& l) {
  read_map(f.value, f.path,
           {{"level", [&](const Field& g) { l.level = log_level(g); }},
            {"access", [&](const Field& g) { l.access = boolean(g); }}});
}

void Loader::demo(const Field& f, DemoConfig& d) {
  read_map(f.value, f.path, {{"enabled", [&](const Field& g) { d.enabled = boolean(g); }}});
}

void Loader::fanout(const Field& f, FanoutConfig& o) {
  read_map(f.value, f.path,
           {{"io_uring", [&](const Field& g) { o.io_uring = boolean(g); }},
            {"coalesce", [&](const Field& g) {
               o.coalesce = duration(g, /*allow_zero=*/true);
               if (o.coalesce > FanoutConfig::kMaxCoalesce)
                 fail(g.mark(),
                      g.path + ": at most 50ms (a longer window is latency, not batching)");
             }}});
}

void Loader::backplane(const Field& f, BackplaneConfig& b) {
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
                  if (b.key_prefix.size() > 64) fail(g.mark(), g.path + ": at most 64 characters");
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

// The files are only named here: the server loads them (gateway/net/tls_context.hpp), at
// start-up and again on SIGHUP, and words its errors with the positions kept here.
void Loader::listener_tls(const Field& f, ListenerTlsConfig& t) {
  std::optional<Field> cert, key;
  read_map(f.value, f.path,
           {
               {"cert_file", [&](const Field& g) { cert = g; }},
               {"key_file", [&](const Field& g) { key = g; }},
           });
  if (!cert && !key) return;  // "tls:" with everything commented out: plain TCP
  if (!cert) fail(f.mark(), f.path + ": key_file needs cert_file (a PEM certificate chain)");
  if (!key) fail(f.mark(), f.path + ": cert_file needs key_file (a PEM private key)");
  t.cert_file = nonempty(*cert, "a PEM certificate file");
  t.cert_where = where(cert->mark());
  t.key_file = nonempty(*key, "a PEM private key file");
  t.key_where = where(key->mark());
}

}  // namespace ssegw::config
