#include "gateway/backplane/redis_backplane.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>

#include "gateway/backplane/stream_entry.hpp"
#include "gateway/base/clock.hpp"
#include "gateway/base/log.hpp"
#include "gateway/hub/generation.hpp"
#include "gateway/hub/sse_frame.hpp"

namespace ssegw::backplane {
namespace {

// KEYS: stream, notification channel, byte count, channels. ARGV: max events, id ("*" or
// explicit), ttl ms, max bytes, max channels, channel, size, then field/value pairs. One round
// trip, and no instance can see the entry before its notification is on its way.
//
// - Channels (limits.max_channels, across the instances): a sorted set of channel names scored
//   by when their stream expires. Expired ones are removed first; a channel not in it is refused
//   (0, not an id) when it already holds max channels.
// - Bytes (history.max_bytes): each entry records in `n` its serialised size without the id
//   line (size; the line is "id: " id "\n", so 5 + #id more); the byte count key holds the sum
//   over the stream, and is rebuilt from the entries when it is missing (lost, or a stream
//   written before it existed; entries without `n` are estimated from their fields).
// - Trimming is exact: the oldest entries go until at most max events and max bytes are left,
//   except that the newest entry always stays (an event larger than max bytes is kept until the
//   next one comes). An end marker (size empty) counts nothing and trims nothing: it is the last
//   entry of a generation.
// - Every key expires ttl after the last publish, on the one clock of TIME: a stream and its
//   member expire together (the key once TIME passes the score, the member then too). The set
//   expires when its last member does.
constexpr std::string_view kPublishScript = R"lua(
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', string.format('(%d', now))
if not redis.call('ZSCORE', KEYS[4], ARGV[6]) and
    redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[5]) then
  return 0
end
local function size_of(entry)
  local n, data, event, is_end = nil, '', nil, false
  local fields = entry[2]
  for i = 1, #fields, 2 do
    local name = fields[i]
    if name == 'n' then n = fields[i + 1]
    elseif name == 'data' then data = fields[i + 1]
    elseif name == 'event' then event = fields[i + 1]
    elseif name == 'end' then is_end = true end
  end
  if n then return tonumber(n) + #entry[1] + 5 end
  if is_end then return 0 end
  local size = #entry[1] + 5 + 6 + #data + 2
  if event then size = size + 8 + #event end
  return size
end
local bytes = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  local counted = redis.call('GET', KEYS[3])
  if counted then
    bytes = tonumber(counted)
  else
    for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
      bytes = bytes + size_of(entry)
    end
  end
end
local id
if ARGV[7] == '' then
  id = redis.call('XADD', KEYS[1], ARGV[2], unpack(ARGV, 8))
else
  id = redis.call('XADD', KEYS[1], ARGV[2], 'n', ARGV[7], unpack(ARGV, 8))
  bytes = bytes + tonumber(ARGV[7]) + #id + 5
  local max_events, max_bytes = tonumber(ARGV[1]), tonumber(ARGV[4])
  local len, drop, from = redis.call('XLEN', KEYS[1]), 0, '-'
  local function over()
    return len - drop > max_events or (bytes > max_bytes and len - drop > 1)
  end
  while over() do
    local page = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 32)
    if #page == 0 then break end
    for _, entry in ipairs(page) do
      if not over() then break end
      drop = drop + 1
      bytes = bytes - size_of(entry)
      from = '(' .. entry[1]
    end
  end
  if drop > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', len - drop) end
end
local expiry = string.format('%d', now + ttl)
redis.call('SET', KEYS[3], string.format('%d', bytes), 'PXAT', expiry)
redis.call('PEXPIREAT', KEYS[1], expiry)
redis.call('ZADD', KEYS[4], expiry, ARGV[6])
local newest = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[4], newest[2])
redis.call('PUBLISH', KEYS[2], id)
return id
)lua";

// KEYS: lease, interest. ARGV: owner, ttl ms, "1" when the owner has subscribers itself. Renews
// the lease while anyone is interested, else releases it; 0 when it is not ours (any more).
constexpr std::string_view kRenewScript =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "if ARGV[3] == '1' or redis.call('EXISTS', KEYS[2]) == 1 then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
    "redis.call('DEL', KEYS[1]) return 0\n";

