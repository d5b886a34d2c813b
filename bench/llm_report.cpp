#include "bench/llm_report.hpp"

#include <cinttypes>
#include <utility>

#include "bench/json_text.hpp"

namespace bench {

namespace {

// CPU milliseconds per 1,000 chunks received.
double ms_per_1000(double cpu_s, uint64_t chunks) {
  return chunks ? cpu_s * 1e3 / (static_cast<double>(chunks) / 1e3) : 0;
}

}  // namespace

uint64_t LlmReport::expected_chunks() const {
  return uint64_t{options->streams} * options->tokens;
}

double LlmReport::chunks_per_s() const {
  return window_s > 0 ? static_cast<double>(stats->chunks) / window_s : 0;
}

bool LlmReport::all_ok(std::string& why) const {
  const LlmStats& s = *stats;
  return all_passed(
      {
          {hard_stop, "the run hit its duration limit"},
          {interrupted, "interrupted"},
          {s.failed != 0 || s.not_started != 0, "streams failed"},
          {s.completed != options->streams, "not every stream completed"},
          {s.terminated != options->streams, "streams ended without their terminator ([DONE])"},
          {s.short_streams != 0 || s.chunks != expected_chunks(), "chunks were lost"},
          {s.error_events != 0, "error events arrived"},
          {s.future_stamps != 0,
           "stamps from the future: the server is not on this machine's clock"},
      },
      why);
}

std::string to_json(const LlmReport& r) {
  const Options& o = *r.options;
  const LlmStats& s = *r.stats;
  const LatencyHistogram& h = s.latency;
  std::string j = "{";
  add(j,
      "\"tool\":\"ssegw-bench\",\"mode\":\"llm\",\"config\":{\"url\":%s,\"streams\":%u,"
      "\"tokens\":%u,\"interval_ms\":%u,\"concurrency\":%u,\"connect_rate\":%g,\"max_pending\":%u,"
      "\"source_ips\":%u,\"duration_limit_s\":%.1f,\"fd_limit\":%" PRIu64 "},",
      json_string(o.url).c_str(), o.streams, o.tokens, o.interval_ms, o.llm_concurrency(),
      o.connect_rate, o.max_pending, o.source_ips, o.llm_limit_s(), r.fd_limit);
  add(j,
      "\"streams\":{\"requested\":%u,\"started\":%" PRIu64 ",\"headers\":%" PRIu64
      ",\"completed\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"failed_connect\":%" PRIu64
      ",\"failed_timeout\":%" PRIu64 ",\"failed_status\":%" PRIu64
      ",\"last_bad_status\":%d,\"failed_closed\":%" PRIu64 ",\"failed_truncated\":%" PRIu64
      ",\"failed_protocol\":%" PRIu64 ",\"failed_unfinished\":%" PRIu64 ",\"not_started\":%" PRIu64
      ",\"terminated\":%" PRIu64 ",\"no_terminator\":%" PRIu64 ",\"short\":%" PRIu64 "},",
      o.streams, s.started, s.headers, s.completed, s.failed, s.failed_connect, s.failed_timeout,
      s.failed_status, s.last_bad_status, s.failed_closed, s.failed_truncated, s.failed_protocol,
      s.failed_unfinished, s.not_started, s.terminated, s.no_terminator, s.short_streams);
  add(j,
      "\"chunks\":{\"expected\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRId64
      ",\"per_s\":%.1f,\"error_events\":%" PRIu64 ",\"other_events\":%" PRIu64
      ",\"comments\":%" PRIu64 ",\"future_stamps\":%" PRIu64 "},",
      r.expected_chunks(), s.chunks,
      static_cast<int64_t>(r.expected_chunks()) - static_cast<int64_t>(s.chunks), r.chunks_per_s(),
      s.error_events, s.other_events, s.comments, s.future_stamps);
  add(j,
      "\"latency_ms\":{\"samples\":%" PRIu64
      ",\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},",
      h.count(), h.mean() / 1e6, ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)),
      ms(h.quantile(0.999)), ms(h.max()));
  add(j, "\"first_chunk_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},",
      ms(s.first_chunk.quantile(0.5)), ms(s.first_chunk.quantile(0.99)), ms(s.first_chunk.max()));
  add(j, "\"window_s\":%.3f,", r.window_s);
  if (r.server) {
    std::string pids;
    for (size_t i = 0; i < o.pids.size(); ++i) add(pids, "%s%d", i ? "," : "", o.pids[i]);
    add(j,
        "\"server\":{\"pids\":[%s],\"readable\":%s,\"rss_before_kib\":%" PRIu64
        ",\"rss_peak_kib\":%" PRIu64
        ",\"cpu_s\":%.3f,\"cpu_cores\":%.3f,\"cpu_ms_per_1000_chunks\":%.3f},",
        pids.c_str(), r.server_ok ? "true" : "false", r.server_start.rss_kib, r.server_rss_peak_kib,
        r.server_cpu_s, r.window_s > 0 ? r.server_cpu_s / r.window_s : 0,
        ms_per_1000(r.server_cpu_s, s.chunks));
  } else {
    j += "\"server\":null,";
  }
  add(j,
      "\"bench\":{\"cpu_s\":%.3f,\"cpu_cores\":%.3f,\"cpu_ms_per_1000_chunks\":%.3f,"
      "\"max_rss_kib\":%" PRIu64 ",\"bytes_received\":%" PRIu64 "},",
      r.self_cpu_s, r.window_s > 0 ? r.self_cpu_s / r.window_s : 0,
      ms_per_1000(r.self_cpu_s, s.chunks), r.self_end.max_rss_kib, s.bytes);
  std::string why;
  bool ok = r.all_ok(why);
  add(j, "\"hard_stop\":%s,\"interrupted\":%s,\"all_ok\":%s,\"shortfall\":%s}",
      r.hard_stop ? "true" : "false", r.interrupted ? "true" : "false", ok ? "true" : "false",
      ok ? "null" : json_string(why).c_str());
  return j;
}

