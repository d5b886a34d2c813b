// HTTP/2's metrics (docs/operations.md#metrics): connections and streams open, and the GOAWAYs
// the gateway sent, by error code. One set for the process, shared by all workers.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <cstdint>

#include "gateway/metrics/metrics.hpp"

namespace ssegw::metrics {

struct Http2Metrics {
  explicit Http2Metrics(Metrics& metrics);

  // ssegw_http2_goaway_sent_total{error}: the RFC 9113 error code's name, lower case; codes
  // outside the fourteen known ones count as "unknown" (a bounded label set).
  prometheus::Counter& goaway(uint32_t error_code);

  prometheus::Gauge& connections_active;
  prometheus::Gauge& streams_active;
  // Connections closed for a flood (frames that carry nothing, rapid resets, CONTINUATION or
  // SETTINGS/PING floods), counted once each.
  prometheus::Counter& floods;
  // Streams reset (RST_STREAM CANCEL) because their queued answer made no progress for
  // slow_consumer.stall_timeout: the client kept the stream's window shut.
  prometheus::Counter& streams_stalled;

 private:
  static constexpr uint32_t kCodes = 14;  // NO_ERROR (0) .. HTTP_1_1_REQUIRED (0xd)
  prometheus::Counter* goaway_[kCodes + 1];
};

}  // namespace ssegw::metrics
