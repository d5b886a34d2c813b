#include "gateway/metrics/llm_metrics.hpp"

namespace ssegw::metrics {

LlmMetrics::LlmMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("ssegw_llm_requests_total")
                    .Help("Proxied route requests by outcome: completed, cancelled, truncated, "
                          "upstream_error, rejected")
                    .Register(registry)),
      tokens_(prometheus::BuildCounter()
                  .Name("ssegw_llm_tokens_total")
                  .Help("LLM tokens of proxied answers: as the upstream reported them, or "
                        "estimated when it did not")
                  .Register(registry)),
      ttft_(prometheus::BuildHistogram()
                .Name("ssegw_llm_time_to_first_token_seconds")
                .Help("From the request to the first content token of the answer")
                .Register(registry)),
      tpot_(prometheus::BuildHistogram()
                .Name("ssegw_llm_time_per_output_token_seconds")
                .Help("From the first content token to the end, per further output token")
                .Register(registry)),
      retries_(prometheus::BuildCounter()
                   .Name("ssegw_upstream_retries_total")
                   .Help("Route requests moved on to the next attempt before the first byte, by "
                         "the upstream that failed and why")
                   .Register(registry)) {}

prometheus::Counter& LlmMetrics::requests(const std::string& route, const std::string& upstream,
                                          const std::string& key, const char* outcome) {
  return requests_.Add(
      {{"route", route}, {"upstream", upstream}, {"key", key}, {"outcome", outcome}});
}

prometheus::Counter& LlmMetrics::tokens(const std::string& route, const std::string& upstream,
                                        const std::string& key, const char* kind,
                                        const char* source) {
  return tokens_.Add(
      {{"route", route}, {"upstream", upstream}, {"key", key}, {"kind", kind}, {"source", source}});
}

prometheus::Histogram& LlmMetrics::time_to_first_token(const std::string& route,
                                                       const std::string& upstream) {
  static const prometheus::Histogram::BucketBoundaries kBuckets{
      0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60, 120};
  return ttft_.Add({{"route", route}, {"upstream", upstream}}, kBuckets);
}

prometheus::Histogram& LlmMetrics::time_per_output_token(const std::string& route,
                                                         const std::string& upstream) {
  static const prometheus::Histogram::BucketBoundaries kBuckets{
      0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1};
  return tpot_.Add({{"route", route}, {"upstream", upstream}}, kBuckets);
}

prometheus::Counter& LlmMetrics::retries(const std::string& route, const std::string& upstream,
                                         const char* reason) {
  return retries_.Add({{"route", route}, {"upstream", upstream}, {"reason", reason}});
}

}  // namespace ssegw::metrics
