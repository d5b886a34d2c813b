#include "gateway/hub/coalescer.hpp"

#include <algorithm>

#include "gateway/hub/channel.hpp"

namespace ssegw::hub {

Coalescer::Verdict Coalescer::offer(Channel& channel, const base::FrameRef& frame,
                                    uint64_t now_ms) {
  if (channel.batch().empty() && now_ms >= channel.window_end())
    channel.set_window_end(now_ms);  // quiet: due at once, at the end of this turn
  channel.batch().push_back(frame);
  if (channel.batch().size() >= kMaxBatch) return Verdict::kBatchFull;
  const bool newly_listed = !channel.listed();
  if (newly_listed) {
    channel.set_listed(true);
    listed_.push_back(&channel);
  }
  if (channel.window_end() > now_ms) {
    if (newly_listed) wake_(channel.window_end());
    return Verdict::kWaiting;
  }
  wake_(now_ms);
  return Verdict::kThisTurn;
}

void Coalescer::sent(Channel& channel, uint64_t now_ms) {
  channel.set_window_end(now_ms + window_ms_);
}

void Coalescer::due(uint64_t now_ms, std::vector<Channel*>& out) {
  auto keep = std::partition(listed_.begin(), listed_.end(), [now_ms](const Channel* c) {
    return !c->batch().empty() && c->window_end() > now_ms;
  });
  out.insert(out.end(), keep, listed_.end());
  listed_.erase(keep, listed_.end());
}

uint64_t Coalescer::next_due() const {
  uint64_t next = 0;
  for (const Channel* c : listed_)
    if (next == 0 || c->window_end() < next) next = c->window_end();
  return next;
}

}  // namespace ssegw::hub
