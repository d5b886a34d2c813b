#include "gateway/backplane/redis_generations.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>

#include "gateway/backplane/stream_entry.hpp"

namespace ssegw::backplane {

RedisGenerations::RedisGenerations(RedisBackplane& backplane, const config::Config& config,
                                   const hub::GenerationRegistry& registry, std::string instance_id,
                                   std::string worker_id,
                                   std::function<void(std::string_view name)> on_cancel)
    : backplane_(backplane),
      config_(config),
      registry_(registry),
      instance_id_(std::move(instance_id)),
      worker_id_(std::move(worker_id)),
      on_cancel_(std::move(on_cancel)),
      ttl_ms_(std::to_string(std::max<int64_t>(config.backplane.lease_ttl.count(), 1))),
      period_ms_(
          std::max<uint64_t>(static_cast<uint64_t>(config.backplane.lease_ttl.count()) / 3, 1)) {}

std::string RedisGenerations::key(std::string_view name) const {
  std::string out = config_.backplane.key_prefix;
  out += "gen:";
  out += name;
  return out;
}

std::string RedisGenerations::cancel_channel(std::string_view worker) const {
  std::string out = config_.backplane.key_prefix;
  out += "cancel:";
  out += worker;
  return out;
}

void RedisGenerations::start() {
  backplane_.listen(cancel_channel(worker_id_), on_cancel_);
}

void RedisGenerations::set(const std::string& name, const std::string& starter) {
  std::string value = worker_id_;
  value += '\n';
  value += starter;
  // Fire and forget: Redis away now, the next refresh sets it.
  backplane_.command({"SET", key(name), value, "PX", ttl_ms_}, nullptr);
}

void RedisGenerations::added(const std::string& name, const std::string& starter) {
  set(name, starter);
}

void RedisGenerations::removed(const std::string& name) {
  backplane_.command({"DEL", key(name)}, nullptr);  // else it expires within lease_ttl
}

void RedisGenerations::tick(uint64_t now_ms) {
  // A Redis that was away may have lost every key (a restart without persistence), or let them
  // expire while the SETs of the outage went nowhere: set them again on the first tick back, not
  // a period later, so that a cancel from another instance finds them.
  const bool back = backplane_.up() && backplane_.times_up() != refreshed_up_;
  if (!back && now_ms - last_refresh_ms_ < period_ms_) return;
  refreshed_up_ = backplane_.times_up();
  last_refresh_ms_ = now_ms;
  registry_.for_each(
      [this](const std::string& name, const std::string& starter) { set(name, starter); });
}

void RedisGenerations::find(const std::string& name,
                            std::function<void(Status, const Found&)> done) {
  bool sent = backplane_.command({"GET", key(name)}, [this, done](const redisReply* reply) {
    Found found;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
      done(Status::kUnavailable, found);
      return;
    }
    std::string_view value = text(reply);
    size_t newline = value.find('\n');
    if (reply->type != REDIS_REPLY_STRING || newline == std::string_view::npos) {
      done(Status::kNotFound, found);  // nil (not running anywhere), or not a value of ours
      return;
    }
    found.worker = std::string(value.substr(0, newline));
    found.starter = std::string(value.substr(newline + 1));
    found.here = found.worker.size() > instance_id_.size() &&
                 found.worker.starts_with(instance_id_) && found.worker[instance_id_.size()] == '/';
    done(Status::kFound, found);
  });
  if (!sent) done(Status::kUnavailable, Found{});
}

void RedisGenerations::deliver(const std::string& worker, const std::string& name,
                               std::function<void(Status)> done) {
  bool sent = backplane_.command({"PUBLISH", cancel_channel(worker), name},
                                 [done](const redisReply* reply) {
                                   if (!reply || reply->type != REDIS_REPLY_INTEGER)
                                     done(Status::kUnavailable);
                                   else
                                     done(reply->integer > 0 ? Status::kFound : Status::kNotFound);
                                 });
  if (!sent) done(Status::kUnavailable);
}

}  // namespace ssegw::backplane
