#include "gateway/hub/hub.hpp"

#include <cassert>
#include <chrono>
#include <limits>

#include "gateway/hub/generation.hpp"
#include "gateway/hub/sse_frame.hpp"
#include "gateway/metrics/metrics.hpp"

namespace ssegw::hub {
namespace {

// Stale queue entries tolerated beyond the live ones before a compaction: small queues are left
// alone, large ones are compacted in passes whose cost the stale entries already paid for.
constexpr size_t kQueueSlack = 1024;

}  // namespace

Hub::Hub(const HubOptions& options, metrics::Metrics& metrics, std::atomic<uint32_t>& channel_count,
         std::atomic<uint64_t>& history_bytes)
    : options_(options),
      metrics_(metrics),
      channel_count_(channel_count),
      history_bytes_(history_bytes) {}

Hub::~Hub() {
  for (auto& [name, channel] : channels_) {
    if (!channel->mirror()) {
      channel_count_.fetch_sub(1, std::memory_order_relaxed);
      metrics_.channels_active.Decrement();
    }
  }
  add_retained_bytes(-static_cast<int64_t>(retained_bytes_));
}

Channel* Hub::find(std::string_view name) const {
  auto it = channels_.find(name);
  return it == channels_.end() ? nullptr : it->second.get();
}

Channel* Hub::find_or_create(std::string_view name, bool mirror) {
  if (Channel* channel = find(name)) return channel;
  if (!mirror) {
    if (channel_count_.fetch_add(1, std::memory_order_relaxed) >= options_.max_channels) {
      channel_count_.fetch_sub(1, std::memory_order_relaxed);
      return nullptr;
    }
    metrics_.channels_active.Increment();
  }
  auto channel = std::make_unique<Channel>(std::string(name), options_.history, mirror);
  channel->remote_counts().assign(mirror ? 0 : options_.workers, 0);
  Channel* raw = channel.get();
  if (!mirror) {
    uint32_t slot;
    if (free_slots_.empty()) {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.emplace_back();
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    slots_[slot].channel = raw;
    raw->set_slot(slot);
  }
  channels_.emplace(raw->name(), std::move(channel));
  return raw;
}

Hub::ChannelMap::iterator Hub::erase(ChannelMap::iterator it) {
  Channel& channel = *it->second;
  if (!channel.mirror()) {
    channel_count_.fetch_sub(1, std::memory_order_relaxed);
    metrics_.channels_active.Decrement();
    // Its queue entries are all stale (it holds no event); the new generation keeps them so.
    Slot& slot = slots_[channel.slot()];
    slot.channel = nullptr;
    ++slot.generation;
    free_slots_.push_back(channel.slot());
  }
  return channels_.erase(it);
}

void Hub::release_if_idle(Channel* channel) {
  if (!channel->idle()) return;
  erase(channels_.find(channel->name()));
}

Channel* Hub::live_channel(const QueuedEvent& entry) const {
  const Slot& slot = slots_[entry.slot];
  if (slot.generation != entry.generation || !slot.channel) return nullptr;
  const History& history = slot.channel->history();
  // A channel drops events only from its front, so every sequence from the front's on is held.
  if (history.empty() || history.front().seq > entry.seq) return nullptr;
  return slot.channel;
}

uint64_t Hub::add_retained_bytes(int64_t delta) {
  if (delta == 0) return history_bytes_.load(std::memory_order_relaxed);
  retained_bytes_ += static_cast<uint64_t>(delta);
  metrics_.history_bytes.Increment(static_cast<double>(delta));
  // Unsigned wrap-around makes a negative delta a subtraction.
  return history_bytes_.fetch_add(static_cast<uint64_t>(delta), std::memory_order_relaxed) +
         static_cast<uint64_t>(delta);
}

void Hub::trim_to_total() {
  uint64_t total = history_bytes_.load(std::memory_order_relaxed);
  if (total <= options_.max_total_bytes) return;
  const uint64_t excess = total - options_.max_total_bytes;
  uint64_t freed = 0;
  uint64_t events = 0;
  while (freed < excess && retained_events_ > 0) {
    QueuedEvent entry = order_.front();
    order_.pop_front();
    Channel* channel = live_channel(entry);
    if (!channel) continue;
    // The first live entry is the oldest event this hub holds, hence its channel's front.
    assert(channel->history().front().seq == entry.seq);
    freed += channel->history().drop_oldest();
    --retained_events_;
    ++events;
    // A channel left idle is freed by the next sweep, not here: publish() still uses its own.
  }
  if (!events) return;
  add_retained_bytes(-static_cast<int64_t>(freed));
  metrics_.history_evicted_total_bytes.Increment(static_cast<double>(events));
}

void Hub::tidy_queue() {
  while (!order_.empty() && !live_channel(order_.front())) order_.pop_front();
  if (order_.size() <= 2 * retained_events_ + kQueueSlack) return;
  std::erase_if(order_, [this](const QueuedEvent& entry) { return !live_channel(entry); });
  assert(order_.size() == retained_events_);
}

std::optional<Published> Hub::publish(std::string_view name, std::string_view type,
                                      std::string_view data, uint64_t now_ms, uint64_t wall_ms) {
  auto started = std::chrono::steady_clock::now();
  Channel* channel = find_or_create(name, false);
  if (!channel) return std::nullopt;
  // Only the owner publishes; a mirror has no history and no place in the eviction queue.
  assert(!channel->mirror());
  if (channel->mirror()) return std::nullopt;

  EventId id = channel->take_next_id(wall_ms);
  base::FrameRef frame = make_event_frame(id, type, data);
  History& history = channel->history();
  const uint64_t bytes_before = history.bytes();
  const size_t events_before = history.size();
  const uint64_t seq = next_seq_++;
  history.append({id, now_ms, frame, seq});
  order_.push_back({channel->slot(), slots_[channel->slot()].generation, seq});
  const size_t after_append = history.size();
  history.expire(now_ms);
  const size_t by_limit = events_before + 1 - after_append;  // max_events, max_bytes
  const size_t by_ttl = after_append - history.size();
  retained_events_ = retained_events_ + 1 - by_limit - by_ttl;
  if (by_limit) metrics_.history_evicted_channel_limit.Increment(static_cast<double>(by_limit));
  if (by_ttl) metrics_.history_evicted_ttl.Increment(static_cast<double>(by_ttl));
  if (add_retained_bytes(static_cast<int64_t>(history.bytes()) -
                         static_cast<int64_t>(bytes_before)) > options_.max_total_bytes)
    trim_to_total();
  tidy_queue();

  const uint64_t subscribers = total_subscribers(*channel);
  dispatch(*channel, frame);
  metrics_.events_published.Increment();
  metrics_.publish_fanout_seconds.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return Published{id, subscribers, std::move(frame)};
}

void Hub::set_coalescing(Clock clock, Coalescer::Wake wake) {
  if (options_.coalesce_ms == 0) return;
  clock_ = std::move(clock);
  coalescer_ = std::make_unique<Coalescer>(options_.coalesce_ms, std::move(wake));
}

void Hub::dispatch(Channel& channel, const base::FrameRef& frame) {
  // A generation's answer streams token by token to its reader: never held back. By name too:
  // with Redis the hub's channel of a generation is an ordinary one (open_channel).
  if (coalescer_ && !channel.replay_from_start() && !has_generation_prefix(channel.name())) {
    switch (coalescer_->offer(channel, frame, clock_())) {
      case Coalescer::Verdict::kThisTurn:
        return;
      case Coalescer::Verdict::kWaiting:
        metrics_.fanout_coalesced_events.Increment();
        return;
      case Coalescer::Verdict::kBatchFull:
        // Counted only if it filled a window's batch, not the batch of this turn's burst.
        if (channel.window_end() > clock_()) metrics_.fanout_coalesced_events.Increment();
        send_batch(channel);
        return;
    }
  }
  send_now(channel, frame);
}

void Hub::send_now(Channel& channel, const base::FrameRef& frame) {
  size_t local = channel.fan_out(frame);
  auto& remote = channel.remote_counts();
  for (uint32_t worker = 0; worker < remote.size(); ++worker)
    if (remote[worker] && forward_) forward_(worker, channel.name(), frame);
  if (local) {
    metrics_.events_delivered.Increment(static_cast<double>(local));
    metrics_.delivered_bytes.Increment(static_cast<double>(local * frame->size()));
  }
}

void Hub::send_batch(Channel& channel) {
  auto started = std::chrono::steady_clock::now();
  coalescer_->sent(channel, clock_());
  // Swapped out, so that the loop walks a list nothing appends to; its capacity comes back.
  std::vector<base::FrameRef> frames;
  frames.swap(channel.batch());
  for (const base::FrameRef& frame : frames) send_now(channel, frame);
  frames.clear();
  if (channel.batch().empty()) channel.batch().swap(frames);
  metrics_.publish_fanout_seconds.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

uint64_t Hub::send_due() {
  return coalescer_ ? send_due_by(clock_()) : 0;
}

uint64_t Hub::send_due_by(uint64_t now_ms) {
  due_.clear();
  coalescer_->due(now_ms, due_);
  for (Channel* channel : due_) {
    // Unlisted one at a time: the ones still in due_ stay listed, hence not idle, hence alive.
    channel->set_listed(false);
    send_batch_before_join(*channel);
    release_if_idle(channel);
  }
  due_.clear();
  return coalescer_->next_due();
}

void Hub::send_all_batches() {
  if (coalescer_) send_due_by(std::numeric_limits<uint64_t>::max());
}

std::vector<base::FrameRef> Hub::replay_frames(const Channel& channel, const ReplayPlan& plan) {
  const History& history = channel.history();
  return ReplayPlanner::frames(
      plan, history.size(), [&](size_t i) { return history.at(i).frame; }, history.first_id(),
      metrics_);
}

bool Hub::begin_watch(const Channel& channel) {
  if (!watch_ || channel.mirror()) return true;
  return watch_(channel.name(), true);
}

void Hub::end_watch_if_unwatched(const Channel& channel, uint64_t before) {
  if (!watch_ || channel.mirror()) return;
  if (before > 0 && total_subscribers(channel) == 0) watch_(channel.name(), false);
}

Admission Hub::admit(std::string_view name, const ResumeRequest& resume) {
  using Status = Admission::Status;
  Admission admission;
  Channel* channel = find_or_create(name, false);
  if (!channel) {
    admission.refused = Refusal::kTooManyChannels;
    return admission;
  }
  // A finished channel attaches nobody, so only a live subscribe can make it watched. Asked
  // before anything is sent or counted, so that a refusal leaves no trace.
  if (!channel->finished() && total_subscribers(*channel) == 0 && !begin_watch(*channel)) {
    release_if_idle(channel);
    admission.refused = Refusal::kTooManySources;
    return admission;
  }
  send_batch_before_join(*channel);
  ReplayContext state;
  state.finished = channel->finished();
  state.final_id = channel->last_id();
  state.replay_from_start = channel->replay_from_start();
  state.known_before = channel->history().last_evicted();
  const History& history = channel->history();
  ReplayPlan plan = ReplayPlanner::plan(resume, state, history.size(),
                                        [&](size_t i) { return history.at(i).id; });
  if (plan.kind == ReplayPlan::Kind::kNoContent) {
    admission.status = Status::kNoContent;
    return admission;
  }
  admission.replay = replay_frames(*channel, plan);
  admission.status = channel->finished() ? Status::kEnded : Status::kLive;
  admission.last_id = channel->last_id();
  return admission;
}

void Hub::join(std::string_view name, const Member& member) {
  Channel* channel = find(name);
  if (!channel) return;
  if (member.local) {
    channel->add(member.local);
    metrics_.subscribers_active.Increment();
  } else if (member.worker) {
    ++channel->remote_counts().at(*member.worker);
  } else {
    // The client left before it could join: stop the watch admit() began, if it was the first.
    if (!channel->finished() && total_subscribers(*channel) == 0 && watch_ && !channel->mirror())
      watch_(channel->name(), false);
    release_if_idle(channel);
  }
}

Admission Hub::subscribe(std::string_view name, Subscriber* subscriber,
                         const ResumeRequest& resume) {
  Admission admission = admit(name, resume);
  if (admission.status != Admission::Status::kLive && admission.status != Admission::Status::kEnded)
    return admission;
  for (const base::FrameRef& frame : admission.replay) subscriber->deliver(frame);
  admission.replay.clear();
  if (admission.status == Admission::Status::kLive) join(name, Member{subscriber, {}});
  return admission;
}

void Hub::finish(std::string_view name) {
  Channel* channel = find(name);
  if (!channel || channel->mirror() || channel->finished()) return;
  send_batch_before_join(*channel);
  channel->mark_finished();
  channel->end_all();
  auto& remote = channel->remote_counts();
  for (uint32_t worker = 0; worker < remote.size(); ++worker) {
    if (remote[worker] && forward_) forward_(worker, channel->name(), base::FrameRef());
    remote[worker] = 0;  // their subscribers end now; they will not unsubscribe one by one
  }
  release_if_idle(channel);
}

bool Hub::create_generation_channel(std::string_view name) {
  Channel* channel = find_or_create(name, false);
  if (!channel) return false;
  channel->set_replay_from_start();
  return true;
}

Admission Hub::subscribe_remote(std::string_view name, uint32_t worker,
                                const ResumeRequest& resume) {
  Admission admission = admit(name, resume);
  if (admission.status == Admission::Status::kLive) join(name, Member{nullptr, worker});
  return admission;
}

void Hub::unsubscribe_remote(std::string_view name, uint32_t worker) {
  Channel* channel = find(name);
  if (!channel || channel->mirror()) return;
  uint32_t& count = channel->remote_counts().at(worker);
  uint64_t before = total_subscribers(*channel);
  if (count) --count;
  end_watch_if_unwatched(*channel, before);
  release_if_idle(channel);
}

ChannelInfo Hub::info(std::string_view name) const {
  ChannelInfo info;
  const Channel* channel = find(name);
  if (!channel) return info;
  info.subscribers = channel->local_subscribers() + channel->remote_subscribers();
  info.retained = channel->history().size();
  info.first_id = channel->history().first_id();
  info.last_id = channel->history().last_id();
  return info;
}

bool Hub::open_channel(std::string_view name) {
  Channel* channel = find_or_create(name, false);
  if (!channel) return false;
  send_batch_before_join(*channel);
  return true;
}

// With a backplane, sources run where their Redis lease is held, and the Watch that the
// backplane installs never refuses: it is told after the subscriber joined, and not asked.
bool Hub::attach_local(std::string_view name, Subscriber* subscriber) {
  Channel* channel = find_or_create(name, false);
  if (!channel) return false;
  send_batch_before_join(*channel);
  uint64_t before = total_subscribers(*channel);
  channel->add(subscriber);
  metrics_.subscribers_active.Increment();
  if (before == 0) begin_watch(*channel);
  return true;
}

bool Hub::attach_remote(std::string_view name, uint32_t worker) {
  Channel* channel = find_or_create(name, false);
  if (!channel) return false;
  send_batch_before_join(*channel);
  uint64_t before = total_subscribers(*channel);
  ++channel->remote_counts().at(worker);
  if (before == 0) begin_watch(*channel);
  return true;
}

void Hub::deliver_backplane(std::string_view name, const base::FrameRef& frame) {
  Channel* channel = find(name);
  if (!channel) return;
  auto started = std::chrono::steady_clock::now();
  dispatch(*channel, frame);
  metrics_.publish_fanout_seconds.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  release_if_idle(channel);  // slow consumers may have left during the fan-out
}

void Hub::attach_mirror(std::string_view name, Subscriber* subscriber) {
  find_or_create(name, true)->add(subscriber);
  metrics_.subscribers_active.Increment();
}

void Hub::deliver_mirror(std::string_view name, const base::FrameRef& frame) {
  Channel* channel = find(name);
  if (!channel) return;
  if (!frame) {
    channel->end_all();
    release_if_idle(channel);
    return;
  }
  size_t local = channel->fan_out(frame);
  if (local) {
    metrics_.events_delivered.Increment(static_cast<double>(local));
    metrics_.delivered_bytes.Increment(static_cast<double>(local * frame->size()));
  }
  release_if_idle(channel);  // slow consumers may have left during the fan-out
}

void Hub::detach(Subscriber* subscriber) {
  Channel* channel = subscriber->channel();
  if (!channel) return;
  uint64_t before = total_subscribers(*channel);
  channel->remove(subscriber);
  metrics_.subscribers_active.Decrement();
  end_watch_if_unwatched(*channel, before);
  release_if_idle(channel);
}

void Hub::sweep(uint64_t now_ms) {
  uint64_t expired_events = 0;
  uint64_t expired_bytes = 0;
  for (auto it = channels_.begin(); it != channels_.end();) {
    Channel& channel = *it->second;
    History& history = channel.history();
    const size_t events_before = history.size();
    const uint64_t bytes_before = history.bytes();
    history.expire(now_ms);
    expired_events += events_before - history.size();
    expired_bytes += bytes_before - history.bytes();
    it = channel.idle() ? erase(it) : std::next(it);
  }
  if (expired_events) {
    retained_events_ -= expired_events;
    metrics_.history_evicted_ttl.Increment(static_cast<double>(expired_events));
    add_retained_bytes(-static_cast<int64_t>(expired_bytes));
  }
  // Other workers' publishes may have taken the total over: this hub gives up its oldest too.
  trim_to_total();
  tidy_queue();
}

}  // namespace ssegw::hub
