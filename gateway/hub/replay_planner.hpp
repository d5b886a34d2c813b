// Where a joining subscriber starts, for every place that keeps a channel's events (the memory
// hub's History, a page of a Redis Stream): one planner, so that resume, gaps and finished
// channels mean the same everywhere (docs/protocol.md "Resume").
//
// The window is the retained events, oldest first, seen through their ids. A resume id is
// "known" when it is a retained event, or the id just before the first one (the last one
// evicted), or, for ResumeRequest::before_first, the start while nothing was evicted: then
// nothing between it and the start can be missing. Otherwise (unknown, older
// than the window, or unparseable) the replay starts with a gap notice and then everything.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/base/frame.hpp"
#include "gateway/hub/channel_service.hpp"
#include "gateway/hub/event_id.hpp"

namespace ssegw::metrics {
class Metrics;
}

namespace ssegw::hub {

struct ReplayPlan {
  enum class Kind {
    kLiveOnly,   // no resume asked and none due: only live events
    kReplay,     // the window from `start`, a gap notice first when `gap`
    kNoContent,  // a finished channel whose final event the client has: 204
  };
  Kind kind = Kind::kLiveOnly;
  size_t start = 0;
  bool gap = false;
  // The client's id as echoed in the gap notice: a bounded prefix of what it sent.
  std::string requested;
};

// What the planner needs to know of the channel besides its window.
struct ReplayContext {
  bool finished = false;                // a finished generation
  std::optional<EventId> final_id;      // its last event
  bool replay_from_start = false;       // a generation: no Last-Event-ID means the whole answer
  std::optional<EventId> known_before;  // the id just before the window's first (last evicted)
};

class ReplayPlanner {
 public:
  static constexpr size_t kMaxEchoedId = 128;

  // id_at(i) gives the id of the i-th retained event, oldest first, for i < size.
  template <typename IdAt>
  static ReplayPlan plan(const ResumeRequest& resume, const ReplayContext& channel, size_t size,
                         IdAt id_at) {
    ReplayPlan plan;
    // A plain value and a flag rather than an optional: GCC 12 under -fsanitize=thread sees the
    // optional's payload as maybe uninitialized once the binary search below is inlined.
    EventId last{};
    bool parsed = false;
    if (resume.present) {
      if (auto id = EventId::parse(resume.last_event_id)) {
        last = *id;
        parsed = true;
      }
    }
    if (channel.finished && parsed && channel.final_id && last == *channel.final_id) {
      plan.kind = ReplayPlan::Kind::kNoContent;
      return plan;
    }
    if (!resume.present) {
      if (channel.replay_from_start || channel.finished) plan.kind = ReplayPlan::Kind::kReplay;
      return plan;  // from the start without a gap, or live only
    }
    plan.kind = ReplayPlan::Kind::kReplay;
    plan.requested = resume.last_event_id.substr(0, kMaxEchoedId);
    if (!parsed) {
      plan.gap = true;  // unparseable: a gap, then everything retained
      return plan;
    }
    // The first retained event after the client's id.
    size_t lo = 0, hi = size;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (!(last < id_at(mid)))
        lo = mid + 1;
      else
        hi = mid;
    }
    plan.start = lo;
    // A multi-channel stream's "before the channel's first event" is known while nothing was
    // evicted; a client's own 0-0 is an id like any other (older than the history: a gap).
    bool known = (lo > 0 && id_at(lo - 1) == last) ||
                 (lo == 0 && channel.known_before && *channel.known_before == last) ||
                 (lo == 0 && !channel.known_before && resume.before_first);
    plan.gap = !known;
    return plan;
  }

  // The frames of a kReplay plan: the gap notice (naming first_available) when there is a gap,
  // then frame_at(i) for every i from plan.start; null frames (markers) are skipped. Counts the
  // replay in the metrics (once per subscriber, never per event on the live path).
  template <typename FrameAt>
  static std::vector<base::FrameRef> frames(const ReplayPlan& plan, size_t size, FrameAt frame_at,
                                            const std::optional<EventId>& first_available,
                                            metrics::Metrics& metrics) {
    std::vector<base::FrameRef> out;
    if (plan.kind != ReplayPlan::Kind::kReplay) return out;
    out.reserve(size - std::min(plan.start, size) + (plan.gap ? 1 : 0));
    if (plan.gap) out.push_back(gap_frame(plan, first_available, metrics));
    uint64_t events = 0, bytes = 0;
    for (size_t i = plan.start; i < size; ++i) {
      base::FrameRef frame = frame_at(i);
      if (!frame) continue;
      bytes += frame->size();
      ++events;
      out.push_back(std::move(frame));
    }
    count(events, bytes, metrics);
    return out;
  }

 private:
  static base::FrameRef gap_frame(const ReplayPlan& plan,
                                  const std::optional<EventId>& first_available,
                                  metrics::Metrics& metrics);
  static void count(uint64_t events, uint64_t bytes, metrics::Metrics& metrics);
};

}  // namespace ssegw::hub
