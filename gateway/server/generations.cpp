#include "gateway/server/generations.hpp"

#include "gateway/hub/generation.hpp"
#include "gateway/server/worker.hpp"

namespace ssegw::server {

Generations::Generations(Worker& worker, metrics::GenerationMetrics& metrics,
                         backplane::RedisBackplane* backplane, std::string instance_id,
                         std::string worker_id)
    : worker_(worker),
      metrics_(metrics),
      timeout_ms_(static_cast<uint64_t>(worker.config().limits.owner_timeout.count())) {
  if (!backplane) return;
  redis_ = std::make_unique<backplane::RedisGenerations>(
      *backplane, worker.config(), registry_, std::move(instance_id), std::move(worker_id),
      [this](std::string_view name) {
        // Authorized by the instance that asked (redis_generations.hpp).
        if (hub::is_generation_name(name) && registry_.stop(name)) metrics_.cancelled.Increment();
      });
  redis_->start();
}

Generations::~Generations() = default;

base::Lease Generations::add(const std::string& name, std::string starter,
                             upstream::RouteProxy& proxy) {
  uint64_t serial = registry_.add(name, starter, [&proxy] { return proxy.cancel(); });
  if (serial == 0) return {};
  metrics_.running.Increment();
  if (redis_) redis_->added(name, starter);
  return base::Lease([this, name, serial] { release(name, serial); });
}

void Generations::release(const std::string& name, uint64_t serial) {
  registry_.remove(name, serial);
  metrics_.running.Decrement();
  if (redis_) redis_->removed(name);
}

void Generations::tick(uint64_t now_ms) {
  if (redis_) redis_->tick(now_ms);
  // Its connection had its 503 owner_timeout already: a late reply finds nothing to answer.
  std::erase_if(waiting_,
                [&](const auto& entry) { return now_ms - entry.second.since_ms >= timeout_ms_; });
}

CancelOutcome Generations::cancel_here(const std::string& name, const api::CancelRights& rights) {
  const std::string* starter = registry_.starter(name);
  if (!starter) return CancelOutcome::kNotFound;
  switch (rights.judge(*starter)) {
    case api::CancelRights::Verdict::kAllowed:
      break;
    case api::CancelRights::Verdict::kForbidden:
      worker_.metrics().refused_forbidden.Increment();
      return CancelOutcome::kForbidden;
    case api::CancelRights::Verdict::kHidden:
      worker_.metrics().refused_forbidden.Increment();
      return CancelOutcome::kNotFound;
  }
  if (!registry_.stop(name)) return CancelOutcome::kNotFound;  // it had just ended
  metrics_.cancelled.Increment();
  return CancelOutcome::kCancelled;
}

void Generations::cancel(const std::string& name, const api::CancelRights& rights, Wanted wanted,
                         Done done) {
  uint32_t owner = worker_.owner_of(name);
  if (owner == worker_.index()) {
    after_local(name, rights, cancel_here(name, rights), wanted, std::move(done));
    return;
  }
  uint64_t id = next_id_++;
  waiting_.emplace(
      id, Waiting{worker_.loop().now_ms(),
                  [this, name, rights, wanted, done = std::move(done)](CancelOutcome outcome) {
                    after_local(name, rights, outcome, wanted, done);
                  }});
  metrics_.relayed_worker.Increment();
  if (!worker_.send_to(owner, CancelRequest{id, name, rights})) {
    // The owner has drained: it runs nothing any more.
    Done waiting = std::move(waiting_.at(id).done);
    waiting_.erase(id);
    waiting(CancelOutcome::kNotFound);
  }
}

void Generations::after_local(const std::string& name, const api::CancelRights& rights,
                              CancelOutcome local, const Wanted& wanted, Done done) {
  if (local != CancelOutcome::kNotFound || !redis_) {
    done(local);
    return;
  }
  if (!wanted()) return;
  redis_->find(name, [this, name, rights, wanted, done](LookupStatus status, const Found& found) {
    // Redis answered after the asker's 503 (a frozen Redis, say): a cancel delivered now would
    // stop the generation while its client was told it had not.
    if (wanted()) after_lookup(name, rights, status, found, done);
  });
}

void Generations::after_lookup(const std::string& name, const api::CancelRights& rights,
                               LookupStatus status, const Found& found, const Done& done) {
  if (status == LookupStatus::kUnavailable) {
    done(CancelOutcome::kUnavailable);
    return;
  }
  // A key of this instance's own is stale (its answer has just ended): the owner's answer
  // stands.
  if (status == LookupStatus::kNotFound || found.here) {
    done(CancelOutcome::kNotFound);
    return;
  }
  switch (rights.judge(found.starter)) {
    case api::CancelRights::Verdict::kAllowed:
      break;
    case api::CancelRights::Verdict::kForbidden:
      worker_.metrics().refused_forbidden.Increment();
      done(CancelOutcome::kForbidden);
      return;
    case api::CancelRights::Verdict::kHidden:
      worker_.metrics().refused_forbidden.Increment();
      done(CancelOutcome::kNotFound);
      return;
  }
  metrics_.relayed_backplane.Increment();
  redis_->deliver(found.worker, name, [done](LookupStatus delivered) {
    switch (delivered) {
      case LookupStatus::kFound:
        done(CancelOutcome::kCancelled);
        return;
      case LookupStatus::kNotFound:
        done(CancelOutcome::kNotFound);
        return;
      case LookupStatus::kUnavailable:
        done(CancelOutcome::kUnavailable);
        return;
    }
  });
}

bool Generations::on_message(uint32_t from, Payload& payload) {
  if (auto* request = std::get_if<CancelRequest>(&payload)) {
    worker_.send_to(from, CancelReply{request->id, cancel_here(request->name, request->rights)});
    return true;
  }
  if (auto* reply = std::get_if<CancelReply>(&payload)) {
    auto it = waiting_.find(reply->id);
    if (it == waiting_.end()) return true;
    Done done = std::move(it->second.done);
    waiting_.erase(it);
    done(reply->outcome);
    return true;
  }
  return false;
}

}  // namespace ssegw::server
