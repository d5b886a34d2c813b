// A channel's retained events, bounded by count, bytes and age (docs/configuration.md#history).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "gateway/base/frame.hpp"
#include "gateway/hub/event_id.hpp"

namespace ssegw::hub {

struct HistoryLimits {
  uint32_t max_events = 1000;
  uint64_t max_bytes = 8ull << 20;
  uint64_t ttl_ms = 10 * 60 * 1000;
};

struct RetainedEvent {
  EventId id;
  uint64_t at_ms;  // monotonic time of publication, for the TTL
  base::FrameRef frame;
  uint64_t seq = 0;  // the hub's publish order across all its channels (Hub's eviction queue)
};

class History {
 public:
  explicit History(const HistoryLimits& limits) : limits_(limits) {}

  // Appends an event (ids must increase) and evicts what the limits no longer allow.
  void append(RetainedEvent event);
  // Drops events older than the TTL.
  void expire(uint64_t now_ms);
  // Drops the oldest event (for history.max_total_bytes); returns its bytes. Not empty().
  uint64_t drop_oldest();

  // The id of the last event dropped, if any: it directly precedes the first retained one, so a
  // client resuming from it has missed nothing (ReplayPlanner's known_before).
  const std::optional<EventId>& last_evicted() const { return last_evicted_; }

  size_t size() const { return events_.size(); }
  bool empty() const { return events_.empty(); }
  uint64_t bytes() const { return bytes_; }
  const RetainedEvent& at(size_t i) const { return events_[i]; }
  const RetainedEvent& front() const { return events_.front(); }
  std::optional<EventId> first_id() const;
  std::optional<EventId> last_id() const;

 private:
  void evict_front();

  HistoryLimits limits_;
  std::deque<RetainedEvent> events_;
  uint64_t bytes_ = 0;
  std::optional<EventId> last_evicted_;  // continuity is still provable from this id
};

}  // namespace ssegw::hub
