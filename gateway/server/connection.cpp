#include "gateway/server/connection.hpp"

#include <llhttp.h>

#include "gateway/api/client_limits.hpp"
#include "gateway/server/worker.hpp"

namespace ssegw::server {
namespace {

http::Session::Limits session_limits(const config::Config& config) {
  http::Session::Limits limits;
  limits.max_header_bytes = config.limits.max_header_bytes;
  limits.max_body_bytes = config.limits.max_event_bytes;
  limits.header_timeout_ms = static_cast<uint64_t>(config.limits.header_timeout.count());
  limits.idle_timeout_ms = static_cast<uint64_t>(config.limits.idle_timeout.count());
  limits.answer_timeout_ms = static_cast<uint64_t>(config.limits.owner_timeout.count());
  http::H2Session::Limits& h2 = limits.http2;
  h2.max_header_bytes = limits.max_header_bytes;
  h2.max_body_bytes = limits.max_body_bytes;
  h2.header_timeout_ms = limits.header_timeout_ms;
  h2.idle_timeout_ms = limits.idle_timeout_ms;
  h2.answer_timeout_ms = limits.answer_timeout_ms;
  h2.stall_timeout_ms = static_cast<uint64_t>(config.slow_consumer.stall_timeout.count());
  h2.max_concurrent_streams = config.http2.max_concurrent_streams;
  h2.initial_window_size = config.http2.initial_window_size;
  return limits;
}

}  // namespace

Connection::Connection(Worker& worker, uint64_t id)
    : http::Session(worker.loop(), session_limits(worker.config()), id),
      worker_(worker),
      responder_(*this, *this) {}

Connection::~Connection() = default;

bool Connection::admit_client() {
  std::string ip = peer_address();
  std::string key = api::client_key(ip);
  if (worker_.shared().client_limits.open_connection(key)) {
    client_ip_ = std::move(ip);
    client_key_ = std::move(key);
    return true;
  }
  worker_.metrics().rejected_connections_per_ip.Increment();
  refuse(429, "too_many_connections_per_ip",
         "this client address is at limits.max_connections_per_ip", "Retry-After: 1\r\n");
  return false;
}

void Connection::reject_overloaded() {
  refuse(503, "too_many_connections", "the gateway is at limits.max_connections");
}

void Connection::on_tls_handshake(bool ok) {
  metrics::TlsMetrics& m = *worker_.shared().tls_metrics;
  (ok ? m.handshakes_ok : m.handshakes_failed).Increment();
}

// The first bytes decide, over TLS too: a client that chose "h2" by ALPN starts with the same
// preface as an h2c one (RFC 9113 3.4), and ALPN offers "h2" only with http2.enabled
// (tls_setup.cpp).
void Connection::start() {
  Session::start(worker_.config().http2.enabled ? this : nullptr);
}

// Publishes answer later when their owner is another worker or Redis; the next pipelined
// publish may go ahead meanwhile. Anything else waits for them, so that answers stay in order
// and a stream never starts behind them.
bool Connection::may_overlap(const http::Request& request) const {
  return request.method == HTTP_POST &&
         api::match_route(request.path()).route == api::Route::kChannelEvents;
}

void Connection::count(const char* label, int status) {
  worker_.metrics().http_request(label, status).Increment();
}

void Connection::tick(uint64_t now_ms) {
  Session::tick(now_ms);
  if (!is_open() || http2()) return;
  responder_.tick(now_ms);
}

void Connection::begin_shutdown() {
  if (!http2() && responder_.end_for_shutdown()) return;
  Session::begin_shutdown();
}

void Connection::on_session_closed() {
  if (!client_key_.empty()) worker_.shared().client_limits.close_connection(client_key_);
  responder_.closed();
  if (counted_h2_) worker_.shared().http2_metrics.connections_active.Decrement();
  worker_.connection_closed(this);
}

// ---- HTTP/2 -----------------------------------------------------------------------------------

std::unique_ptr<http::StreamHandler> Connection::open_stream(http::Exchange& exchange) {
  return std::make_unique<Responder>(*this, exchange);
}

void Connection::http2_started() {
  counted_h2_ = true;
  worker_.shared().http2_metrics.connections_active.Increment();
}

void Connection::stream_opened() {
  worker_.shared().http2_metrics.streams_active.Increment();
}

void Connection::stream_closed() {
  worker_.shared().http2_metrics.streams_active.Decrement();
}

void Connection::goaway_sent(uint32_t error_code) {
  worker_.shared().http2_metrics.goaway(error_code).Increment();
}

void Connection::flood() {
  worker_.shared().http2_metrics.floods.Increment();
}

void Connection::stream_stalled() {
  worker_.shared().http2_metrics.streams_stalled.Increment();
}

}  // namespace ssegw::server
