#include "gateway/backplane/redis_budgets.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <vector>

#include "gateway/base/log.hpp"

namespace ssegw::backplane {
namespace {

// Redis's Lua 5.1 turns numbers into text with %.14g (1e+15): every number a script writes goes
// through string.format('%d'), which stays exact up to 2^53 (about 9.007e15). Hence this bound on
// one charge, and the scripts' clamp of every sum to 2^53: an upstream's usage reports can never
// push a count past what Lua holds exactly, let alone wrap it negative.
constexpr uint64_t kMaxCharge = 1'000'000'000'000'000 / 1000;

// KEYS: counts, running. ARGV: tokens_per_minute, requests_per_minute, max_concurrent (0: no
// limit), member, slot ttl ms. Returns {0, 0} when admitted (the request counted, the member
// added under max_concurrent), else {1 tokens | 2 requests | 3 running, Retry-After seconds}.
constexpr std::string_view kBudgetAdmitScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(now / 60000)
local window_end = (window + 1) * 60000
local retry = math.floor((window_end - now + 999) / 1000)
local tokens, requests = 0, 0
local counts = redis.call('HMGET', KEYS[1], 'w', 't', 'r')
if tonumber(counts[1]) == window then
  tokens = tonumber(counts[2]) or 0
  requests = tonumber(counts[3]) or 0
end
local max_tokens, max_requests = tonumber(ARGV[1]), tonumber(ARGV[2])
local max_running = tonumber(ARGV[3])
if max_tokens > 0 and tokens >= max_tokens then return {1, retry} end
if max_requests > 0 and requests >= max_requests then return {2, retry} end
if max_running > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now))
  if redis.call('ZCARD', KEYS[2]) >= max_running then return {3, 1} end
  redis.call('ZADD', KEYS[2], string.format('%d', now + tonumber(ARGV[5])), ARGV[4])
  local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[2], newest[2])
end
redis.call('HSET', KEYS[1], 'w', string.format('%d', window), 't', string.format('%d', tokens),
           'r', string.format('%d', requests + 1))
redis.call('PEXPIREAT', KEYS[1], string.format('%d', window_end))
return {0, 0}
)lua";

// KEYS: counts. ARGV: tokens. Adds them to the current window.
constexpr std::string_view kBudgetChargeScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(now / 60000)
local counts = redis.call('HMGET', KEYS[1], 'w', 't')
local tokens = 0
if tonumber(counts[1]) == window then
  tokens = tonumber(counts[2]) or 0
else
  redis.call('HSET', KEYS[1], 'w', string.format('%d', window), 'r', '0')
end
redis.call('HSET', KEYS[1], 't', string.format('%d', math.min(tokens + tonumber(ARGV[1]), 9007199254740992)))
redis.call('PEXPIREAT', KEYS[1], string.format('%d', (window + 1) * 60000))
return 1
)lua";

// KEYS: running sets. ARGV: slot ttl ms, then the member for each key. Puts each member back with
// a new expiry (back too if Redis lost it), and keeps each set until its newest member expires.
constexpr std::string_view kBudgetRenewScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = string.format('%d', now + tonumber(ARGV[1]))
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, expiry, ARGV[i + 1])
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', key, newest[2])
end
return #KEYS
)lua";

// Slots renewed by one command, so that a worker with thousands running sends a few.
constexpr size_t kRenewBatch = 256;

}  // namespace

RedisBudgets::RedisBudgets(net::Loop& loop, const config::BackplaneConfig& config,
                           RedisConnection& commands, metrics::Metrics& metrics, std::string owner)
    : config_(config),
      commands_(commands),
      metrics_(metrics),
      owner_(std::move(owner)),
      ttl_ms_(std::to_string(config.lease_ttl.count())),
      renew_timer_(loop, [this] { renew(); }) {}

RedisBudgets::~RedisBudgets() = default;

void RedisBudgets::start() {
  uint64_t period = std::max<uint64_t>(static_cast<uint64_t>(config_.lease_ttl.count()) / 3, 1);
  renew_timer_.start(period, period);
}

void RedisBudgets::close() {
  closed_ = true;
  renew_timer_.close();
}

