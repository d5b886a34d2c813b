// The policy stage in process: classification, authentication, authorization and limits for
// each kind of request, without sockets (the integration test policy_test.cpp runs the same
// findings against the real binary).
#include "gateway/api/policy.hpp"

#include <doctest/doctest.h>
#include <llhttp.h>

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "gateway/metrics/metrics.hpp"

using namespace ssegw;

namespace {

// A policy over a configuration, with its own limits and metrics.
struct Stage {
  explicit Stage(const std::string& yaml, uint32_t publish_rate = 1000,
                 uint32_t publish_burst = 1000)
      : config(config::load_string(yaml, "t.yaml")),
        limits(1000, publish_rate, publish_burst, config.limits.max_streams_per_ip),
        budget_metrics(metrics.registry(), {}) {
    for (const config::UpstreamConfig& u : config.upstreams)
      upstreams.emplace(u.name, std::make_unique<base::CountingLimit>(u.max_concurrent));
    policy = std::make_unique<api::Policy>(config, limits, upstreams, metrics, budget_metrics);
  }

  api::Admission admit(const http::Request& request) {
    return policy->admit(request, "198.51.100.7", 1000, 1700000000);
  }

  config::Config config;
  metrics::Metrics metrics;
  api::ClientLimits limits;
  metrics::BudgetMetrics budget_metrics;
  base::NamedLimits upstreams;
  std::unique_ptr<api::Policy> policy;
};

http::Request request(llhttp_method_t method, const std::string& target,
                      std::vector<http::Header> headers = {}) {
  http::Request r;
  r.method = static_cast<uint8_t>(method);
  r.target = target;
  r.headers = std::move(headers);
  r.headers.push_back({"host", "gw.example"});
  return r;
}

const api::Permit& permit(const api::Admission& a) {
  REQUIRE(std::holds_alternative<api::Permit>(a));
  return std::get<api::Permit>(a);
}

const api::Refusal& refusal(const api::Admission& a) {
  REQUIRE(std::holds_alternative<api::Refusal>(a));
  return std::get<api::Refusal>(a);
}

const std::string kRoutes =
    "upstreams:\n  llm: {url: \"http://127.0.0.1:9\", max_concurrent: 1}\n"
    "routes:\n  - {path: /v1/chat/completions, upstream: llm, resumable: true}\n"
    "  - {path: /v1/open, upstream: llm, auth: none}\n";
const std::string kKeys =
    "auth:\n  keys:\n"
    "    - {name: web, token: \"web-key-0123456789\", routes: [\"/v1/chat/*\"],"
    " publish: [\"chat.*\"], subscribe: [\"chat.*\"]}\n";

}  // namespace

TEST_CASE("api/policy: requests are classified, bad ones refused before any check") {
  Stage s(kRoutes);
  using Kind = api::RequestKind;
  CHECK(permit(s.admit(request(HTTP_POST, "/v1/channels/a/events"))).kind == Kind::kPublish);
  CHECK(permit(s.admit(request(HTTP_GET, "/v1/channels/a/events"))).kind == Kind::kSubscribe);
  CHECK(permit(s.admit(request(HTTP_GET, "/v1/channels/a"))).kind == Kind::kInfo);
  CHECK(permit(s.admit(request(HTTP_GET, "/metrics"))).kind == Kind::kOps);
  CHECK(permit(s.admit(request(HTTP_OPTIONS, "/v1/channels/a/events"))).kind == Kind::kPreflight);
  api::Admission admitted = s.admit(request(HTTP_POST, "/v1/chat/completions"));
  const api::Permit& route = permit(admitted);
  CHECK(route.kind == Kind::kRoute);
  CHECK(std::string(route.label) == "/v1/chat/completions");
  CHECK(refusal(s.admit(request(HTTP_GET, "/nowhere"))).status == 404);
  api::Admission refused = s.admit(request(HTTP_DELETE, "/v1/channels/a"));
  const api::Refusal& bad_method = refusal(refused);
  CHECK(bad_method.status == 405);
  CHECK(bad_method.headers == "Allow: GET, OPTIONS\r\n");
  CHECK(refusal(s.admit(request(HTTP_TRACE, "/v1/open"))).status == 405);
  CHECK(std::string(refusal(s.admit(request(HTTP_GET, "/v1/channels/a%2Fb/events"))).code) ==
        "invalid_channel");
  CHECK(
      std::string(refusal(s.admit(request(HTTP_POST, "/v1/channels/a/events?event=a%20b"))).code) ==
      "invalid_event_type");
  http::Request two_hosts = request(HTTP_GET, "/healthz", {{"host", "other"}});
  CHECK(refusal(s.admit(two_hosts)).status == 400);
}

