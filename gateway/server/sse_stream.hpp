// The subscriber side of one SSE answer (docs/protocol.md "Subscribe"): the stream head, the
// replay, then every frame the channel fans out, with heartbeats while the channel is quiet, and
// the cut of a consumer too slow for it.
//
// Rules:
// - deliver() runs inside a channel's fan-out: it queues a reference to the shared frame (no
//   copy, no allocation once the queue is warm) and may close this connection, never another.
// - A slow consumer is cut when its unsent bytes pass slow_consumer.max_queued_bytes (a replay
//   is allowed on top of that until it has drained), or when the kernel takes none of them for
//   slow_consumer.stall_timeout.
// - The stream detaches (leave()) before it goes; a member of this worker's mirror of another
//   worker's channel also tells the owner, which counts it.
#pragma once

#include <cstdint>
#include <string>

#include "gateway/http/exchange.hpp"
#include "gateway/hub/channel_service.hpp"
#include "gateway/hub/subscriber.hpp"
#include "gateway/server/stream_watch.hpp"

namespace ssegw::server {

class Worker;

class SseStream final : public hub::Subscriber {
 public:
  SseStream(Worker& worker, http::Exchange& exchange, std::string channel);
  ~SseStream();

  // The channel answered the join: writes the head and the replay. Returns who follows the
  // channel live: this stream, or nobody (the channel is finished: the stream has ended).
  hub::Member begin(hub::Admission& admission);
  void deliver(const base::FrameRef& frame) override;
  void end_of_stream() override;

  // Heartbeats and the stall check; every tick.
  void tick(uint64_t now_ms);
  // Everything queued has been written: a replay no longer counts on top of the slow limit.
  void drained() { replay_allowance_ = 0; }
  // Ends the stream cleanly (shutdown): the terminating chunk, then FIN.
  void end();
  // Leaves the channel; the last call before the connection goes.
  void leave();

 private:
  void cut(const char* why);

  Worker& worker_;
  http::Exchange& exchange_;
  std::string channel_;
  uint64_t replay_allowance_ = 0;  // queued replay bytes not counted against the slow limit
  StreamWatch watch_;              // heartbeats and the stall check
};

}  // namespace ssegw::server
