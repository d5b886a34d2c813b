// Spend budgets per key and per JWT subject (docs/protocol.md#budgets): tokens and requests per
// minute, and answers running at once. The policy stage (policy.hpp, stage 6) finds the account a
// route request is charged to and asks a BudgetStore whether it may run; the proxy charges the
// tokens through the permit's charge hook as they become known.
//
// Rules:
// - Windows are fixed wall-clock minutes, unix_ms / 60000: every instance derives the same window
//   from its own clock (the Redis store from Redis's one clock), so instances agree without
//   talking to each other.
// - A request is refused when, in the current window, the tokens charged have reached
//   tokens_per_minute, or requests_per_minute requests were admitted, or max_concurrent answers
//   run; checked in that order, so that Retry-After is the longest wait that applies (the end of
//   the window, or 1 s for a slot).
// - Admission counts 1 request and takes a slot: a Lease held until the answer ends, whichever
//   way it ends. Tokens are charged later, to the window current when they are charged, so an
//   account overruns its window by at most what its running answers use.
// - A store's admit() answers exactly once, on the calling thread: inside the call (memory) or
//   later (Redis). It copies what it keeps of the account before it returns.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.hpp"
#include "gateway/base/clock.hpp"
#include "gateway/base/lease.hpp"
#include "gateway/metrics/budget_metrics.hpp"

namespace ssegw::api {

// Who a request is charged to.
struct BudgetAccount {
  std::string id;  // "key:<name>" or "sub:<subject>": the counters' name, in memory and in Redis
  config::BudgetLimits limits;
  metrics::BudgetSeries* series = nullptr;  // the key's name, or "jwt" for every subject
  bool subject = false;                     // counts against auth.jwt.max_subjects
};

// The account of one JWT subject (at most jwt.hpp's kMaxSubjectBytes, as the verifier checks, which
// bounds what each remembered subject costs).
BudgetAccount subject_account(std::string_view subject, const config::BudgetLimits& limits,
                              metrics::BudgetSeries* series);

// What a store answered.
struct BudgetVerdict {
  std::optional<metrics::BudgetRefusal> refused;  // nullopt: admitted
  uint32_t retry_after_s = 1;                     // refused: when to try again
  base::Lease slot;                               // admitted: held until the answer ends
};

// The minute of a wall-clock time, and the whole seconds until it ends (1 to 60): an honest
// Retry-After, rounded up so that a client retrying after it lands in the next window.
inline uint64_t budget_window(uint64_t unix_ms) {
  return unix_ms / 60000;
}
uint32_t seconds_to_window_end(uint64_t unix_ms);

class BudgetStore {
 public:
  using Done = std::function<void(BudgetVerdict verdict)>;
  virtual ~BudgetStore() = default;

  // Checks the account's limits and, when they allow, counts the request and takes a slot.
  virtual void admit(const BudgetAccount& account, Done done) = 0;
  // Adds tokens to the account's current window.
  virtual void charge(const BudgetAccount& account, uint64_t tokens) = 0;
};

// The in-memory store, shared by all workers of one process: one mutex, taken once per
// admission, charge and release, never per event. Keys are few (the configuration's); subjects
// are bounded by max_subjects. When the table is full, subjects that can be forgotten without
// losing anything go first: they run nothing and have no count in the current window. When none
// can, a new
// subject is refused (too_many_subjects) rather than a running one's counts forgotten.
class BudgetLedger final : public BudgetStore {
 public:
  using Clock = std::function<uint64_t()>;  // unix milliseconds

  BudgetLedger(uint32_t max_subjects, metrics::BudgetMetrics& metrics,
               Clock clock = base::wall_clock_ms);
  ~BudgetLedger() override;
  BudgetLedger(const BudgetLedger&) = delete;
  BudgetLedger& operator=(const BudgetLedger&) = delete;

  void admit(const BudgetAccount& account, Done done) override;
  void charge(const BudgetAccount& account, uint64_t tokens) override;

  size_t subjects() const;

 private:
  struct Counts {
    uint64_t window = 0;
    uint64_t tokens = 0;
    uint32_t requests = 0;
    uint32_t running = 0;
  };
  using Table = std::unordered_map<std::string, Counts>;

  BudgetVerdict decide(const BudgetAccount& account, uint64_t now_ms);
  // The account's counts, made when absent (a subject only if there is room); null when full.
  Counts* find_or_make(const BudgetAccount& account, uint64_t window);
  // Forgets every subject that runs nothing and has no count in this window; true when one went.
  bool make_room(uint64_t window);
  void release(const std::string& id, bool subject);

  const uint32_t max_subjects_;
  metrics::BudgetMetrics& metrics_;
  Clock clock_;
  mutable std::mutex mutex_;
  Table keys_;
  Table subjects_;
  // A full table swept in vain stays full until the window turns or a slot comes back: until
  // then a new subject is refused without sweeping again.
  uint64_t releases_ = 0;
  std::optional<std::pair<uint64_t, uint64_t>> vain_sweep_;  // (window, releases_) of that sweep
};

}  // namespace ssegw::api
