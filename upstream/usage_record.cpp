#include "upstream/usage_record.hpp"

#include "gateway/base/log.hpp"
#include "upstream/usage_meter.hpp"

namespace ssegw::upstream {

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kCompleted:
      return "completed";
    case Outcome::kCancelled:
      return "cancelled";
    case Outcome::kTruncated:
      return "truncated";
    case Outcome::kUpstreamError:
      return "upstream_error";
    case Outcome::kRejected:
      return "rejected";
  }
  return "completed";
}

std::string request_model(std::string_view body) {
  constexpr size_t kMaxModelBytes = 64;
  std::optional<std::string_view> model = find_json_string(body, "model", kMaxModelBytes);
  return model ? std::string(*model) : std::string();
}

void report_usage(const UsageRecord& r, metrics::Metrics& metrics, bool log_line) {
  metrics::LlmMetrics& llm = metrics.llm;
  llm.requests(r.route, r.upstream, r.key_label, outcome_name(r.outcome)).Increment();
  if (r.prompt_tokens)
    llm.tokens(r.route, r.upstream, r.key_label, "prompt",
               r.prompt_estimated ? "estimated" : "reported")
        .Increment(static_cast<double>(r.prompt_tokens));
  if (r.completion_tokens)
    llm.tokens(r.route, r.upstream, r.key_label, "completion",
               r.completion_estimated ? "estimated" : "reported")
        .Increment(static_cast<double>(r.completion_tokens));
  if (r.time_to_first_token_s) {
    llm.time_to_first_token(r.route, r.upstream).Observe(*r.time_to_first_token_s);
    // The time per token after the first: only when there were further tokens to time.
    if (r.completion_tokens > 1 && r.outcome == Outcome::kCompleted)
      llm.time_per_output_token(r.route, r.upstream)
          .Observe((r.duration_s - *r.time_to_first_token_s) /
                   static_cast<double>(r.completion_tokens - 1));
  }
  if (!log_line) return;
  auto ms = [](double seconds) { return static_cast<uint64_t>(seconds * 1000.0 + 0.5); };
  // The escaped model text is logged as read: JSON escaping of the log line keeps it one line.
  base::log::record(
      "usage", {{"time", r.time_ms},
                {"route", r.route},
                {"upstream", r.upstream},
                {"key", r.who},
                {"model", r.model},
                {"status", r.status},
                {"outcome", outcome_name(r.outcome)},
                r.time_to_first_token_s ? base::log::Field("ttft_ms", ms(*r.time_to_first_token_s))
                                        : base::log::Field("ttft_ms", nullptr),
                {"duration_ms", ms(r.duration_s)},
                {"prompt_tokens", r.prompt_tokens},
                {"completion_tokens", r.completion_tokens},
                {"estimated", r.prompt_estimated || r.completion_estimated},
                {"traceparent", r.traceparent}});
}

}  // namespace ssegw::upstream
