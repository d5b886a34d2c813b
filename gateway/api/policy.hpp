// The policy stage: the one place every request passes before a handler runs (docs/security.md).
//
// admit() classifies a request (publish, subscribe, info, route, cancel, ops, demo, preflight),
// then applies, in this order:
//   1. syntax: one Host, a known path and method, valid channel names, event types and UTF-8;
//   2. authentication: the request's token (credentials.hpp) becomes a Principal, or 401;
//   3. authorization: the principal's grants cover the channel or the route, or 403; a token from
//      the cookie needs an allowed or same Origin (CSRF), or 403 forbidden_origin;
//   4. per-client limits: publishes (and cancels) per second and running streams per client
//      address, or 429;
//   5. global limits: concurrent requests per upstream, or 503;
//   6. budgets: a route request of a key or JWT subject with a budget (budgets.hpp) names its
//      account in the permit; check_budget() then asks the worker's budget store, which answers
//      at once (in memory) or later (Redis): 429, 503, or the permit with its slot and charge hook.
// Only then does it hand out a Permit, and every handler takes one: a handler cannot be reached
// around this stage, and a new kind of request gets its checks here or nowhere.
//
// One check cannot be made here: whether a cancel's principal started the generation it names,
// which only the worker running that generation knows. The stage decides everything else and
// puts the rest in the Permit (CancelRights), whose judge() the registry applies after its lookup
// (server/generations.hpp); nothing else decides who may cancel.
//
// Rules:
// - One Policy is shared by all workers; admit() is const and thread-safe (the limits it takes
//   from lock or use atomics).
// - A Permit for a route holds the route's leases (a stream slot of its client address, a slot of
//   its upstream, its budget's slot); whoever runs the request keeps them until the request ends,
//   and every ending gives them back (base::Lease).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "gateway/api/budgets.hpp"
#include "gateway/api/client_limits.hpp"
#include "gateway/api/cors.hpp"
#include "gateway/api/credentials.hpp"
#include "gateway/api/jwt.hpp"
#include "gateway/api/router.hpp"
#include "gateway/base/lease.hpp"
#include "gateway/http/request.hpp"
#include "gateway/metrics/metrics.hpp"

namespace ssegw::api {

enum class RequestKind {
  kPublish,         // POST /v1/channels/{channel}/events
  kSubscribe,       // GET /v1/channels/{channel}/events
  kMultiSubscribe,  // GET /v1/events?channel=a&channel=b...: one stream of many channels
  kInfo,            // GET /v1/channels/{channel}
  kRoute,           // a configured route: proxied to its upstream
  kCancel,          // DELETE /v1/generations/{gen}: stops a running generation
  kOps,             // GET /healthz, /readyz, /metrics
  kDemo,            // GET / (demo.enabled)
  kPreflight,       // OPTIONS on any of the above
};

// Who sent a request, once its token has been checked.
struct Principal {
  enum class Kind { kAnonymous, kPublishToken, kKey, kJwt };
  Kind kind = Kind::kAnonymous;
  Credential::Source source = Credential::Source::kNone;
  const config::KeyConfig* key = nullptr;  // kKey
  Claims claims;                           // kJwt

  // For logs and metric labels: a key's name, "jwt", "publish_token" or "anonymous". Never a JWT
  // subject, which is unbounded.
  std::string_view label() const;
  // Who starts a generation, as the cancel API compares it: "key:<name>", "sub:<JWT subject>",
  // or "" for nobody in particular (anonymous, a publish token, a JWT without a subject).
  std::string starter() const;
};

// What a cancel's principal may stop, as far as the policy stage can tell without the generation.
// The registry that finds the generation finishes the decision with judge().
struct CancelRights {
  enum class Verdict {
    kAllowed,
    kForbidden,  // 403: the principal may not cancel it
    kHidden,     // 404: as kForbidden, but the principal could not even know that it exists
  };

  // Publish rights on the generation's channel (or publishing is open): any generation of the
  // name may be stopped.
  bool any = false;
  // The principal could learn that the generation exists by subscribing to it
  // (auth.anonymous_subscribe, or subscribe rights on the channel): a refusal may then say 403.
  // Otherwise it says 404, as for a generation that does not exist.
  bool may_see = false;
  // The principal's starter(): a generation it started may be stopped.
  std::string starter;

