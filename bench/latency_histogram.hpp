// Log-linear histogram of nanosecond latencies (HdrHistogram's layout, fixed size): every octave
// [2^m, 2^(m+1)) is split into 64 equal buckets, so a reported percentile is within 1/64 (1.6%)
// of the true value, and memory stays 20 KiB however many samples arrive.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace bench {

class LatencyHistogram {
 public:
  void record(uint64_t ns) {
    ++buckets_[index(ns)];
    ++count_;
    sum_ += ns;
    max_ = std::max(max_, ns);
  }

  void merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0; }

  // The value below which a fraction `q` (0..1) of the samples lie: the midpoint of the bucket
  // holding that sample, never above the exact maximum.
  uint64_t quantile(double q) const {
    if (count_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count_));
    if (rank >= count_) rank = count_ - 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i];
      if (seen > rank) return std::min(midpoint(i), max_);
    }
    return max_;
  }

 private:
  static constexpr unsigned kSubBits = 7;  // 2^7 buckets below 128 ns, then 64 per octave
  static constexpr unsigned kHalf = 1u << (kSubBits - 1);
  static constexpr unsigned kMaxBits = 45;  // clamp at ~9.7 hours
  static constexpr size_t kBuckets = (kMaxBits - kSubBits + 2) * kHalf;

  static size_t index(uint64_t v) {
    if (v >= (uint64_t{1} << kMaxBits)) v = (uint64_t{1} << kMaxBits) - 1;
    if (v < (uint64_t{1} << kSubBits)) return static_cast<size_t>(v);
    unsigned msb = 63 - static_cast<unsigned>(std::countl_zero(v));
    unsigned shift = msb - (kSubBits - 1);
    return static_cast<size_t>(shift) * kHalf + static_cast<size_t>(v >> shift);
  }

  static uint64_t midpoint(size_t i) {
    if (i < (size_t{1} << kSubBits)) return i;
    size_t shift = i / kHalf - 1;
    uint64_t low = static_cast<uint64_t>(i - shift * kHalf) << shift;
    return low + ((uint64_t{1} << shift) >> 1);
  }

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace bench
