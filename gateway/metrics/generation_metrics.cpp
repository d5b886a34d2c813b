#include "gateway/metrics/generation_metrics.hpp"

namespace ssegw::metrics {
namespace {

prometheus::Family<prometheus::Counter>& relayed(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("ssegw_generation_cancels_relayed_total")
      .Help(
          "Cancels sent on to the worker or, through Redis, the instance that runs the generation")
      .Register(r);
}

}  // namespace

GenerationMetrics::GenerationMetrics(Metrics& metrics)
    : running(prometheus::BuildGauge()
                  .Name("ssegw_generations_running")
                  .Help("Generations (resumable answers) running that the cancel API can stop")
                  .Register(metrics.registry())
                  .Add({})),
      cancelled(prometheus::BuildCounter()
                    .Name("ssegw_generations_cancelled_total")
                    .Help("Generations stopped by DELETE /v1/generations/{gen}")
                    .Register(metrics.registry())
                    .Add({})),
      relayed_worker(relayed(metrics.registry()).Add({{"via", "worker"}})),
      relayed_backplane(relayed(metrics.registry()).Add({{"via", "backplane"}})) {}

}  // namespace ssegw::metrics
