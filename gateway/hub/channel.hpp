// One channel: its history ring, its id sequence and its set of local subscribers.
//
// A channel is either owned by this worker (it numbers events and keeps history) or a mirror of a
// channel owned by another worker (it only fans out what the owner forwards).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gateway/hub/history.hpp"
#include "gateway/hub/subscriber.hpp"

namespace ssegw::hub {

class Channel {
 public:
  Channel(std::string name, const HistoryLimits& limits, bool mirror)
      : name_(std::move(name)), history_(limits), mirror_(mirror) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  const std::string& name() const { return name_; }
  bool mirror() const { return mirror_; }

  void add(Subscriber* subscriber);
  void remove(Subscriber* subscriber);
  // Hands the frame to every local subscriber; returns how many got it.
  size_t fan_out(const base::FrameRef& frame);
  // Tells every local subscriber that the stream has ended.
  void end_all();
  size_t local_subscribers() const { return subscriber_count_; }

  // Subscribers held on other workers, per worker (owner side only).
  std::vector<uint32_t>& remote_counts() { return remote_counts_; }
  uint64_t remote_subscribers() const;

  EventId take_next_id(uint64_t wall_ms) { return last_id_ = last_id_.next(wall_ms); }
  const EventId& last_id() const { return last_id_; }

  // A finished channel (a completed generation) ends every stream after its history; its final
  // id is the last event published before finish.
  bool finished() const { return finished_; }
  void mark_finished() { finished_ = true; }
  // Subscribers without Last-Event-ID get the whole history (a generation's answer from the
  // start), not only what comes next.
  bool replay_from_start() const { return replay_from_start_; }
  void set_replay_from_start() { replay_from_start_ = true; }
  // A generation's channel from its creation until its answer is finished: kept even while it
  // holds nothing (before the first token), so that a late subscriber still gets the answer from
  // its start. Its recording always finishes (the route proxy ends on every path, and its
  // upstream's timeouts bound how long it can wait), and such channels count in max_channels.
  bool open_generation() const { return replay_from_start_ && !finished_; }
  History& history() { return history_; }
  const History& history() const { return history_; }

  // Where the owning hub finds this channel from its eviction queue (owner side only).
  uint32_t slot() const { return slot_; }
  void set_slot(uint32_t slot) { slot_ = slot; }

  // fanout.coalesce (coalescer.hpp): the events waiting for the end of the channel's window,
  // when that window ends, and whether the Coalescer lists the channel.
  std::vector<base::FrameRef>& batch() { return batch_; }
  const std::vector<base::FrameRef>& batch() const { return batch_; }
  uint64_t window_end() const { return window_end_; }
  void set_window_end(uint64_t ms) { window_end_ = ms; }
  bool listed() const { return listed_; }
  void set_listed(bool listed) { listed_ = listed; }

  // Nothing to keep: no subscriber anywhere, no history, not an open generation, not listed by
  // the Coalescer, and not in the middle of a fan-out.
  bool idle() const {
    return !fanning_out_ && !listed_ && subscriber_count_ == 0 && history_.empty() &&
           remote_subscribers() == 0 && !open_generation();
  }

 private:
  void compact();

  std::string name_;
  History history_;
  bool mirror_;
  EventId last_id_;
  std::vector<Subscriber*> subscribers_;  // nullptr marks a slot freed during a fan-out
  size_t subscriber_count_ = 0;
  bool fanning_out_ = false;
  bool finished_ = false;
  bool replay_from_start_ = false;
  bool has_holes_ = false;
  bool listed_ = false;
  uint32_t slot_ = 0;
  std::vector<uint32_t> remote_counts_;
  std::vector<base::FrameRef> batch_;
  uint64_t window_end_ = 0;
};

}  // namespace ssegw::hub
