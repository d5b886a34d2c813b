// Stage 6 of the policy stage (policy.hpp): the budgets of keys and JWT subjects
// (docs/protocol.md "Budgets"), which only the worker's budget store can finish deciding.
#include <memory>
#include <string>

#include "gateway/api/policy.hpp"

namespace ssegw::api {

// ---- 6. budgets -------------------------------------------------------------------------------

std::optional<Refusal> Policy::budgets_stage(const http::Request&, Permit& permit, std::string_view,
                                             uint64_t, int64_t) const {
  if (permit.kind != RequestKind::kRoute) return std::nullopt;
  const Principal& principal = permit.principal;
  if (principal.kind == Principal::Kind::kKey) {
    auto it = key_budgets_.find(principal.key);
    if (it != key_budgets_.end()) permit.budget = it->second;
    return std::nullopt;
  }
  if (principal.kind != Principal::Kind::kJwt || !subject_series_) return std::nullopt;
  // Without a subject there is no account to charge, and sharing one among every such token
  // would let one client spend everybody's budget.
  if (principal.claims.subject.empty()) {
    metrics_.refused_forbidden.Increment();
    return make_refusal(
        403, "forbidden",
        "auth.jwt.subject_limits is set: the token needs a sub claim to be charged to", permit);
  }
  permit.budget =
      subject_account(principal.claims.subject, config_.auth.jwt->subject_limits, subject_series_);
  return std::nullopt;
}

namespace {

Refusal budget_refusal(metrics::BudgetRefusal reason, uint32_t retry_after_s,
                       const Permit& permit) {
  std::string retry_after = "Retry-After: " + std::to_string(retry_after_s) + "\r\n";
  bool subject = permit.budget->subject;
  const char* whose = subject ? "this subject" : "this key";
  switch (reason) {
    case metrics::BudgetRefusal::kTokens:
      return make_refusal(429, "token_budget_exhausted",
                          std::string(whose) + " has used its tokens_per_minute for this minute",
                          permit, std::move(retry_after));
    case metrics::BudgetRefusal::kRequests:
      return make_refusal(429, "rate_limited",
                          std::string(whose) + " has made its requests_per_minute for this minute",
                          permit, std::move(retry_after));
    case metrics::BudgetRefusal::kConcurrency:
      return make_refusal(429, "too_many_streams",
                          std::string(whose) + " already runs its max_concurrent answers", permit,
                          std::move(retry_after));
    case metrics::BudgetRefusal::kSubjects:
      return make_refusal(503, "too_many_subjects",
                          "the gateway tracks auth.jwt.max_subjects subjects, all of them active",
                          permit, std::move(retry_after));
    case metrics::BudgetRefusal::kUnavailable:
      break;
  }
  return make_refusal(503, "backplane_unavailable",
                      "the budget counters in the Redis backplane are unreachable", permit,
                      std::move(retry_after));
}

}  // namespace

void Policy::check_budget(Permit permit, BudgetStore& store, Done done) const {
  // A std::function must be copyable, and a Permit is not: the callback shares it.
  auto held = std::make_shared<Permit>(std::move(permit));
  const BudgetAccount& account = *held->budget;
  store.admit(account, [held, &store, done = std::move(done)](BudgetVerdict verdict) {
    Permit& permit = *held;
    if (verdict.refused) {
      if (permit.budget->series) permit.budget->series->refuse(*verdict.refused);
      done(budget_refusal(*verdict.refused, verdict.retry_after_s, permit));
      return;
    }
    permit.budget_slot = std::move(verdict.slot);
    permit.charge = [&store, account = *permit.budget](uint64_t tokens) {
      store.charge(account, tokens);
    };
    done(std::move(permit));
  });
}

}  // namespace ssegw::api
