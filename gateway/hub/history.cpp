#include "gateway/hub/history.hpp"

#include <algorithm>

namespace ssegw::hub {

void History::append(RetainedEvent event) {
  bytes_ += event.frame->size();
  events_.push_back(std::move(event));
  while (events_.size() > limits_.max_events || (bytes_ > limits_.max_bytes && events_.size() > 1))
    evict_front();
  // A single event larger than max_bytes is still kept until the next one arrives, so that a
  // subscriber resuming right before it does not get a gap for an event it could have had.
}

void History::expire(uint64_t now_ms) {
  while (!events_.empty() && now_ms - events_.front().at_ms >= limits_.ttl_ms) evict_front();
}

uint64_t History::drop_oldest() {
  uint64_t size = events_.front().frame->size();
  evict_front();
  return size;
}

void History::evict_front() {
  bytes_ -= events_.front().frame->size();
  last_evicted_ = events_.front().id;
  events_.pop_front();
}

std::optional<EventId> History::first_id() const {
  if (events_.empty()) return std::nullopt;
  return events_.front().id;
}

std::optional<EventId> History::last_id() const {
  if (events_.empty()) return std::nullopt;
  return events_.back().id;
}

}  // namespace ssegw::hub
