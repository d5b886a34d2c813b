#include "gateway/api/budgets.hpp"

#include <doctest/doctest.h>
#include <prometheus/registry.h>

#include <optional>
#include <string>
#include <vector>

using namespace ssegw;
using metrics::BudgetRefusal;

namespace {

// 2026-01-01T00:00:00Z, a minute's start: the tests move a fake clock from there.
constexpr uint64_t kMinute0 = 1'767'225'600'000;

// A ledger on a fake clock, with the series of key "k" and of "jwt".
struct Ledger {
  explicit Ledger(uint32_t max_subjects = 100)
      : budget_metrics(registry, {"k", "jwt"}),
        ledger(max_subjects, budget_metrics, [this] { return now_ms; }) {}

  api::BudgetAccount key(config::BudgetLimits limits) {
    api::BudgetAccount account;
    account.id = "key:k";
    account.limits = limits;
    account.series = budget_metrics.series("k");
    return account;
  }
  api::BudgetAccount subject(const std::string& sub, config::BudgetLimits limits) {
    return api::subject_account(sub, limits, budget_metrics.series("jwt"));
  }

  // admit() answers inside the call (in memory): its verdict.
  api::BudgetVerdict admit(const api::BudgetAccount& account) {
    std::optional<api::BudgetVerdict> got;
    ledger.admit(account, [&](api::BudgetVerdict v) { got = std::move(v); });
    REQUIRE(got);
    return std::move(*got);
  }

  double running() { return budget_metrics.series("k")->running->Value(); }

  uint64_t now_ms = kMinute0;
  prometheus::Registry registry;
  metrics::BudgetMetrics budget_metrics;
  api::BudgetLedger ledger;
};

config::BudgetLimits tokens(uint64_t n) {
  config::BudgetLimits l;
  l.tokens_per_minute = n;
  return l;
}

}  // namespace

