#include "gateway/hub/replay_planner.hpp"

#include "gateway/hub/sse_frame.hpp"
#include "gateway/metrics/metrics.hpp"

namespace ssegw::hub {

base::FrameRef ReplayPlanner::gap_frame(const ReplayPlan& plan,
                                        const std::optional<EventId>& first_available,
                                        metrics::Metrics& metrics) {
  metrics.replay_gaps.Increment();
  return make_gap_frame(plan.requested, first_available);
}

void ReplayPlanner::count(uint64_t events, uint64_t bytes, metrics::Metrics& metrics) {
  if (!events) return;
  metrics.replayed_events.Increment(static_cast<double>(events));
  metrics.events_delivered.Increment(static_cast<double>(events));
  metrics.delivered_bytes.Increment(static_cast<double>(bytes));
}

}  // namespace ssegw::hub
