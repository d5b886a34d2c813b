#include "bench/llm_run.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <csignal>
#include <cstdio>

#include "bench/llm_report.hpp"

namespace bench {

namespace {

constexpr const char* kBody = R"({"model":"mock","stream":true,"messages":[{"role":"user",)"
                              R"("content":"hi"}]})";

double seconds(uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

}  // namespace

LlmRun::LlmRun(const Options& o, uv_loop_t* loop, LlmReport& report)
    : options_(o),
      loop_(loop),
      report_(report),
      streams_(new LlmStream[o.streams]),
      concurrency_(o.llm_concurrency()) {
  report_.stats = &stats_;
  // Source addresses only make sense towards loopback, where every 127/8 address is local.
  bool loopback = (ntohl(o.llm_url.addr.sin_addr.s_addr) >> 24) == 127;
  uint32_t ips = loopback ? o.source_ips : 0;
  for (uint32_t i = 0; i < o.streams; ++i) streams_[i].init(this, ips ? 1 + i % ips : 0);
  std::string body = kBody;
  request_ = "POST " + o.llm_url.path_query + " HTTP/1.1\r\nHost: " + o.llm_url.host +
             "\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n"
             "User-Agent: ssegw-bench\r\nX-Mock-Tokens: " +
             std::to_string(o.tokens) + "\r\nX-Mock-Interval-Ms: " + std::to_string(o.interval_ms) +
             "\r\nX-Mock-Stamp: 1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
             body;
}

void LlmRun::start() {
  start_ns_ = uv_hrtime();
  deadline_ns_ = start_ns_ + static_cast<uint64_t>(options_.llm_limit_s() * 1e9);
  last_progress_ns_ = start_ns_;
  if (report_.server) {
    report_.server_start = sample_processes(options_.pids);
    report_.server_ok = report_.server_start.ok;
    report_.server_rss_peak_kib = report_.server_start.rss_kib;
    if (!report_.server_start.ok) std::fprintf(stderr, "warning: cannot read /proc for --pid\n");
  }
  self_cpu_start_ = sample_self().cpu_s;
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  uv_timer_start(&timer_, &LlmRun::on_timer, 0, 1);
  for (int i = 0; i < 2; ++i) {
    uv_signal_init(loop_, &signals_[i]);
    signals_[i].data = this;
    uv_signal_start(&signals_[i], &LlmRun::on_signal, i == 0 ? SIGINT : SIGTERM);
  }
  if (!options_.quiet) {
    std::fprintf(
        stderr, "[   0.00 s] %u streams of %u chunks every %u ms to %s, %u at once, limit %.1f s\n",
        options_.streams, options_.tokens, options_.interval_ms, options_.url.c_str(), concurrency_,
        options_.llm_limit_s());
  }
}

void LlmRun::on_timer(uv_timer_t* handle) {
  static_cast<LlmRun*>(handle->data)->tick();
}

void LlmRun::on_signal(uv_signal_t* handle, int) {
  auto* self = static_cast<LlmRun*>(handle->data);
  self->report_.interrupted = true;
  self->stop(uv_hrtime());
}

void LlmRun::on_handle_close(uv_handle_t*) {}

void LlmRun::on_resolved(bool was_pending) {
  if (was_pending) --pending_;
  --active_;
  ++resolved_;
  // The last stream ends the run at once, so the window does not include a timer's delay.
  if (resolved_ == options_.streams) stop(uv_hrtime());
}

void LlmRun::tick() {
  if (stopped_) return;
  uint64_t now = uv_hrtime();
  if (now >= deadline_ns_) {
    report_.hard_stop = true;
    if (!options_.quiet) {
      std::fprintf(stderr, "[%7.2f s] duration limit reached (%.1f s)\n", seconds(now - start_ns_),
                   options_.llm_limit_s());
    }
    stop(now);
    return;
  }
  double elapsed_s = seconds(now - start_ns_);
  uint64_t due = std::min<uint64_t>(options_.streams,
                                    static_cast<uint64_t>(elapsed_s * options_.connect_rate) + 1);
  while (!stopped_ && next_ < due && active_ < concurrency_ && pending_ < options_.max_pending) {
    ++active_;
    ++pending_;
    streams_[next_++].start(now);  // may resolve at once (a socket error), even end the run
  }
  if (!stopped_ && now - last_sweep_ns_ >= 50'000'000) {
    last_sweep_ns_ = now;
    uint64_t timeout_ns = static_cast<uint64_t>(options_.connect_timeout * 1e9);
    for (uint32_t i = sweep_from_; i < next_; ++i) streams_[i].check_timeout(now, timeout_ns);
    while (sweep_from_ < next_ && !streams_[sweep_from_].pending()) ++sweep_from_;
  }
  if (stopped_) return;
  if (now - last_sample_ns_ >= 100'000'000) {
    last_sample_ns_ = now;
    sample_server_peak();
  }
  if (now - last_progress_ns_ >= 1'000'000'000) {
    last_progress_ns_ = now;
    progress(now);
  }
  if (!slow_tick_ && next_ == options_.streams) {
    // Every stream has started: the timer only watches for timeouts, samples and the end.
    slow_tick_ = true;
    uv_timer_set_repeat(&timer_, 10);
  }
}

void LlmRun::progress(uint64_t now) {
  if (options_.quiet) return;
  std::fprintf(stderr, "[%7.2f s] started %u  open %u  completed %llu  failed %llu  chunks %llu\n",
               seconds(now - start_ns_), next_, active_,
               static_cast<unsigned long long>(stats_.completed),
               static_cast<unsigned long long>(stats_.failed),
               static_cast<unsigned long long>(stats_.chunks));
}

void LlmRun::sample_server_peak() {
  if (!report_.server) return;
  ProcSample s = sample_processes(options_.pids);
  report_.server_ok &= s.ok;
  report_.server_rss_peak_kib = std::max(report_.server_rss_peak_kib, s.rss_kib);
}

void LlmRun::stop(uint64_t now) {
  if (stopped_) return;
  stopped_ = true;
  if (report_.server) {
    ProcSample end = sample_processes(options_.pids);
    report_.server_ok &= end.ok;
    report_.server_rss_peak_kib = std::max(report_.server_rss_peak_kib, end.rss_kib);
    report_.server_cpu_s = end.cpu_s - report_.server_start.cpu_s;
  }
  report_.self_cpu_s = sample_self().cpu_s - self_cpu_start_;
  report_.window_s = seconds(now - start_ns_);
  if (!report_.hard_stop && !report_.interrupted) progress(now);
  for (uint32_t i = 0; i < next_; ++i) streams_[i].abort();
  stats_.not_started = options_.streams - next_;
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &LlmRun::on_handle_close);
  for (auto& s : signals_) uv_close(reinterpret_cast<uv_handle_t*>(&s), &LlmRun::on_handle_close);
}

int run_llm(const Options& o) {
  std::signal(SIGPIPE, SIG_IGN);
  LlmReport report;
  report.options = &o;
  report.fd_limit = raise_fd_limit(uint64_t{o.llm_concurrency()} + 64);
  report.server = !o.pids.empty();

  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    LlmRun run(o, &loop, report);
    run.start();
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) std::fprintf(stderr, "warning: the loop still had handles\n");

    report.self_end = sample_self();
    if (o.print_json) std::printf("%s\n", to_json(report).c_str());
    std::fflush(stdout);
    if (o.print_table) print_table(stderr, report);
    std::string why;
    if (o.expect_all && !report.all_ok(why)) return 1;
  }
  return 0;
}

}  // namespace bench
