// What every SSE answer checks on each tick, single-channel (SseStream) or multi-channel
// (MultiStream): a heartbeat when the stream has been quiet for `heartbeat`, and whether the
// client has stopped reading: bytes wait and the kernel has taken none of them for
// slow_consumer.stall_timeout. Such a client's queue (a replay is exempt from max_queued_bytes)
// must not stay pinned for as long as it holds the socket.
#pragma once

#include <cstdint>

#include "gateway/http/exchange.hpp"

namespace ssegw::server {

class Worker;

class StreamWatch {
 public:
  // Something was written to the stream now.
  void wrote(uint64_t now_ms) { last_output_ms_ = now_ms; }

  // Writes the heartbeat when due; true when the client has stalled past the timeout (the
  // caller cuts it).
  bool tick(Worker& worker, http::Exchange& exchange, uint64_t now_ms);

 private:
  uint64_t last_output_ms_ = 0;
  // bytes_written() at the last tick, and since when it has not moved while bytes waited (0: not
  // stalled).
  uint64_t stall_written_ = 0;
  uint64_t stalled_since_ms_ = 0;
};

}  // namespace ssegw::server
