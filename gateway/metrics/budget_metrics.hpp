// The series of the spend budgets (docs/operations.md#metrics): refusals by key label and reason,
// the answers running under a budget, the tokens charged, and the JWT subjects tracked in memory.
//
// A key label is a key's name or "jwt" (every JWT subject together): the labels are known from the
// configuration, so every series exists from the start and is looked up once per request (a
// pointer kept with the request's account), never created on the hot path. No label carries a
// JWT subject.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw::metrics {

// Why a budget refused a request: the values of the reason label, in this order.
enum class BudgetRefusal {
  kTokens,       // token_budget_exhausted
  kRequests,     // rate_limited
  kConcurrency,  // too_many_streams
  kSubjects,     // too_many_subjects: the in-memory subject table is full
  kUnavailable,  // backplane_unavailable: the Redis counters cannot be reached
};
inline constexpr size_t kBudgetRefusals = 5;
const char* budget_refusal_name(BudgetRefusal reason);

// The series of one key label.
struct BudgetSeries {
  std::array<prometheus::Counter*, kBudgetRefusals> refused{};
  prometheus::Gauge* running = nullptr;  // answers admitted and not ended, on this instance
  prometheus::Counter* tokens = nullptr;

  void refuse(BudgetRefusal reason) { refused[static_cast<size_t>(reason)]->Increment(); }
};

class BudgetMetrics {
 public:
  // labels: the names of the keys with a budget, and "jwt" when subjects have one.
  BudgetMetrics(prometheus::Registry& registry, const std::vector<std::string>& labels);
  BudgetMetrics(const BudgetMetrics&) = delete;
  BudgetMetrics& operator=(const BudgetMetrics&) = delete;

  // The series of a label given to the constructor; null for any other.
  BudgetSeries* series(std::string_view label);

  prometheus::Gauge& subjects;  // JWT subjects in the in-memory table (auth.jwt.max_subjects)

 private:
  std::map<std::string, BudgetSeries, std::less<>> series_;  // not changed after construction
};

}  // namespace ssegw::metrics
