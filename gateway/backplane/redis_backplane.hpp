// The Redis backplane (docs/operations.md#scaling-out): every channel is a Redis Stream shared
// by all instances, so that a subscriber anywhere gets what was published anywhere and resumes
// on whichever instance it reconnects to.
//
// One per worker, for the channels that worker owns, on the worker's loop with two connections:
// commands, and pub/sub for notifications.
//
// Rules:
// - Publish is one EVALSHA of kPublishScript (redis_backplane.cpp says how; it is loaded on
//   connecting): it counts the channel against limits.max_channels across every instance
//   sharing the Redis, appends the event with XADD, trims the stream to history.max_events and
//   history.max_bytes exactly (oldest first; a single event larger than max_bytes stays until
//   the next one comes, as in memory), refreshes the TTLs (history.ttl) and PUBLISHes the new id
//   on the channel's notification channel. Redis numbers the event, except in a generation,
//   which has a single writer that numbers its own events (so that its client gets each frame
//   with its id at once).
// - limits.max_channels in Redis counts the channels that hold a stream (whoever publishes: an
//   HTTP publish, a source, a generation). A subscription stores nothing in Redis and does not
//   count there; this process's hub still bounds the channels it has subscribers for, as in
//   memory (the attach fails: too_many_channels).
// - Live delivery: an instance SUBSCRIBEs to the notifications of the channels it has
//   subscribers for, and on each one reads the stream after its cursor (the last id it fanned
//   out) with XRANGE: one read per channel per instance, never per subscriber.
// - Reads of one channel never overlap: a replay and a live read of the same channel run one
//   after the other, so a joining subscriber is attached exactly at the cursor its replay ended
//   on. Nothing is missed between the two and nothing comes twice. A replay reads in pages and
//   keeps at most the history limits' worth (what a stream trimmed by the script can hold), so
//   that it never buffers more than history.max_bytes and a page.
// - Every request waiting on Redis gets one answer: every command callback runs once, with null
//   when the connection goes first (redis_connection.hpp). Losing Redis keeps subscribers
//   connected; waiting publishes, subscriptions and reads answer unavailable at once, and new
//   ones too until it is back. Back, each channel is read again from its cursor.
// - A Redis that stops answering (frozen, or a dead peer the socket has not noticed) is noticed
//   by the watchdog's PING: a request waiting on it is answered within about
//   kPingTimeoutMs + kWatchdogMs (3.5 s).
// - Sources: one instance runs a channel's source at a time, under a lease (SET NX PX) renewed
//   while any instance has subscribers (each refreshes an interest key).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "gateway/backplane/redis_connection.hpp"
#include "gateway/hub/hub.hpp"
#include "gateway/metrics/metrics.hpp"
#include "gateway/net/handles.hpp"

namespace ssegw::backplane {

// What a joining subscriber gets (hub::Admission): refused with kBackplaneUnavailable when Redis
// is away.
using Admission = hub::Admission;

class RedisBackplane {
 public:
  struct Hooks {
    // The source of a channel is to run here (its lease was won; resume_id is the upstream's
    // last event ID that the previous owner recorded) or to stop (lost or released).
    std::function<void(const std::string& channel, bool run, const std::string& resume_id)>
        run_source;
    std::function<bool(const std::string& channel)> has_source;
    // Another source may start on this instance (limits.max_sources): without room, no lease is
    // taken, so that an instance at its cap leaves the channel to another one.
    std::function<bool()> source_room;
  };

  RedisBackplane(net::Loop& loop, const config::Config& config, hub::Hub& hub,
                 metrics::Metrics& metrics, std::atomic<uint32_t>& links_up,
                 std::string instance_id, Hooks hooks);
  ~RedisBackplane();

  void start();
  void close();
  bool up() const { return up_; }
  // How many times the links came up: a new value means a new connection, on which Redis may
  // have lost what was stored before (a restart) or let it expire.
  uint64_t times_up() const { return times_up_; }
  // The command link, for the budgets' counters (redis_budgets.hpp): they come and go with it.
  RedisConnection& commands() { return commands_; }

  // What became of a publish: stored under id, or refused because Redis failed or because the
  // channel would be one more than limits.max_channels across the instances.
  struct Publication {
    enum class Status { kStored, kUnavailable, kTooManyChannels };
    Status status = Status::kUnavailable;
    hub::EventId id;  // kStored
  };
  // Publishes with an id made by Redis; done runs exactly once.
  using Published = std::function<void(const Publication& publication)>;
  void publish(const std::string& channel, std::string_view type, std::string_view data,
               Published done);

  // An event of this instance's source, recorded with the upstream's own event ID.
  void publish_from_source(const std::string& channel, std::string_view type, std::string_view data,
                           std::string_view upstream_id);

  // Generations (resumable answers): this worker is the channel's only writer.
  void start_generation(const std::string& channel);
  bool writes_generation(const std::string& channel) const {
    return generations_.count(channel) != 0;
  }
  base::FrameRef publish_generation(const std::string& channel, std::string_view type,
                                    std::string_view data);
  void finish_generation(const std::string& channel);

  // A subscriber (on this worker or another) joins. admit() runs exactly once: at the moment the
  // subscriber must join the hub channel (status kLive), or with the reason it does not.
  using Admit = std::function<void(Admission& admission)>;
  void subscribe(const std::string& channel, const hub::ResumeRequest& resume, Admit admit);

  // From the hub: the channel has subscribers in this process (true) or none left (false).
  void watched(const std::string& channel, bool watched);

