#include "gateway/server/responder.hpp"

#include <variant>

#include "gateway/base/clock.hpp"
#include "gateway/server/connection.hpp"
#include "gateway/server/handlers.hpp"
#include "gateway/server/multi_stream.hpp"
#include "gateway/server/proxy_response.hpp"
#include "gateway/server/sse_stream.hpp"
#include "gateway/server/worker.hpp"

namespace ssegw::server {

Responder::Responder(Connection& connection, http::Exchange& exchange)
    : connection_(connection), exchange_(exchange) {}

Responder::~Responder() = default;

Worker& Responder::worker() {
  return connection_.worker();
}

const std::string& Responder::client_ip() const {
  return connection_.client_ip();
}

// ---- requests ---------------------------------------------------------------------------------

// The policy stage first; only what it lets through reaches a handler, with its Permit. A permit
// with a budget waits for the worker's budget store (at once in memory, later with Redis); a
// pipelined request waits behind it like behind any answer that comes later.
void Responder::handle(http::Request& request) {
  route_awaited_ = false;  // a keep-alive connection's last route is not this request's
  Worker& worker = connection_.worker();
  const api::Policy& policy = worker.shared().policy;
  exchange_.answer_headers(policy.cors().response_headers(request.header("origin")));
  api::Admission admission = policy.admit(request, connection_.client_key(), worker.loop().now_ms(),
                                          static_cast<int64_t>(base::wall_clock_ms() / 1000));
  auto* permit = std::get_if<api::Permit>(&admission);
  if (!permit || !permit->budget) {
    admitted(request, std::move(admission));
    return;
  }
  uint64_t wait = ++waits_;
  budget_wait_ = wait;
  // The record to write if the check times out (answer_timeout()): a rejected request like any.
  budget_timeout_record_.reset();
  if (permit->route->usage)
    budget_timeout_record_ = std::make_unique<upstream::UsageRecord>(upstream::rejected_record(
        *permit->route, request, 503, std::string(permit->principal.label()),
        permit->principal.kind == api::Principal::Kind::kJwt ? permit->principal.claims.subject
                                                             : std::string()));
  policy.check_budget(
      std::move(*permit), worker.budgets(),
      [this, life = exchange_.lifetime(), wait, &request](api::Admission admission) {
        // Gone, or timed out meanwhile (answer_timeout()): the request was
        // answered, and the permit's leases go back as admission goes.
        if (!http::Exchange::alive(life) || budget_wait_ != wait) return;
        budget_wait_ = 0;
        budget_timeout_record_.reset();
        admitted(request, std::move(admission));
      });
}

void Responder::admitted(http::Request& request, api::Admission admission) {
  if (const auto* refused = std::get_if<api::Refusal>(&admission)) {
    exchange_.set_label(refused->label);
    if (refused->route && refused->route->usage)
      report_rejected(upstream::rejected_record(*refused->route, request, refused->status,
                                                refused->key_label, refused->subject));
    exchange_.respond_error(refused->status, refused->code, refused->message, refused->headers);
    return;
  }
  handle_request(*this, request, std::move(std::get<api::Permit>(admission)));
}

// A refused route request's usage record. Counted always; logged only when the principal is known:
// a client without a token could otherwise write the log as fast as it sends requests.
void Responder::report_rejected(const upstream::UsageRecord& record) {
  Worker& worker = connection_.worker();
  bool log_line = worker.config().log.access && record.key_label != "anonymous";
  upstream::report_usage(record, worker.metrics(), log_line);
}

// A subscription or an info still waiting for its owner is forgotten: what the owner answers
// now is undone when its callback finds nothing waiting (joined()).
http::StreamHandler::Timeout Responder::answer_timeout() {
  if (budget_wait_) {  // Redis has not answered the budget check, nor been declared lost
    budget_wait_ = 0;
    if (budget_timeout_record_) report_rejected(std::move(*budget_timeout_record_));
    budget_timeout_record_.reset();
    return {"backplane_unavailable",
            "the budget counters in the Redis backplane did not answer within "
            "limits.owner_timeout"};
  }
  connection_.worker().metrics().owner_timeouts.Increment();
  cancel_wait_ = 0;
  stream_awaited_ = false;
  stream_.reset();
  multi_.reset();  // its channels that joined leave; the others' joins find nothing
  return {"owner_timeout", "the channel's owner did not answer within limits.owner_timeout"};
}

uint64_t Responder::await_cancel() {
  cancel_wait_ = ++waits_;
  return cancel_wait_;
}

void Responder::await_stream(std::unique_ptr<SseStream> stream) {
  stream_ = std::move(stream);
  stream_awaited_ = true;
}

hub::Member Responder::joined(hub::Admission& admission) {
  if (!stream_awaited_ || !stream_) return {};  // timed out meanwhile
  stream_awaited_ = false;
  using Status = hub::Admission::Status;
  if (admission.status == Status::kRefused) {
    stream_.reset();
    switch (admission.refused) {
      case hub::Refusal::kTooManySources:
        exchange_.respond_error(503, "too_many_sources", "the gateway is at limits.max_sources");
        break;
      case hub::Refusal::kBackplaneUnavailable:
        exchange_.respond_error(503, "backplane_unavailable", "the Redis backplane is unreachable",
                                "Retry-After: 1\r\n");
        break;
      default:
        exchange_.respond_error(503, "too_many_channels", "the gateway is at limits.max_channels");
        break;
    }
    return {};
  }
  if (admission.status == Status::kNoContent) {
    stream_.reset();
    exchange_.respond(204, "", "");  // the generation is complete: tells EventSource to stop
    return {};
  }
  return stream_->begin(admission);
}

MultiStream& Responder::await_multi(std::unique_ptr<MultiStream> stream) {
  multi_ = std::move(stream);
  return *multi_;
}

hub::Member Responder::multi_joined(size_t channel, hub::Admission& admission) {
  if (!multi_) return {};  // timed out meanwhile
  return multi_->joined(channel, admission);
}

bool Responder::awaiting_multi() const {
  return multi_ && multi_->awaiting();
}

// A route's upstream has its connect and first-byte timeouts (upstreams.NAME.*): an LLM that
// thinks for longer than limits.owner_timeout before its first byte is not cut by the session.
bool Responder::own_deadline() const {
  return route_awaited_ && proxy_ && !exchange_.streaming();
}

ProxyResponse& Responder::proxy(std::unique_ptr<ProxyResponse> response) {
  route_awaited_ = true;
  proxy_ = std::move(response);  // the previous request's, long finished, goes
  return *proxy_;
}

// ---- the stream -------------------------------------------------------------------------------

void Responder::drained() {
  if (stream_) stream_->drained();
  if (multi_) multi_->drained();
  if (proxy_) proxy_->progress();  // a queue emptied by uv_try_write completes no write
}

void Responder::progress() {
  if (proxy_) proxy_->progress();
}

void Responder::tick(uint64_t now_ms) {
  if (stream_ && exchange_.streaming())
    stream_->tick(now_ms);
  else if (multi_)  // refused too: its joined channels leave (MultiStream::tick)
    multi_->tick(now_ms);
  else if (proxy_)  // before its head too: a retry of the same upstream waits for a tick
    proxy_->tick(now_ms);
}

bool Responder::end_for_shutdown() {
  if (!exchange_.streaming()) return false;
  if (stream_) {
    stream_->end();
    return true;
  }
  if (multi_) {
    multi_->end();
    return true;
  }
  return false;
}

void Responder::closed() {
  if (proxy_) proxy_->gone();
  if (stream_) stream_->leave();
  if (multi_) multi_->leave();
}

}  // namespace ssegw::server
