// ssegw-bench: a load generator for SSE servers (ssegw, Nchan, Pushpin, anything that streams
// text/event-stream over HTTP/1.1). This file drives the default fan-out mode; --mode llm
// (streamed chat completions through a proxy) lives in bench/llm_run.hpp.
//
// A run goes through fixed phases, driven by the controller on the main loop:
//   Connect  subscribers connect at --connect-rate until all have a 200 head or failed, or the
//            connect deadline passes;
//   Settle   --settle seconds, then the server's idle RSS is read;
//   Publish  --duration seconds of events at --rate;
//   Drain    up to --drain seconds for stragglers (shorter once every expected delivery is in);
//   Stop     every handle is closed, the loops run out, the report is printed.
// A hard limit (Options::hard_limit_s) stops the run whatever state it is in.
//
// Rules:
// - Subscriber loops (--threads) see the phase through RunState and stop on their own; the main
//   thread joins them before it reads their counters.
// - Every object that owns a handle outlives uv_run; uv_loop_close must then succeed.
#include <uv.h>

#include <algorithm>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/llm_run.hpp"
#include "bench/options.hpp"
#include "bench/proc_stats.hpp"
#include "bench/publisher.hpp"
#include "bench/report.hpp"
#include "bench/run_state.hpp"
#include "bench/subscriber_pool.hpp"

namespace bench {
namespace {

double seconds(uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}
uint64_t nanos(double s) {
  return static_cast<uint64_t>(s * 1e9);
}

// A subscriber loop on its own thread (--threads > 1).
struct WorkerThread {
  uv_loop_t loop;
  std::unique_ptr<SubscriberPool> pool;
  std::thread thread;
};

class Controller {
 public:
  Controller(RunState& run, uv_loop_t* loop, Publisher& publisher,
             std::vector<SubscriberPool*> pools, Report& report)
      : run_(run), loop_(loop), publisher_(publisher), pools_(std::move(pools)), report_(report) {
    const Options& o = run.options;
    connect_deadline_ns_ = run.start_ns + nanos(o.subscribers / o.connect_rate + o.connect_timeout);
    hard_deadline_ns_ = run.start_ns + nanos(o.hard_limit_s());
    last_progress_ns_ = run.start_ns;
  }

  void start() {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    uv_timer_start(&timer_, &Controller::on_timer, 0, 10);
    for (int i = 0; i < 2; ++i) {
      uv_signal_init(loop_, &signals_[i]);
      signals_[i].data = this;
      uv_signal_start(&signals_[i], &Controller::on_signal, i == 0 ? SIGINT : SIGTERM);
    }
  }

 private:
  static void on_timer(uv_timer_t* t) { static_cast<Controller*>(t->data)->tick(); }
  static void on_signal(uv_signal_t* s, int) {
    auto* self = static_cast<Controller*>(s->data);
    self->report_.interrupted = true;
    self->stop(uv_hrtime());
  }
  static void on_handle_close(uv_handle_t*) {}

  template <typename F>
  uint64_t sum(F field) const {
    uint64_t n = 0;
    for (SubscriberPool* p : pools_) n += field(p->stats()).load(std::memory_order_relaxed);
    return n;
  }

  void progress(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (run_.options.quiet) return;
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stderr, "[%7.2f s] ", seconds(uv_hrtime() - run_.start_ns));
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
  }

  void sample_peak() {
    if (!report_.server) return;
    ProcSample s = sample_processes(run_.options.pids);
    report_.server_ok &= s.ok;
    report_.server_rss_peak_kib = std::max(report_.server_rss_peak_kib, s.rss_kib);
  }

  void tick() {
    const Options& o = run_.options;
    uint64_t now = uv_hrtime();
    if (now >= hard_deadline_ns_) {
      report_.hard_stop = true;
      progress("hard time limit reached (%.1f s)", o.hard_limit_s());
      stop(now);
      return;
    }
    switch (run_.phase()) {
      case Phase::Connect: {
        uint64_t connected = sum([](SubscriberStats & s) -> auto& { return s.connected; });
        uint64_t failed = sum([](SubscriberStats & s) -> auto& { return s.failed; });
        if (now - last_progress_ns_ >= 1'000'000'000) {
          last_progress_ns_ = now;
          progress("connecting: %llu connected, %llu failed of %u",
                   static_cast<unsigned long long>(connected),
                   static_cast<unsigned long long>(failed), o.subscribers);
        }
        if (connected + failed < o.subscribers && now < connect_deadline_ns_) break;
        note_connect_time();
        progress("connected %llu of %u in %.2f s (%llu failed%s)",
                 static_cast<unsigned long long>(connected), o.subscribers, report_.connect_time_s,
                 static_cast<unsigned long long>(failed),
                 connected + failed < o.subscribers ? ", connect deadline passed" : "");
        run_.set_phase(Phase::Settle);
        phase_end_ns_ = now + nanos(o.settle);
        publisher_.connect();
        break;
      }
      case Phase::Settle:
        if (now < phase_end_ns_) break;
        if (report_.server) {
          report_.server_idle = sample_processes(o.pids);
          report_.server_ok &= report_.server_idle.ok;
          report_.server_rss_peak_kib = report_.server_idle.rss_kib;
          server_cpu_start_ = report_.server_idle.cpu_s;
        }
        self_cpu_start_ = sample_self().cpu_s;
        run_.set_phase(Phase::Publish);
        publisher_.start(now);
        phase_end_ns_ = now + nanos(o.duration);
        progress("publishing %g events/s of %u B for %g s", o.rate, o.size, o.duration);
        break;
      case Phase::Publish:
        if (now - last_sample_ns_ >= 100'000'000) {
          last_sample_ns_ = now;
          sample_peak();
        }
        if (now < phase_end_ns_) break;
        publisher_.stop_generating(now);
        run_.set_phase(Phase::Drain);
        phase_end_ns_ = now + nanos(o.drain);
        progress("published %llu; draining up to %g s",
                 static_cast<unsigned long long>(publisher_.stats().published), o.drain);
        break;
      case Phase::Drain: {
        if (now - last_sample_ns_ >= 100'000'000) {
          last_sample_ns_ = now;
          sample_peak();
        }
        uint64_t received = sum([](SubscriberStats & s) -> auto& { return s.received; });
        bool complete = publisher_.idle() && received >= publisher_.stats().expected_deliveries;
        if (now >= phase_end_ns_ || complete) stop(now);
        break;
      }
      case Phase::Stop:
        break;
    }
  }