  // For a running generation that `generation_starter` started.
  Verdict judge(std::string_view generation_starter) const;
};

// A request refused by the policy stage: the answer to send.
struct Refusal {
  int status = 0;
  const char* code = "";
  std::string message;
  std::string headers;  // extra "Name: value\r\n" lines: Allow, WWW-Authenticate, Retry-After
  const char* label = "unmatched";  // the route template, for ssegw_http_requests_total
  // A refused request for a configured route (not a preflight): it still gets a usage record,
  // outcome "rejected", under the principal known by then.
  const config::RouteConfig* route = nullptr;
  std::string key_label = "anonymous";  // Principal::label()
  std::string subject;                  // a JWT's subject, for the record only
};

class Permit;

// A refusal of the request `permit` describes: the answer, and for a route request the record
// of who was refused (its usage record).
Refusal make_refusal(int status, const char* code, std::string message, const Permit& permit,
                     std::string headers = {});

class Policy;

// What the policy stage let through. Only Policy makes one.
class Permit {
 public:
  Permit(Permit&&) = default;
  Permit& operator=(Permit&&) = default;

  RequestKind kind = RequestKind::kOps;
  const char* label = "unmatched";  // the route template, for metrics
  Route api_route = Route::kNotFound;
  // kPublish, kSubscribe, kInfo; kRoute: the SSE-Channel tee target; kCancel: the generation
  std::string channel;
  std::vector<std::string> channels;           // kMultiSubscribe: in the query's order, distinct
  std::string event_type;                      // kPublish: "" for the default type
  const config::RouteConfig* route = nullptr;  // kRoute
  std::string allow;                           // kPreflight: the path's methods
  Principal principal;
  CancelRights cancel;  // kCancel
  // kRoute: the gateway checked a token for this route, so it must not reach the upstream.
  bool strip_credentials = false;
  // kRoute: held while the proxied request runs.
  base::Lease stream_slot;
  base::Lease upstream_slot;
  uint32_t upstream_index = 0;  // which of the route's upstreams that slot is of
  // kRoute of a principal with a budget: the account (stage 6); after check_budget() its slot,
  // and the hook that charges it the answer's tokens.
  std::optional<BudgetAccount> budget;
  base::Lease budget_slot;
  std::function<void(uint64_t tokens)> charge;

 private:
  friend class Policy;
  Permit() = default;
};

using Admission = std::variant<Permit, Refusal>;

class Policy {
 public:
  // limits, upstream_limits and budget_metrics are shared by every worker and outlive the
  // policy.
  Policy(const config::Config& config, ClientLimits& limits,
         const base::NamedLimits& upstream_limits, metrics::Metrics& metrics,
         metrics::BudgetMetrics& budget_metrics);
  ~Policy();

  // Stages 1 to 6. A permit with a budget still needs check_budget().
  Admission admit(const http::Request& request, std::string_view client_ip, uint64_t now_ms,
                  int64_t now_unix) const;

  // The end of stage 6 for a permit with a budget: store (the worker's, which must outlive the
  // permit's charge hook) admits the account, and done gets the permit or the refusal, exactly
  // once, at once or later (then on the same thread). Counts the refusal.
  using Done = std::function<void(Admission admission)>;
  void check_budget(Permit permit, BudgetStore& store, Done done) const;

  const CorsPolicy& cors() const { return cors_; }

 private:
  // Each stage fills in the permit or refuses; admit() runs them in order.
  using Stage = std::optional<Refusal> (Policy::*)(const http::Request&, Permit&,
                                                   std::string_view client_ip, uint64_t now_ms,
                                                   int64_t now_unix) const;
  std::optional<Refusal> classify_stage(const http::Request&, Permit&, std::string_view, uint64_t,
                                        int64_t) const;
  // Stage 1 for GET /v1/events: the channel= list.
  std::optional<Refusal> classify_channel_list(const http::Request& request, Permit& permit) const;
  std::optional<Refusal> authenticate_stage(const http::Request&, Permit&, std::string_view,
                                            uint64_t, int64_t) const;
  std::optional<Refusal> authorize_stage(const http::Request&, Permit&, std::string_view, uint64_t,
                                         int64_t) const;
  std::optional<Refusal> client_limits_stage(const http::Request&, Permit&, std::string_view,
                                             uint64_t, int64_t) const;
  std::optional<Refusal> global_limits_stage(const http::Request&, Permit&, std::string_view,
                                             uint64_t, int64_t) const;
  std::optional<Refusal> budgets_stage(const http::Request&, Permit&, std::string_view, uint64_t,
                                       int64_t) const;

  const config::Config& config_;
  ClientLimits& limits_;
  const base::NamedLimits& upstream_limits_;
  metrics::Metrics& metrics_;
  CorsPolicy cors_;
  std::unique_ptr<JwtVerifier> jwt_;
  std::unordered_map<const config::KeyConfig*, BudgetAccount> key_budgets_;  // keys with limits
  metrics::BudgetSeries* subject_series_ = nullptr;  // "jwt", with auth.jwt.subject_limits
};

}  // namespace ssegw::api
