#include "upstream/source.hpp"

#include <algorithm>

#include "gateway/base/log.hpp"

namespace ssegw::upstream {
namespace {

constexpr uint64_t kTickMs = 50;

std::string substitute(const std::string& path, const std::string& channel) {
  std::string out = path;
  for (size_t pos; (pos = out.find("{channel}")) != std::string::npos;)
    out.replace(pos, 9, channel);  // channel names are URL-safe by construction
  return out;
}

}  // namespace

Source::Source(SourceManager& manager, const config::SourceConfig& config, Client& client,
               std::string channel)
    : manager_(manager),
      config_(config),
      client_(client),
      metrics_(manager.metrics_.upstream(client.config().name)),
      channel_(std::move(channel)) {}

Source::~Source() {
  if (exchange_) exchange_->cancel();
}

void Source::connect() {
  reconnect_at_ms_ = 0;
  // A source's request counts against upstreams.NAME.max_concurrent like a route's: when the
  // upstream is full it waits and tries again, rather than pushing past the operator's cap.
  std::optional<base::Lease> slot = manager_.slot_for_(client_.config().name);
  if (!slot) {
    metrics_.busy->Increment();
    schedule_reconnect("the upstream is at max_concurrent");
    return;
  }
  slot_ = std::move(*slot);
  ok_ = false;
  sse_.reset(/*keep_last_event_id=*/true);
  ndjson_.reset();
  OutgoingRequest request;
  request.method = "GET";
  request.target = substitute(config_.path, channel_);
  request.headers.push_back({"Accept", config_.format == config::StreamFormat::kSse
                                           ? "text/event-stream"
                                           : "application/x-ndjson"});
  if (!sse_.last_event_id().empty())
    request.headers.push_back({"Last-Event-ID", sse_.last_event_id()});
  exchange_ = client_.start(std::move(request), this);
}

void Source::stop() {
  stopped_ = true;
  if (exchange_) exchange_->cancel();
  exchange_ = nullptr;
  slot_.reset();
}

void Source::on_head(int status, const std::vector<http::Header>&) {
  manager_.metrics_.upstream_request(metrics_, std::to_string(status)).Increment();
  ok_ = status == 200;
  if (!ok_) {
    // Not a stream: stop reading it; the failure path reconnects later.
    Exchange* exchange = exchange_;
    exchange_ = nullptr;
    exchange->cancel();
    schedule_reconnect("upstream answered " + std::to_string(status));
  }
}

void Source::on_body(std::string_view data) {
  if (!ok_) return;
  if (config_.format == config::StreamFormat::kSse) {
    if (sse_.feed(data, *this) != SseStatus::kOk) {
      Exchange* exchange = exchange_;
      exchange_ = nullptr;
      exchange->cancel();
      schedule_reconnect(std::string("bad SSE stream: ") + to_string(sse_.status()));
    }
  } else if (ndjson_.feed(data, *this) != NdjsonStatus::kOk) {
    Exchange* exchange = exchange_;
    exchange_ = nullptr;
    exchange->cancel();
    schedule_reconnect("bad NDJSON stream: line too long");
  }
}

void Source::on_event(const SseEvent& event) {
  attempt_ = 0;  // a good event: the next failure starts the backoff afresh
  manager_.publish_(channel_, event.type, event.data, sse_.last_event_id());
}

void Source::on_retry(uint64_t ms) {
  upstream_retry_ms_ = std::min<uint64_t>(ms, 3600 * 1000);
}

void Source::on_line(std::string_view line) {
  attempt_ = 0;
  manager_.publish_(channel_, "", line, "");
}

void Source::on_end() {
  exchange_ = nullptr;
  schedule_reconnect("upstream ended the stream");
}

void Source::on_failure(Failure failure, const std::string& detail) {
  exchange_ = nullptr;
  if (!ok_) manager_.metrics_.upstream_request(metrics_, failure_name(failure)).Increment();
  schedule_reconnect(std::string(failure_name(failure)) + ": " + detail);
}

void Source::schedule_reconnect(const std::string& why) {
  slot_.reset();  // every path here has ended or cancelled its request
  if (stopped_) return;
  uint64_t delay = manager_.backoff_ms(*this);
  ++attempt_;
  reconnect_at_ms_ = manager_.loop_.now_ms() + std::max<uint64_t>(delay, 1);
  metrics_.reconnects->Increment();
  base::log::info("source reconnecting", {{"channel", channel_},
                                          {"upstream", client_.config().name},
                                          {"reason", why},
                                          {"delay_ms", delay}});
}

SourceManager::SourceManager(net::Loop& loop, const config::Config& config,
                             metrics::Metrics& metrics, std::atomic<uint32_t>& source_count,
                             uint32_t max_sources, ClientFor client_for, SlotFor slot_for,
                             Publish publish)
    : loop_(loop),
      config_(config),
      metrics_(metrics),
      source_count_(source_count),
      max_sources_(max_sources),
      client_for_(std::move(client_for)),
      slot_for_(std::move(slot_for)),
      publish_(std::move(publish)),
      timer_(loop, [this] { tick(); }),
      random_(std::random_device{}()) {}

SourceManager::~SourceManager() {
  uncount(sources_.size());
}

void SourceManager::uncount(size_t sources) {
  if (!sources) return;
  source_count_.fetch_sub(static_cast<uint32_t>(sources), std::memory_order_relaxed);
  metrics_.sources_active.Decrement(static_cast<double>(sources));
}

bool SourceManager::watched(const std::string& channel, bool watched,
                            const std::string& resume_id) {
  auto it = sources_.find(channel);
  if (!watched) {
    if (it != sources_.end())
      it->second->close_at_ms_ =
          loop_.now_ms() + static_cast<uint64_t>(it->second->config_.idle_close.count()) + 1;
    return true;
  }
  if (it != sources_.end()) {
    it->second->close_at_ms_ = 0;  // watched again before the idle close: no new source
    return true;
  }
  for (const config::SourceConfig& source : config_.sources) {
    if (!config::glob_match(source.channels, channel)) continue;
    if (source_count_.fetch_add(1, std::memory_order_relaxed) >= max_sources_) {
      source_count_.fetch_sub(1, std::memory_order_relaxed);
      metrics_.sources_refused.Increment();
      return false;
    }
    metrics_.sources_active.Increment();
    auto created = std::make_unique<Source>(*this, source, client_for_(source.upstream), channel);
    Source* raw = created.get();
    sources_.emplace(channel, std::move(created));
    if (sources_.size() == 1) timer_.start(kTickMs, kTickMs);
    if (!resume_id.empty()) raw->sse_.set_last_event_id(resume_id);
    raw->connect();
    return true;
  }
  return true;  // no source serves this channel
}

uint64_t SourceManager::backoff_ms(const Source& source) {
  // The upstream's retry: is its wish for the first attempt; failures after it back off.
  uint64_t base = static_cast<uint64_t>(source.config_.reconnect_min.count());
  uint64_t cap = static_cast<uint64_t>(source.config_.reconnect_max.count());
  if (source.upstream_retry_ms_ && source.attempt_ == 0) return source.upstream_retry_ms_;
  uint64_t ceiling = base << std::min<uint32_t>(source.attempt_, 20);
  ceiling = std::min(ceiling, cap);
  std::uniform_int_distribution<uint64_t> jitter(0, ceiling);  // full jitter
  return jitter(random_);
}

void SourceManager::tick() {
  uint64_t now = loop_.now_ms();
  for (auto it = sources_.begin(); it != sources_.end();) {
    Source& source = *it->second;
    if (source.close_at_ms_ && now >= source.close_at_ms_) {
      source.stop();
      it = sources_.erase(it);
      uncount(1);
      continue;
    }
    if (source.reconnect_at_ms_ && now >= source.reconnect_at_ms_) source.connect();
    ++it;
  }
  if (sources_.empty()) timer_.stop();
}

void SourceManager::close() {
  for (auto& [name, source] : sources_) source->stop();
  uncount(sources_.size());
  sources_.clear();
  timer_.close();
}

}  // namespace ssegw::upstream
