#include "gateway/metrics/tls_metrics.hpp"

namespace ssegw::metrics {
namespace {

prometheus::Family<prometheus::Counter>& handshakes(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("ssegw_tls_handshakes_total")
      .Help("TLS handshakes on the listener, by result (failed: also ended before completion)")
      .Register(r);
}

prometheus::Family<prometheus::Counter>& reloads(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("ssegw_tls_certificate_reloads_total")
      .Help("Certificate and key reloads on SIGHUP, by result (failed: the old pair stays)")
      .Register(r);
}

}  // namespace

TlsMetrics::TlsMetrics(Metrics& metrics)
    : handshakes_ok(handshakes(metrics.registry()).Add({{"result", "ok"}})),
      handshakes_failed(handshakes(metrics.registry()).Add({{"result", "failed"}})),
      reloads_ok(reloads(metrics.registry()).Add({{"result", "ok"}})),
      reloads_failed(reloads(metrics.registry()).Add({{"result", "failed"}})),
      certificate_expiry(prometheus::BuildGauge()
                             .Name("ssegw_tls_certificate_expiry_seconds")
                             .Help("The serving certificate's notAfter, in Unix seconds")
                             .Register(metrics.registry())
                             .Add({})) {}

}  // namespace ssegw::metrics
