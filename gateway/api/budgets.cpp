#include "gateway/api/budgets.hpp"

#include <limits>

namespace ssegw::api {

using Refusal = metrics::BudgetRefusal;

BudgetAccount subject_account(std::string_view subject, const config::BudgetLimits& limits,
                              metrics::BudgetSeries* series) {
  BudgetAccount account;
  account.id.reserve(4 + subject.size());
  account.id += "sub:";
  account.id += subject;
  account.limits = limits;
  account.series = series;
  account.subject = true;
  return account;
}

uint32_t seconds_to_window_end(uint64_t unix_ms) {
  uint64_t end_ms = (budget_window(unix_ms) + 1) * 60000;
  return static_cast<uint32_t>((end_ms - unix_ms + 999) / 1000);
}

BudgetLedger::BudgetLedger(uint32_t max_subjects, metrics::BudgetMetrics& metrics, Clock clock)
    : max_subjects_(max_subjects), metrics_(metrics), clock_(std::move(clock)) {}

BudgetLedger::~BudgetLedger() = default;

size_t BudgetLedger::subjects() const {
  std::lock_guard lock(mutex_);
  return subjects_.size();
}

void BudgetLedger::admit(const BudgetAccount& account, Done done) {
  BudgetVerdict verdict = decide(account, clock_());
  done(std::move(verdict));  // outside the lock: done may run the whole request
}

BudgetVerdict BudgetLedger::decide(const BudgetAccount& account, uint64_t now_ms) {
  const config::BudgetLimits& limits = account.limits;
  uint64_t window = budget_window(now_ms);
  BudgetVerdict verdict;
  std::lock_guard lock(mutex_);
  Counts* counts = find_or_make(account, window);
  if (!counts) {
    verdict.refused = Refusal::kSubjects;
    verdict.retry_after_s = seconds_to_window_end(now_ms);  // idle subjects go then at the latest
    return verdict;
  }
  if (window > counts->window) *counts = Counts{window, 0, 0, counts->running};
  if (limits.tokens_per_minute && counts->tokens >= limits.tokens_per_minute) {
    verdict.refused = Refusal::kTokens;
    verdict.retry_after_s = seconds_to_window_end(now_ms);
    return verdict;
  }
  if (limits.requests_per_minute && counts->requests >= limits.requests_per_minute) {
    verdict.refused = Refusal::kRequests;
    verdict.retry_after_s = seconds_to_window_end(now_ms);
    return verdict;
  }
  if (limits.max_concurrent && counts->running >= limits.max_concurrent) {
    verdict.refused = Refusal::kConcurrency;
    verdict.retry_after_s = 1;
    return verdict;
  }
  ++counts->requests;
  ++counts->running;
  if (account.series) account.series->running->Increment();
  verdict.slot =
      base::Lease([this, id = account.id, subject = account.subject, series = account.series] {
        if (series) series->running->Decrement();
        release(id, subject);
      });
  return verdict;
}

BudgetLedger::Counts* BudgetLedger::find_or_make(const BudgetAccount& account, uint64_t window) {
  Table& table = account.subject ? subjects_ : keys_;
  auto it = table.find(account.id);
  if (it != table.end()) return &it->second;
  if (account.subject && subjects_.size() >= max_subjects_ && !make_room(window)) return nullptr;
  Counts& counts = table[account.id];
  counts.window = window;
  if (account.subject) metrics_.subjects.Set(static_cast<double>(subjects_.size()));
  return &counts;
}

bool BudgetLedger::make_room(uint64_t window) {
  if (vain_sweep_ && *vain_sweep_ == std::make_pair(window, releases_)) return false;
  size_t before = subjects_.size();
  // Nothing is lost with a subject that runs nothing and has no count in this window.
  std::erase_if(subjects_, [window](const auto& entry) {
    const Counts& c = entry.second;
    return c.running == 0 && (c.window < window || (c.tokens == 0 && c.requests == 0));
  });
  metrics_.subjects.Set(static_cast<double>(subjects_.size()));
  if (subjects_.size() < before) {
    vain_sweep_.reset();
    return true;
  }
  vain_sweep_ = std::make_pair(window, releases_);
  return false;
}

void BudgetLedger::release(const std::string& id, bool subject) {
  std::lock_guard lock(mutex_);
  Table& table = subject ? subjects_ : keys_;
  auto it = table.find(id);
  if (it == table.end() || it->second.running == 0) return;  // cannot happen: slots are counted
  --it->second.running;
  ++releases_;
}

void BudgetLedger::charge(const BudgetAccount& account, uint64_t tokens) {
  if (tokens == 0) return;
  if (account.series) account.series->tokens->Increment(static_cast<double>(tokens));
  if (!account.limits.tokens_per_minute) return;  // nothing to count against
  uint64_t window = budget_window(clock_());
  std::lock_guard lock(mutex_);
  // A running answer's subject is never forgotten; one that ended may have been, and is made
  // again (or, with the table full, its tokens go uncounted).
  Counts* counts = find_or_make(account, window);
  if (!counts) return;
  if (window > counts->window) *counts = Counts{window, 0, 0, counts->running};
  uint64_t room = std::numeric_limits<uint64_t>::max() - counts->tokens;
  counts->tokens += tokens < room ? tokens : room;
}

}  // namespace ssegw::api
