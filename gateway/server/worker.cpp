#include "gateway/server/worker.hpp"

#include <cstdio>
#include <limits>

#include "gateway/backplane/redis_channels.hpp"
#include "gateway/base/clock.hpp"
#include "gateway/base/log.hpp"
#include "gateway/hub/local_channels.hpp"
#include "gateway/hub/sse_frame.hpp"
#include "gateway/server/connection.hpp"

namespace ssegw::server {
namespace {

// How often connections are checked for timeouts and heartbeats, and history for its TTL.
constexpr uint64_t kTickMs = 250;

hub::HubOptions hub_options(const config::Config& config) {
  hub::HubOptions options;
  options.history.max_events = config.history.max_events;
  options.history.max_bytes = config.history.max_bytes;
  options.history.ttl_ms = static_cast<uint64_t>(config.history.ttl.count());
  options.max_total_bytes = config.history.max_total_bytes;
  options.max_channels = config.limits.max_channels;
  options.workers = config.workers;
  options.coalesce_ms = static_cast<uint64_t>(config.fanout.coalesce.count());
  return options;
}

std::string random_instance_id() {
  std::random_device random;
  char text[17];
  snprintf(text, sizeof text, "%08x%08x", random(), random());
  return text;
}

// The key labels of the budgets' series: keys with a budget, and "jwt" for subjects with one.
std::vector<std::string> budget_labels(const config::Config& config) {
  std::vector<std::string> labels;
  for (const config::KeyConfig& key : config.auth.keys)
    if (key.limits.any()) labels.push_back(key.name);
  if (config.auth.jwt && config.auth.jwt->subject_limits.any()) labels.push_back("jwt");
  return labels;
}

// The budgets' counters in Redis, behind the policy's store interface: the api layer knows
// nothing of the backplane.
class RedisBudgetStore final : public api::BudgetStore {
 public:
  explicit RedisBudgetStore(backplane::RedisBudgets& redis) : redis_(redis) {}

  void admit(const api::BudgetAccount& account, Done done) override {
    redis_.admit(account.id, account.limits, account.series,
                 [done = std::move(done)](backplane::RedisBudgets::Verdict verdict) {
                   done({verdict.refused, verdict.retry_after_s, std::move(verdict.slot)});
                 });
  }
  void charge(const api::BudgetAccount& account, uint64_t tokens) override {
    redis_.charge(account.id, account.limits, account.series, tokens);
  }

