// A worker: one thread, one libuv loop, one listener (SO_REUSEPORT), one hub.
//
// Rules:
// - Everything here runs on the worker's own thread, except post(), which any thread may call.
// - The worker owns its connections through the intrusive list; each connection deletes itself in
//   its close callback and unlinks first (connection_closed()).
// - Shutdown is two-phase: kShutdown drains (no new connections, streams end, then connections
//   close); once every worker has drained, kStop closes the loop. Until kStop, a worker keeps its
//   mailbox open for messages from workers still draining.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "gateway/api/budgets.hpp"
#include "gateway/api/client_limits.hpp"
#include "gateway/api/policy.hpp"
#include "gateway/backplane/redis_backplane.hpp"
#include "gateway/backplane/redis_budgets.hpp"
#include "gateway/hub/hub.hpp"
#include "gateway/metrics/budget_metrics.hpp"
#include "gateway/metrics/http2_metrics.hpp"
#include "gateway/metrics/metrics.hpp"
#include "gateway/metrics/tls_metrics.hpp"
#include "gateway/net/handles.hpp"
#include "gateway/net/loop.hpp"
#include "gateway/net/tls_context.hpp"
#include "gateway/server/channels.hpp"
#include "gateway/server/generations.hpp"
#include "gateway/server/mailbox.hpp"
#include "upstream/http_client.hpp"
#include "upstream/route_proxy.hpp"
#include "upstream/source.hpp"

namespace ssegw::server {

class Connection;
class Worker;

// What all workers share. Immutable after start, except the atomics.
struct Shared {
  Shared(const config::Config& config);

  const config::Config& config;
  metrics::Metrics metrics;
  api::ClientLimits client_limits;
  base::NamedLimits upstream_limits;  // upstreams.NAME.max_concurrent, by upstream name
  metrics::BudgetMetrics budget_metrics;
  // The budgets' counters without Redis (with it, each worker has a store of its own in Redis).
  api::BudgetLedger budget_ledger;
  api::Policy policy;  // after the limits and metrics it takes from
  metrics::GenerationMetrics generation_metrics;
  metrics::Http2Metrics http2_metrics;
  std::atomic<uint32_t> connections{0};
  std::atomic<uint32_t> channels{0};
  std::atomic<uint64_t> history_bytes{0};  // retained by every hub: history.max_total_bytes
  std::atomic<uint32_t> sources{0};        // open in every worker: limits.max_sources
  std::vector<std::unique_ptr<Worker>> workers;
  std::function<void()> worker_drained;  // wakes the main thread
  base::FrameRef retry_frame;
  base::FrameRef heartbeat_frame;
  // Redis backplane: this process's name in source leases, and the workers connected to Redis.
  std::string instance_id;
  std::atomic<uint32_t> backplane_links_up{0};
  // TLS on the listener (tls_setup.hpp): the context new connections take (empty: plain TCP),
  // and its metrics (null: plain TCP).
  net::TlsContextSlot tls;
  std::unique_ptr<metrics::TlsMetrics> tls_metrics;
  bool backplane_ready() const {
    return config.backplane.type == config::BackplaneConfig::Type::kMemory ||
           backplane_links_up.load(std::memory_order_relaxed) == workers.size();
  }
};

class Worker final : public upstream::Upstreams {
 public:
  Worker(Shared& shared, uint32_t index, int listen_fd);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The thread body: listens and runs the loop until Stop. False when the loop ended with a
  // handle still open (logged, with the handles).
  bool run();
  // Any thread.
  void post(std::unique_ptr<Message> message);

  uint32_t index() const { return index_; }
  Shared& shared() { return shared_; }
  const config::Config& config() const { return shared_.config; }
  metrics::Metrics& metrics() { return shared_.metrics; }
  hub::Hub& hub() { return hub_; }
  net::Loop& loop() { return loop_; }
  bool draining() const { return draining_; }

  // Which worker owns a channel: a hash of its name.
  uint32_t owner_of(std::string_view channel) const;
  // Posts to another worker; false (and nothing sent) when that worker has drained already, so
  // that its loop may be closed: it has nobody left to serve.
  bool send_to(uint32_t worker, Payload payload);
  // Every channel operation of this worker's connections, routes and sources goes through here.
  hub::ChannelService& channels() { return *channels_; }
  // Where the budgets' counters live: the shared ledger, or Redis through this worker's link.
  api::BudgetStore& budgets() { return *budgets_; }
  // The generations running on this worker, and the cancel API's way to any generation.
  Generations& generations() { return *generations_; }

  void connection_closed(Connection* connection);

  // Takes over a proxied answer that goes on without its client.
  void adopt(std::unique_ptr<upstream::RouteProxy> proxy) { detached_.push_back(std::move(proxy)); }

  // upstream::Upstreams: the client of a configured upstream on this worker's loop, and a slot
  // of its max_concurrent.
  upstream::Client& client(const std::string& name) override { return *clients_.at(name); }
  std::optional<base::Lease> take_slot(const std::string& name) override;

  // Read by the supervisor thread, hence atomic.
  bool drained_reported() const { return drained_reported_.load(std::memory_order_acquire); }

 private:
  void on_connection(uv_stream_t* server);
  void on_mail();
  void on_tick();
  // fanout.coalesce: has the hub's send_due() run at due_ms (or sooner if already set so), or at
  // the end of this turn when due_ms is not in the future.
  void wake_coalescer(uint64_t due_ms);
  // Loop's end-of-turn hook: the quiet channels' batches (fanout.coalesce), then send_wakes().
  void end_of_turn();
  // Wakes each worker that send_to() posted to in this turn.
  void send_wakes();
  void begin_drain();
  void check_drained();
  void stop();

  Shared& shared_;
  uint32_t index_;
  int listen_fd_;
  net::Loop loop_;
  net::Listener listener_;
  net::Timer tick_timer_;
  net::Timer grace_timer_;
  net::Timer coalesce_timer_;        // fanout.coalesce: when the next channel's window ends
  uint64_t coalesce_due_ = 0;        // what coalesce_timer_ is set for; 0 when it is not
  bool coalesce_this_turn_ = false;  // a batch is due at the end of this turn
  std::vector<bool> wake_due_;       // by worker: posted to in this turn, not yet woken
  uint32_t wakes_pending_ = 0;
  net::Async wake_;
  Mailbox mailbox_;
  hub::Hub hub_;
  std::map<std::string, std::unique_ptr<upstream::Client>> clients_;
  std::unique_ptr<upstream::SourceManager> sources_;  // declared after clients_: destroyed first
  std::unique_ptr<backplane::RedisBackplane> backplane_;
  std::unique_ptr<backplane::RedisBudgets> redis_budgets_;  // with the Redis backplane
  std::unique_ptr<api::BudgetStore> redis_budget_store_;    // in front of redis_budgets_
  api::BudgetStore* budgets_ = nullptr;                     // that, or the shared ledger
  // The owner side of this worker's channels (in memory, or in Redis), and the router that sends
  // other workers' channels across the mailbox.
  std::unique_ptr<hub::ChannelService> owner_side_;
  std::unique_ptr<Channels> channels_;
  // Before detached_: a proxy's registration goes when the proxy goes.
  std::unique_ptr<Generations> generations_;
  std::vector<std::unique_ptr<upstream::RouteProxy>> detached_;
  Connection* connections_ = nullptr;
  size_t connection_count_ = 0;
  uint64_t next_connection_id_ = 1;
  bool draining_ = false;
  uint64_t last_limits_sweep_ms_ = 0;
  std::atomic<bool> drained_reported_{false};
};

}  // namespace ssegw::server