TEST_CASE("api/policy: keys authenticate, their grants authorize") {
  Stage s(kRoutes + kKeys);
  const http::Header web{"authorization", "Bearer web-key-0123456789"};
  {
    api::Admission chat_admitted = s.admit(request(HTTP_POST, "/v1/chat/completions", {web}));
    const api::Permit& chat = permit(chat_admitted);
    CHECK(chat.principal.kind == api::Principal::Kind::kKey);
    CHECK(chat.principal.label() == "web");
    CHECK(chat.strip_credentials);
  }  // its upstream slot (max_concurrent: 1) comes back here
  CHECK(refusal(s.admit(request(HTTP_POST, "/v1/chat/completions"))).status == 401);
  CHECK(refusal(s.admit(request(HTTP_POST, "/v1/chat/completions",
                                {{"authorization", "Bearer nope-nope-nope-nope"}})))
            .status == 401);
  // The open route reads no token and strips no Authorization.
  api::Admission open_admitted = s.admit(request(HTTP_POST, "/v1/open", {web}));
  const api::Permit& open = permit(open_admitted);
  CHECK(open.principal.kind == api::Principal::Kind::kAnonymous);
  CHECK_FALSE(open.strip_credentials);
  // Channel grants.
  CHECK(std::holds_alternative<api::Permit>(
      s.admit(request(HTTP_POST, "/v1/channels/chat.1/events", {web}))));
  CHECK(refusal(s.admit(request(HTTP_POST, "/v1/channels/news/events", {web}))).status == 403);
  CHECK(refusal(s.admit(request(HTTP_GET, "/v1/channels/chat.1"))).status == 401);
  CHECK(std::holds_alternative<api::Permit>(
      s.admit(request(HTTP_GET, "/v1/channels/chat.1", {web}))));
  // Generation channels are the answer's own.
  CHECK(
      std::string(refusal(s.admit(request(HTTP_POST, "/v1/channels/gen-x/events", {web}))).code) ==
      "reserved_channel");
}

TEST_CASE("api/policy: a cookie token needs a listed or the same Origin") {
  Stage s(kKeys + "cors: {allow_origins: [\"https://app.example\", \"*\"]}\n");
  const http::Header cookie{"cookie", "ssegw_token=web-key-0123456789"};
  auto publish = [&](std::vector<http::Header> headers) {
    headers.push_back(cookie);
    return s.admit(request(HTTP_POST, "/v1/channels/chat.1/events", std::move(headers)));
  };
  CHECK(std::holds_alternative<api::Permit>(publish({{"origin", "https://app.example"}})));
  CHECK(std::holds_alternative<api::Permit>(publish({{"origin", "http://gw.example"}})));
  CHECK(std::holds_alternative<api::Permit>(publish({})));
  CHECK(std::string(refusal(publish({{"origin", "https://evil.example"}})).code) ==
        "forbidden_origin");  // "*" lends no cookie
  CHECK(std::string(refusal(publish({{"origin", "null"}})).code) == "forbidden_origin");
  CHECK(std::string(refusal(publish({{"sec-fetch-site", "cross-site"}})).code) ==
        "forbidden_origin");
}

TEST_CASE("api/policy: route slots per client address and per upstream come back") {
  Stage s(kRoutes + "limits: {max_streams_per_ip: 2}\n");
  auto open = [&] { return s.admit(request(HTTP_POST, "/v1/open")); };
  api::Admission first = open();
  REQUIRE(std::holds_alternative<api::Permit>(first));
  // The upstream allows one request at a time: the second is busy, and gives its stream slot
  // back at once.
  api::Admission busy = open();
  CHECK(std::string(refusal(busy).code) == "upstream_busy");
  CHECK(s.limits.streams("198.51.100.7") == 1);
  first = api::Admission(refusal(busy));  // drops the first permit: both slots come back
  CHECK(s.limits.streams("198.51.100.7") == 0);
  CHECK(s.upstreams.at("llm")->used() == 0);
  CHECK(std::holds_alternative<api::Permit>(open()));
}