void RedisBudgets::admit(std::string_view id, const config::BudgetLimits& limits,
                         metrics::BudgetSeries* series, Done done) {
  const std::string& prefix = config_.key_prefix;
  std::string counts = prefix + "budget:n:" + std::string(id);
  std::string running = prefix + "budget:run:" + std::string(id);
  uint64_t slot = next_slot_++;
  std::string member = owner_ + ":" + std::to_string(slot);
  std::string max_tokens = std::to_string(limits.tokens_per_minute);
  std::string max_requests = std::to_string(limits.requests_per_minute);
  std::string max_running = std::to_string(limits.max_concurrent);
  bool limited = limits.max_concurrent != 0;
  auto on_reply = [this, done, slot, running, member, limited,
                   series](const redisReply* reply) mutable {
    Verdict verdict;
    if (!reply) {  // the link went first: lost, or closing
      verdict.refused = metrics::BudgetRefusal::kUnavailable;
      done(std::move(verdict));
      return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
      metrics_.backplane_errors.Increment();
      if (reply->type == REDIS_REPLY_ERROR)
        base::log::warn("budget check failed", {{"error", std::string(reply->str, reply->len)}});
      verdict.refused = metrics::BudgetRefusal::kUnavailable;
      done(std::move(verdict));
      return;
    }
    long long code = reply->element[0]->integer;
    verdict.retry_after_s =
        static_cast<uint32_t>(std::clamp(reply->element[1]->integer, 1LL, 60LL));
    switch (code) {
      case 0:
        break;
      case 1:
        verdict.refused = metrics::BudgetRefusal::kTokens;
        break;
      case 2:
        verdict.refused = metrics::BudgetRefusal::kRequests;
        break;
      default:
        verdict.refused = metrics::BudgetRefusal::kConcurrency;
        break;
    }
    if (!verdict.refused) {
      if (limited) running_.emplace(slot, Running{running, member});
      if (series) series->running->Increment();
      verdict.slot = base::Lease([this, slot, series] {
        if (series) series->running->Decrement();
        release(slot);
      });
    }
    done(std::move(verdict));
  };
  bool sent = commands_.command({"EVAL", kBudgetAdmitScript, "2", counts, running, max_tokens,
                                 max_requests, max_running, member, ttl_ms_},
                                std::move(on_reply));
  if (!sent) {
    Verdict verdict;
    verdict.refused = metrics::BudgetRefusal::kUnavailable;
    done(std::move(verdict));
  }
}

void RedisBudgets::release(uint64_t slot) {
  auto it = running_.find(slot);
  if (it == running_.end()) return;  // no max_concurrent: nothing in Redis
  // Unsent (Redis away, or closing), the member expires after lease_ttl instead.
  if (!closed_) commands_.command({"ZREM", it->second.key, it->second.member}, nullptr);
  running_.erase(it);
}

void RedisBudgets::charge(std::string_view id, const config::BudgetLimits& limits,
                          metrics::BudgetSeries* series, uint64_t tokens) {
  if (tokens == 0) return;
  tokens = std::min(tokens, kMaxCharge);
  if (series) series->tokens->Increment(static_cast<double>(tokens));
  if (!limits.tokens_per_minute) return;  // nothing to count against
  std::string counts = config_.key_prefix + "budget:n:" + std::string(id);
  std::string amount = std::to_string(tokens);
  auto on_reply = [this](const redisReply* reply) {
    if (reply && reply->type != REDIS_REPLY_ERROR) return;
    metrics_.backplane_errors.Increment();  // lost with the link, or refused
  };
  if (!commands_.command({"EVAL", kBudgetChargeScript, "1", counts, amount}, on_reply))
    metrics_.backplane_errors.Increment();
}

void RedisBudgets::renew() {
  if (running_.empty() || !commands_.ready()) return;
  std::vector<std::string_view> keys, members, args;
  auto it = running_.begin();
  while (it != running_.end()) {
    keys.clear();
    members.clear();
    for (; it != running_.end() && keys.size() < kRenewBatch; ++it) {
      keys.push_back(it->second.key);
      members.push_back(it->second.member);
    }
    std::string count = std::to_string(keys.size());
    args.assign({"EVAL", kBudgetRenewScript, count});
    args.insert(args.end(), keys.begin(), keys.end());
    args.push_back(ttl_ms_);
    args.insert(args.end(), members.begin(), members.end());
    commands_.command(args.data(), args.size(), nullptr);  // the command copies its arguments
  }
}

}  // namespace ssegw::backplane
