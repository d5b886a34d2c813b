#include "gateway/server/connection.hpp"

#include <llhttp.h>

#include <variant>

#include "gateway/api/client_limits.hpp"
#include "gateway/base/clock.hpp"
#include "gateway/server/handlers.hpp"
#include "gateway/server/proxy_response.hpp"
#include "gateway/server/sse_stream.hpp"
#include "gateway/server/worker.hpp"
#include "upstream/usage_record.hpp"

namespace ssegw::server {
namespace {

http::Session::Limits session_limits(const config::Config& config) {
  http::Session::Limits limits;
  limits.max_header_bytes = config.limits.max_header_bytes;
  limits.max_body_bytes = config.limits.max_event_bytes;
  limits.header_timeout_ms = static_cast<uint64_t>(config.limits.header_timeout.count());
  limits.idle_timeout_ms = static_cast<uint64_t>(config.limits.idle_timeout.count());
  limits.answer_timeout_ms = static_cast<uint64_t>(config.limits.owner_timeout.count());
  return limits;
}

}  // namespace

Connection::Connection(Worker& worker, uint64_t id)
    : http::Session(worker.loop(), session_limits(worker.config()), id), worker_(worker) {}

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

int64_t Connection::now_unix() const {
  return static_cast<int64_t>(base::wall_clock_ms() / 1000);
}

// ---- requests ---------------------------------------------------------------------------------

// The policy stage first; only what it lets through reaches a handler, with its Permit. A permit
// with a budget waits for the worker's budget store (at once in memory, later with Redis); a
// pipelined request waits behind it like behind any answer that comes later.
void Connection::handle(http::Request& request) {
  const api::Policy& policy = worker_.shared().policy;
  answer_headers(policy.cors().response_headers(request.header("origin")));
  api::Admission admission =
      policy.admit(request, client_key_, worker_.loop().now_ms(), now_unix());
  auto* permit = std::get_if<api::Permit>(&admission);
  if (!permit || !permit->budget) {
    admitted(request, std::move(admission));
    return;
  }
  uint64_t wait = ++budget_checks_;
  budget_wait_ = wait;
  // The record to write if the check times out (answer_timeout()): a rejected request like any.
  budget_timeout_record_.reset();
  if (permit->route->usage)
    budget_timeout_record_ = std::make_unique<upstream::UsageRecord>(upstream::rejected_record(
        *permit->route, request, 503, std::string(permit->principal.label()),
        permit->principal.kind == api::Principal::Kind::kJwt ? permit->principal.claims.subject
                                                             : std::string()));
  policy.check_budget(std::move(*permit), worker_.budgets(),
                      [this, life = lifetime(), wait, &request](api::Admission admission) {
                        // Gone, or timed out meanwhile (answer_timeout()): the request was
                        // answered, and the permit's leases go back as admission goes.
                        if (!http::Exchange::alive(life) || budget_wait_ != wait) return;
                        budget_wait_ = 0;
                        budget_timeout_record_.reset();
                        admitted(request, std::move(admission));
                      });
}

void Connection::admitted(http::Request& request, api::Admission admission) {
  if (const auto* refused = std::get_if<api::Refusal>(&admission)) {
    set_label(refused->label);
    if (refused->route && refused->route->usage)
      report_rejected(upstream::rejected_record(*refused->route, request, refused->status,
                                                refused->key_label, refused->subject));
    respond_error(refused->status, refused->code, refused->message, refused->headers);
    return;
  }
  handle_request(*this, request, std::move(std::get<api::Permit>(admission)));
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

// A subscription or an info still waiting for its owner is forgotten: what the owner answers
// now is undone when its callback finds nothing waiting (joined()).
// A refused route request's usage record. Counted always; logged only when the principal is known:
// a client without a token could otherwise write the log as fast as it sends requests.
void Connection::report_rejected(const upstream::UsageRecord& record) {
  bool log_line = worker_.config().log.access && record.key_label != "anonymous";
  upstream::report_usage(record, worker_.metrics(), log_line);
}

http::Session::Timeout Connection::answer_timeout() {
  if (budget_wait_) {  // Redis has not answered the budget check, nor been declared lost
    budget_wait_ = 0;
    if (budget_timeout_record_) report_rejected(std::move(*budget_timeout_record_));
    budget_timeout_record_.reset();
    return {"backplane_unavailable",
            "the budget counters in the Redis backplane did not answer within "
            "limits.owner_timeout"};
  }
  worker_.metrics().owner_timeouts.Increment();
  stream_awaited_ = false;
  stream_.reset();
  return {"owner_timeout", "the channel's owner did not answer within limits.owner_timeout"};
}

void Connection::await_stream(std::unique_ptr<SseStream> stream) {
  stream_ = std::move(stream);
  stream_awaited_ = true;
}

hub::Member Connection::joined(hub::Admission& admission) {
  if (!stream_awaited_ || !stream_) return {};  // timed out meanwhile
  stream_awaited_ = false;
  using Status = hub::Admission::Status;
  if (admission.status == Status::kRefused) {
    stream_.reset();
    switch (admission.refused) {
      case hub::Refusal::kTooManySources:
        respond_error(503, "too_many_sources", "the gateway is at limits.max_sources");
        break;
      case hub::Refusal::kBackplaneUnavailable:
        respond_error(503, "backplane_unavailable", "the Redis backplane is unreachable",
                      "Retry-After: 1\r\n");
        break;
      default:
        respond_error(503, "too_many_channels", "the gateway is at limits.max_channels");
        break;
    }
    return {};
  }
  if (admission.status == Status::kNoContent) {
    stream_.reset();
    respond(204, "", "");  // the generation is complete: tells EventSource to stop
    return {};
  }
  return stream_->begin(admission);
}

ProxyResponse& Connection::proxy(std::unique_ptr<ProxyResponse> response) {
  proxy_ = std::move(response);  // the previous request's, long finished, goes
  return *proxy_;
}

// ---- the stream -------------------------------------------------------------------------------

void Connection::on_stream_drained() {
  if (stream_) stream_->drained();
  if (proxy_) proxy_->progress();  // a queue emptied by uv_try_write completes no write
}

void Connection::on_stream_progress() {
  if (proxy_) proxy_->progress();
}

void Connection::tick(uint64_t now_ms) {
  Session::tick(now_ms);
  if (!is_open()) return;
  if (stream_ && streaming())
    stream_->tick(now_ms);
  else if (proxy_)  // before its head too: a retry of the same upstream waits for a tick
    proxy_->tick(now_ms);
}

void Connection::begin_shutdown() {
  if (stream_ && streaming()) {
    stream_->end();
    return;
  }
  Session::begin_shutdown();
}

void Connection::on_session_closed() {
  if (!client_key_.empty()) worker_.shared().client_limits.close_connection(client_key_);
  if (proxy_) proxy_->gone();
  if (stream_) stream_->leave();
  worker_.connection_closed(this);
}

}  // namespace ssegw::server