TEST_CASE("api/policy: stage 6 names a budgeted key's account, check_budget admits or refuses") {
  Stage s(kRoutes +
          "auth:\n  keys:\n"
          "    - {name: web, token: \"web-key-0123456789\", routes: [\"/v1/*\"],"
          " publish: [\"chat.*\"], requests_per_minute: 1}\n"
          "    - {name: free, token: \"free-key-0123456789\", routes: [\"/v1/*\"]}\n");
  api::BudgetLedger ledger(10, s.budget_metrics);
  const http::Header web{"authorization", "Bearer web-key-0123456789"};
  // Only route requests of a key with limits carry an account.
  CHECK_FALSE(permit(s.admit(request(HTTP_POST, "/v1/channels/chat.1/events", {web}))).budget);
  CHECK_FALSE(permit(s.admit(request(HTTP_POST, "/v1/open", {web}))).budget);
  CHECK_FALSE(permit(s.admit(request(HTTP_POST, "/v1/chat/completions",
                                     {{"authorization", "Bearer free-key-0123456789"}})))
                  .budget);
  auto check = [&] {
    api::Admission admitted = s.admit(request(HTTP_POST, "/v1/chat/completions", {web}));
    REQUIRE(permit(admitted).budget);
    CHECK(permit(admitted).budget->id == "key:web");
    std::optional<api::Admission> out;
    s.policy->check_budget(std::move(std::get<api::Permit>(admitted)), ledger,
                           [&](api::Admission a) { out = std::move(a); });
    REQUIRE(out);  // the ledger answers at once
    return std::move(*out);
  };
  {
    api::Admission first = check();
    const api::Permit& p = permit(first);
    CHECK(p.budget_slot);
    CHECK(p.charge);
    CHECK(p.upstream_slot);  // the earlier stages' leases go along
  }
  api::Admission second = check();
  const api::Refusal& r = refusal(second);
  CHECK(r.status == 429);
  CHECK(std::string(r.code) == "rate_limited");
  CHECK(r.message == "this key has made its requests_per_minute for this minute");
  CHECK(r.headers.rfind("Retry-After: ", 0) == 0);
  CHECK(std::string(r.label) == "/v1/chat/completions");
}

// ---- the cancel API: DELETE /v1/generations/{gen} -------------------------------------------

namespace {

const std::string kGen = "gen-0123456789abcdef0123456789abcdef";
const std::string kCancelPath = "/v1/generations/" + kGen;
using Verdict = api::CancelRights::Verdict;

}  // namespace

TEST_CASE(
    "api/policy: DELETE /v1/generations/{gen} is a cancel, other methods 405, bad names 404") {
  Stage s(kRoutes);
  api::Admission admitted = s.admit(request(HTTP_DELETE, kCancelPath));
  const api::Permit& cancel = permit(admitted);
  CHECK(cancel.kind == api::RequestKind::kCancel);
  CHECK(cancel.channel == kGen);
  CHECK(std::string(cancel.label) == "/v1/generations/{gen}");
  for (llhttp_method_t m : {HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_PATCH}) {
    CAPTURE(llhttp_method_name(m));
    api::Admission refused = s.admit(request(m, kCancelPath));
    CHECK(refusal(refused).status == 405);
    CHECK(refusal(refused).headers == "Allow: DELETE, OPTIONS\r\n");
  }
  api::Admission preflight = s.admit(request(HTTP_OPTIONS, kCancelPath));
  CHECK(permit(preflight).kind == api::RequestKind::kPreflight);
  CHECK(permit(preflight).allow == "DELETE, OPTIONS");
  for (std::string name : std::vector<std::string>{"gen-x", "chat.1", kGen + "0",
                                                   "GEN-0123456789abcdef0123456789abcdef"}) {
    CAPTURE(name);
    api::Admission bad = s.admit(request(HTTP_DELETE, "/v1/generations/" + name));
    CHECK(refusal(bad).status == 404);
    CHECK(std::string(refusal(bad).code) == "not_found");
  }
  // DELETE stays refused where it was.
  CHECK(refusal(s.admit(request(HTTP_DELETE, "/v1/channels/" + kGen))).status == 405);
}

TEST_CASE("api/policy: without auth, cancelling is open like publishing") {
  Stage s(kRoutes);
  api::Admission admitted = s.admit(request(HTTP_DELETE, kCancelPath));
  const api::CancelRights& rights = permit(admitted).cancel;
  CHECK(rights.any);
  CHECK(rights.may_see);
  CHECK(rights.starter.empty());
  CHECK(rights.judge("") == Verdict::kAllowed);
  CHECK(rights.judge("key:web") == Verdict::kAllowed);
}

