// The cancel API on one worker (docs/protocol.md "Cancel a generation"): the generations running
// here, and the way DELETE /v1/generations/{gen} reaches one wherever it runs.
//
// Rules:
// - Everything runs on the worker's own thread; callbacks run there too, exactly once.
// - A generation runs on the worker that owns its name: hub::owned_generation_name draws names
//   until the hash of the name (Worker::owner_of) is the worker that starts the answer, and the
//   answer never moves (a detached one is adopted by the same worker). So a cancel goes to
//   owner_of(name), here or across the mailbox, never to every worker; the owner's answer is
//   authoritative for this process.
// - With Redis, a generation this process does not run is looked up in Redis and the cancel is
//   PUBLISHed to the worker that runs it (backplane/redis_generations.hpp).
// - An entry is a lease the RouteProxy holds (RouteProxy::hold): it is registered before the
//   answer starts and goes when the answer ends, whichever way (completion, error, cancel,
//   stall, shutdown), and with it the Redis key.
// - The policy stage decided what it could (api::CancelRights); the check that needs the
//   generation's starter is made here, right after the lookup, where the starter is known: on the
//   owning worker, or on the asking worker from what Redis holds.
// - A cancel waiting for another worker's answer waits in a table until the reply comes (the
//   owner answers at once); a DELETE is not pipelined past, so the table holds at most one entry
//   per connection, and an entry older than limits.owner_timeout is dropped by tick() (its
//   connection has been answered 503 owner_timeout by then: http::Session's deadline), so that an
//   owner that never answers (stopping) leaves nothing behind. A Redis lookup has the same
//   deadline from the session; RedisConnection runs every callback once, at the latest when the
//   connection goes. A cancel whose asker had its 503 starts nothing more (Wanted): a lookup
//   that answers late delivers no cancel, so that the 503 stays true.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "gateway/api/policy.hpp"
#include "gateway/backplane/redis_generations.hpp"
#include "gateway/base/lease.hpp"
#include "gateway/hub/generation_registry.hpp"
#include "gateway/metrics/generation_metrics.hpp"
#include "gateway/server/mailbox.hpp"
#include "upstream/route_proxy.hpp"

namespace ssegw::server {

class Worker;

class Generations {
 public:
  using Done = std::function<void(CancelOutcome outcome)>;
  // Whether the asker still waits: false once it has been answered 503 owner_timeout.
  using Wanted = std::function<bool()>;

  // With backplane (Redis), generations are registered there too; worker_id names this worker
  // there.
  Generations(Worker& worker, metrics::GenerationMetrics& metrics,
              backplane::RedisBackplane* backplane, std::string instance_id, std::string worker_id);
  ~Generations();

  // Makes a running generation cancellable until the returned lease goes: the proxy holds it.
  base::Lease add(const std::string& name, std::string starter, upstream::RouteProxy& proxy);

  // Stops the generation `name` if `rights` allow, wherever it runs; done gets the outcome. Once
  // wanted() is false, nothing more starts for it (no Redis lookup, no delivery), and done may
  // not run: what is under way (a message to the owner already sent) still acts.
  void cancel(const std::string& name, const api::CancelRights& rights, Wanted wanted, Done done);

  // The worker's periodic tick (the Redis keys' refresh).
  void tick(uint64_t now_ms);
  // CancelRequest and CancelReply from the mailbox; false for other messages.
  bool on_message(uint32_t from, Payload& payload);

 private:
  CancelOutcome cancel_here(const std::string& name, const api::CancelRights& rights);
  // After this process's answer: a generation not running here may run on another instance.
  void after_local(const std::string& name, const api::CancelRights& rights, CancelOutcome local,
                   const Wanted& wanted, Done done);
  using LookupStatus = backplane::RedisGenerations::Status;
  using Found = backplane::RedisGenerations::Found;
  // What Redis holds for a generation this process does not run: the check of the starter, then
  // the delivery to the worker that runs it.
  void after_lookup(const std::string& name, const api::CancelRights& rights, LookupStatus status,
                    const Found& found, const Done& done);
  void release(const std::string& name, uint64_t serial);

  Worker& worker_;
  metrics::GenerationMetrics& metrics_;
  hub::GenerationRegistry registry_;
  std::unique_ptr<backplane::RedisGenerations> redis_;
  uint64_t next_id_ = 1;
  struct Waiting {
    uint64_t since_ms;
    Done done;
  };
  std::unordered_map<uint64_t, Waiting> waiting_;  // asked another worker, by request id
  uint64_t timeout_ms_;                            // limits.owner_timeout
};

}  // namespace ssegw::server