void print_table(FILE* out, const LlmReport& r) {
  const Options& o = *r.options;
  const LlmStats& s = *r.stats;
  const LatencyHistogram& h = s.latency;
  std::string bad_status;
  if (s.last_bad_status) add(bad_status, "  (last bad status %d)", s.last_bad_status);
  std::fprintf(out,
               "ssegw-bench  mode llm  %s  streams %u (%u at once)  tokens %u  interval %u ms\n",
               o.url.c_str(), o.streams, o.llm_concurrency(), o.tokens, o.interval_ms);
  std::fprintf(out,
               "  streams      started %" PRIu64 "  completed %" PRIu64 "  failed %" PRIu64
               " (connect %" PRIu64 ", timeout %" PRIu64 ", status %" PRIu64 ", closed %" PRIu64
               ", truncated %" PRIu64 ", unfinished %" PRIu64 ")  not started %" PRIu64 "%s\n",
               s.started, s.completed, s.failed, s.failed_connect, s.failed_timeout,
               s.failed_status, s.failed_closed, s.failed_truncated, s.failed_unfinished,
               s.not_started, bad_status.c_str());
  std::fprintf(out,
               "  ends         terminator %" PRIu64 "/%u  completed without it %" PRIu64
               "  short %" PRIu64 "  error events %" PRIu64 "\n",
               s.terminated, o.streams, s.no_terminator, s.short_streams, s.error_events);
  std::fprintf(out,
               "  chunks       expected %" PRIu64 "  received %" PRIu64 "  %.0f/s over %.2f s\n",
               r.expected_chunks(), s.chunks, r.chunks_per_s(), r.window_s);
  std::fprintf(out,
               "  latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%" PRIu64
               " samples)\n",
               ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)),
               ms(h.quantile(0.999)), ms(h.max()), h.count());
  std::fprintf(out, "  first chunk  p50 %.3f ms  p99 %.3f ms (from the connect)\n",
               ms(s.first_chunk.quantile(0.5)), ms(s.first_chunk.quantile(0.99)));
  if (r.server) {
    std::fprintf(out,
                 "  server       CPU %.2f s (%.2f cores)  %.3f ms per 1,000 chunks  "
                 "RSS %.1f -> peak %.1f MiB%s\n",
                 r.server_cpu_s, r.window_s > 0 ? r.server_cpu_s / r.window_s : 0.0,
                 ms_per_1000(r.server_cpu_s, s.chunks), r.server_start.rss_kib / 1024.0,
                 r.server_rss_peak_kib / 1024.0, r.server_ok ? "" : "  (some /proc reads failed)");
  }
  std::fprintf(out, "  bench CPU    %.2f s (%.2f cores)  %.3f ms per 1,000 chunks\n", r.self_cpu_s,
               r.window_s > 0 ? r.self_cpu_s / r.window_s : 0.0,
               ms_per_1000(r.self_cpu_s, s.chunks));
  std::string why;
  std::fprintf(out, "  result       %s\n",
               r.all_ok(why) ? "every stream complete, every chunk received" : why.c_str());
}

}  // namespace bench
