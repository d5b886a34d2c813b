// The LLM series (docs/operations.md#metrics): requests and tokens by route, upstream and key,
// latency to the first content token and per output token, retries before the first byte.
//
// Every label is bounded by the configuration: routes and upstreams are configured, `key` is a
// key's name, "jwt", "publish_token" or "anonymous" (never a JWT subject), and outcomes, kinds,
// sources and reasons are fixed words. A series is made on first use; each call looks it up
// under the family's lock, once per request, never per event.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

namespace ssegw::metrics {

class LlmMetrics {
 public:
  explicit LlmMetrics(prometheus::Registry& registry);

  // ssegw_llm_requests_total{route,upstream,key,outcome}
  prometheus::Counter& requests(const std::string& route, const std::string& upstream,
                                const std::string& key, const char* outcome);
  // ssegw_llm_tokens_total{route,upstream,key,kind="prompt|completion",source}
  prometheus::Counter& tokens(const std::string& route, const std::string& upstream,
                              const std::string& key, const char* kind, const char* source);
  // ssegw_llm_time_to_first_token_seconds{route,upstream}
  prometheus::Histogram& time_to_first_token(const std::string& route, const std::string& upstream);
  // ssegw_llm_time_per_output_token_seconds{route,upstream}
  prometheus::Histogram& time_per_output_token(const std::string& route,
                                               const std::string& upstream);
  // ssegw_upstream_retries_total{route,upstream,reason}: upstream is the one that failed.
  prometheus::Counter& retries(const std::string& route, const std::string& upstream,
                               const char* reason);

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& tokens_;
  prometheus::Family<prometheus::Histogram>& ttft_;
  prometheus::Family<prometheus::Histogram>& tpot_;
  prometheus::Family<prometheus::Counter>& retries_;
};

}  // namespace ssegw::metrics
