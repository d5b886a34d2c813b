#include "gateway/metrics/budget_metrics.hpp"

namespace ssegw::metrics {

const char* budget_refusal_name(BudgetRefusal reason) {
  switch (reason) {
    case BudgetRefusal::kTokens:
      return "token_budget_exhausted";
    case BudgetRefusal::kRequests:
      return "rate_limited";
    case BudgetRefusal::kConcurrency:
      return "too_many_streams";
    case BudgetRefusal::kSubjects:
      return "too_many_subjects";
    case BudgetRefusal::kUnavailable:
      return "backplane_unavailable";
  }
  return "unknown";
}

BudgetMetrics::BudgetMetrics(prometheus::Registry& registry, const std::vector<std::string>& labels)
    : subjects(prometheus::BuildGauge()
                   .Name("ssegw_budget_subjects")
                   .Help("JWT subjects whose budgets are tracked in memory (auth.jwt.max_subjects)")
                   .Register(registry)
                   .Add({})) {
  auto& refusals = prometheus::BuildCounter()
                       .Name("ssegw_budget_refusals_total")
                       .Help(
                           "Route requests refused by a key's or subject's budget, by key label "
                           "and reason")
                       .Register(registry);
  auto& running = prometheus::BuildGauge()
                      .Name("ssegw_budget_running")
                      .Help("Route answers running under a budget on this instance, by key label")
                      .Register(registry);
  auto& tokens = prometheus::BuildCounter()
                     .Name("ssegw_budget_tokens_charged_total")
                     .Help(
                         "Tokens charged to budgets as answers reported or estimated them, by "
                         "key label")
                     .Register(registry);
  for (const std::string& label : labels) {
    BudgetSeries& s = series_[label];
    for (size_t i = 0; i < kBudgetRefusals; ++i)
      s.refused[i] = &refusals.Add(
          {{"key", label}, {"reason", budget_refusal_name(static_cast<BudgetRefusal>(i))}});
    s.running = &running.Add({{"key", label}});
    s.tokens = &tokens.Add({{"key", label}});
  }
}

BudgetSeries* BudgetMetrics::series(std::string_view label) {
  auto it = series_.find(label);
  return it == series_.end() ? nullptr : &it->second;
}

}  // namespace ssegw::metrics
