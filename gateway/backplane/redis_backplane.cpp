#include "gateway/backplane/redis_backplane.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>

#include "gateway/backplane/redis_scripts.hpp"
#include "gateway/backplane/stream_entry.hpp"
#include "gateway/base/clock.hpp"
#include "gateway/base/log.hpp"
#include "gateway/hub/generation.hpp"
#include "gateway/hub/sse_frame.hpp"

namespace ssegw::backplane {
namespace {

constexpr uint64_t kReconnectMinMs = 100;
constexpr uint64_t kReconnectMaxMs = 5000;
constexpr uint64_t kWatchdogMs = 500;
constexpr uint64_t kConnectTimeoutMs = 2000;
constexpr uint64_t kPingTimeoutMs = 3000;

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
  ++times_up_;
  attempt_ = 0;
  links_up_.fetch_add(1, std::memory_order_relaxed);
  metrics_.backplane_links_up.Increment();
  if (times_up_ > 1) {
    metrics_.backplane_reconnects.Increment();
    base::log::info("backplane reconnected", {{"channels", channels_.size()}});
  }
  // Back on a new connection: every channel reads on from its cursor once subscribed again.
  for (auto& [channel, state] : channels_) {
    state.dirty = true;
    notifications_.subscribe(notify_key(channel));
  }
  for (const Listener& listener : listeners_) notifications_.subscribe(listener.channel);
}

void RedisBackplane::listen(std::string channel,
                            std::function<void(std::string_view message)> on_message) {
  if (up_) notifications_.subscribe(channel);
  listeners_.push_back({std::move(channel), std::move(on_message)});
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
  if (kind == "message" && message->elements >= 3)
    for (const Listener& listener : listeners_)
      if (name == listener.channel) {
        listener.on_message(text(message->element[2]));
        return;
      }
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

}  // namespace ssegw::backplane
