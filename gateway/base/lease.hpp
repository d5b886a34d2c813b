// A unit taken from a shared limit (a concurrency slot), given back exactly once.
//
// Rules:
// - A Lease is moved, never copied; it gives its unit back when it is destroyed or reset(),
//   whichever comes first, on whatever thread holds it last. The limits behind leases are
//   therefore thread-safe.
// - A default Lease holds nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace ssegw::base {

class Lease {
 public:
  Lease() = default;
  explicit Lease(std::function<void()> release) : release_(std::move(release)) {}
  Lease(Lease&& other) noexcept : release_(std::exchange(other.release_, nullptr)) {}
  Lease& operator=(Lease&& other) noexcept {
    if (this != &other) {
      reset();
      release_ = std::exchange(other.release_, nullptr);
    }
    return *this;
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() { reset(); }

  void reset() {
    if (!release_) return;
    std::function<void()> release = std::move(release_);
    release_ = nullptr;
    release();
  }
  explicit operator bool() const { return release_ != nullptr; }

 private:
  std::function<void()> release_;
};

// At most `max` units at once, across threads: a lock-free counter.
class CountingLimit {
 public:
  explicit CountingLimit(uint32_t max) : max_(max) {}
  CountingLimit(const CountingLimit&) = delete;
  CountingLimit& operator=(const CountingLimit&) = delete;

  // A unit, or nullopt when all `max` are taken. The limit must outlive the lease.
  std::optional<Lease> try_take() {
    uint32_t n = used_.load(std::memory_order_relaxed);
    do {
      if (n >= max_) return std::nullopt;
    } while (!used_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return Lease([this] { used_.fetch_sub(1, std::memory_order_relaxed); });
  }
  uint32_t used() const { return used_.load(std::memory_order_relaxed); }
  uint32_t max() const { return max_; }

 private:
  const uint32_t max_;
  std::atomic<uint32_t> used_{0};
};

// Limits by name (one per upstream, say), shared by every worker.
using NamedLimits = std::map<std::string, std::unique_ptr<CountingLimit>, std::less<>>;

}  // namespace ssegw::base
