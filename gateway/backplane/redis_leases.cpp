// The Redis backplane's source leases (redis_backplane.hpp): one instance runs a channel's source
// at a time, under a lease renewed while any instance has subscribers.
#include <hiredis/hiredis.h>

#include "gateway/backplane/redis_backplane.hpp"
#include "gateway/backplane/redis_scripts.hpp"
#include "gateway/backplane/stream_entry.hpp"
#include "gateway/base/log.hpp"

namespace ssegw::backplane {

// ---- source leases ----------------------------------------------------------------------------

void RedisBackplane::lease_tick() {
  std::vector<std::string> names;
  for (const auto& [channel, lease] : leases_) names.push_back(channel);
  for (const std::string& channel : names) lease_step(channel);
}

void RedisBackplane::lease_step(const std::string& channel) {
  auto it = leases_.find(channel);
  if (it == leases_.end()) return;
  Lease& lease = it->second;
  if (!lease.local && !lease.held) {
    leases_.erase(it);
    return;
  }
  if (!up_ || lease.busy) return;
  std::string lease_key = config_.backplane.key_prefix + "lease:" + channel;
  std::string interest_key = config_.backplane.key_prefix + "watch:" + channel;
  std::string ttl = std::to_string(config_.backplane.lease_ttl.count());
  if (lease.local) commands_.command({"SET", interest_key, "1", "PX", ttl}, nullptr);
  if (!lease.held && hooks_.source_room && !hooks_.source_room()) return;  // tried next tick
  lease.busy = true;
  auto settle = [this, channel](bool held) {
    auto it = leases_.find(channel);
    if (it == leases_.end()) return;
    Lease& lease = it->second;
    lease.busy = false;
    if (held == lease.held) return;
    lease.held = held;
    base::log::info(held ? "source lease won" : "source lease released",
                    {{"channel", channel}, {"instance", instance_id_}});
    if (held)
      start_source(channel);
    else if (hooks_.run_source)
      hooks_.run_source(channel, false, "");
  };
  bool sent;
  if (lease.held) {
    sent = commands_.command(
        {"EVAL", kRenewScript, "2", lease_key, interest_key, instance_id_, ttl,
         lease.local ? "1" : "0"},
        [settle](const redisReply* reply) {
          settle(reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1);
        });
  } else {
    sent = commands_.command(
        {"SET", lease_key, instance_id_, "NX", "PX", ttl},
        [settle](const redisReply* reply) { settle(reply && reply->type == REDIS_REPLY_STATUS); });
  }
  if (!sent) lease.busy = false;
}

// Without Redis no lease can be renewed: stop every source, so that two instances never run the
// same one when Redis comes back.
void RedisBackplane::drop_leases() {
  for (auto& [channel, lease] : leases_) {
    lease.busy = false;
    if (!lease.held) continue;
    lease.held = false;
    if (hooks_.run_source) hooks_.run_source(channel, false, "");
  }
}

// A source taken over resumes its upstream after the last event any owner recorded.
void RedisBackplane::start_source(const std::string& channel) {
  std::string key = stream_key(channel);
  bool sent = commands_.command({"XREVRANGE", key, "+", "-", "COUNT", "1"},
                                [this, channel](const redisReply* reply) {
                                  auto it = leases_.find(channel);
                                  if (!reply || it == leases_.end() || !it->second.held)
                                    return;  // lost meanwhile
                                  std::string resume_id;
                                  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
                                    const redisReply* entry = reply->element[0];
                                    if (entry->type == REDIS_REPLY_ARRAY && entry->elements == 2 &&
                                        entry->element[1]->type == REDIS_REPLY_ARRAY) {
                                      const redisReply* fields = entry->element[1];
                                      for (size_t i = 0; i + 1 < fields->elements; i += 2)
                                        if (text(fields->element[i]) == "uid")
                                          resume_id = text(fields->element[i + 1]);
                                    }
                                  }
                                  if (hooks_.run_source)
                                    hooks_.run_source(channel, true, resume_id);
                                });
  if (!sent && hooks_.run_source) hooks_.run_source(channel, true, "");
}

}  // namespace ssegw::backplane
