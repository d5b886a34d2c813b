// The hub: channels by name, publish, subscribe-from-id and history (docs/architecture.md).
//
// One Hub per worker, used only from that worker's thread. A channel is owned by exactly one
// worker; the owner numbers its events and keeps its history. Other workers hold a mirror of it
// (subscribers only), and the owner forwards each new frame once per such worker through the
// Forward callback, never once per subscriber. The hub knows no sockets and no HTTP.
//
// history.max_total_bytes bounds the retained events of all channels of all workers together.
// The hubs share one atomic count of retained bytes. Each hub keeps an eviction queue: one entry
// (slot, generation, sequence) per retained event, in publish order, so its oldest event is at
// the front. A publish that takes the total over the limit evicts this hub's oldest events, of
// any channel, until the total is within it or the hub holds none; every hub also trims its own
// at its sweep (each tick) while the total is over. One publish alone never leaves the total
// over: at worst the publishing hub evicts the very event that went over. Only publishes racing
// on several workers can, by at most what they add before the next tick. Within a hub the
// oldest events go first; across workers, the publishing worker's oldest (a hub cannot touch
// another worker's channels). Evicting goes through History, so a resume from an evicted id
// gets a gap exactly as with the per-channel limits.
//
// Rules (eviction queue):
// - An entry names its channel by slot and generation, never by pointer: a freed channel's slot
//   gets a new generation, so an entry of it can never reach memory that was freed.
// - An entry is live while its event is still in the history (its sequence is not older than
//   the history's front). Events that a channel's own limits or the TTL dropped leave stale
//   entries behind: skipped at the front, and compacted away once they outnumber the live ones,
//   so the queue holds at most about twice the retained events.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/hub/channel.hpp"
#include "gateway/hub/channel_service.hpp"
#include "gateway/hub/coalescer.hpp"
#include "gateway/hub/replay_planner.hpp"

// By reference only: the prometheus headers stay with hub.cpp and the metrics layer.
namespace ssegw::metrics {
class Metrics;
}

namespace ssegw::hub {

struct HubOptions {
  HistoryLimits history;
  uint64_t max_total_bytes = 256ull << 20;  // retained events of every channel of every worker
  uint32_t max_channels = 100000;
  uint32_t workers = 1;
  uint64_t coalesce_ms = 0;  // fanout.coalesce: 0 sends every event at once
};

struct Published {
  EventId id;
  uint64_t subscribers;
  base::FrameRef frame;  // the event as serialised for every subscriber
};

class Hub {
 public:
  using Forward =
      std::function<void(uint32_t worker, const std::string& channel, const base::FrameRef&)>;
  using Clock = std::function<uint64_t()>;  // monotonic milliseconds

  // channel_count and history_bytes are shared by all workers, to hold limits.max_channels and
  // history.max_total_bytes across them.
  Hub(const HubOptions& options, metrics::Metrics& metrics, std::atomic<uint32_t>& channel_count,
      std::atomic<uint64_t>& history_bytes);
  ~Hub();

  void set_forward(Forward forward) { forward_ = std::move(forward); }
  // fanout.coalesce, when options.coalesce_ms > 0 (coalescer.hpp): `clock` is the loop's, and
  // `wake` asks for send_due() at a given time. Without this call nothing is coalesced.
  void set_coalescing(Clock clock, Coalescer::Wake wake);
  // Sends the batches whose window has ended; returns when the next one ends (0: none waits).
  uint64_t send_due();
  // Sends every batch now (a drain: streams are about to end).
  void send_all_batches();
  // Called on the owner when a channel is about to get its first subscriber anywhere (true), and
  // when its last one has left (false): what starts and stops upstream sources. For true, the
  // answer says whether the channel may be watched: false (its source cannot start, over
  // limits.max_sources) refuses the subscribe with kTooManySources, and nothing is attached.
  // The answer to false is ignored.
  using Watch = std::function<bool(const std::string& channel, bool watched)>;
  void set_watch(Watch watch) { watch_ = std::move(watch); }

  // Owner side. nullopt when the channel would pass max_channels.
  std::optional<Published> publish(std::string_view channel, std::string_view type,
                                   std::string_view data, uint64_t now_ms, uint64_t wall_ms);
  // A subscriber joins in two steps that the caller runs back to back, so that nothing
  // published in between can be missed or sent twice: admit() checks the limits (max_channels;
  // the channel's first subscriber anywhere must be let watch it, else kTooManySources), and
  // plans the replay; join() then attaches who follows the channel live (after the caller sent
  // the replay), or, for an empty member (the client left meanwhile), gives back the watch.
  // A finished channel attaches nobody: kEnded (replay, then the end) or kNoContent (the
  // client already has its final event).
  Admission admit(std::string_view channel, const ResumeRequest& resume);
  void join(std::string_view channel, const Member& member);
  // Both steps for a subscriber on this worker: the replay goes into it at once.
  Admission subscribe(std::string_view channel, Subscriber* subscriber,
                      const ResumeRequest& resume);
  // Both steps for the subscribers of another worker: the replay comes back to send there.
  Admission subscribe_remote(std::string_view channel, uint32_t worker,
                             const ResumeRequest& resume);
  // Marks a channel finished and ends every stream of it, here and on mirrors.
  void finish(std::string_view channel);
  // Creates a channel whose subscribers get its whole history by default (a generation's). It
  // stays, even empty, until finish(). False when over max_channels.
  bool create_generation_channel(std::string_view channel);
  void unsubscribe_remote(std::string_view channel, uint32_t worker);
  ChannelInfo info(std::string_view channel) const;

