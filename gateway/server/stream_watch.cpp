#include "gateway/server/stream_watch.hpp"

#include "gateway/server/worker.hpp"

namespace ssegw::server {

bool StreamWatch::tick(Worker& worker, http::Exchange& exchange, uint64_t now_ms) {
  const config::Config& config = worker.config();
  if (now_ms - last_output_ms_ >= static_cast<uint64_t>(config.heartbeat.count())) {
    exchange.write_frame(worker.shared().heartbeat_frame);
    last_output_ms_ = now_ms;
  }
  uint64_t written = exchange.bytes_written();
  if (exchange.unsent_bytes() == 0 || written != stall_written_) {
    stall_written_ = written;
    stalled_since_ms_ = 0;
    return false;
  }
  if (stalled_since_ms_ == 0) {
    stalled_since_ms_ = now_ms;
    return false;
  }
  return now_ms - stalled_since_ms_ >=
         static_cast<uint64_t>(config.slow_consumer.stall_timeout.count());
}

}  // namespace ssegw::server
