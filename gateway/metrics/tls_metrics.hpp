// The TLS listener's metrics (docs/operations.md#metrics): handshakes, certificate reloads and
// the certificate's expiry. One set for the process, shared by all workers (prometheus-cpp
// counters and gauges are atomic). Registered only when tls is configured.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "gateway/metrics/metrics.hpp"

namespace ssegw::metrics {

struct TlsMetrics {
  explicit TlsMetrics(Metrics& metrics);

  // ssegw_tls_handshakes_total{result}: "failed" also counts connections that ended before the
  // handshake completed (a port scan, plain HTTP to the TLS port, a handshake timed out).
  prometheus::Counter& handshakes_ok;
  prometheus::Counter& handshakes_failed;
  // ssegw_tls_certificate_reloads_total{result}: SIGHUP reloads.
  prometheus::Counter& reloads_ok;
  prometheus::Counter& reloads_failed;
  // ssegw_tls_certificate_expiry_seconds: the serving certificate's notAfter (Unix time).
  prometheus::Gauge& certificate_expiry;
};

}  // namespace ssegw::metrics