constexpr uint64_t kLiveBatch = 512;
constexpr uint64_t kReplayPage = 32;
constexpr uint64_t kReconnectMinMs = 100;
constexpr uint64_t kReconnectMaxMs = 5000;
constexpr uint64_t kWatchdogMs = 500;
constexpr uint64_t kConnectTimeoutMs = 2000;
constexpr uint64_t kPingTimeoutMs = 3000;
constexpr uint64_t kAheadWaitMs = 2000;

}  // namespace

RedisBackplane::RedisBackplane(net::Loop& loop, const config::Config& config, hub::Hub& hub,
                               metrics::Metrics& metrics, std::atomic<uint32_t>& links_up,
                               std::string instance_id, Hooks hooks)
    : loop_(loop),
      config_(config),
      hub_(hub),
      metrics_(metrics),
      links_up_(links_up),
      instance_id_(std::move(instance_id)),
      hooks_(std::move(hooks)),
      commands_(loop, config.backplane,
                {.ready = [this] { on_ready(); },
                 .lost = [this](const std::string& why) { on_lost(why); },
                 .pubsub = nullptr}),
      notifications_(loop, config.backplane,
                     {.ready = [this] { on_ready(); },
                      .lost = [this](const std::string& why) { on_lost(why); },
                      .pubsub = [this](const redisReply* message) { on_pubsub(message); }}),
      reconnect_timer_(loop, [this] { connect(); }),
      lease_timer_(loop, [this] { lease_tick(); }),
      watchdog_timer_(loop, [this] { watchdog(); }) {}

RedisBackplane::~RedisBackplane() = default;

std::string RedisBackplane::stream_key(std::string_view channel) const {
  return config_.backplane.key_prefix + "ch:" + std::string(channel);
}

std::string RedisBackplane::notify_key(std::string_view channel) const {
  return config_.backplane.key_prefix + "n:" + std::string(channel);
}

void RedisBackplane::start() {
  uint64_t period = static_cast<uint64_t>(config_.backplane.lease_ttl.count()) / 3;
  lease_timer_.start(period, period);
  watchdog_timer_.start(kWatchdogMs, kWatchdogMs);
  connect();
}

void RedisBackplane::close() {
  closed_ = true;
  if (up_) {
    links_up_.fetch_sub(1, std::memory_order_relaxed);
    metrics_.backplane_links_up.Decrement();
  }
  up_ = false;
  // What is in flight fails (null callbacks), then what waits for its turn.
  commands_.close();
  notifications_.close();
  fail_waiters();
  reconnect_timer_.close();
  lease_timer_.close();
  watchdog_timer_.close();
}

// ---- connection -------------------------------------------------------------------------------

void RedisBackplane::connect() {
  if (closed_) return;
  connect_started_ms_ = loop_.now_ms();
  commands_.connect();
  if (connect_started_ms_) notifications_.connect();  // unless the first failed at once
}

void RedisBackplane::watchdog() {
  uint64_t now = loop_.now_ms();
  if (up_) {  // waiters ahead of the cursor may have waited long enough
    std::vector<std::string> waiting;
    for (const auto& [channel, state] : channels_)
      if (!state.waiters.empty()) waiting.push_back(channel);
    for (const std::string& channel : waiting) pump(channel);
  }
  if (connect_started_ms_ && now - connect_started_ms_ >= kConnectTimeoutMs) {
    on_lost("connect timed out");
  } else if (up_ && ping_sent_ms_ && now - ping_sent_ms_ >= kPingTimeoutMs) {
    on_lost("no answer to PING");
  } else if (up_ && !ping_sent_ms_) {
    ping_sent_ms_ = now;
    commands_.command({"PING"}, [this](const redisReply* reply) {
      if (reply) ping_sent_ms_ = 0;
    });
  }
}

// Both connections are ready: the publish script is loaded (once per connection, so that each
// publish sends its SHA1, not its text), then the backplane is up.
void RedisBackplane::on_ready() {
  if (!commands_.ready() || !notifications_.ready() || up_ || loading_script_) return;
  loading_script_ = true;
  commands_.command({"SCRIPT", "LOAD", kPublishScript}, [this](const redisReply* reply) {
    loading_script_ = false;
    if (!reply) return;  // lost: on_lost() has run
    if (reply->type != REDIS_REPLY_STRING) {
      on_lost("SCRIPT LOAD: " + std::string(text(reply)));
      return;
    }
    publish_sha_ = std::string(text(reply));
    on_up();
  });
}