TEST_CASE("api/policy: with auth, the starter, publish rights, and nobody else cancel") {
  Stage s(kRoutes + kKeys +
          "    - {name: ops, token: \"ops-key-0123456789\", publish: [\"gen-*\"]}\n"
          "    - {name: watcher, token: \"watch-key-0123456789\", subscribe: [\"gen-*\"]}\n"
          "  publish_tokens: [\"publish-token-0123456789\"]\n");
  auto cancel = [&](const std::string& token) {
    std::vector<http::Header> headers;
    if (!token.empty()) headers.push_back({"authorization", "Bearer " + token});
    return s.admit(request(HTTP_DELETE, kCancelPath, headers));
  };
  // No token: 401, before any lookup; an unknown token: 401.
  CHECK(refusal(cancel("")).status == 401);
  CHECK(refusal(cancel("nope-nope-nope-nope")).status == 401);

  // A key without publish rights on gen-*: only its own generations, and it cannot tell that
  // another one exists (no subscribe rights either): 404.
  api::Admission web_admitted = cancel("web-key-0123456789");
  const api::CancelRights& web = permit(web_admitted).cancel;
  CHECK_FALSE(web.any);
  CHECK_FALSE(web.may_see);
  CHECK(web.starter == "key:web");
  CHECK(web.judge("key:web") == Verdict::kAllowed);
  CHECK(web.judge("key:ops") == Verdict::kHidden);
  CHECK(web.judge("") == Verdict::kHidden);
  CHECK(web.judge("sub:key:web") == Verdict::kHidden);

  // A key that may subscribe to gen-* could see the generation: a refusal says so (403).
  api::Admission watcher_admitted = cancel("watch-key-0123456789");
  const api::CancelRights& watcher = permit(watcher_admitted).cancel;
  CHECK(watcher.may_see);
  CHECK(watcher.judge("key:web") == Verdict::kForbidden);
  CHECK(watcher.judge("key:watcher") == Verdict::kAllowed);

  // Publish rights on the channel stop any generation.
  api::Admission ops_admitted = cancel("ops-key-0123456789");
  CHECK(permit(ops_admitted).cancel.any);
  CHECK(permit(ops_admitted).cancel.judge("key:web") == Verdict::kAllowed);
  api::Admission token_admitted = cancel("publish-token-0123456789");
  CHECK(permit(token_admitted).cancel.any);
  CHECK(permit(token_admitted).cancel.starter.empty());
  CHECK(permit(token_admitted).cancel.judge("") == Verdict::kAllowed);

  // A cookie token from a foreign origin is refused before anything else (CSRF).
  api::Admission csrf = s.admit(
      request(HTTP_DELETE, kCancelPath,
              {{"cookie", "ssegw_token=ops-key-0123456789"}, {"origin", "https://evil.example"}}));
  CHECK(std::string(refusal(csrf).code) == "forbidden_origin");
}

TEST_CASE("api/policy: who started a generation, as the cancel API compares it") {
  api::Principal anonymous;
  CHECK(anonymous.starter().empty());
  api::Principal token;
  token.kind = api::Principal::Kind::kPublishToken;
  CHECK(token.starter().empty());
  config::KeyConfig key;
  key.name = "web";
  api::Principal keyed;
  keyed.kind = api::Principal::Kind::kKey;
  keyed.key = &key;
  CHECK(keyed.starter() == "key:web");
  api::Principal jwt;
  jwt.kind = api::Principal::Kind::kJwt;
  CHECK(jwt.starter().empty());  // no subject: nobody in particular
  jwt.claims.subject = "user-7";
  CHECK(jwt.starter() == "sub:user-7");
  // A JWT subject never passes for a key of the same name, nor the other way round.
  api::CancelRights rights;
  rights.starter = jwt.starter();
  CHECK(rights.judge("sub:user-7") == Verdict::kAllowed);
  CHECK(rights.judge("key:user-7") == Verdict::kHidden);
}

