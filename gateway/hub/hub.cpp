#include "gateway/hub/hub.hpp"

#include <chrono>

#include "gateway/hub/sse_frame.hpp"

namespace hub {

Hub::Hub(const HubOptions& options, metrics::Metrics& metrics, std::atomic<uint32_t>& channel_count)
    : options_(options), metrics_(metrics), channel_count_(channel_count) {}

Hub::~Hub() {
  for (auto& [name, channel] : channels_) {
    if (!channel->mirror()) {
      channel_count_.fetch_sub(1, std::memory_order_relaxed);
      metrics_.channels_active.Decrement();
    }
  }
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
  channels_.emplace(raw->name(), std::move(channel));
  return raw;
}

void Hub::release_if_idle(Channel* channel) {
  if (!channel->idle()) return;
  if (!channel->mirror()) {
    channel_count_.fetch_sub(1, std::memory_order_relaxed);
    metrics_.channels_active.Decrement();
  }
  channels_.erase(channel->name());
}

std::optional<Published> Hub::publish(std::string_view name, std::string_view type,
                                      std::string_view data, uint64_t now_ms, uint64_t wall_ms) {
  auto started = std::chrono::steady_clock::now();
  Channel* channel = find_or_create(name, false);
  if (!channel) return std::nullopt;

  EventId id = channel->take_next_id(wall_ms);
  base::FrameRef frame = make_event_frame(id, type, data);
  channel->history().append({id, now_ms, frame});
  channel->history().expire(now_ms);

  size_t local = channel->fan_out(frame);
  auto& remote = channel->remote_counts();
  for (uint32_t worker = 0; worker < remote.size(); ++worker)
    if (remote[worker] && forward_) forward_(worker, channel->name(), frame);

  metrics_.events_published.Increment();
  if (local) {
    metrics_.events_delivered.Increment(static_cast<double>(local));
    metrics_.delivered_bytes.Increment(static_cast<double>(local * frame->size()));
  }
  metrics_.publish_fanout_seconds.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return Published{id, local + channel->remote_subscribers(), std::move(frame)};
}

Replay Hub::build_replay(Channel& channel, const ResumeRequest& resume) {
  Replay replay;
  replay.finished = channel.finished();
  if (replay.finished && resume.present &&
      EventId::parse(resume.last_event_id) == std::optional<EventId>(channel.last_id())) {
    replay.no_content = true;
    return replay;
  }
  bool from_start = !resume.present && (channel.replay_from_start() || channel.finished());
  if (!resume.present && !from_start) return replay;
  const History& history = channel.history();
  ResumePoint point = from_start ? ResumePoint{0, false}
                                 : history.resume_after(EventId::parse(resume.last_event_id));
  replay.frames.reserve(history.size() - point.start + (point.gap ? 1 : 0));
  if (point.gap) {
    // Echo at most a bounded prefix of what the client sent.
    std::string_view requested(resume.last_event_id);
    replay.frames.push_back(make_gap_frame(requested.substr(0, 128), history.first_id()));
    metrics_.replay_gaps.Increment();
  }
  uint64_t bytes = 0;
  for (size_t i = point.start; i < history.size(); ++i) {
    replay.frames.push_back(history.at(i).frame);
    bytes += history.at(i).frame->size();
  }
  size_t events = history.size() - point.start;
  if (events) {
    metrics_.replayed_events.Increment(static_cast<double>(events));
    metrics_.events_delivered.Increment(static_cast<double>(events));
    metrics_.delivered_bytes.Increment(static_cast<double>(bytes));
  }
  return replay;
}

void Hub::notify_watch(const Channel& channel, uint64_t before) {
  if (!watch_ || channel.mirror()) return;
  uint64_t after = total_subscribers(channel);
  if (before == 0 && after > 0) watch_(channel.name(), true);
  if (before > 0 && after == 0) watch_(channel.name(), false);
}

SubscribeResult Hub::subscribe(std::string_view name, Subscriber* subscriber,
                               const ResumeRequest& resume) {
  using Status = SubscribeResult::Status;
  Channel* channel = find_or_create(name, false);
  if (!channel) return {Status::kTooManyChannels};
  uint64_t before = total_subscribers(*channel);
  Replay replay = build_replay(*channel, resume);
  if (replay.no_content) return {Status::kNoContent};
  for (const base::FrameRef& frame : replay.frames) subscriber->deliver(frame);
  if (replay.finished) return {Status::kEnded};
  channel->add(subscriber);
  metrics_.subscribers_active.Increment();
  notify_watch(*channel, before);
  return {Status::kLive};
}

void Hub::finish(std::string_view name) {
  Channel* channel = find(name);
  if (!channel || channel->mirror() || channel->finished()) return;
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

std::optional<Replay> Hub::subscribe_remote(std::string_view name, uint32_t worker,
                                            const ResumeRequest& resume) {
  Channel* channel = find_or_create(name, false);
  if (!channel) return std::nullopt;
  Replay replay = build_replay(*channel, resume);
  if (replay.finished) return replay;  // nothing to follow live
  uint64_t before = total_subscribers(*channel);
  ++channel->remote_counts().at(worker);
  notify_watch(*channel, before);
  return replay;
}

void Hub::unsubscribe_remote(std::string_view name, uint32_t worker) {
  Channel* channel = find(name);
  if (!channel || channel->mirror()) return;
  uint32_t& count = channel->remote_counts().at(worker);
  uint64_t before = total_subscribers(*channel);
  if (count) --count;
  notify_watch(*channel, before);
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

bool Hub::attach_local(std::string_view name, Subscriber* subscriber) {
  Channel* channel = find_or_create(name, false);
  if (!channel) return false;
  uint64_t before = total_subscribers(*channel);
  channel->add(subscriber);
  metrics_.subscribers_active.Increment();
  notify_watch(*channel, before);
  return true;
}

bool Hub::attach_remote(std::string_view name, uint32_t worker) {
  Channel* channel = find_or_create(name, false);
  if (!channel) return false;
  uint64_t before = total_subscribers(*channel);
  ++channel->remote_counts().at(worker);
  notify_watch(*channel, before);
  return true;
}

void Hub::deliver_backplane(std::string_view name, const base::FrameRef& frame) {
  Channel* channel = find(name);
  if (!channel) return;
  auto started = std::chrono::steady_clock::now();
  size_t local = channel->fan_out(frame);
  auto& remote = channel->remote_counts();
  for (uint32_t worker = 0; worker < remote.size(); ++worker)
    if (remote[worker] && forward_) forward_(worker, channel->name(), frame);
  if (local) {
    metrics_.events_delivered.Increment(static_cast<double>(local));
    metrics_.delivered_bytes.Increment(static_cast<double>(local * frame->size()));
  }
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
  notify_watch(*channel, before);
  release_if_idle(channel);
}

void Hub::sweep(uint64_t now_ms) {
  for (auto it = channels_.begin(); it != channels_.end();) {
    Channel& channel = *it->second;
    channel.history().expire(now_ms);
    if (channel.idle()) {
      if (!channel.mirror()) {
        channel_count_.fetch_sub(1, std::memory_order_relaxed);
        metrics_.channels_active.Decrement();
      }
      it = channels_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace hub