void RedisBackplane::on_up() {
  connect_started_ms_ = 0;
  ping_sent_ms_ = 0;
  up_ = true;
  attempt_ = 0;
  links_up_.fetch_add(1, std::memory_order_relaxed);
  metrics_.backplane_links_up.Increment();
  if (ever_up_) {
    metrics_.backplane_reconnects.Increment();
    base::log::info("backplane reconnected", {{"channels", channels_.size()}});
  }
  ever_up_ = true;
  // Back on a new connection: every channel reads on from its cursor once subscribed again.
  for (auto& [channel, state] : channels_) {
    state.dirty = true;
    notifications_.subscribe(notify_key(channel));
  }
}

void RedisBackplane::on_lost(const std::string& why) {
  if (closed_ || (!up_ && !connect_started_ms_)) return;  // already handled; reconnect pending
  connect_started_ms_ = 0;
  ping_sent_ms_ = 0;
  metrics_.backplane_errors.Increment();
  bool was_up = up_;
  if (up_) {
    up_ = false;
    links_up_.fetch_sub(1, std::memory_order_relaxed);
    metrics_.backplane_links_up.Decrement();
  }
  // Both connections go, so that they come back together.
  commands_.close();
  notifications_.close();
  if (was_up || attempt_ == 0)
    base::log::warn("backplane unavailable", {{"error", why}, {"host", config_.backplane.host}});
  drop_leases();
  fail_waiters();
  uint64_t ceiling = std::min<uint64_t>(kReconnectMaxMs, kReconnectMinMs << std::min(attempt_, 6u));
  ++attempt_;
  uint64_t delay = kReconnectMinMs / 2 + random_() % ceiling;  // full jitter, with a floor
  reconnect_timer_.start(delay, 0);
}

void RedisBackplane::fail_waiters() {
  std::vector<std::string> names;
  for (auto& [channel, state] : channels_) {
    state.subscribed = false;
    state.busy = false;
    state.dirty = true;
    names.push_back(channel);
  }
  // Waiting subscribers get their answer now; live ones stay connected.
  for (const std::string& channel : names) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) continue;
    std::vector<Waiter> waiters = std::move(it->second.waiters);
    for (Waiter& waiter : waiters) {
      Admission unavailable;
      unavailable.refused = hub::Refusal::kBackplaneUnavailable;
      unavailable.refused = hub::Refusal::kBackplaneUnavailable;
      waiter.admit(unavailable);
    }
    release_if_unused(channel);
  }
}

void RedisBackplane::on_pubsub(const redisReply* message) {
  if (message->type != REDIS_REPLY_ARRAY || message->elements < 2) return;
  std::string_view kind = text(message->element[0]);
  std::string_view name = text(message->element[1]);
  const std::string prefix = notify_key("");
  if (name.substr(0, prefix.size()) != prefix) return;
  std::string channel(name.substr(prefix.size()));
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  if (kind == "subscribe") {
    it->second.subscribed = true;
  } else if (kind == "message") {
    it->second.dirty = true;
  } else {
    return;
  }
  pump(channel);
}

// ---- publishing -------------------------------------------------------------------------------

