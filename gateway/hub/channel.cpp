#include "gateway/hub/channel.hpp"

#include "gateway/base/check.hpp"

namespace ssegw::hub {

void Channel::add(Subscriber* subscriber) {
  // In two channels at once, it would stay behind in the other's list once it is freed.
  SSEGW_CHECK(subscriber->channel_ == nullptr);
  subscriber->channel_ = this;
  subscriber->slot_ = static_cast<uint32_t>(subscribers_.size());
  subscribers_.push_back(subscriber);
  ++subscriber_count_;
}

void Channel::remove(Subscriber* subscriber) {
  // Its slot indexes its own channel's list: in this one it could be past the end.
  SSEGW_CHECK(subscriber->channel_ == this);
  uint32_t slot = subscriber->slot_;
  subscriber->channel_ = nullptr;
  --subscriber_count_;
  if (fanning_out_) {
    // Moving the last entry into this slot would skip it in the running loop.
    subscribers_[slot] = nullptr;
    has_holes_ = true;
    return;
  }
  Subscriber* last = subscribers_.back();
  subscribers_[slot] = last;
  last->slot_ = slot;
  subscribers_.pop_back();
}

size_t Channel::fan_out(const base::FrameRef& frame) {
  fanning_out_ = true;
  size_t delivered = 0;
  const size_t n = subscribers_.size();
  for (size_t i = 0; i < n; ++i) {
    if (Subscriber* s = subscribers_[i]) {
      s->deliver(frame);
      ++delivered;
    }
  }
  fanning_out_ = false;
  if (has_holes_) compact();
  return delivered;
}

void Channel::end_all() {
  fanning_out_ = true;
  const size_t n = subscribers_.size();
  for (size_t i = 0; i < n; ++i)
    if (Subscriber* s = subscribers_[i]) s->end_of_stream();
  fanning_out_ = false;
  if (has_holes_) compact();
}

void Channel::compact() {
  size_t out = 0;
  for (Subscriber* s : subscribers_) {
    if (!s) continue;
    s->slot_ = static_cast<uint32_t>(out);
    subscribers_[out++] = s;
  }
  subscribers_.resize(out);
  has_holes_ = false;
}

uint64_t Channel::remote_subscribers() const {
  uint64_t total = 0;
  for (uint32_t n : remote_counts_) total += n;
  return total;
}

}  // namespace ssegw::hub