TEST_CASE("api/policy: cancels share the publishes' per-address rate limit") {
  Stage s(kRoutes, /*publish_rate=*/1, /*publish_burst=*/2);
  CHECK(std::holds_alternative<api::Permit>(s.admit(request(HTTP_DELETE, kCancelPath))));
  CHECK(std::holds_alternative<api::Permit>(s.admit(request(HTTP_POST, "/v1/channels/a/events"))));
  api::Admission limited = s.admit(request(HTTP_DELETE, kCancelPath));
  CHECK(refusal(limited).status == 429);
  CHECK(std::string(refusal(limited).code) == "rate_limited");
  CHECK(refusal(limited).headers.starts_with("Retry-After: "));
  CHECK(refusal(s.admit(request(HTTP_POST, "/v1/channels/a/events"))).status == 429);
  // A bad name is refused before it costs anything.
  CHECK(refusal(s.admit(request(HTTP_DELETE, "/v1/generations/x"))).status == 404);
}

TEST_CASE("api/policy: a multi-channel stream names its channels, each checked as one") {
  Stage s("limits: { max_channels_per_stream: 3 }\n");
  using Kind = api::RequestKind;
  {
    api::Admission admitted = s.admit(request(HTTP_GET, "/v1/events?channel=a&x=1&channel=b%2Ec"));
    const api::Permit& p = permit(admitted);
    CHECK(p.kind == Kind::kMultiSubscribe);
    CHECK(std::string(p.label) == "/v1/events");
    CHECK(p.channels == std::vector<std::string>{"a", "b.c"});
  }
  auto refused = [&](const std::string& target, int status, const char* code,
                     const std::string& message) {
    api::Admission admission = s.admit(request(HTTP_GET, target));
    const api::Refusal& r = refusal(admission);
    CHECK(r.status == status);
    CHECK(std::string(r.code) == code);
    CHECK(r.message == message);
  };
  refused("/v1/events", 400, "missing_channel",
          "a stream names its channels as channel= parameters, at least one");
  refused("/v1/events?last_event_id=1-0", 400, "missing_channel",
          "a stream names its channels as channel= parameters, at least one");
  refused("/v1/events?channel=a&channel=b&channel=c&channel=d", 400, "too_many_channels_per_stream",
          "a stream may name at most limits.max_channels_per_stream (3) channels");
  refused("/v1/events?channel=a&channel=b&channel=a", 400, "duplicate_channel",
          "the stream names channel \"a\" twice");
  // %61 is "a": names are compared decoded.
  refused("/v1/events?channel=a&channel=%61", 400, "duplicate_channel",
          "the stream names channel \"a\" twice");
  const std::string rule = "channel names are 1 to 200 characters of [A-Za-z0-9_.:@~-]";
  refused("/v1/events?channel=a&channel=", 400, "invalid_channel", rule);
  refused("/v1/events?channel=a%2Fb", 400, "invalid_channel", rule);
  refused("/v1/events?channel=a%zz", 400, "invalid_channel", rule);
  refused("/v1/events?channel", 400, "invalid_channel", rule);
  refused("/v1/events?channel=" + std::string(201, 'x'), 400, "invalid_channel", rule);
  CHECK(refusal(s.admit(request(HTTP_POST, "/v1/events?channel=a"))).status == 405);
  CHECK(permit(s.admit(request(HTTP_OPTIONS, "/v1/events"))).kind == Kind::kPreflight);
}

TEST_CASE("api/policy: one channel the token may not read refuses the whole stream") {
  Stage s(kKeys);
  const http::Header web{"authorization", "Bearer web-key-0123456789"};
  {
    api::Admission admitted =
        s.admit(request(HTTP_GET, "/v1/events?channel=chat.1&channel=chat.2", {web}));
    CHECK(permit(admitted).channels.size() == 2);
  }
  api::Admission refused =
      s.admit(request(HTTP_GET, "/v1/events?channel=chat.1&channel=news", {web}));
  const api::Refusal& r = refusal(refused);
  CHECK(r.status == 403);
  CHECK(std::string(r.code) == "forbidden");
  CHECK(r.message == "the token does not allow subscribing to channel \"news\"");
  // No token at all: 401, as for one channel.
  CHECK(refusal(s.admit(request(HTTP_GET, "/v1/events?channel=chat.1"))).status == 401);
  // The access_token parameter is a token like any other, and not a channel.
  CHECK(permit(
            s.admit(request(HTTP_GET, "/v1/events?access_token=web-key-0123456789&channel=chat.1")))
            .channels == std::vector<std::string>{"chat.1"});
  Stage open(kKeys + "  anonymous_subscribe: true\n");
  CHECK(permit(open.admit(request(HTTP_GET, "/v1/events?channel=news&channel=gen-0"))).kind ==
        api::RequestKind::kMultiSubscribe);
}