void RedisBackplane::eval_publish(
    const std::string& channel, std::string_view id, std::string_view size,
    std::initializer_list<std::pair<std::string_view, std::string_view>> fields, Published done) {
  const std::string& prefix = config_.backplane.key_prefix;
  std::string key = stream_key(channel);
  std::string notify = notify_key(channel);
  std::string bytes_key = prefix + "bytes:" + channel;
  std::string channels_key = prefix + "channels";
  std::string max_events = std::to_string(config_.history.max_events);
  std::string ttl = std::to_string(config_.history.ttl.count());
  std::string max_bytes = std::to_string(config_.history.max_bytes);
  std::string max_channels = std::to_string(config_.limits.max_channels);
  std::string_view args[20] = {"EVALSHA", publish_sha_, "4",        key, notify,
                               bytes_key, channels_key, max_events, id,  ttl,
                               max_bytes, max_channels, channel,    size};
  size_t count = 14;
  for (const auto& [name, value] : fields) {
    if (value.empty() && name != "data") continue;
    args[count++] = name;
    args[count++] = value;
  }
  bool sent = commands_.command(args, count, [this, done](const redisReply* reply) {
    using Status = Publication::Status;
    Publication publication;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
      publication.status = Status::kTooManyChannels;
    } else if (auto id = is_error(reply) ? std::nullopt : hub::EventId::parse(text(reply))) {
      publication.status = Status::kStored;
      publication.id = *id;
    } else {
      metrics_.backplane_errors.Increment();
      if (reply && reply->type == REDIS_REPLY_ERROR)
        base::log::warn("backplane publish failed", {{"error", text(reply)}});
    }
    if (done) done(publication);
    // The script cache was flushed (SCRIPT FLUSH): connecting again loads it again.
    if (reply && reply->type == REDIS_REPLY_ERROR && text(reply).starts_with("NOSCRIPT"))
      on_lost("the publish script is no longer loaded");
  });
  if (!sent) {
    metrics_.backplane_errors.Increment();
    if (done) done(Publication{});
  }
}

void RedisBackplane::publish(const std::string& channel, std::string_view type,
                             std::string_view data, Published done) {
  if (!up_) {
    if (done) done(Publication{});
    return;
  }
  metrics_.events_published.Increment();
  eval_publish(channel, "*", unnumbered_size(type, data),
               {{"data", data}, {"event", type == "message" ? "" : type}}, std::move(done));
}

void RedisBackplane::publish_from_source(const std::string& channel, std::string_view type,
                                         std::string_view data, std::string_view upstream_id) {
  if (!up_) {
    metrics_.backplane_errors.Increment();
    return;
  }
  metrics_.events_published.Increment();
  eval_publish(channel, "*", unnumbered_size(type, data),
               {{"data", data}, {"event", type == "message" ? "" : type}, {"uid", upstream_id}},
               nullptr);
}

void RedisBackplane::start_generation(const std::string& channel) {
  generations_.emplace(channel, hub::EventId{});
}

base::FrameRef RedisBackplane::publish_generation(const std::string& channel, std::string_view type,
                                                  std::string_view data) {
  hub::EventId& last = generations_.at(channel);
  last = last.next(base::wall_clock_ms());
  base::FrameRef frame = hub::make_event_frame(last, type, data);
  metrics_.events_published.Increment();
  // The answer's own client gets the frame even when Redis is away or the channel is refused;
  // only resuming needs Redis.
  std::string id = last.str();
  std::string size = std::to_string(frame->size() - (id.size() + 5));  // less "id: <id>\n"
  eval_publish(channel, id, size, {{"data", data}, {"event", type == "message" ? "" : type}},
               nullptr);
  return frame;
}

void RedisBackplane::finish_generation(const std::string& channel) {
  auto it = generations_.find(channel);
  if (it == generations_.end()) return;
  hub::EventId final_id = it->second;
  generations_.erase(it);
  std::string final_text = final_id.str();
  eval_publish(channel, final_id.next(base::wall_clock_ms()).str(), "",
               {{"data", ""}, {"end", final_text}}, nullptr);
}

// ---- subscribing ------------------------------------------------------------------------------

void RedisBackplane::subscribe(const std::string& channel, const hub::ResumeRequest& resume,
                               Admit admit) {
  if (!up_) {
    Admission unavailable;
    unavailable.refused = hub::Refusal::kBackplaneUnavailable;
    admit(unavailable);
    return;
  }
  auto [it, created] = channels_.try_emplace(channel);
  it->second.waiters.push_back({resume, std::move(admit), loop_.now_ms()});
  if (created) notifications_.subscribe(notify_key(channel));
  pump(channel);
}

void RedisBackplane::watched(const std::string& channel, bool watched) {
  if (hooks_.has_source && hooks_.has_source(channel)) {
    if (watched) {
      leases_[channel].local = true;
      lease_step(channel);
    } else if (auto it = leases_.find(channel); it != leases_.end()) {
      it->second.local = false;
    }
  }
  if (!watched) release_if_unused(channel);
}

