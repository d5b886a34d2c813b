// The Redis backplane's reads (redis_backplane.hpp): subscribers joining with their replay, live
// reads after each notification, and channel information.
#include <hiredis/hiredis.h>

#include <algorithm>

#include "gateway/backplane/redis_backplane.hpp"
#include "gateway/backplane/stream_entry.hpp"
#include "gateway/base/log.hpp"
#include "gateway/hub/generation.hpp"
#include "gateway/hub/sse_frame.hpp"

namespace ssegw::backplane {
namespace {

constexpr uint64_t kLiveBatch = 512;
constexpr uint64_t kReplayPage = 32;
constexpr uint64_t kAheadWaitMs = 2000;

// "(<id>": XRANGE's exclusive start (Redis 6.2). Built by appending: GCC 12 warns
// (-Wrestrict, a false positive) on "literal" + std::string.
std::string after(const hub::EventId& id) {
  std::string text = "(";
  text += id.str();
  return text;
}

}  // namespace

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
  std::string from = after(state.cursor);
  std::string count = std::to_string(kLiveBatch);
  state.busy = true;
  state.dirty = false;
  bool sent = commands_.command(
      {"XRANGE", key, from, "+", "COUNT", count}, [this, channel](const redisReply* reply) {
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
    if (read_replay_page(channel, read, after(*last))) return;
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
  admission.last_id = state.cursor;  // where the subscriber joins
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

}  // namespace ssegw::backplane
