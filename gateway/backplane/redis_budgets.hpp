// The spend budgets' counters in Redis (docs/protocol.md#budgets): with the Redis backplane, every
// instance counts a key's or a subject's tokens, requests and running answers in the same place,
// so that the budget holds across instances. One per worker, on the backplane's command link.
//
// Keys, under backplane.key_prefix (the account id is "key:<name>" or "sub:<subject>"):
// - budget:n:<id>: a hash of the current window's counts: w (the minute, unix_ms / 60000 on
//   Redis's clock), t (tokens charged), r (requests admitted). It expires when its minute ends.
// - budget:run:<id>: a sorted set of the answers running under max_concurrent, one member per
//   answer ("<instance>/<worker>:<n>") scored by when it expires. The instance running the answer
//   renews it every lease_ttl / 3 (backplane.lease_ttl) and removes it when the answer ends; an
//   instance that dies stops renewing, so its members expire after lease_ttl and are dropped at the
//   next admission: a dead instance never holds slots for longer than that. The set itself expires
//   with its newest member.
//
// Rules:
// - Check-and-take is one Lua script (kBudgetAdmitScript), so two instances never both take the
//   last request or slot. Every script reads the time with TIME: one clock for every instance.
// - Fail closed: when Redis cannot be reached, or does not answer before the link is declared lost
//   (redis_backplane.hpp: within about 3.5 s), a budgeted request is refused kUnavailable (503
//   backplane_unavailable) rather than run uncounted. Tokens charged while Redis is away are lost
//   (ssegw_backplane_errors_total counts each); running answers go on, and their slots are added
//   again at the first renewal after Redis is back.
// - admit()'s done runs exactly once, on the worker's thread; a slot's lease is released on it too.
//   The object outlives every lease it hands out (the worker stops its answers first).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "gateway/backplane/redis_connection.hpp"
#include "gateway/base/lease.hpp"
#include "gateway/metrics/budget_metrics.hpp"
#include "gateway/metrics/metrics.hpp"
#include "gateway/net/handles.hpp"
#include "gateway/net/loop.hpp"

namespace ssegw::backplane {

class RedisBudgets {
 public:
  struct Verdict {
    std::optional<metrics::BudgetRefusal> refused;  // nullopt: admitted
    uint32_t retry_after_s = 1;
    base::Lease slot;  // admitted: the running answer's place, until it ends
  };
  using Done = std::function<void(Verdict verdict)>;

  // commands: the backplane's command link, which outlives this object. owner names this worker
  // in the running sets.
  RedisBudgets(net::Loop& loop, const config::BackplaneConfig& config, RedisConnection& commands,
               metrics::Metrics& metrics, std::string owner);
  ~RedisBudgets();
  RedisBudgets(const RedisBudgets&) = delete;
  RedisBudgets& operator=(const RedisBudgets&) = delete;

  void start();
  // Stops renewing. Slots still held then expire in Redis after lease_ttl.
  void close();

  void admit(std::string_view id, const config::BudgetLimits& limits, metrics::BudgetSeries* series,
             Done done);
  void charge(std::string_view id, const config::BudgetLimits& limits,
              metrics::BudgetSeries* series, uint64_t tokens);

  size_t running() const { return running_.size(); }

 private:
  struct Running {
    std::string key;  // budget:run:<id>
    std::string member;
  };

  void renew();
  void release(uint64_t slot);

  const config::BackplaneConfig& config_;
  RedisConnection& commands_;
  metrics::Metrics& metrics_;
  std::string owner_;
  std::string ttl_ms_;
  std::map<uint64_t, Running> running_;  // this worker's answers under max_concurrent
  uint64_t next_slot_ = 1;
  bool closed_ = false;
  net::Timer renew_timer_;
};

}  // namespace ssegw::backplane
