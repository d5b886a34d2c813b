// One SSE answer carrying many channels (docs/protocol.md "Multi-channel streams"): GET
// /v1/events?channel=a&channel=b. Each channel joins through the ChannelService as a subscriber
// of its own (a Part), wherever the channel lives (this worker, another one, Redis); the stream
// writes every channel's frames in that channel's order, each under the event type "<channel>"
// or "<channel>:<type>" and the id of a cursor that names the last id of every channel
// (hub/stream_cursor.hpp), so that a reconnect resumes each channel exactly.
//
// Rules:
// - The head goes out once every channel has answered its join: a refusal (too many channels,
//   Redis away) still gets its 503 then. Until then what the answered channels send (replay and
//   live) waits in pending_ as shared references, in arrival order; live bytes there count
//   against slow_consumer.max_queued_bytes like unsent bytes do after the head.
// - A frame is never copied: write() sends a small prefix (the cursor id and the event line,
//   built in prefix_, which keeps its capacity) and then the shared frame after its own id and
//   event lines (Exchange::write_prefixed). Per-stream memory grows with channels, not events.
// - A cursor entry moves only when the client is sent something of that channel: a frame (its
//   id), or a join's whole replay (the join's position). So whatever event id the client last
//   got, resuming from it owes each channel exactly what followed.
// - Parts detach (leave()) before the stream goes, never inside a join callback: a refusal
//   answers at once and the channels that joined leave at the next tick().
// - Heartbeats, the stall check and the slow-consumer cut are per stream, as for SseStream.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/http/exchange.hpp"
#include "gateway/hub/channel_service.hpp"
#include "gateway/hub/event_id.hpp"
#include "gateway/hub/stream_cursor.hpp"
#include "gateway/hub/subscriber.hpp"
#include "gateway/server/stream_watch.hpp"

namespace ssegw::server {

class Worker;

class MultiStream {
 public:
  // channels: distinct, valid names (the policy stage checked them); resume: what the client
  // sent as Last-Event-ID (or last_event_id=), its cursor.
  MultiStream(Worker& worker, http::Exchange& exchange, std::vector<std::string> channels,
              const hub::ResumeRequest& resume);
  ~MultiStream();
  MultiStream(const MultiStream&) = delete;
  MultiStream& operator=(const MultiStream&) = delete;

  size_t size() const { return count_; }
  const std::string& channel(size_t i) const { return parts_[i].name; }
  // Where channel i resumes, from the client's cursor.
  hub::ResumeRequest resume(size_t i) const;

  // Channel i answered its join: queues (or writes) its replay, and once every channel has
  // answered writes the head. Returns who follows channel i live.
  hub::Member joined(size_t i, hub::Admission& admission);
  // Still waiting for joins (not refused, not cut, head not out).
  bool awaiting() const { return !refused_ && !started_ && !ended_; }

  // Heartbeats and the stall check; after a refusal, the channels that joined leave.
  void tick(uint64_t now_ms);
  void drained() { replay_allowance_ = 0; }
  // Ends the stream cleanly (shutdown).
  void end();
  // Leaves every channel; the last call before the connection goes.
  void leave();

 private:
  // The subscriber of one channel of the stream.
  struct Part final : hub::Subscriber {
    void deliver(const base::FrameRef& frame) override;
    void end_of_stream() override;

    MultiStream* stream = nullptr;
    uint32_t index = 0;
    enum class State : uint8_t { kJoining, kLive, kDone } state = State::kJoining;
    std::string name;
  };
  // Before the head: a frame of a channel, the end of its join's replay (its position then), or
  // the channel's end.
  struct Pending {
    uint32_t index;
    enum class Kind : uint8_t { kFrame, kJoined, kEnded } kind;
    base::FrameRef frame;
    hub::EventId joined_at;  // kJoined
  };

  void deliver(uint32_t i, const base::FrameRef& frame);
  void channel_ended(uint32_t i);
  void apply(const Pending& pending);
  void write(uint32_t i, const base::FrameRef& frame);
  void write_end(uint32_t i);
  void start();
  void refuse(hub::Refusal refused);
  void leave(Part& part);
  void cut(const char* why);
  bool all_done() const;

  Worker& worker_;
  http::Exchange& exchange_;
  size_t count_;
  std::unique_ptr<Part[]> parts_;  // fixed addresses: the hub holds pointers to them
  // What the client sent to resume from: nothing, this stream's cursor (then cursor_ holds
  // it until the joins), or something else (`foreign`: an unknown id for every channel).
  enum class Resume : uint8_t { kNone, kCursor, kForeign } resume_ = Resume::kNone;
  std::string foreign_;
  hub::StreamCursor cursor_;      // each channel's last id sent (0-0: none)
  std::vector<Pending> pending_;  // before the head
  uint64_t pending_live_bytes_ = 0;
  size_t awaiting_;  // joins not answered yet
  bool started_ = false;
  bool refused_ = false;
  bool ended_ = false;
  std::string prefix_;  // the id and event lines of the frame being written
  uint64_t replay_allowance_ = 0;
  StreamWatch watch_;  // heartbeats and the stall check, one for the whole stream
};

}  // namespace ssegw::server