void RedisBackplane::pump(const std::string& channel) {
  auto it = channels_.find(channel);
  if (it == channels_.end() || !up_) return;
  ChannelState& state = it->second;
  if (!state.subscribed || state.busy) return;
  if (!state.known) {
    read_tail(channel, state);
  } else if (state.dirty) {
    read_live(channel, state);
  } else if (std::any_of(state.waiters.begin(), state.waiters.end(),
                         [&](const Waiter& w) { return !ahead(w, state); })) {
    admit_waiters(channel, state);
  } else if (state.waiters.empty()) {
    release_if_unused(channel);
  }
}

void RedisBackplane::release_if_unused(const std::string& channel) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  const ChannelState& state = it->second;
  if (state.busy || !state.waiters.empty() || hub_.watched(channel)) return;
  notifications_.unsubscribe(notify_key(channel));
  channels_.erase(it);
}

// The cursor of a channel new to this instance: the stream's last id (live starts after it).
void RedisBackplane::read_tail(const std::string& channel, ChannelState& state) {
  std::string key = stream_key(channel);
  state.busy = true;
  bool sent = commands_.command({"XREVRANGE", key, "+", "-", "COUNT", "1"},
                                [this, channel](const redisReply* reply) {
                                  auto it = channels_.find(channel);
                                  if (it == channels_.end()) return;
                                  ChannelState& state = it->second;
                                  if (is_error(reply)) {
                                    // Lost: on_lost() follows. An error answer: the next
                                    // notification or subscriber tries again.
                                    if (reply) {
                                      metrics_.backplane_errors.Increment();
                                      state.busy = false;
                                    }
                                    return;
                                  }
                                  state.busy = false;
                                  state.known = true;
                                  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
                                    std::string_view data, type;
                                    std::optional<hub::EventId> end;
                                    parse_entry(reply->element[0], state.cursor, data, type, end);
                                    if (end) {
                                      state.finished = true;
                                      state.final_id = *end;
                                    }
                                  }
                                  pump(channel);
                                });
  if (!sent) state.busy = false;
}

void RedisBackplane::read_live(const std::string& channel, ChannelState& state) {
  std::string key = stream_key(channel);
  std::string after = "(" + state.cursor.str();
  std::string count = std::to_string(kLiveBatch);
  state.busy = true;
  state.dirty = false;
  bool sent = commands_.command(
      {"XRANGE", key, after, "+", "COUNT", count}, [this, channel](const redisReply* reply) {
        auto it = channels_.find(channel);
        if (it == channels_.end()) return;
        if (is_error(reply)) {
          if (reply) {
            metrics_.backplane_errors.Increment();
            it->second.busy = false;
          }
          it->second.dirty = true;
          return;
        }
        // busy stays set while fanning out: a subscriber leaving meanwhile must not release
        // the state under this loop.
        bool finished_now = false;
        for (size_t i = 0; i < reply->elements; ++i) {
          hub::EventId id;
          std::string_view data, type;
          std::optional<hub::EventId> end;
          if (!parse_entry(reply->element[i], id, data, type, end)) continue;
          ChannelState& state = channels_.at(channel);
          if (id <= state.cursor) continue;
          state.cursor = id;
          if (end) {
            state.finished = true;
            state.final_id = *end;
            finished_now = true;
            continue;
          }
          hub_.deliver_backplane(channel, hub::make_event_frame(id, type, data));
        }
        ChannelState& state = channels_.at(channel);
        state.busy = false;
        if (reply->elements >= kLiveBatch) state.dirty = true;
        if (finished_now) hub_.finish(channel);
        pump(channel);
      });
  if (!sent) {
    state.busy = false;
    state.dirty = true;
  }
}

bool RedisBackplane::ahead(const Waiter& waiter, const ChannelState& state) const {
  if (!waiter.resume.present || loop_.now_ms() - waiter.since_ms >= kAheadWaitMs) return false;
  auto id = hub::EventId::parse(waiter.resume.last_event_id);
  return id && *id > state.cursor && !state.finished;
}

