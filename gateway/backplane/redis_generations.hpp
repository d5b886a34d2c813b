// The cancel API across instances (docs/operations.md#scaling-out): which worker of which
// instance runs each generation, kept in Redis, and the way a cancel reaches that worker.
//
// Rules:
// - One per worker, next to its RedisBackplane, whose connections it uses (the commands, and one
//   pub/sub channel of its own); everything runs on the worker's thread.
// - While a generation runs here, <key_prefix>gen:<name> holds "<worker id>\n<starter>" with a
//   TTL of backplane.lease_ttl, set again every lease_ttl / 3 and on the first tick after the
//   backplane reconnects (tick()): the key goes with its answer (DEL), with a dead instance (the
//   TTL), and comes back when Redis lost it.
// - Each worker SUBSCRIBEs to <key_prefix>cancel:<worker id>; a cancel is a PUBLISH of the
//   generation's name there. PUBLISH answers how many received it: none means the instance died
//   and its key has not expired yet, which is "not found".
// - The asking side authorizes, on the starter read here (api::CancelRights); the running worker
//   obeys what arrives on its channel, as the gateway trusts everything else in its Redis
//   (docs/security.md).
// - Every callback runs exactly once (RedisConnection's rule), with kUnavailable when Redis is
//   away or failed the command.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "gateway/backplane/redis_backplane.hpp"
#include "gateway/hub/generation_registry.hpp"

namespace ssegw::backplane {

class RedisGenerations {
 public:
  // worker_id: "<instance id>/<worker index>", unique among the instances sharing the Redis;
  // on_cancel: a cancel for this worker arrived (the name is not checked yet).
  RedisGenerations(RedisBackplane& backplane, const config::Config& config,
                   const hub::GenerationRegistry& registry, std::string instance_id,
                   std::string worker_id, std::function<void(std::string_view name)> on_cancel);

  // Subscribes to this worker's cancel channel (now or once Redis is up).
  void start();
  // A generation of the registry started or ended here.
  void added(const std::string& name, const std::string& starter);
  void removed(const std::string& name);
  // Sets every key again each lease_ttl / 3, and at once when the backplane is back; the
  // worker's periodic tick.
  void tick(uint64_t now_ms);

  enum class Status { kFound, kNotFound, kUnavailable };
  struct Found {
    std::string worker;   // the worker id that runs it
    std::string starter;  // api::Principal::starter() of who started it
    bool here = false;    // the worker is one of this instance's
  };
  void find(const std::string& name, std::function<void(Status, const Found&)> done);
  // Sends the cancel to the worker that runs the generation: kFound when that worker got it,
  // kNotFound when nobody listens there any more.
  void deliver(const std::string& worker, const std::string& name,
               std::function<void(Status)> done);

 private:
  std::string key(std::string_view name) const;
  std::string cancel_channel(std::string_view worker) const;
  void set(const std::string& name, const std::string& starter);

  RedisBackplane& backplane_;
  const config::Config& config_;
  const hub::GenerationRegistry& registry_;
  std::string instance_id_;
  std::string worker_id_;
  std::function<void(std::string_view name)> on_cancel_;
  std::string ttl_ms_;
  uint64_t period_ms_;
  uint64_t last_refresh_ms_ = 0;
  uint64_t refreshed_up_ = 0;  // the backplane's times_up() at the last refresh
};

}  // namespace ssegw::backplane
