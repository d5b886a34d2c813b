// One usage record per proxied route request (docs/operations.md "Usage records"): who asked,
// what it cost and how it ended, as a JSON log line (log.access) and as metrics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "gateway/metrics/metrics.hpp"

namespace ssegw::upstream {

enum class Outcome {
  kCompleted,      // the answer ended as its protocol ends it (or a plain 2xx body ended)
  kCancelled,      // the client left, was cut for stall_timeout, or the cancel API stopped it
  kTruncated,      // the upstream ended or failed before the protocol's end
  kUpstreamError,  // no answer (connect failure, timeout) or a non-2xx one
  kRejected,       // refused before reaching an upstream (policy stage, budgets)
};
const char* outcome_name(Outcome outcome);

struct UsageRecord {
  int64_t time_ms = 0;  // unix milliseconds when the request arrived
  std::string route;
  std::string upstream;  // the one that answered (the last one tried)
  // The metric label: a key's name, "jwt", "publish_token" or "anonymous".
  std::string key_label;
  // The log's "key": a key's name, the JWT subject, or "anonymous".
  std::string who;
  std::string model;  // from the request body, at most 64 bytes
  std::string traceparent;
  int status = 0;  // what the client got
  Outcome outcome = Outcome::kCompleted;
  std::optional<double> time_to_first_token_s;
  double duration_s = 0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  bool prompt_estimated = false;
  bool completion_estimated = false;
};

// Counts the record into the metrics (ssegw_llm_requests_total, ssegw_llm_tokens_total, the
// latency histograms) and writes its log line when `log_line`.
void report_usage(const UsageRecord& record, metrics::Metrics& metrics, bool log_line);

// The model a request body names ("model": "..."), cut to 64 bytes; "" when none.
std::string request_model(std::string_view body);

}  // namespace ssegw::upstream