  // Owner side with a backplane (Redis numbers and keeps the events; the hub only fans out).
  // open_channel() makes the channel exist before a subscriber is told it is live (false over
  // max_channels); the subscriber then joins at the moment the backplane says; release_unused()
  // frees it again when the subscriber left before it could join.
  // Like admit(), it sends what waits in the channel's batch first: the subscriber's replay
  // already holds it, and a SubscribeReply posted next must reach its worker after the forwards.
  bool open_channel(std::string_view channel);
  void release_unused(std::string_view channel) {
    if (Channel* c = find(channel)) release_if_idle(c);
  }
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
  // Applies the TTL, frees channels that hold nothing, and trims this hub's oldest events while
  // all workers together retain more than max_total_bytes.
  void sweep(uint64_t now_ms);
  size_t channel_count() const { return channels_.size(); }
  // This hub's retained events and bytes, and the entries of its eviction queue (live and
  // stale): for tests and debugging.
  uint64_t retained_events() const { return retained_events_; }
  uint64_t retained_bytes() const { return retained_bytes_; }
  size_t eviction_queue_size() const { return order_.size(); }

 private:
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using ChannelMap =
      std::unordered_map<std::string, std::unique_ptr<Channel>, NameHash, std::equal_to<>>;

  // One retained event in the eviction queue; see "Rules (eviction queue)" above.
  struct QueuedEvent {
    uint32_t slot;
    uint32_t generation;
    uint64_t seq;
  };
  struct Slot {
    Channel* channel = nullptr;
    uint32_t generation = 0;
  };

  Channel* find(std::string_view name) const;
  Channel* find_or_create(std::string_view name, bool mirror);
  ChannelMap::iterator erase(ChannelMap::iterator it);
  // A new event of an owned channel to its local subscribers and its mirroring workers: now, or
  // with the channel's batch when fanout.coalesce holds it.
  void dispatch(Channel& channel, const base::FrameRef& frame);
  void send_now(Channel& channel, const base::FrameRef& frame);
  void send_batch(Channel& channel);
  uint64_t send_due_by(uint64_t now_ms);
  // Before someone joins: what waits goes to those who were there (coalescer.hpp).
  void send_batch_before_join(Channel& channel) {
    if (!channel.batch().empty()) send_batch(channel);
  }
  // The replay frames of a plan over the channel's history.
  std::vector<base::FrameRef> replay_frames(const Channel& channel, const ReplayPlan& plan);
  void release_if_idle(Channel* channel);
  uint64_t total_subscribers(const Channel& channel) const {
    return channel.local_subscribers() + channel.remote_subscribers();
  }
  // Before a channel without subscribers gets one: whether Watch lets it be watched.
  bool begin_watch(const Channel& channel);
  void end_watch_if_unwatched(const Channel& channel, uint64_t before);

  // The channel whose retained event the entry stands for, or null when the entry is stale.
  Channel* live_channel(const QueuedEvent& entry) const;
  // Adds to this hub's and the shared count of retained bytes; returns the new shared total.
  uint64_t add_retained_bytes(int64_t delta);
  // Evicts this hub's oldest events while the shared total is over max_total_bytes.
  void trim_to_total();
  // Drops stale entries: at the front always, everywhere when they outnumber the live ones.
  void tidy_queue();

  HubOptions options_;
  metrics::Metrics& metrics_;
  std::atomic<uint32_t>& channel_count_;
  std::atomic<uint64_t>& history_bytes_;
  ChannelMap channels_;
  Forward forward_;
  Watch watch_;
  Clock clock_;
  std::unique_ptr<Coalescer> coalescer_;
  std::vector<Channel*> due_;  // send_due()'s list, kept for its capacity

  std::deque<QueuedEvent> order_;  // the eviction queue, oldest first
  std::vector<Slot> slots_;        // owned channels, by slot
  std::vector<uint32_t> free_slots_;
  uint64_t next_seq_ = 0;
  uint64_t retained_events_ = 0;  // = live entries of order_
  uint64_t retained_bytes_ = 0;   // this hub's part of history_bytes_
};

}  // namespace ssegw::hub
