#include "gateway/metrics/http2_metrics.hpp"

namespace ssegw::metrics {
namespace {

// RFC 9113 section 7, in code order.
constexpr const char* kErrorNames[] = {
    "no_error",
    "protocol_error",
    "internal_error",
    "flow_control_error",
    "settings_timeout",
    "stream_closed",
    "frame_size_error",
    "refused_stream",
    "cancel",
    "compression_error",
    "connect_error",
    "enhance_your_calm",
    "inadequate_security",
    "http_1_1_required",
};

}  // namespace

Http2Metrics::Http2Metrics(Metrics& metrics)
    : connections_active(prometheus::BuildGauge()
                             .Name("ssegw_http2_connections_active")
                             .Help("Open client connections that speak HTTP/2")
                             .Register(metrics.registry())
                             .Add({})),
      streams_active(prometheus::BuildGauge()
                         .Name("ssegw_http2_streams_active")
                         .Help("Open HTTP/2 streams of clients")
                         .Register(metrics.registry())
                         .Add({})),
      floods(prometheus::BuildCounter()
                 .Name("ssegw_http2_floods_total")
                 .Help("HTTP/2 connections closed with ENHANCE_YOUR_CALM for a frame flood")
                 .Register(metrics.registry())
                 .Add({})),
      streams_stalled(prometheus::BuildCounter()
                          .Name("ssegw_http2_streams_stalled_total")
                          .Help("HTTP/2 streams reset because their answer waited on a shut "
                                "window for slow_consumer.stall_timeout")
                          .Register(metrics.registry())
                          .Add({})) {
  auto& family = prometheus::BuildCounter()
                     .Name("ssegw_http2_goaway_sent_total")
                     .Help("GOAWAY frames sent to HTTP/2 clients, by error code")
                     .Register(metrics.registry());
  for (uint32_t i = 0; i < kCodes; ++i) goaway_[i] = &family.Add({{"error", kErrorNames[i]}});
  goaway_[kCodes] = &family.Add({{"error", "unknown"}});
}

prometheus::Counter& Http2Metrics::goaway(uint32_t error_code) {
  return *goaway_[error_code < kCodes ? error_code : kCodes];
}

}  // namespace ssegw::metrics
