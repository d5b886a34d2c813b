// What the mock saw, for tests to assert on (GET /mock/stats, POST /mock/reset).
//
// Counters (zeroed by reset) and gauges (kept by reset, they describe what is open now) are
// separate so that a reset in the middle of a test cannot make a gauge go negative. Times are
// uv_hrtime() (CLOCK_MONOTONIC) in nanoseconds, shown in milliseconds, so that a test on the
// same machine compares them with its own clock_gettime(CLOCK_MONOTONIC).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace ssegw::mock {

struct Counters {
  uint64_t requests = 0;           // every request except /mock/*
  uint64_t completed = 0;          // streams that reached their normal end
  uint64_t cancelled = 0;          // streams whose client went before the end
  uint64_t faulted = 0;            // streams ended by a fault knob (drop, error, garbage)
  uint64_t connections_total = 0;  // connections accepted
  // Connections whose first request was not /mock/*: a gateway's upstream connections, without
  // the ones a test opens for /mock/stats.
  uint64_t api_connections = 0;
  uint64_t tokens_sent = 0;  // tokens and feed events written
  uint64_t max_send_queue_bytes = 0;
  uint64_t blocked_ns = 0;          // time streams spent paused on a full send queue
  int64_t last_cancel_gap_ns = -1;  // last cancel: time since that stream's last write
  int64_t last_cancel_at_ns = -1;   // last cancel: when the disconnect was seen
  std::map<std::string, uint64_t, std::less<>> by_path;
};

struct Gauges {
  uint64_t active = 0;        // streaming responses in progress (feeds included)
  uint64_t feeds_active = 0;  // of which GET /feed/*
  uint64_t connections = 0;   // open connections
  uint64_t blocked_now = 0;   // streams paused on a full send queue right now
};

class Stats {
 public:
  Counters counters;
  Gauges gauges;

  void count_request(std::string_view path);
  void note_queue(uint64_t queued_bytes) {
    if (queued_bytes > counters.max_send_queue_bytes) counters.max_send_queue_bytes = queued_bytes;
  }
  void reset() { counters = Counters{}; }
  // `blocked_ns_now`: blocked time of streams still paused, not yet folded into the counter.
  std::string to_json(uint64_t blocked_ns_now) const;

 private:
  static constexpr size_t kMaxPaths = 1024;  // bounded: feeds have client-chosen names
};

}  // namespace ssegw::mock
