#include "bench/subscriber_pool.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace bench {

void SubscriberStats::merge(const SubscriberStats& o) {
  auto add = [](std::atomic<uint64_t>& a, const std::atomic<uint64_t>& b) {
    a.store(a.load(std::memory_order_relaxed) + b.load(std::memory_order_relaxed),
            std::memory_order_relaxed);
  };
  add(started, o.started);
  add(connected, o.connected);
  add(failed, o.failed);
  add(received, o.received);
  failed_connect += o.failed_connect;
  failed_timeout += o.failed_timeout;
  failed_status += o.failed_status;
  failed_closed += o.failed_closed;
  failed_protocol += o.failed_protocol;
  failed_not_started += o.failed_not_started;
  if (o.last_bad_status != 0) last_bad_status = o.last_bad_status;
  disconnected += o.disconnected;
  out_of_order += o.out_of_order;
  gaps += o.gaps;
  size_mismatch += o.size_mismatch;
  foreign += o.foreign;
  other_types += o.other_types;
  comments += o.comments;
  bytes += o.bytes;
  last_connected_ns.store(std::max(last_connected_ns.load(), o.last_connected_ns.load()));
  latency.merge(o.latency);
}

SubscriberPool::SubscriberPool(RunState& run, uv_loop_t* loop, uint32_t worker, uint32_t workers)
    : run_(run), loop_(loop) {
  const Options& o = run.options;
  count_ = o.subscribers > worker ? (o.subscribers - worker + workers - 1) / workers : 0;
  subs_.reset(new Subscriber[count_]);
  // Source addresses only make sense towards loopback, where every 127/8 address is local.
  bool loopback = (ntohl(o.subscribe_url.addr.sin_addr.s_addr) >> 24) == 127;
  uint32_t ips = loopback ? o.source_ips : 0;
  for (uint32_t k = 0; k < count_; ++k) {
    uint32_t global = worker + k * workers;
    subs_[k].init(this, k, global % o.channels, ips ? 1 + global % ips : 0);
  }
  for (uint32_t k = 0; o.http2 > 0 && k < count_; k += o.http2) {
    uint32_t global = worker + k * workers;
    h2_.push_back(std::make_unique<H2Connection>(
        client_loop_, o.subscribe_url.addr,
        o.subscribe_url.host + ":" + std::to_string(o.subscribe_url.port),
        ips ? 1 + global % ips : 0));
  }
  requests_.reserve(o.channels);
  for (uint32_t c = 0; c < o.channels; ++c) {
    paths_.push_back(expand_channel(o.subscribe_url.path_query, run.names[c]));
    std::string r = "GET " + paths_.back() + " HTTP/1.1\r\nHost: " + o.subscribe_url.host +
                    "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
                    "User-Agent: ssegw-bench\r\n";
    if (!o.last_event_id.empty()) r += "Last-Event-ID: " + o.last_event_id + "\r\n";
    r += "\r\n";
    requests_.push_back(std::move(r));
  }
  rate_ = o.connect_rate / workers;
  max_pending_ = std::max<uint32_t>(1, o.max_pending / workers);
}

void SubscriberPool::start() {
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  uv_timer_start(&timer_, &SubscriberPool::on_timer, 0, 1);
}

void SubscriberPool::on_timer(uv_timer_t* handle) {
  static_cast<SubscriberPool*>(handle->data)->tick();
}

void SubscriberPool::on_timer_close(uv_handle_t*) {}

void SubscriberPool::tick() {
  if (stopping_) return;
  uint64_t now = uv_hrtime();
  Phase phase = run_.phase();
  if (phase == Phase::Stop) {
    stop_all();
    return;
  }
  if (phase == Phase::Connect) {
    double elapsed_s = static_cast<double>(now - run_.start_ns) / 1e9;
    uint64_t due = std::min<uint64_t>(count_, static_cast<uint64_t>(elapsed_s * rate_) + 1);
    while (next_ < due && pending_ < max_pending_) {
      ++pending_;
      subs_[next_++].start(now);
    }
    if (now - last_sweep_ns_ >= 50'000'000) {
      last_sweep_ns_ = now;
      uint64_t timeout_ns = static_cast<uint64_t>(run_.options.connect_timeout * 1e9);
      for (uint32_t i = sweep_from_; i < next_; ++i) subs_[i].check_timeout(now, timeout_ns);
    }
  } else if (next_ < count_ || pending_ > 0) {
    // The connect phase is over: what has not connected yet has failed.
    for (uint32_t i = sweep_from_; i < next_; ++i) subs_[i].check_timeout(now, 0);
    stats_.failed_not_started += count_ - next_;
    bump(stats_.failed, count_ - next_);
    next_ = count_;
  }
  while (sweep_from_ < next_ && !subs_[sweep_from_].pending()) ++sweep_from_;
  if (!slow_tick_ && phase != Phase::Connect) {
    // Past the connect phase the timer only watches for the stop.
    slow_tick_ = true;
    uv_timer_set_repeat(&timer_, 10);
  }
}

void SubscriberPool::stop_all() {
  stopping_ = true;
  for (uint32_t i = 0; i < count_; ++i) subs_[i].close();
  for (auto& connection : h2_) connection->close();
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &SubscriberPool::on_timer_close);
}

}  // namespace bench