// Replays to every waiting subscriber with one paged read: from the oldest id any of them needs
// up to the cursor, then attaches them all at the cursor.
void RedisBackplane::admit_waiters(const std::string& channel, ChannelState& state) {
  bool from_start_default = state.finished || hub::is_generation_name(channel);
  std::optional<hub::EventId> oldest;
  bool from_start = false;
  // Those ahead of the cursor stay; the watchdog and the next notification look at them again.
  std::vector<Waiter> ready;
  std::vector<Waiter> waiting;
  for (Waiter& waiter : state.waiters)
    (ahead(waiter, state) ? waiting : ready).push_back(std::move(waiter));
  state.waiters = std::move(waiting);
  for (const Waiter& waiter : ready) {
    if (!waiter.resume.present) {
      from_start = from_start || from_start_default;
      continue;
    }
    auto id = hub::EventId::parse(waiter.resume.last_event_id);
    if (!id) {
      from_start = true;  // unparseable: a gap, then everything retained
    } else if (!oldest || *id < *oldest) {
      oldest = id;
    }
  }
  if (!from_start && !oldest) {  // nobody resumes: attach them all at the cursor
    std::vector<Waiter> waiters = std::move(ready);
    state.busy = true;  // a subscriber leaving during admit() must not release the state
    for (Waiter& waiter : waiters) admit(channel, state, waiter, nullptr);
    state.busy = false;
    pump(channel);
    return;
  }

  auto read = std::make_shared<ReplayRead>();
  read->waiters = std::move(ready);
  read->key = stream_key(channel);
  read->end = state.cursor.str();
  state.busy = true;
  // The stream's first id, for the gap notice; then the pages, answered in this order.
  bool sent = commands_.command(
                  {"XRANGE", read->key, "-", "+", "COUNT", "1"},
                  [read](const redisReply* reply) {
                    if (is_error(reply) || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
                      return;
                    hub::EventId id;
                    std::string_view data, type;
                    std::optional<hub::EventId> end;
                    if (parse_entry(reply->element[0], id, data, type, end)) read->first = id;
                  }) &&
              read_replay_page(channel, read, from_start ? "-" : oldest->str());
  if (!sent) {  // a first command sent answers into `read` only
    state.busy = false;
    for (Waiter& waiter : read->waiters) {
      Admission unavailable;
      unavailable.refused = hub::Refusal::kBackplaneUnavailable;
      unavailable.refused = hub::Refusal::kBackplaneUnavailable;
      waiter.admit(unavailable);
    }
  }
}

bool RedisBackplane::read_replay_page(const std::string& channel,
                                      const std::shared_ptr<ReplayRead>& read,
                                      const std::string& start) {
  std::string count = std::to_string(kReplayPage);
  return commands_.command(
      {"XRANGE", read->key, start, read->end, "COUNT", count},
      [this, channel, read](const redisReply* reply) { on_replay_page(channel, read, reply); });
}

void RedisBackplane::on_replay_page(const std::string& channel,
                                    const std::shared_ptr<ReplayRead>& read,
                                    const redisReply* reply) {
  auto it = channels_.find(channel);
  if (!is_error(reply) && reply->type == REDIS_REPLY_ARRAY && it != channels_.end()) {
    std::optional<hub::EventId> last;
    for (size_t i = 0; i < reply->elements; ++i) {
      Entry entry;
      std::string_view data, type;
      if (!parse_entry(reply->element[i], entry.id, data, type, entry.end)) continue;
      if (!entry.end) entry.frame = hub::make_event_frame(entry.id, type, data);
      last = entry.id;
      keep(*read, std::move(entry));
    }
    // A full page may have more after it, up to the cursor.
    if (reply->elements < kReplayPage || !last || last->str() == read->end) {
      ChannelState& state = it->second;
      for (Waiter& waiter : read->waiters) admit(channel, state, waiter, read.get());
      state.busy = false;  // only now: admit() may detach subscribers
      pump(channel);
      return;
    }
    if (read_replay_page(channel, read, "(" + last->str())) return;
  }
  // Null: lost or closed, and on_lost() or close() resets the channel. An error answer (or a
  // page that could not be sent): the next notification or subscriber tries again.
  if (reply) {
    metrics_.backplane_errors.Increment();
    if (it != channels_.end()) it->second.busy = false;
  }
  for (Waiter& waiter : read->waiters) {
    Admission unavailable;
    unavailable.refused = hub::Refusal::kBackplaneUnavailable;
    waiter.admit(unavailable);
  }
  if (reply) pump(channel);
}

// A stream trimmed by the publish script holds no more than the history limits, and neither does
// any part of it up to the cursor. More can only be entries written otherwise (an older
// gateway's MAXLEN ~, lower limits since): the oldest go, as trimming would have taken them, so
// that a replay never buffers more than history.max_bytes (and one page while reading).
void RedisBackplane::keep(ReplayRead& read, Entry entry) const {
  if (entry.frame) {
    ++read.events;
    read.bytes += entry.frame->size();
  }
  read.entries.push_back(std::move(entry));
  while (read.entries.size() > 1 &&
         (read.events > config_.history.max_events || read.bytes > config_.history.max_bytes)) {
    const Entry& oldest = read.entries.front();
    if (oldest.frame) {
      --read.events;
      read.bytes -= oldest.frame->size();
    }
    read.last_dropped = oldest.id;
    read.entries.pop_front();
  }
}

void RedisBackplane::admit(const std::string& channel, const ChannelState& state, Waiter& waiter,
                           const ReplayRead* read) {
  using Status = Admission::Status;
  hub::ReplayContext context;
  context.finished = state.finished;
  context.final_id = state.final_id;
  context.replay_from_start = hub::is_generation_name(channel);
  if (read) context.known_before = read->last_dropped;
  const std::deque<Entry>* entries = read ? &read->entries : nullptr;
  size_t size = entries ? entries->size() : 0;
  hub::ReplayPlan plan = hub::ReplayPlanner::plan(waiter.resume, context, size,
                                                  [&](size_t i) { return (*entries)[i].id; });
  Admission admission;
  if (plan.kind == hub::ReplayPlan::Kind::kNoContent) {
    admission.status = Status::kNoContent;
    waiter.admit(admission);
    return;
  }
  admission.status = state.finished ? Status::kEnded : Status::kLive;
  if (read) {
    // The first the client can have: the stream's, or the oldest kept when the read dropped.
    std::optional<hub::EventId> first = read->first;
    if (read->last_dropped && size) first = entries->front().id;
    admission.replay = hub::ReplayPlanner::frames(
        plan, size, [&](size_t i) { return (*entries)[i].frame; }, first, metrics_);
  }
  waiter.admit(admission);
}

// ---- channel information ----------------------------------------------------------------------

void RedisBackplane::info(const std::string& channel, InfoDone done) {
  if (!up_) {
    done(std::nullopt);
    return;
  }
  struct Collect {
    hub::ChannelInfo info;
    bool ok = true;
  };
  auto collect = std::make_shared<Collect>();
  collect->info.subscribers = hub_.info(channel).subscribers;
  std::string key = stream_key(channel);
  auto entry_id = [](const redisReply* reply, std::optional<hub::EventId>& out, bool& is_end) {
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return;
    hub::EventId id;
    std::string_view data, type;
    std::optional<hub::EventId> end;
    if (!parse_entry(reply->element[0], id, data, type, end)) return;
    out = end ? end : std::optional<hub::EventId>(id);
    is_end = end.has_value();
  };
  bool sent = commands_.command({"XLEN", key},
                                [collect](const redisReply* reply) {
                                  if (is_error(reply) || reply->type != REDIS_REPLY_INTEGER)
                                    collect->ok = false;
                                  else
                                    collect->info.retained = static_cast<uint64_t>(reply->integer);
                                }) &&
              commands_.command({"XRANGE", key, "-", "+", "COUNT", "1"},
                                [collect, entry_id](const redisReply* reply) {
                                  if (is_error(reply)) {
                                    collect->ok = false;
                                    return;
                                  }
                                  bool is_end = false;
                                  entry_id(reply, collect->info.first_id, is_end);
                                  if (is_end)
                                    collect->info.first_id.reset();  // only the marker left
                                }) &&
              commands_.command({"XREVRANGE", key, "+", "-", "COUNT", "1"},
                                [collect, entry_id, done](const redisReply* reply) {
                                  bool is_end = false;
                                  if (is_error(reply)) collect->ok = false;
                                  if (collect->ok) entry_id(reply, collect->info.last_id, is_end);
                                  // The end marker of a finished generation is not an event.
                                  if (is_end && collect->info.retained) --collect->info.retained;
                                  done(collect->ok ? std::optional(collect->info) : std::nullopt);
                                });
  if (!sent) done(std::nullopt);  // what was sent answers into collect only
}

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