TEST_CASE("api/budgets: Retry-After is the whole seconds to the minute's end, rounded up") {
  CHECK(api::seconds_to_window_end(kMinute0) == 60);
  CHECK(api::seconds_to_window_end(kMinute0 + 1) == 60);
  CHECK(api::seconds_to_window_end(kMinute0 + 999) == 60);
  CHECK(api::seconds_to_window_end(kMinute0 + 1000) == 59);
  CHECK(api::seconds_to_window_end(kMinute0 + 59'000) == 1);
  CHECK(api::seconds_to_window_end(kMinute0 + 59'999) == 1);
  CHECK(api::budget_window(kMinute0 + 59'999) == api::budget_window(kMinute0));
  CHECK(api::budget_window(kMinute0 + 60'000) == api::budget_window(kMinute0) + 1);
}

TEST_CASE("api/budgets: tokens_per_minute refuses once the window's tokens reach it") {
  Ledger t;
  api::BudgetAccount k = t.key(tokens(500));
  {
    api::BudgetVerdict v = t.admit(k);
    CHECK_FALSE(v.refused);
    CHECK(v.slot);
  }
  t.ledger.charge(k, 250);
  CHECK_FALSE(t.admit(k).refused);
  t.ledger.charge(k, 249);  // 499: one token left, so a request may still start
  CHECK_FALSE(t.admit(k).refused);
  t.ledger.charge(k, 1);
  t.now_ms = kMinute0 + 20'500;
  api::BudgetVerdict refused = t.admit(k);
  REQUIRE(refused.refused);
  CHECK(*refused.refused == BudgetRefusal::kTokens);
  CHECK(refused.retry_after_s == 40);  // 39.5 s left, rounded up
  CHECK_FALSE(refused.slot);
  CHECK(t.budget_metrics.series("k")->tokens->Value() == 500);
  // The window turns: served again, with nothing carried over.
  t.now_ms = kMinute0 + 60'000;
  CHECK_FALSE(t.admit(k).refused);
  t.ledger.charge(k, 499);
  CHECK_FALSE(t.admit(k).refused);
}

TEST_CASE("api/budgets: tokens charged late go to the window current when they are charged") {
  Ledger t;
  api::BudgetAccount k = t.key(tokens(100));
  api::BudgetVerdict v = t.admit(k);
  REQUIRE_FALSE(v.refused);
  t.now_ms = kMinute0 + 61'000;  // the answer ends in the next minute
  t.ledger.charge(k, 100);
  CHECK(t.admit(k).refused == BudgetRefusal::kTokens);
  t.now_ms = kMinute0 + 120'000;
  CHECK_FALSE(t.admit(k).refused);
}

TEST_CASE("api/budgets: requests_per_minute counts admissions, refused ones not") {
  Ledger t;
  config::BudgetLimits l;
  l.requests_per_minute = 2;
  api::BudgetAccount k = t.key(l);
  t.now_ms = kMinute0 + 59'400;
  CHECK_FALSE(t.admit(k).refused);
  CHECK_FALSE(t.admit(k).refused);
  api::BudgetVerdict v = t.admit(k);
  CHECK(v.refused == BudgetRefusal::kRequests);
  CHECK(v.retry_after_s == 1);
  CHECK(t.admit(k).refused == BudgetRefusal::kRequests);
  t.now_ms = kMinute0 + 60'000;
  CHECK_FALSE(t.admit(k).refused);
  CHECK_FALSE(t.admit(k).refused);
  CHECK(t.admit(k).refused == BudgetRefusal::kRequests);
  CHECK(t.budget_metrics.series("k")->tokens->Value() == 0);
}

TEST_CASE("api/budgets: max_concurrent holds slots until their leases go, across windows") {
  Ledger t;
  config::BudgetLimits l;
  l.max_concurrent = 2;
  api::BudgetAccount k = t.key(l);
  api::BudgetVerdict a = t.admit(k);
  api::BudgetVerdict b = t.admit(k);
  REQUIRE_FALSE(a.refused);
  REQUIRE_FALSE(b.refused);
  CHECK(t.running() == 2);
  api::BudgetVerdict c = t.admit(k);
  CHECK(c.refused == BudgetRefusal::kConcurrency);
  CHECK(c.retry_after_s == 1);  // a slot comes back whenever an answer ends: ask again soon
  // A new window does not free running answers.
  t.now_ms = kMinute0 + 90'000;
  CHECK(t.admit(k).refused == BudgetRefusal::kConcurrency);
  a.slot.reset();
  CHECK(t.running() == 1);
  a.slot.reset();  // given back once
  CHECK(t.running() == 1);
  api::BudgetVerdict d = t.admit(k);
  CHECK_FALSE(d.refused);
  CHECK(t.running() == 2);
  b.slot.reset();
  d.slot.reset();
  CHECK(t.running() == 0);
}

TEST_CASE("api/budgets: the limits are checked tokens, requests, then slots") {
  Ledger t;
  config::BudgetLimits l;
  l.tokens_per_minute = 10;
  l.requests_per_minute = 1;
  l.max_concurrent = 1;
  api::BudgetAccount k = t.key(l);
  api::BudgetVerdict a = t.admit(k);
  REQUIRE_FALSE(a.refused);
  CHECK(t.admit(k).refused == BudgetRefusal::kRequests);  // before too_many_streams
  t.ledger.charge(k, 10);
  CHECK(t.admit(k).refused == BudgetRefusal::kTokens);  // before rate_limited
}

TEST_CASE("api/budgets: each subject has its own counts, and so has each key") {
  Ledger t;
  config::BudgetLimits l = tokens(5);
  api::BudgetAccount alice = t.subject("alice", l);
  api::BudgetAccount bob = t.subject("bob", l);
  CHECK(alice.id == "sub:alice");
  CHECK(alice.subject);
  CHECK_FALSE(t.admit(alice).refused);
  t.ledger.charge(alice, 5);
  CHECK(t.admit(alice).refused == BudgetRefusal::kTokens);
  CHECK_FALSE(t.admit(bob).refused);
  // A key named like a subject is another account.
  api::BudgetAccount key = t.key(l);
  key.id = "key:alice";
  CHECK_FALSE(t.admit(key).refused);
  CHECK(t.ledger.subjects() == 2);
}

TEST_CASE("api/budgets: the subject table is bounded, idle subjects of past windows make room") {
  Ledger t(/*max_subjects=*/2);
  config::BudgetLimits l = tokens(100);
  api::BudgetVerdict a = t.admit(t.subject("a", l));
  REQUIRE_FALSE(a.refused);
  CHECK_FALSE(t.admit(t.subject("b", l)).refused);  // its slot goes at once: idle
  CHECK(t.ledger.subjects() == 2);
  CHECK(t.budget_metrics.subjects.Value() == 2);
  // Full, and both counted in this window: a third subject is refused, nobody forgotten.
  api::BudgetVerdict c = t.admit(t.subject("c", l));
  CHECK(c.refused == BudgetRefusal::kSubjects);
  CHECK(c.retry_after_s == 60);
  CHECK(t.ledger.subjects() == 2);
  // Next window: "b" is idle and goes; "a" still runs and stays, with its slot.
  t.now_ms = kMinute0 + 60'000;
  CHECK_FALSE(t.admit(t.subject("c", l)).refused);
  CHECK(t.ledger.subjects() == 2);
  CHECK(t.budget_metrics.subjects.Value() == 2);
  CHECK(t.admit(t.subject("d", l)).refused == BudgetRefusal::kSubjects);
  // "a" ends: its counts are of a past window, so it goes now; "c" counted in this one stays.
  a.slot.reset();
  CHECK_FALSE(t.admit(t.subject("d", l)).refused);
  CHECK(t.ledger.subjects() == 2);
  CHECK(t.admit(t.subject("e", l)).refused == BudgetRefusal::kSubjects);
}

TEST_CASE("api/budgets: a subject with a running answer is never forgotten") {
  Ledger t(/*max_subjects=*/1);
  config::BudgetLimits l;
  l.max_concurrent = 1;
  api::BudgetVerdict a = t.admit(t.subject("a", l));
  REQUIRE_FALSE(a.refused);
  t.now_ms = kMinute0 + 600'000;
  CHECK(t.admit(t.subject("b", l)).refused == BudgetRefusal::kSubjects);
  CHECK(t.admit(t.subject("a", l)).refused == BudgetRefusal::kConcurrency);
  a.slot.reset();
  CHECK_FALSE(t.admit(t.subject("b", l)).refused);
}

TEST_CASE("api/budgets: a charge without tokens_per_minute only counts the metric") {
  Ledger t;
  config::BudgetLimits l;
  l.requests_per_minute = 10;
  api::BudgetAccount k = t.key(l);
  t.ledger.charge(k, 1000);
  t.ledger.charge(k, 0);
  CHECK(t.budget_metrics.series("k")->tokens->Value() == 1000);
  CHECK_FALSE(t.admit(k).refused);
}

TEST_CASE("api/budgets: a clock that steps back keeps the counts of the later window") {
  Ledger l;
  api::BudgetAccount k = l.key(tokens(100));
  l.now_ms = kMinute0 + 60'000;  // the second minute
  CHECK_FALSE(l.admit(k).refused);
  l.ledger.charge(k, 100);
  l.now_ms = kMinute0 + 59'000;  // NTP steps the clock back into the first minute
  api::BudgetVerdict v = l.admit(k);
  REQUIRE(v.refused);
  CHECK(*v.refused == BudgetRefusal::kTokens);
  l.now_ms = kMinute0 + 120'000;  // the third minute: a new window
  CHECK_FALSE(l.admit(k).refused);
}
