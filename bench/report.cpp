#include "bench/report.hpp"

#include <algorithm>
#include <cinttypes>
#include <utility>

#include "bench/json_text.hpp"

namespace bench {

namespace {

double mib(uint64_t kib) {
  return static_cast<double>(kib) / 1024.0;
}

uint64_t failed_total(const SubscriberStats& s) {
  return s.failed.load(std::memory_order_relaxed);
}

}  // namespace

int64_t Report::lost() const {
  return static_cast<int64_t>(pub->expected_deliveries) -
         static_cast<int64_t>(subs->received.load(std::memory_order_relaxed));
}

double Report::deliveries_per_s() const {
  if (publish_window_s <= 0) return 0;
  return static_cast<double>(subs->received.load(std::memory_order_relaxed)) / publish_window_s;
}

double Report::rss_per_subscriber_bytes() const {
  uint64_t connected = subs->connected.load(std::memory_order_relaxed);
  if (!server || connected == 0) return 0;
  return (static_cast<double>(server_idle.rss_kib) - static_cast<double>(server_before.rss_kib)) *
         1024.0 / static_cast<double>(connected);
}

bool Report::all_delivered(std::string& why) const {
  const Options& o = *options;
  const SubscriberStats& s = *subs;
  uint64_t connected = s.connected.load(std::memory_order_relaxed);
  uint64_t received = s.received.load(std::memory_order_relaxed);
  return all_passed(
      {
          {hard_stop, "the run hit its time limit"},
          {interrupted, "interrupted"},
          {connected != o.subscribers, "not every subscriber connected"},
          {s.disconnected != 0, "subscribers were disconnected"},
          {pub->failed_status || pub->failed_conn || pub->unanswered, "publish requests failed"},
          {pub->skipped || pub->unsent, "the publisher fell behind the rate"},
          {o.rate * o.duration >= 1 && pub->published == 0, "nothing was published"},
          {received != pub->expected_deliveries, "deliveries were lost"},
          {s.out_of_order || s.gaps, "events arrived out of order or with gaps"},
          {s.size_mismatch != 0, "payloads arrived with the wrong size"},
      },
      why);
}

std::string to_json(const Report& r) {
  const Options& o = *r.options;
  const SubscriberStats& s = *r.subs;
  const PublishStats& p = *r.pub;
  const LatencyHistogram& h = s.latency;
  uint64_t received = s.received.load(std::memory_order_relaxed);
  std::string j = "{";
  add(j, "\"tool\":\"ssegw-bench\",\"run_id\":\"%08x\",", r.run_id);
  add(j,
      "\"config\":{\"subscribers\":%u,\"channels\":%u,\"url_template\":%s,"
      "\"publish_mode\":\"%s\",\"publish_url_template\":%s,\"rate\":%g,\"size\":%u,"
      "\"duration_s\":%g,\"drain_s\":%g,\"connect_rate\":%g,\"source_ips\":%u,\"publishers\":%u,"
      "\"pipeline\":%u,\"threads\":%u,\"fd_limit\":%" PRIu64 "},",
      o.subscribers, o.channels, json_string(o.url_template).c_str(),
      publish_mode_name(o.publish_mode), json_string(o.publish_url_template).c_str(), o.rate,
      o.size, o.duration, o.drain, o.connect_rate, o.source_ips, o.publishers, o.pipeline,
      o.threads, r.fd_limit);
  add(j,
      "\"subscribers\":{\"requested\":%u,\"connected\":%" PRIu64 ",\"failed\":%" PRIu64
      ",\"failed_connect\":%" PRIu64 ",\"failed_timeout\":%" PRIu64 ",\"failed_status\":%" PRIu64
      ",\"last_bad_status\":%d,\"failed_closed\":%" PRIu64 ",\"failed_protocol\":%" PRIu64
      ",\"failed_not_started\":%" PRIu64 ",\"disconnected\":%" PRIu64 "},",
      o.subscribers, s.connected.load(), failed_total(s), s.failed_connect, s.failed_timeout,
      s.failed_status, s.last_bad_status, s.failed_closed, s.failed_protocol, s.failed_not_started,
      s.disconnected);
  add(j, "\"connect_time_s\":%.3f,\"publish_window_s\":%.3f,\"drain_s\":%.3f,\"total_s\":%.3f,",
      r.connect_time_s, r.publish_window_s, r.drain_s, r.total_s);
  add(j,
      "\"events\":{\"published\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"failed_status\":%" PRIu64
      ",\"last_bad_status\":%d,\"failed_connection\":%" PRIu64 ",\"skipped\":%" PRIu64
      ",\"unsent\":%" PRIu64 ",\"unanswered\":%" PRIu64 ",\"reconnects\":%" PRIu64
      ",\"payload_bytes\":%u,\"ack_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}},",
      p.published, p.sent, p.failed_status, p.last_bad_status, p.failed_conn, p.skipped, p.unsent,
      p.unanswered, p.reconnects, o.size, ms(p.ack.quantile(0.5)), ms(p.ack.quantile(0.99)),
      ms(p.ack.max()));
  add(j,
      "\"deliveries\":{\"expected\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRId64
      ",\"out_of_order\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"size_mismatch\":%" PRIu64
      ",\"foreign\":%" PRIu64 ",\"other_types\":%" PRIu64 ",\"comments\":%" PRIu64
      ",\"per_s\":%.1f},",
      p.expected_deliveries, received, r.lost(), s.out_of_order, s.gaps, s.size_mismatch, s.foreign,
      s.other_types, s.comments, r.deliveries_per_s());
  add(j,
      "\"latency_ms\":{\"samples\":%" PRIu64
      ",\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},",
      h.count(), h.mean() / 1e6, ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)),
      ms(h.quantile(0.999)), ms(h.max()));
  if (r.server) {
    std::string pids;
    for (size_t i = 0; i < o.pids.size(); ++i) add(pids, "%s%d", i ? "," : "", o.pids[i]);
    double per_m = received ? r.server_cpu_s / (static_cast<double>(received) / 1e6) : 0;
    add(j,
        "\"server\":{\"pids\":[%s],\"readable\":%s,\"rss_before_kib\":%" PRIu64
        ",\"rss_idle_kib\":%" PRIu64 ",\"rss_peak_kib\":%" PRIu64
        ",\"rss_per_subscriber_bytes\":%.1f,\"cpu_s\":%.3f,\"cpu_cores\":%.3f,"
        "\"cpu_s_per_million_deliveries\":%.4f},",
        pids.c_str(), r.server_ok ? "true" : "false", r.server_before.rss_kib,
        r.server_idle.rss_kib, r.server_rss_peak_kib, r.rss_per_subscriber_bytes(), r.server_cpu_s,
        r.publish_window_s + r.drain_s > 0 ? r.server_cpu_s / (r.publish_window_s + r.drain_s) : 0,
        per_m);
  } else {
    j += "\"server\":null,";
  }
  double self_per_m = received ? r.self_cpu_window_s / (static_cast<double>(received) / 1e6) : 0;
  add(j,
      "\"bench\":{\"cpu_s\":%.3f,\"cpu_s_window\":%.3f,\"cpu_cores_window\":%.3f,"
      "\"cpu_s_per_million_deliveries\":%.4f,\"max_rss_kib\":%" PRIu64
      ",\"bytes_received\":%" PRIu64 "},",
      r.self_end.cpu_s, r.self_cpu_window_s,
      r.publish_window_s + r.drain_s > 0 ? r.self_cpu_window_s / (r.publish_window_s + r.drain_s)
                                         : 0,
      self_per_m, r.self_end.max_rss_kib, s.bytes);
  std::string why;
  bool ok = r.all_delivered(why);
  add(j, "\"hard_stop\":%s,\"interrupted\":%s,\"all_delivered\":%s,\"shortfall\":%s}",
      r.hard_stop ? "true" : "false", r.interrupted ? "true" : "false", ok ? "true" : "false",
      ok ? "null" : json_string(why).c_str());
  return j;
}

