// Channels as a service: publish, subscribe with replay, info and finish, wherever a channel
// lives (docs/architecture.md "Channels"). Three implementations:
// - hub::LocalChannels: this worker owns the channel and keeps it in memory (the Hub);
// - backplane::RedisChannels: this worker owns the channel and Redis keeps it;
// - server::Channels routes a call to this worker's owner side, or across the mailbox to the
//   worker that owns the channel (hash of its name), whose owner side answers.
// The HTTP side sees only this interface.
//
// Rules:
// - Every callback runs exactly once, on the calling worker's thread: at once (in memory, on the
//   owner) or later (another worker, Redis).
// - subscribe() calls `join` with the outcome and the replay. join delivers the replay, then says
//   who follows the channel live (Member); the service attaches that member at once, in the same
//   step, so that nothing published in between is missed or sent twice. A member that is gone by
//   then (the client left while Redis or the owner answered) is simply none: the service gives
//   back whatever it held for it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/base/frame.hpp"
#include "gateway/hub/event_id.hpp"

namespace ssegw::hub {

class Subscriber;

// Why a channel operation was refused.
enum class Refusal {
  kNone,
  kTooManyChannels,       // limits.max_channels
  kTooManySources,        // limits.max_sources: the channel's source cannot start
  kBackplaneUnavailable,  // Redis is unreachable
};

// How a subscriber asks to resume: not at all, or after the id the client sent (maybe garbage).
struct ResumeRequest {
  bool present = false;
  std::string last_event_id;
  // A multi-channel stream's cursor says the client has nothing of this channel yet (its entry
  // is "x"; last_event_id is then "0-0"): everything retained, without a gap notice unless an
  // event was evicted.
  bool before_first = false;
};

struct ChannelInfo {
  uint64_t subscribers = 0;
  uint64_t retained = 0;
  std::optional<EventId> first_id;
  std::optional<EventId> last_id;
};

struct PublishOutcome {
  Refusal refused = Refusal::kNone;
  EventId id;
  uint64_t subscribers = 0;
};

// What a joining subscriber is told.
struct Admission {
  enum class Status {
    kLive,       // replay, then live events
    kEnded,      // a finished channel: replay, then the stream ends
    kNoContent,  // finished, and the client already has its final event (204)
    kRefused,    // see refused
  };
  Status status = Status::kRefused;
  Refusal refused = Refusal::kNone;
  std::vector<base::FrameRef> replay;  // kLive and kEnded: to send first, in order
  // kLive and kEnded: the channel's last event id where the subscriber joins (after the replay),
  // 0-0 when the channel has none. A multi-channel stream's cursor starts from it, so that a
  // channel that has sent nothing yet still resumes exactly (docs/protocol.md).
  EventId last_id;

  // The subscriber got its stream: live, or a finished channel's rest.
  bool served() const { return status == Status::kLive || status == Status::kEnded; }
  // Answered at all: served, or 204 for a client that has a finished channel's final event.
  bool answered() const { return status != Status::kRefused; }
};

// Who follows a channel live after joining: a subscriber on this worker, every subscriber of
// another worker (its mirror of the channel), or nobody.
struct Member {
  Subscriber* local = nullptr;
  std::optional<uint32_t> worker;

  bool empty() const { return !local && !worker; }
};

struct InfoOutcome {
  Refusal refused = Refusal::kNone;
  ChannelInfo info;
};

class ChannelService {
 public:
  using PublishDone = std::function<void(const PublishOutcome&)>;
  using Join = std::function<Member(Admission&)>;
  using InfoDone = std::function<void(const InfoOutcome&)>;

  virtual ~ChannelService() = default;

  virtual void publish(const std::string& channel, std::string_view type, std::string data,
                       PublishDone done) = 0;
  virtual void subscribe(const std::string& channel, const ResumeRequest& resume, Join join) = 0;
  // A member that joined on another worker has gone (local subscribers leave through the hub).
  virtual void leave(const std::string& channel, uint32_t worker) = 0;
  virtual void info(const std::string& channel, InfoDone done) = 0;

  // Generations (the channels of resumable answers), written by this worker only.
  // A new generation's channel name, or "" when over limits.max_channels.
  virtual std::string start_generation() = 0;
  // An event of an answer this worker records: the frame when it was published here at once (a
  // generation's own client streams it), else null.
  virtual base::FrameRef record(const std::string& channel, std::string_view type,
                                std::string_view data) = 0;
  // The answer is complete: its streams end after the last event, here and elsewhere.
  virtual void finish(const std::string& channel) = 0;
};

}  // namespace ssegw::hub
