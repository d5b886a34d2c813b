// The hub: channels by name, publish, subscribe-from-id and history (DESIGN §3 "Hub boundary").
//
// One Hub per worker, used only from that worker's thread. A channel is owned by exactly one
// worker; the owner numbers its events and keeps its history. Other workers hold a mirror of it
// (subscribers only), and the owner forwards each new frame once per such worker through the
// Forward callback, never once per subscriber. The hub knows no sockets and no HTTP.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/hub/channel.hpp"
#include "gateway/metrics/metrics.hpp"

namespace hub {

struct HubOptions {
  HistoryLimits history;
  uint32_t max_channels = 100000;
  uint32_t workers = 1;
};

struct Published {
  EventId id;
  uint64_t subscribers;
  base::FrameRef frame;  // the event as serialised for every subscriber
};

struct ChannelInfo {
  uint64_t subscribers = 0;
  uint64_t retained = 0;
  std::optional<EventId> first_id;
  std::optional<EventId> last_id;
};

// What a resuming subscriber must receive before live events: maybe a gap notice, then history.
struct Replay {
  std::vector<base::FrameRef> frames;
  bool finished = false;    // the channel is finished: end the stream after the frames
  bool no_content = false;  // finished, and the client already has the final event: 204
};

struct SubscribeResult {
  enum class Status { kLive, kEnded, kNoContent, kTooManyChannels };
  Status status;
  // Served: the subscriber got its stream (live, or a finished channel's rest).
  explicit operator bool() const { return status == Status::kLive || status == Status::kEnded; }
};

// How a subscriber asks to resume: not at all, or after the id the client sent (maybe garbage).
struct ResumeRequest {
  bool present = false;
  std::string last_event_id;
};

class Hub {
 public:
  using Forward =
      std::function<void(uint32_t worker, const std::string& channel, const base::FrameRef&)>;
  using Clock = std::function<uint64_t()>;  // monotonic milliseconds

  // channel_count is shared by all workers, to hold limits.max_channels across them.
  Hub(const HubOptions& options, metrics::Metrics& metrics, std::atomic<uint32_t>& channel_count);
  ~Hub();

  void set_forward(Forward forward) { forward_ = std::move(forward); }
  // Called on the owner when a channel gets its first subscriber anywhere (true) and when its
  // last one leaves (false): what starts and stops upstream sources.
  using Watch = std::function<void(const std::string& channel, bool watched)>;
  void set_watch(Watch watch) { watch_ = std::move(watch); }

  // Owner side. nullopt when the channel would pass max_channels.
  std::optional<Published> publish(std::string_view channel, std::string_view type,
                                   std::string_view data, uint64_t now_ms, uint64_t wall_ms);
  // Replays into the subscriber, then attaches it for live events, in one step so that nothing
  // published in between can be missed or sent twice. A finished channel replays and attaches
  // nothing (kEnded: the caller ends the stream), or answers kNoContent when the client already
  // has its final event.
  SubscribeResult subscribe(std::string_view channel, Subscriber* subscriber,
                            const ResumeRequest& resume);
  // Marks a channel finished and ends every stream of it, here and on mirrors.
  void finish(std::string_view channel);
  // Creates a channel whose subscribers get its whole history by default (a generation's).
  // False when over max_channels.
  bool create_generation_channel(std::string_view channel);
  // A subscriber on another worker: the replay frames to send it, and the worker starts
  // receiving forwarded frames. nullopt when over max_channels.
  std::optional<Replay> subscribe_remote(std::string_view channel, uint32_t worker,
                                         const ResumeRequest& resume);
  void unsubscribe_remote(std::string_view channel, uint32_t worker);
  ChannelInfo info(std::string_view channel) const;

  // Owner side with a backplane (Redis numbers and keeps the events; the hub only fans out).
  // Each joins at the moment the backplane says; false when over max_channels.
  bool attach_local(std::string_view channel, Subscriber* subscriber);
  bool attach_remote(std::string_view channel, uint32_t worker);
  // An event read from the backplane: to local subscribers and once to each mirroring worker.
  void deliver_backplane(std::string_view channel, const base::FrameRef& frame);
  // Subscribers anywhere in this process.
  bool watched(std::string_view channel) const {
    const Channel* c = find(channel);
    return c && total_subscribers(*c) > 0;
  }

  // Mirror side: local subscribers of a channel owned elsewhere.
  void attach_mirror(std::string_view channel, Subscriber* subscriber);
  // A null frame means the owner finished the channel.
  void deliver_mirror(std::string_view channel, const base::FrameRef& frame);

  // Both sides.
  void detach(Subscriber* subscriber);
  // Applies the TTL and frees channels that hold nothing.
  void sweep(uint64_t now_ms);
  size_t channel_count() const { return channels_.size(); }

 private:
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using ChannelMap =
      std::unordered_map<std::string, std::unique_ptr<Channel>, NameHash, std::equal_to<>>;

  Channel* find(std::string_view name) const;
  Channel* find_or_create(std::string_view name, bool mirror);
  Replay build_replay(Channel& channel, const ResumeRequest& resume);
  void release_if_idle(Channel* channel);
  uint64_t total_subscribers(const Channel& channel) const {
    return channel.local_subscribers() + channel.remote_subscribers();
  }
  void notify_watch(const Channel& channel, uint64_t before);

  HubOptions options_;
  metrics::Metrics& metrics_;
  std::atomic<uint32_t>& channel_count_;
  ChannelMap channels_;
  Forward forward_;
  Watch watch_;
};

}  // namespace hub
