// What the controller, the publisher and the subscriber loops share during a run.
//
// Rules:
// - Each atomic has one writer. Subscriber loops write their channel's `connected`; only the
//   publisher (on the main loop) writes `seq`; only the controller writes `phase`.
// - Relaxed ordering is enough: nothing else is published through these values, they are counts
//   that are read for decisions (start publishing, stop) and for the expected-delivery tally.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/options.hpp"

namespace bench {

enum class Phase : int { Connect, Settle, Publish, Drain, Stop };

struct ChannelState {
  std::atomic<uint32_t> connected{0};  // subscribers with a 200 head and an open stream
  std::atomic<uint64_t> seq{0};        // last sequence number handed to a publish request
};

struct RunState {
  explicit RunState(const Options& o) : options(o), channels(new ChannelState[o.channels]) {
    names.reserve(o.channels);
    for (uint32_t c = 0; c < o.channels; ++c) names.push_back(o.channel_prefix + std::to_string(c));
  }

  Phase phase() const { return phase_.load(std::memory_order_relaxed); }
  void set_phase(Phase p) { phase_.store(p, std::memory_order_relaxed); }

  const Options& options;
  uint32_t run_id = 0;
  uint64_t start_ns = 0;
  std::unique_ptr<ChannelState[]> channels;
  std::vector<std::string> names;

 private:
  std::atomic<Phase> phase_{Phase::Connect};
};

// A counter with one writing thread and any number of readers: a plain load and store, no locked
// instruction on the hot path.
inline void bump(std::atomic<uint64_t>& counter, uint64_t by = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace bench