void print_table(FILE* out, const Report& r) {
  const Options& o = *r.options;
  const SubscriberStats& s = *r.subs;
  const PublishStats& p = *r.pub;
  const LatencyHistogram& h = s.latency;
  uint64_t received = s.received.load(std::memory_order_relaxed);
  std::string bad_status;
  if (s.last_bad_status) add(bad_status, "  (last bad status %d)", s.last_bad_status);
  if (p.last_bad_status) add(bad_status, "  (publish answered %d)", p.last_bad_status);
  std::fprintf(out,
               "ssegw-bench  mode %s  subscribers %u  channels %u  rate %g/s  size %u B  "
               "duration %g s\n",
               publish_mode_name(o.publish_mode), o.subscribers, o.channels, o.rate, o.size,
               o.duration);
  std::fprintf(out,
               "  subscribers  connected %" PRIu64 "/%u  failed %" PRIu64 " (connect %" PRIu64
               ", timeout %" PRIu64 ", status %" PRIu64 ", closed %" PRIu64 ", not started %" PRIu64
               ")  disconnected %" PRIu64 "  connect time %.2f s%s\n",
               s.connected.load(), o.subscribers, failed_total(s), s.failed_connect,
               s.failed_timeout, s.failed_status, s.failed_closed, s.failed_not_started,
               s.disconnected, r.connect_time_s, bad_status.c_str());
  std::fprintf(out,
               "  events       published %" PRIu64 "  failed %" PRIu64 "  skipped %" PRIu64
               "  unsent %" PRIu64 "  window %.2f s  publish ack p99 %.2f ms\n",
               p.published, p.failed_status + p.failed_conn + p.unanswered, p.skipped, p.unsent,
               r.publish_window_s, ms(p.ack.quantile(0.99)));
  std::fprintf(out,
               "  deliveries   expected %" PRIu64 "  received %" PRIu64 "  lost %" PRId64
               "  out of order %" PRIu64 "  gaps %" PRIu64 "  %.0f/s\n",
               p.expected_deliveries, received, r.lost(), s.out_of_order, s.gaps,
               r.deliveries_per_s());
  std::fprintf(out,
               "  latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%" PRIu64
               " samples)\n",
               ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)),
               ms(h.quantile(0.999)), ms(h.max()), h.count());
  if (r.server) {
    std::fprintf(out,
                 "  server RSS   before %.1f MiB  idle %.1f MiB  peak %.1f MiB  per subscriber "
                 "%.0f B%s\n",
                 mib(r.server_before.rss_kib), mib(r.server_idle.rss_kib),
                 mib(r.server_rss_peak_kib), r.rss_per_subscriber_bytes(),
                 r.server_ok ? "" : "  (some /proc reads failed)");
    std::fprintf(out, "  server CPU   %.2f s  %.3f s per million deliveries\n", r.server_cpu_s,
                 received ? r.server_cpu_s / (static_cast<double>(received) / 1e6) : 0.0);
  }
  std::fprintf(
      out, "  bench CPU    %.2f s in window (%.2f cores)  %.2f s total\n", r.self_cpu_window_s,
      r.publish_window_s + r.drain_s > 0 ? r.self_cpu_window_s / (r.publish_window_s + r.drain_s)
                                         : 0.0,
      r.self_end.cpu_s);
  std::string why;
  if (r.all_delivered(why)) {
    std::fprintf(out, "  result       every event delivered\n");
  } else {
    std::fprintf(out, "  result       %s\n", why.c_str());
  }
}

}  // namespace bench
