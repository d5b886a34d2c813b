#include "gateway/metrics/llm_metrics.hpp"

#include <doctest/doctest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sstream>
#include <string>

using namespace ssegw;

namespace {

std::string scrape(prometheus::Registry& registry) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry.Collect());
  return out.str();
}

}  // namespace

TEST_CASE("metrics/llm_metrics: one series per label set, with the documented names") {
  prometheus::Registry registry;
  metrics::LlmMetrics llm(registry);
  llm.requests("/v1/chat/completions", "llm", "team-a", "completed").Increment();
  llm.requests("/v1/chat/completions", "llm", "team-a", "completed").Increment();
  llm.tokens("/v1/chat/completions", "llm", "jwt", "completion", "estimated").Increment(7);
  llm.time_to_first_token("/v1/chat/completions", "llm").Observe(0.25);
  llm.time_per_output_token("/v1/chat/completions", "llm").Observe(0.02);
  llm.retries("/v1/chat/completions", "primary", "5xx").Increment();
  CHECK(&llm.requests("/v1/chat/completions", "llm", "team-a", "completed") !=
        &llm.requests("/v1/chat/completions", "llm", "team-a", "cancelled"));
  std::string text = scrape(registry);
  INFO(text);
  CHECK(text.find("ssegw_llm_requests_total{key=\"team-a\",outcome=\"completed\","
                  "route=\"/v1/chat/completions\",upstream=\"llm\"} 2") != std::string::npos);
  CHECK(text.find("ssegw_llm_tokens_total{key=\"jwt\",kind=\"completion\","
                  "route=\"/v1/chat/completions\",source=\"estimated\",upstream=\"llm\"} 7") !=
        std::string::npos);
  CHECK(text.find("ssegw_llm_time_to_first_token_seconds_count{route=\"/v1/chat/completions\","
                  "upstream=\"llm\"} 1") != std::string::npos);
  CHECK(text.find("ssegw_llm_time_per_output_token_seconds_count{route=\"/v1/chat/completions\","
                  "upstream=\"llm\"} 1") != std::string::npos);
  CHECK(text.find("ssegw_upstream_retries_total{reason=\"5xx\",route=\"/v1/chat/completions\","
                  "upstream=\"primary\"} 1") != std::string::npos);
}
