// fanout.coalesce: the events of a busy channel leave in batches, so that one write to each
// subscriber carries several of them (docs/architecture.md "Coalescing").
//
// Rules:
// - A quiet channel is never delayed. An event that comes after the channel's window has ended
//   leaves at the end of the loop turn, as it would without a window, together with whatever
//   else that turn publishes to the channel (the owner's wake-up for "now" sends it from the
//   loop's end-of-turn hook, before the turn's writes); a window of `window_ms` then opens.
//   Sending it at once instead would split a burst that one turn read into two writes.
// - An event that comes inside the window waits in the channel's batch. When the window ends,
//   the whole batch goes out in order, and a new window opens.
// - A batch holds at most kMaxBatch events: the event that fills it sends the batch at once.
// - The Coalescer only keeps time and the list of channels with a batch; the Hub sends. Before
//   anyone joins a channel, the Hub sends its batch, so that the joiner's replay holds each
//   waiting event once and the batch does not send it to the joiner a second time.
// - A channel stays listed here until due() hands it back, and a listed channel is not idle
//   (Channel::idle): the pointers kept here never outlive their channel.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "gateway/base/frame.hpp"

namespace ssegw::hub {

class Channel;

class Coalescer {
 public:
  static constexpr size_t kMaxBatch = 64;
  // Asks the owner to call Hub::send_due() at due_ms (its loop's clock) or soon after; a due_ms
  // that is not in the future means at the end of the current loop turn.
  using Wake = std::function<void(uint64_t due_ms)>;

  enum class Verdict {
    kThisTurn,   // the channel was quiet: the event leaves at the end of this turn
    kWaiting,    // the event waits in the channel's batch for the end of its window
    kBatchFull,  // the event filled the batch: send the batch now
  };

  Coalescer(uint64_t window_ms, Wake wake) : window_ms_(window_ms), wake_(std::move(wake)) {}

  bool enabled() const { return window_ms_ > 0; }
  Verdict offer(Channel& channel, const base::FrameRef& frame, uint64_t now_ms);
  // The channel's batch is being sent at now_ms: its new window starts.
  void sent(Channel& channel, uint64_t now_ms);
  // Moves into `out` the listed channels whose window has ended by now_ms (or whose batch went
  // out meanwhile), unlisting none of them: the caller unlists each (Channel::set_listed) as it
  // handles it, so that the ones still waiting in `out` stay alive.
  void due(uint64_t now_ms, std::vector<Channel*>& out);
  // The earliest end of a listed channel's window, its batch sent meanwhile or not; 0 when none
  // is listed.
  uint64_t next_due() const;

 private:
  uint64_t window_ms_;
  Wake wake_;
  std::vector<Channel*> listed_;
};

}  // namespace ssegw::hub