 private:
  backplane::RedisBudgets& redis_;
};

base::NamedLimits make_upstream_limits(const config::Config& config, metrics::Metrics& metrics) {
  base::NamedLimits limits;
  for (const config::UpstreamConfig& upstream : config.upstreams) {
    auto limit = std::make_unique<base::CountingLimit>(upstream.max_concurrent);
    metrics.on_collect([&metrics, name = upstream.name, count = limit.get()] {
      metrics.upstream(name).active->Set(count->used());
    });
    limits.emplace(upstream.name, std::move(limit));
  }
  return limits;
}

}  // namespace

Shared::Shared(const config::Config& config)
    : config(config),
      client_limits(config.limits.max_connections_per_ip, config.limits.publish_rate_per_ip,
                    config.limits.publish_burst_per_ip, config.limits.max_streams_per_ip),
      upstream_limits(make_upstream_limits(config, metrics)),
      budget_metrics(metrics.registry(), budget_labels(config)),
      budget_ledger(config.auth.jwt ? config.auth.jwt->max_subjects : 0, budget_metrics),
      policy(config, client_limits, upstream_limits, metrics, budget_metrics),
      generation_metrics(metrics),
      http2_metrics(metrics),
      retry_frame(hub::make_retry_frame(static_cast<uint64_t>(config.retry.count()))),
      heartbeat_frame(hub::make_heartbeat_frame()),
      instance_id(random_instance_id()) {
  if (config.tls.enabled()) tls_metrics = std::make_unique<metrics::TlsMetrics>(metrics);
}

Worker::Worker(Shared& shared, uint32_t index, int listen_fd)
    : shared_(shared),
      index_(index),
      listen_fd_(listen_fd),
      listener_(loop_, [this](uv_stream_t* server) { on_connection(server); }),
      tick_timer_(loop_, [this] { on_tick(); }),
      grace_timer_(loop_,
                   [this] {
                     // close() only starts closing: c stays linked until its close callback.
                     for (Connection* c = connections_; c;) {
                       Connection* next = c->next;
                       c->close();
                       c = next;
                     }
                   }),
      coalesce_timer_(loop_,
                      [this] {
                        coalesce_due_ = 0;
                        if (uint64_t next = hub_.send_due()) wake_coalescer(next);
                      }),
      wake_(loop_, [this] { on_mail(); }),
      hub_(hub_options(shared.config), shared.metrics, shared.channels, shared.history_bytes) {
  for (const config::UpstreamConfig& settings : shared.config.upstreams) {
    clients_[settings.name] = std::make_unique<upstream::Client>(loop_, settings);
    shared.metrics.upstream(settings.name);  // the series exist from the start
  }
  if (shared.config.backplane.type == config::BackplaneConfig::Type::kRedis) {
    backplane::RedisBackplane::Hooks hooks;
    hooks.run_source = [this](const std::string& channel, bool run, const std::string& resume_id) {
      if (sources_) sources_->watched(channel, run, resume_id);
    };
    hooks.source_room = [this] {
      return shared_.sources.load(std::memory_order_relaxed) < shared_.config.limits.max_sources;
    };
    hooks.has_source = [this](const std::string& channel) {
      for (const config::SourceConfig& source : config().sources)
        if (config::glob_match(source.channels, channel)) return true;
      return false;
    };
    backplane_ = std::make_unique<backplane::RedisBackplane>(
        loop_, shared.config, hub_, shared.metrics, shared.backplane_links_up,
        shared.instance_id + "/" + std::to_string(index), std::move(hooks));
    redis_budgets_ = std::make_unique<backplane::RedisBudgets>(
        loop_, shared.config.backplane, backplane_->commands(), shared.metrics,
        shared.instance_id + "/" + std::to_string(index));
    redis_budget_store_ = std::make_unique<RedisBudgetStore>(*redis_budgets_);
    budgets_ = redis_budget_store_.get();
    // With Redis, a source runs where its lease is held, not wherever it is watched.
    hub_.set_watch([this](const std::string& channel, bool watched) {
      backplane_->watched(channel, watched);
      return true;  // the lease holder runs the source, uncapped (see SourceManager)
    });
  }
  if (!budgets_) budgets_ = &shared.budget_ledger;
  if (!shared.config.sources.empty()) {
    sources_ = std::make_unique<upstream::SourceManager>(
        loop_, shared.config, shared.metrics, shared.sources,
        backplane_ ? std::numeric_limits<uint32_t>::max() : shared.config.limits.max_sources,
        [this](const std::string& name) -> upstream::Client& { return *clients_.at(name); },
        [this](const std::string& name) { return shared_.upstream_limits.at(name)->try_take(); },
        [this](const std::string& channel, std::string_view type, std::string_view data,
               std::string_view upstream_id) {
          if (backplane_)
            backplane_->publish_from_source(channel, type, data, upstream_id);
          else
            hub_.publish(channel, type, data, loop_.now_ms(), base::wall_clock_ms());
        });
    if (!backplane_)
      hub_.set_watch([this](const std::string& channel, bool watched) {
        return sources_->watched(channel, watched);
      });
  }
  wake_due_.assign(shared.config.workers, false);
  loop_.set_end_of_turn([this] { end_of_turn(); });
  hub_.set_coalescing([this] { return loop_.now_ms(); },
                      [this](uint64_t due_ms) { wake_coalescer(due_ms); });
  hub_.set_forward(
      [this](uint32_t worker, const std::string& channel, const base::FrameRef& frame) {
        send_to(worker, Forward{channel, frame});
      });
  auto owns = [this](std::string_view name) { return owner_of(name) == index_; };
  if (backplane_)
    owner_side_ = std::make_unique<backplane::RedisChannels>(*backplane_, hub_, owns);
  else
    owner_side_ = std::make_unique<hub::LocalChannels>(
        hub_, [this] { return loop_.now_ms(); }, owns);
  channels_ = std::make_unique<Channels>(*this, *owner_side_, hub_);
  generations_ = std::make_unique<Generations>(*this, shared.generation_metrics, backplane_.get(),
                                               shared.instance_id,
                                               shared.instance_id + "/" + std::to_string(index));
}

Worker::~Worker() = default;

bool Worker::run() {
  if (config().fanout.io_uring && !loop_.use_send_batch() && index_ == 0)
    base::log::warn("fanout.io_uring: this kernel refuses io_uring; writing without it", {});
  int r = listener_.listen_fd(listen_fd_, 1024);
  if (r != 0) {
    base::log::error("listen failed", {{"worker", index_}, {"error", uv_strerror(r)}});
    std::exit(1);
  }
  tick_timer_.start(kTickMs, kTickMs);
  if (backplane_) backplane_->start();
  if (redis_budgets_) redis_budgets_->start();
  loop_.run();
  if (loop_.finish() == 0) return true;
  base::log::error("loop closed with handles open",
                   {{"worker", index_}, {"handles", loop_.open_handles()}});
  return false;
}

void Worker::wake_coalescer(uint64_t due_ms) {
  uint64_t now = loop_.now_ms();
  if (due_ms <= now) {  // a quiet channel's event: it leaves with this turn's writes
    coalesce_this_turn_ = true;
    loop_.request_end_of_turn();
    return;
  }
  if (coalesce_due_ != 0 && coalesce_due_ <= due_ms) return;
  coalesce_due_ = due_ms;
  coalesce_timer_.start(due_ms - now, 0);
}

void Worker::end_of_turn() {
  if (coalesce_this_turn_) {
    coalesce_this_turn_ = false;
    if (uint64_t next = hub_.send_due()) wake_coalescer(next);
  }
  send_wakes();  // after the batches: their forwards are among what it wakes workers for
}

void Worker::post(std::unique_ptr<Message> message) {
  mailbox_.push(std::move(message));
  wake_.send();
}

bool Worker::send_to(uint32_t worker, Payload payload) {
  // A drained worker has no connection left to answer, and at stop (the backplane's final close
  // fails what is pending) its loop may be closed already: posting to it would abort.
  if (worker != index_ && shared_.workers[worker]->drained_reported()) return false;
  shared_.workers[worker]->mailbox_.push(std::make_unique<Message>(index_, std::move(payload)));
  // The wake-up waits for the end of this turn: a turn that posts a forward and a publish's
  // answer (or a batch's forwards) to a worker wakes it once, and it reads them all in one go.
  if (!wake_due_[worker]) {
    wake_due_[worker] = true;
    ++wakes_pending_;
    loop_.request_end_of_turn();
  }
  return true;
}

void Worker::send_wakes() {
  for (uint32_t w = 0; wakes_pending_ > 0 && w < wake_due_.size(); ++w) {
    if (!wake_due_[w]) continue;
    wake_due_[w] = false;
    --wakes_pending_;
    // The target's wake-up handle closes only at Stop, which comes once every worker, this one
    // included, has drained: until this one has, it is open. After, the rule of send_to.
    if (w == index_ || !drained_reported() || !shared_.workers[w]->drained_reported())
      shared_.workers[w]->wake_.send();
  }
}

std::optional<base::Lease> Worker::take_slot(const std::string& name) {
  auto it = shared_.upstream_limits.find(name);
  if (it == shared_.upstream_limits.end()) return std::nullopt;
  return it->second->try_take();
}

uint32_t Worker::owner_of(std::string_view channel) const {
  if (shared_.workers.size() == 1) return 0;
  return static_cast<uint32_t>(std::hash<std::string_view>{}(channel) % shared_.workers.size());
}

void Worker::on_connection(uv_stream_t* server) {
  auto* connection = new Connection(*this, next_connection_id_++);
  connection->next = connections_;
  if (connections_) connections_->prev = connection;
  connections_ = connection;
  ++connection_count_;
  shared_.metrics.connections_active.Increment();
  uint32_t open = shared_.connections.fetch_add(1, std::memory_order_relaxed) + 1;
  if (connection->accept(server) != 0) {
    connection->close();
    return;
  }
  // Before anything is read or written, even a refusal (which then closes before the handshake).
  if (shared_.tls_metrics) connection->use_tls(shared_.tls.get());
  if (open > shared_.config.limits.max_connections || draining_) {
    connection->reject_overloaded();
    return;
  }
  if (!connection->admit_client()) return;  // over limits.max_connections_per_ip: 429
  connection->start();
}

void Worker::connection_closed(Connection* connection) {
  if (connection->prev) connection->prev->next = connection->next;
  if (connection->next) connection->next->prev = connection->prev;
  if (connections_ == connection) connections_ = connection->next;
  --connection_count_;
  shared_.metrics.connections_active.Decrement();
  shared_.connections.fetch_sub(1, std::memory_order_relaxed);
  check_drained();
}

void Worker::on_tick() {
  uint64_t now = loop_.now_ms();
  for (auto& proxy : detached_) proxy->tick(now);
  std::erase_if(detached_, [](const auto& proxy) { return proxy->finished(); });
  generations_->tick(now);
  for (Connection* c = connections_; c;) {
    Connection* next = c->next;  // tick() may close c; it stays linked until its close callback
    c->tick(now);
    c = next;
  }
  hub_.sweep(now);
  if (index_ == 0 && now - last_limits_sweep_ms_ >= 10000) {  // one worker sweeps for all
    last_limits_sweep_ms_ = now;
    shared_.client_limits.sweep(now);
  }
}

void Worker::on_mail() {
  while (std::unique_ptr<Message> message = mailbox_.pop()) {
    if (channels_->on_message(message->from, message->payload)) continue;
    if (generations_->on_message(message->from, message->payload)) continue;
    if (std::holds_alternative<Shutdown>(message->payload))
      begin_drain();
    else if (std::holds_alternative<Stop>(message->payload))
      stop();
  }
}

void Worker::begin_drain() {
  if (draining_) return;
  draining_ = true;
  listener_.close();
  hub_.send_all_batches();  // before the streams end: what waits in a window goes out
  for (Connection* c = connections_; c;) {
    Connection* next = c->next;
    c->begin_shutdown();
    c = next;
  }
  grace_timer_.start(static_cast<uint64_t>(shared_.config.shutdown_grace.count()), 0);
  check_drained();
}

void Worker::check_drained() {
  if (!draining_ || drained_reported() || connection_count_ != 0) return;
  drained_reported_.store(true, std::memory_order_release);
  shared_.worker_drained();
}

void Worker::stop() {
  detached_.clear();  // cancels what still runs
  if (redis_budgets_) redis_budgets_->close();
  if (backplane_) backplane_->close();
  if (sources_) sources_->close();
  for (auto& [name, client] : clients_) client->close_all();
  listener_.close();
  tick_timer_.close();
  grace_timer_.close();
  coalesce_timer_.close();
  wake_.close();
  loop_.close();
}

}  // namespace ssegw::server
