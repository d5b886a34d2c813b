// The cancel API's metrics (docs/operations.md#metrics): running generations, the ones stopped,
// and the cancels that had to travel to reach them. One set for the process, shared by all
// workers (prometheus-cpp counters and gauges are atomic).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "gateway/metrics/metrics.hpp"

namespace ssegw::metrics {

struct GenerationMetrics {
  explicit GenerationMetrics(Metrics& metrics);

  // Generations that can be cancelled now, all workers: each holds a slot of its upstream's
  // max_concurrent, which bounds the registries.
  prometheus::Gauge& running;
  // Generations stopped by DELETE /v1/generations/{gen}, counted where they ran.
  prometheus::Counter& cancelled;
  // ssegw_generation_cancels_relayed_total{via}: cancels sent to the worker that runs the
  // generation ("worker") or, through Redis, to another instance ("backplane").
  prometheus::Counter& relayed_worker;
  prometheus::Counter& relayed_backplane;
};

}  // namespace ssegw::metrics