  using InfoDone = std::function<void(std::optional<hub::ChannelInfo> info)>;
  void info(const std::string& channel, InfoDone done);

  // For the backplane's other users (RedisGenerations): a command on the command connection
  // (false, and no callback, while Redis is away), and one more pub/sub channel, subscribed to
  // now and after every reconnect, whose messages go to on_message.
  bool command(std::initializer_list<std::string_view> args, RedisConnection::Callback callback) {
    return up_ && commands_.command(args, std::move(callback));
  }
  void listen(std::string channel, std::function<void(std::string_view message)> on_message);

 private:
  struct Waiter {
    hub::ResumeRequest resume;
    Admit admit;
    uint64_t since_ms;  // when it started waiting
  };
  struct ChannelState {
    hub::EventId cursor;  // the last id fanned out here
    bool known = false;   // cursor read from the stream
    bool subscribed = false;
    bool busy = false;   // a read is in flight
    bool dirty = false;  // the stream may have entries after the cursor
    bool finished = false;
    hub::EventId final_id;
    std::vector<Waiter> waiters;
  };
  // One stream entry: an event, or the end marker of a finished generation.
  struct Entry {
    hub::EventId id;
    base::FrameRef frame;  // null for the end marker
    std::optional<hub::EventId> end;
  };
  // One replay: every waiter admitted together, read in pages from the oldest id any of them
  // needs up to the cursor.
  struct ReplayRead {
    std::vector<Waiter> waiters;
    std::string key;
    std::string end;                           // the cursor, inclusive
    std::optional<hub::EventId> first;         // the stream's first id, for the gap notice
    std::deque<Entry> entries;                 // the newest ones read, within the history limits
    uint64_t events = 0;                       // entries with a frame
    uint64_t bytes = 0;                        // their frames' sizes
    std::optional<hub::EventId> last_dropped;  // the newest entry read but not kept
  };
  struct Lease {
    bool local = false;  // subscribers in this process
    bool held = false;
    bool busy = false;
  };

  std::string stream_key(std::string_view channel) const;
  std::string notify_key(std::string_view channel) const;
  // The publish script, with id ("*" or explicit), size (what the event counts for in
  // history.max_bytes without its id line; empty for the end marker, which counts nothing) and
  // field/value pairs; empty values are left out.
  void eval_publish(const std::string& channel, std::string_view id, std::string_view size,
                    std::initializer_list<std::pair<std::string_view, std::string_view>> fields,
                    Published done);
  void start_source(const std::string& channel);

  void connect();
  // Every kWatchdogMs: a connect that takes too long, or a PING unanswered, counts as lost.
  // (hiredis 0.14's libuv adapter drops poll errors, so a refused connect or a reset socket
  // would otherwise go unnoticed.)
  void watchdog();
  void on_ready();
  void on_up();
  void on_lost(const std::string& why);
  void on_pubsub(const redisReply* message);

  void pump(const std::string& channel);
  void read_tail(const std::string& channel, ChannelState& state);
  void read_live(const std::string& channel, ChannelState& state);
  // A client may hold an id newer than this instance's cursor: a generation's own client gets
  // each frame before Redis has it. Such a waiter waits (up to kAheadWaitMs) for the live read
  // to reach its id, so that it gets neither a false gap nor that event again.
  bool ahead(const Waiter& waiter, const ChannelState& state) const;
  void admit_waiters(const std::string& channel, ChannelState& state);
  bool read_replay_page(const std::string& channel, const std::shared_ptr<ReplayRead>& read,
                        const std::string& start);
  void on_replay_page(const std::string& channel, const std::shared_ptr<ReplayRead>& read,
                      const redisReply* reply);
  // Keeps entry, dropping the oldest kept ones beyond the history limits.
  void keep(ReplayRead& read, Entry entry) const;
  // read is null when nobody resumes: nothing to replay.
  void admit(const std::string& channel, const ChannelState& state, Waiter& waiter,
             const ReplayRead* read);
  // Redis lost, or closing: every channel is to be subscribed to and read again, and every
  // waiting subscriber is answered unavailable.
  void fail_waiters();
  void release_if_unused(const std::string& channel);

  void lease_tick();
  void lease_step(const std::string& channel);
  void drop_leases();

  net::Loop& loop_;
  const config::Config& config_;
  hub::Hub& hub_;
  metrics::Metrics& metrics_;
  std::atomic<uint32_t>& links_up_;
  std::string instance_id_;
  Hooks hooks_;
  RedisConnection commands_;
  RedisConnection notifications_;
  net::Timer reconnect_timer_;
  net::Timer lease_timer_;
  net::Timer watchdog_timer_;
  uint64_t connect_started_ms_ = 0;  // 0: not connecting
  uint64_t ping_sent_ms_ = 0;        // 0: no PING in flight
  std::unordered_map<std::string, ChannelState> channels_;
  std::map<std::string, Lease> leases_;
  std::unordered_map<std::string, hub::EventId> generations_;  // last id written
  struct Listener {
    std::string channel;
    std::function<void(std::string_view message)> on_message;
  };
  std::vector<Listener> listeners_;  // listen(): a fixed few, set up at start
  std::mt19937_64 random_{std::random_device{}()};
  uint32_t attempt_ = 0;
  bool up_ = false;
  bool loading_script_ = false;
  std::string publish_sha_;  // of kPublishScript, as SCRIPT LOAD answered
  uint64_t times_up_ = 0;
  bool closed_ = false;
};

}  // namespace ssegw::backplane
