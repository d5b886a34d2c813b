#include "gateway/server/tls_setup.hpp"

#include "gateway/base/log.hpp"
#include "gateway/metrics/tls_metrics.hpp"
#include "gateway/net/tls_context.hpp"
#include "gateway/server/worker.hpp"

namespace ssegw::server {
namespace {

net::TlsFiles tls_files(const config::ListenerTlsConfig& tls) {
  return {tls.cert_file, tls.cert_where, tls.key_file, tls.key_where};
}

}  // namespace

std::vector<std::string> alpn_protocols(const config::Config& config) {
  if (config.http2.enabled) return {"h2", "http/1.1"};
  return {"http/1.1"};
}

std::shared_ptr<const net::TlsContext> load_tls(const config::Config& config, std::string& error) {
  return net::TlsContext::load(tls_files(config.tls), alpn_protocols(config), error);
}

void check_tls(const config::Config& config) {
  if (!config.tls.enabled()) return;
  std::string error;
  if (!load_tls(config, error)) throw config::Error(error);
}

void serve_tls(Shared& shared, std::shared_ptr<const net::TlsContext> context) {
  shared.tls_metrics->certificate_expiry.Set(static_cast<double>(context->not_after()));
  shared.tls.set(std::move(context));
}

void reload_tls(Shared& shared) {
  if (!shared.config.tls.enabled()) return;
  std::string error;
  std::shared_ptr<const net::TlsContext> context = load_tls(shared.config, error);
  if (!context) {
    shared.tls_metrics->reloads_failed.Increment();
    base::log::error("certificate reload failed: the previous certificate stays",
                     {{"error", error}});
    return;
  }
  int64_t not_after = context->not_after();
  serve_tls(shared, std::move(context));
  shared.tls_metrics->reloads_ok.Increment();
  base::log::info("certificate reloaded", {{"not_after", not_after}});
}

}  // namespace ssegw::server
