#include "gateway/api/policy.hpp"

#include <llhttp.h>

#include <algorithm>

#include "gateway/base/ascii.hpp"
#include "gateway/base/json.hpp"
#include "gateway/hub/generation.hpp"

namespace ssegw::api {
namespace {

using Kind = RequestKind;

// Compares without an early exit, so that the time taken does not reveal a matching prefix.
bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// An Origin ("scheme://host[:port]") naming the host the request was sent to: a page of the
// gateway's own origin, not a cross-site request. Compared with the Host header, with the
// scheme's default port filled in on either side.
bool same_origin(std::string_view origin, std::string_view host) {
  std::string_view authority;
  std::string_view default_port;
  if (origin.starts_with("http://")) {
    authority = origin.substr(7);
    default_port = ":80";
  } else if (origin.starts_with("https://")) {
    authority = origin.substr(8);
    default_port = ":443";
  } else {
    return false;
  }
  if (authority.empty() || host.empty()) return false;
  if (base::iequals(authority, host)) return true;
  auto has_port = [](std::string_view a) {
    size_t colon = a.rfind(':');
    return colon != std::string_view::npos && a.find(']', colon) == std::string_view::npos;
  };
  if (!has_port(authority) && has_port(host))
    return base::iequals(std::string(authority) + std::string(default_port), host);
  if (has_port(authority) && !has_port(host))
    return base::iequals(authority, std::string(host) + std::string(default_port));
  return false;
}

Refusal refusal(int status, const char* code, std::string message, const Permit& permit,
                std::string headers = {}) {
  return make_refusal(status, code, std::move(message), permit, std::move(headers));
}

Refusal unauthorized(std::string message, const Permit& permit) {
  return refusal(401, "unauthorized", std::move(message), permit, "WWW-Authenticate: Bearer\r\n");
}

bool grants_publish(const Principal& p, std::string_view channel) {
  switch (p.kind) {
    case Principal::Kind::kPublishToken:
      return true;
    case Principal::Kind::kKey:
      return allows(p.key->publish, channel);
    case Principal::Kind::kJwt:
      return allows(p.claims.publish, channel);
    case Principal::Kind::kAnonymous:
      return false;
  }
  return false;
}

bool grants_subscribe(const Principal& p, std::string_view channel) {
  switch (p.kind) {
    case Principal::Kind::kKey:
      return allows(p.key->subscribe, channel);
    case Principal::Kind::kJwt:
      return allows(p.claims.subscribe, channel);
    case Principal::Kind::kPublishToken:
    case Principal::Kind::kAnonymous:
      return false;
  }
  return false;
}

bool grants_route(const Principal& p, std::string_view path) {
  switch (p.kind) {
    case Principal::Kind::kKey:
      return allows(p.key->routes, path);
    case Principal::Kind::kJwt:
      return allows(p.claims.routes, path);
    case Principal::Kind::kPublishToken:
    case Principal::Kind::kAnonymous:
      return false;
  }
  return false;
}

// A malformed generation name is a 404 like an unknown one: it names no generation, and the
// answer tells nothing that the documented shape of the names does not.
constexpr const char* kNoGeneration =
    "no running generation of this name (gen- and 32 lower-case hex digits)";

}  // namespace

Refusal make_refusal(int status, const char* code, std::string message, const Permit& permit,
                     std::string headers) {
  Refusal r;
  r.status = status;
  r.code = code;
  r.message = std::move(message);
  r.headers = std::move(headers);
  r.label = permit.label;
  if (permit.route && permit.kind != RequestKind::kPreflight) {
    r.route = permit.route;
    r.key_label = std::string(permit.principal.label());
    if (permit.principal.kind == Principal::Kind::kJwt) r.subject = permit.principal.claims.subject;
  }
  return r;
}

std::string_view Principal::label() const {
  switch (kind) {
    case Kind::kAnonymous:
      return "anonymous";
    case Kind::kPublishToken:
      return "publish_token";
    case Kind::kKey:
      return key->name;
    case Kind::kJwt:
      return "jwt";
  }
  return "anonymous";
}

std::string Principal::starter() const {
  std::string id;
  if (kind == Kind::kKey) {
    id = "key:";
    id += key->name;
  } else if (kind == Kind::kJwt && !claims.subject.empty()) {
    id = "sub:";
    id += claims.subject;
  }
  return id;
}

CancelRights::Verdict CancelRights::judge(std::string_view generation_starter) const {
  if (any || (!starter.empty() && starter == generation_starter)) return Verdict::kAllowed;
  return may_see ? Verdict::kForbidden : Verdict::kHidden;
}

Policy::Policy(const config::Config& config, ClientLimits& limits,
               const base::NamedLimits& upstream_limits, metrics::Metrics& metrics,
               metrics::BudgetMetrics& budget_metrics)
    : config_(config),
      limits_(limits),
      upstream_limits_(upstream_limits),
      metrics_(metrics),
      cors_(config.cors.allow_origins) {
  if (config.auth.jwt) jwt_ = std::make_unique<JwtVerifier>(*config.auth.jwt);
  for (const config::KeyConfig& key : config.auth.keys) {
    if (!key.limits.any()) continue;
    BudgetAccount& account = key_budgets_[&key];
    account.id = "key:" + key.name;
    account.limits = key.limits;
    account.series = budget_metrics.series(key.name);
  }
  if (config.auth.jwt && config.auth.jwt->subject_limits.any())
    subject_series_ = budget_metrics.series("jwt");
}

Policy::~Policy() = default;

Admission Policy::admit(const http::Request& request, std::string_view client_ip, uint64_t now_ms,
                        int64_t now_unix) const {
  Permit permit;
  static constexpr Stage kStages[] = {&Policy::classify_stage,      &Policy::authenticate_stage,
                                      &Policy::authorize_stage,     &Policy::client_limits_stage,
                                      &Policy::global_limits_stage, &Policy::budgets_stage};
  for (Stage stage : kStages) {
    if (std::optional<Refusal> refused =
            (this->*stage)(request, permit, client_ip, now_ms, now_unix))
      return std::move(*refused);
  }
  return permit;
}

// ---- 1. syntax and classification ------------------------------------------------------------

std::optional<Refusal> Policy::classify_stage(const http::Request& request, Permit& permit,
                                              std::string_view, uint64_t, int64_t) const {
  // RFC 9112 section 3.2: an HTTP/1.1 request has exactly one Host; more than one is an error.
  size_t hosts = 0;
  for (const http::Header& h : request.headers) hosts += h.name == "host";
  if (hosts > 1 || (hosts == 0 && !request.http10()))
    return refusal(400, "bad_request", "an HTTP/1.1 request needs exactly one Host header", permit);

  auto method = static_cast<llhttp_method_t>(request.method);
  std::string_view path = request.path();
  for (const config::RouteConfig& route : config_.routes) {
    if (path != route.path) continue;
    permit.label = route.path.c_str();
    permit.route = &route;
    if (method == HTTP_OPTIONS) {  // preflights are ours to answer, never the upstream's
      permit.kind = Kind::kPreflight;
      permit.allow = "GET, POST, OPTIONS";
      return std::nullopt;
    }
    // The methods an API takes; TRACE and extension methods never reach an upstream.
    static constexpr llhttp_method_t kRouteMethods[] = {HTTP_GET, HTTP_HEAD,  HTTP_POST,
                                                        HTTP_PUT, HTTP_PATCH, HTTP_DELETE};
    if (std::find(std::begin(kRouteMethods), std::end(kRouteMethods), method) ==
        std::end(kRouteMethods))
      return refusal(405, "method_not_allowed", "method not allowed on this route", permit,
                     "Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n");
    permit.kind = Kind::kRoute;
    if (route.resumable) {  // the channel to tee the answer into, if any
      permit.channel = std::string(request.header("sse-channel"));
      if (permit.channel.empty() && http::query_param(request.query(), "channel", permit.channel) ==
                                        http::QueryParam::kMalformed)
        return refusal(400, "invalid_channel", kChannelNameRule, permit);
      if (!permit.channel.empty() && !valid_channel_name(permit.channel))
        return refusal(400, "invalid_channel", kChannelNameRule, permit);
    }
    return std::nullopt;
  }

  RouteMatch match = match_route(path);
  if (match.route == Route::kDemo && !config_.demo.enabled) match.route = Route::kNotFound;
  permit.api_route = match.route;
  permit.label = route_label(match.route);
  if (match.route == Route::kNotFound)
    return refusal(404, "not_found", "no route for this path", permit);
  if (method == HTTP_OPTIONS) {
    permit.kind = Kind::kPreflight;
    permit.allow = allowed_methods(match.route);
    return std::nullopt;
  }
  bool allowed =
      match.route == Route::kGeneration
          ? method == HTTP_DELETE
          : method == HTTP_GET || (method == HTTP_POST && match.route == Route::kChannelEvents);
  if (!allowed)
    return refusal(405, "method_not_allowed", "method not allowed on this route", permit,
                   std::string("Allow: ") + allowed_methods(match.route) + "\r\n");
  switch (match.route) {
    case Route::kChannelEvents:
    case Route::kChannelInfo:
      if (match.invalid_name) return refusal(400, "invalid_channel", kChannelNameRule, permit);
      permit.channel = std::move(match.channel);
      break;
    default:
      break;
  }
  switch (match.route) {
    case Route::kChannelEvents:
      if (method == HTTP_GET) {
        permit.kind = Kind::kSubscribe;
        break;
      }
      permit.kind = Kind::kPublish;
      if (http::query_param(request.query(), "event", permit.event_type) !=
              http::QueryParam::kAbsent &&
          !valid_event_type(permit.event_type))
        return refusal(400, "invalid_event_type",
                       "event types are 1 to 64 characters of [A-Za-z0-9_.:-]", permit);
      if (!base::is_valid_utf8(request.body))
        return refusal(400, "invalid_utf8", "the event data must be UTF-8", permit);
      break;
    case Route::kChannelInfo:
      permit.kind = Kind::kInfo;
      break;
    case Route::kGeneration:
      if (match.invalid_name) return refusal(404, "not_found", kNoGeneration, permit);
      permit.kind = Kind::kCancel;
      permit.channel = std::move(match.channel);
      break;
    case Route::kDemo:
      permit.kind = Kind::kDemo;
      break;
    case Route::kEvents:
      permit.kind = Kind::kMultiSubscribe;
      return classify_channel_list(request, permit);
    default:
      permit.kind = Kind::kOps;
      break;
  }
  return std::nullopt;
}

// ---- 2. authentication -----------------------------------------------------------------------

std::optional<Refusal> Policy::authenticate_stage(const http::Request& request, Permit& permit,
                                                  std::string_view, uint64_t,
                                                  int64_t now_unix) const {
  const config::AuthConfig& auth = config_.auth;
  bool reads_token = false;
  switch (permit.kind) {
    case Kind::kPublish:
    case Kind::kSubscribe:
    case Kind::kMultiSubscribe:
    case Kind::kInfo:
    case Kind::kCancel:
      reads_token = auth.reads_tokens();
      break;
    case Kind::kRoute:
      // An open route passes the client's Authorization to the upstream untouched, unless the
      // answer is tee'd into a channel, which is publishing and needs publishing rights.
      reads_token = (permit.route->auth == config::RouteAuth::kRequired && auth.guards_routes()) ||
                    (!permit.channel.empty() && auth.publish_restricted());
      break;
    case Kind::kOps:
    case Kind::kDemo:
    case Kind::kPreflight:
      break;
  }
  if (!reads_token) return std::nullopt;
  Credential credential = find_credential(request);
  if (!credential.present()) return std::nullopt;  // anonymous; authorization decides

  Principal& principal = permit.principal;
  principal.source = credential.source;
  // Every static token is compared, matched or not, so that timing tells nothing.
  const config::KeyConfig* key = nullptr;
  for (const config::KeyConfig& k : auth.keys)
    if (constant_time_equal(credential.token, k.token)) key = &k;
  bool publish_token = false;
  for (const std::string& t : auth.publish_tokens)
    publish_token |= constant_time_equal(credential.token, t);
  if (key) {
    principal.kind = Principal::Kind::kKey;
    principal.key = key;
    return std::nullopt;
  }
  if (publish_token) {
    principal.kind = Principal::Kind::kPublishToken;
    return std::nullopt;
  }
  if (!jwt_) {
    metrics_.refused_unauthorized.Increment();
    return unauthorized("unknown token", permit);
  }
  VerifyResult result = jwt_->verify(credential.token, now_unix);
  if (!result.ok()) {
    metrics_.refused_unauthorized.Increment();
    return unauthorized(std::string("invalid token (") + jwt_error_name(result.error) + ")",
                        permit);
  }
  principal.kind = Principal::Kind::kJwt;
  principal.claims = std::move(result.claims);
  return std::nullopt;
}

// ---- 3. authorization ------------------------------------------------------------------------

std::optional<Refusal> Policy::authorize_stage(const http::Request& request, Permit& permit,
                                               std::string_view, uint64_t, int64_t) const {
  const config::AuthConfig& auth = config_.auth;
  const Principal& principal = permit.principal;
  // A browser attaches cookies to requests from any site: a cookie alone proves nothing about
  // who made the request, so its Origin must be one listed by name (never "*", never "null") or
  // the gateway's own. Without an Origin (a navigation), Sec-Fetch-Site tells a cross-site one.
  if (principal.source == Credential::Source::kCookie) {
    std::string_view origin = request.header("origin");
    bool trusted = origin.empty()
                       ? request.header("sec-fetch-site") != "cross-site"
                       : cors_.lists(origin) || same_origin(origin, request.header("host"));
    if (!trusted) {
      metrics_.refused_forbidden_origin.Increment();
      return refusal(403, "forbidden_origin",
                     "a request authenticated by cookie must come from an origin listed in "
                     "cors.allow_origins, or from the gateway's own",
                     permit);
    }
  }
  auto forbidden = [&](std::string message) {
    metrics_.refused_forbidden.Increment();
    return refusal(403, "forbidden", std::move(message), permit);
  };
  auto needs_token = [&](std::string message) {
    metrics_.refused_unauthorized.Increment();
    return unauthorized(std::move(message), permit);
  };
  // Publishing into a channel, and teeing an answer into one, is the same right.
  auto check_publish = [&]() -> std::optional<Refusal> {
    if (hub::has_generation_prefix(permit.channel)) {
      metrics_.refused_forbidden.Increment();
      return refusal(403, "reserved_channel",
                     "gen-* channels are written only by the answer they record", permit);
    }
    if (!auth.publish_restricted() || grants_publish(principal, permit.channel))
      return std::nullopt;
    if (principal.kind == Principal::Kind::kAnonymous)
      return needs_token("publishing needs Authorization: Bearer <token>");
    return forbidden("the token does not allow publishing into this channel");
  };

  switch (permit.kind) {
    case Kind::kPublish:
      return check_publish();
    case Kind::kSubscribe:
    case Kind::kInfo:
      if (auth.anonymous_subscribe || grants_subscribe(principal, permit.channel))
        return std::nullopt;
      if (principal.kind == Principal::Kind::kAnonymous) return needs_token("a token is needed");
      return forbidden("the token does not allow subscribing to this channel");
    case Kind::kMultiSubscribe:
      // Each channel as its own subscribe would be; the first refused one refuses them all.
      if (auth.anonymous_subscribe) return std::nullopt;
      for (const std::string& channel : permit.channels) {
        if (grants_subscribe(principal, channel)) continue;
        if (principal.kind == Principal::Kind::kAnonymous) return needs_token("a token is needed");
        std::string message = "the token does not allow subscribing to channel ";
        base::append_json_string(message, channel);  // quoted; names are plain ASCII
        return forbidden(std::move(message));
      }
      return std::nullopt;
    case Kind::kRoute: {
      const config::RouteConfig& route = *permit.route;
      if (route.auth == config::RouteAuth::kRequired && auth.guards_routes() &&
          !grants_route(principal, route.path)) {
        if (principal.kind == Principal::Kind::kAnonymous)
          return needs_token("this route needs a token");
        return forbidden("the token does not allow this route");
      }
      if (!permit.channel.empty())
        if (std::optional<Refusal> refused = check_publish()) return refused;
      // The token was the gateway's to check: it stays here, whoever the upstream is.
      permit.strip_credentials = principal.kind != Principal::Kind::kAnonymous;
      return std::nullopt;
    }
    case Kind::kCancel: {
      // Stopping a generation is writing its channel's last event: publish rights on the channel
      // allow it, whoever started the answer, and so does open publishing. Otherwise only the
      // generation's starter may, which the registry checks after its lookup (judge()): here,
      // a principal that cannot be anyone's starter is refused without any lookup.
      CancelRights& rights = permit.cancel;
      rights.any = !auth.publish_restricted() || grants_publish(principal, permit.channel);
      rights.may_see = auth.anonymous_subscribe || grants_subscribe(principal, permit.channel);
      rights.starter = principal.starter();
      if (rights.any || !rights.starter.empty()) return std::nullopt;
      if (principal.kind == Principal::Kind::kAnonymous)
        return needs_token("cancelling a generation needs a token");
      return forbidden("the token may not cancel this generation");
    }
    case Kind::kOps:
    case Kind::kDemo:
    case Kind::kPreflight:
      return std::nullopt;
  }
  return std::nullopt;
}

// ---- 4. per-client limits --------------------------------------------------------------------

std::optional<Refusal> Policy::client_limits_stage(const http::Request&, Permit& permit,
                                                   std::string_view client_ip, uint64_t now_ms,
                                                   int64_t) const {
  // A cancel costs a lookup on another worker or in Redis: cancels share the publishes' bucket, so
  // that a flood of them is bounded like a flood of publishes.
  if (permit.kind == Kind::kPublish || permit.kind == Kind::kCancel) {
    uint32_t retry_after = 0;
    if (!limits_.take_publish(std::string(client_ip), now_ms, retry_after)) {
      metrics_.rejected_publish_rate.Increment();
      return refusal(429, "rate_limited", "this client address is over limits.publish_rate_per_ip",
                     permit, "Retry-After: " + std::to_string(retry_after) + "\r\n");
    }
  }
  if (permit.kind == Kind::kRoute) {
    std::optional<base::Lease> slot = limits_.take_stream(std::string(client_ip));
    if (!slot) {
      metrics_.rejected_streams_per_ip.Increment();
      return refusal(429, "too_many_streams",
                     "this client address has limits.max_streams_per_ip answers running", permit,
                     "Retry-After: 1\r\n");
    }
    permit.stream_slot = std::move(*slot);
  }
  return std::nullopt;
}

// ---- 5. global limits ------------------------------------------------------------------------

std::optional<Refusal> Policy::global_limits_stage(const http::Request&, Permit& permit,
                                                   std::string_view, uint64_t, int64_t) const {
  if (permit.kind != Kind::kRoute) return std::nullopt;
  // The first upstream of the route with a free slot, among those its attempts may reach: a busy
  // primary is skipped for its backup, as a failing one would be.
  const config::RouteConfig& route = *permit.route;
  size_t reachable =
      std::min<size_t>(route.upstreams.size(), std::max<uint32_t>(route.max_attempts, 1));
  for (size_t i = 0; i < reachable; ++i) {
    auto it = upstream_limits_.find(route.upstreams[i]);
    if (it == upstream_limits_.end()) continue;  // the loader checked every reference
    if (std::optional<base::Lease> slot = it->second->try_take()) {
      permit.upstream_slot = std::move(*slot);
      permit.upstream_index = static_cast<uint32_t>(i);
      return std::nullopt;
    }
    metrics_.upstream(route.upstreams[i]).busy->Increment();
    if (i + 1 < reachable) metrics_.llm.retries(route.path, route.upstreams[i], "busy").Increment();
  }
  return refusal(503, "upstream_busy",
                 reachable == 1 ? "the upstream has upstreams." + route.upstream +
                                      ".max_concurrent requests open"
                                : std::string("every upstream of the route has its "
                                              "max_concurrent requests open"),
                 permit, "Retry-After: 1\r\n");
}

}  // namespace ssegw::api