  void note_connect_time() {
    uint64_t last = 0;
    for (SubscriberPool* p : pools_) {
      last = std::max(last, p->stats().last_connected_ns.load(std::memory_order_relaxed));
    }
    report_.connect_time_s = last > run_.start_ns ? seconds(last - run_.start_ns) : 0;
  }

  void stop(uint64_t now) {
    if (run_.phase() == Phase::Stop) return;
    Phase was = run_.phase();
    if (was == Phase::Connect) note_connect_time();
    if (was == Phase::Publish || was == Phase::Drain) {
      publisher_.stop_generating(now);
      sample_peak();
      if (report_.server) {
        ProcSample end = sample_processes(run_.options.pids);
        report_.server_ok &= end.ok;
        report_.server_cpu_s = end.cpu_s - server_cpu_start_;
      }
      report_.self_cpu_window_s = sample_self().cpu_s - self_cpu_start_;
      uint64_t start = publisher_.window_start_ns();
      report_.publish_window_s = seconds(publisher_.window_end_ns() - start);
      report_.drain_s = seconds(now - publisher_.window_end_ns());
    }
    report_.total_s = seconds(now - run_.start_ns);
    run_.set_phase(Phase::Stop);
    publisher_.close();
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Controller::on_handle_close);
    for (auto& s : signals_) uv_close(reinterpret_cast<uv_handle_t*>(&s), &on_handle_close);
  }

  RunState& run_;
  uv_loop_t* loop_;
  Publisher& publisher_;
  std::vector<SubscriberPool*> pools_;
  Report& report_;
  uint64_t connect_deadline_ns_;
  uint64_t hard_deadline_ns_;
  uint64_t phase_end_ns_ = 0;
  uint64_t last_progress_ns_ = 0;
  uint64_t last_sample_ns_ = 0;
  double server_cpu_start_ = 0;
  double self_cpu_start_ = 0;
  uv_timer_t timer_;
  uv_signal_t signals_[2];
};

int run(const Options& o) {
  std::signal(SIGPIPE, SIG_IGN);
  Report report;
  report.options = &o;
  report.fd_limit = raise_fd_limit(uint64_t{o.subscribers} + o.publishers + 64);

  RunState run(o);
  run.run_id = static_cast<uint32_t>((uv_hrtime() * 0x9E3779B97F4A7C15ull) >> 32) ^
               static_cast<uint32_t>(uv_os_getpid());
  report.run_id = run.run_id;
  report.server = !o.pids.empty();
  if (report.server) {
    report.server_before = sample_processes(o.pids);
    report.server_ok = report.server_before.ok;
    if (!report.server_before.ok) std::fprintf(stderr, "warning: cannot read /proc for --pid\n");
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  run.start_ns = uv_hrtime();

  std::vector<std::unique_ptr<WorkerThread>> workers;
  SubscriberPool main_pool(run, &loop, 0, o.threads);
  std::vector<SubscriberPool*> pools{&main_pool};
  for (uint32_t w = 1; w < o.threads; ++w) {
    auto wt = std::make_unique<WorkerThread>();
    uv_loop_init(&wt->loop);
    wt->pool = std::make_unique<SubscriberPool>(run, &wt->loop, w, o.threads);
    pools.push_back(wt->pool.get());
    workers.push_back(std::move(wt));
  }
  Publisher publisher(run, &loop);
  Controller controller(run, &loop, publisher, pools, report);

  for (auto& wt : workers) {
    WorkerThread* w = wt.get();
    w->thread = std::thread([w] {
      w->pool->start();
      uv_run(&w->loop, UV_RUN_DEFAULT);
    });
  }
  main_pool.start();
  controller.start();
  uv_run(&loop, UV_RUN_DEFAULT);

  bool clean = uv_loop_close(&loop) == 0;
  SubscriberStats merged;
  merged.merge(main_pool.stats());
  for (auto& wt : workers) {
    wt->thread.join();
    clean &= uv_loop_close(&wt->loop) == 0;
    merged.merge(wt->pool->stats());
  }
  if (!clean) std::fprintf(stderr, "warning: a loop still had handles at exit\n");

  report.subs = &merged;
  report.pub = &publisher.stats();
  report.self_end = sample_self();
  if (o.print_json) std::printf("%s\n", to_json(report).c_str());
  std::fflush(stdout);
  if (o.print_table) print_table(stderr, report);

  std::string why;
  if (o.expect_all && !report.all_delivered(why)) return 1;
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  bench::Options options;
  std::string error;
  bool help = false;
  if (!bench::parse_options(argc, argv, options, error, help)) {
    if (!help) std::fprintf(stderr, "ssegw-bench: %s\n", error.c_str());
    bench::print_usage(argv[0]);
    return help ? 0 : 2;
  }
  return options.mode == bench::Mode::Llm ? bench::run_llm(options) : bench::run(options);
}
