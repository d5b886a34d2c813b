#include "gateway/server/handlers.hpp"

#include "gateway/api/credentials.hpp"
#include "gateway/api/demo_page.hpp"
#include "gateway/base/json.hpp"
#include "gateway/http/response.hpp"
#include "gateway/hub/generation.hpp"
#include "gateway/hub/stream_cursor.hpp"
#include "gateway/server/multi_stream.hpp"
#include "gateway/server/proxy_response.hpp"
#include "gateway/server/responder.hpp"
#include "gateway/server/sse_stream.hpp"
#include "gateway/server/worker.hpp"
#include "upstream/forwarding.hpp"

namespace ssegw::server {
namespace {

using Kind = api::RequestKind;

// The answer for a refused channel operation: status, code, message and extra header lines.
struct RefusalAnswer {
  int status;
  const char* code;
  const char* message;
  const char* headers;
};

RefusalAnswer refusal_answer(hub::Refusal refused) {
  switch (refused) {
    case hub::Refusal::kTooManySources:
      return {503, "too_many_sources", "the gateway is at limits.max_sources", ""};
    case hub::Refusal::kBackplaneUnavailable:
      return {503, "backplane_unavailable", "the Redis backplane is unreachable",
              "Retry-After: 1\r\n"};
    case hub::Refusal::kTooManyChannels:
    case hub::Refusal::kNone:
      break;
  }
  return {503, "too_many_channels", "the gateway is at limits.max_channels", ""};
}

std::string published_json(const std::string& channel, const hub::PublishOutcome& outcome) {
  std::string body = "{\"id\":\"" + outcome.id.str() + "\",\"channel\":";
  base::append_json_string(body, channel);
  body += ",\"subscribers\":" + std::to_string(outcome.subscribers) + "}\n";
  return body;
}

std::string info_json(const std::string& channel, const hub::ChannelInfo& info) {
  // Appends only: GCC 12 warns (-Wrestrict, a false positive) on "literal" + std::string.
  auto append_id = [](std::string& out, const std::optional<hub::EventId>& id) {
    if (!id) {
      out += "null";
      return;
    }
    out += '"';
    out += id->str();
    out += '"';
  };
  std::string body = "{\"channel\":";
  base::append_json_string(body, channel);
  body += ",\"subscribers\":";
  body += std::to_string(info.subscribers);
  body += ",\"retained\":";
  body += std::to_string(info.retained);
  body += ",\"first_id\":";
  append_id(body, info.first_id);
  body += ",\"last_id\":";
  append_id(body, info.last_id);
  body += "}\n";
  return body;
}

// The resume point a subscriber asks for: Last-Event-ID, else ?last_event_id=.
// At most max bytes of it are kept (a multi-channel stream's cursor is longer than an id).
hub::ResumeRequest resume_request(const http::Request& request, size_t max = 256) {
  hub::ResumeRequest resume;
  std::string_view header = request.header("last-event-id");
  if (!header.empty()) {
    resume.present = true;
    resume.last_event_id = std::string(header);
  } else {
    std::string raw;
    switch (http::query_param(request.query(), "last_event_id", raw)) {
      case http::QueryParam::kPresent:
        resume.present = !raw.empty();
        resume.last_event_id = std::move(raw);
        break;
      case http::QueryParam::kMalformed:  // unparseable: a gap, then everything retained
        resume.present = true;
        resume.last_event_id = "(malformed)";
        break;
      case http::QueryParam::kAbsent:
        break;
    }
  }
  if (resume.last_event_id.size() > max) resume.last_event_id.resize(max);
  return resume;
}

// The gateway's credentials are its own: the upstream, maybe a third party, never sees them.
// The ssegw_token cookie and the access_token parameter carry nothing else, so they always stay
// here (a browser sends the cookie to every path of the gateway's host); a Bearer Authorization
// stays only when the gateway checked it, and otherwise belongs to the client and the upstream.
// Other cookies and parameters pass unchanged.
void strip_gateway_credentials(upstream::OutgoingRequest& request, bool authorization) {
  request.target = api::without_token_parameter(request.target);
  std::erase_if(request.headers, [authorization](http::Header& h) {
    if (h.name == "authorization") return authorization && !api::bearer_token(h.value).empty();
    if (h.name != "cookie") return false;
    h.value = api::without_token_cookie(h.value);
    return h.value.empty();
  });
}

// A publish's answer comes from the channel's owner: at once here, or later from another worker
// or Redis. Deferring it lets the next pipelined publish go ahead meanwhile.
void publish(Responder& r, http::Request& request, const api::Permit& permit) {
  http::Exchange& c = r.exchange();
  http::AnswerSlot slot = c.defer();
  r.worker().channels().publish(
      permit.channel, permit.event_type, std::move(request.body),
      [c = &c, life = c.lifetime(), slot,
       channel = permit.channel](const hub::PublishOutcome& outcome) {
        if (!http::Exchange::alive(life)) return;
        if (outcome.refused == hub::Refusal::kNone) {
          c->complete(slot, 200, "application/json", published_json(channel, outcome));
          return;
        }
        RefusalAnswer answer = refusal_answer(outcome.refused);
        c->complete(slot, answer.status, "application/json",
                    http::json_error(answer.code, answer.message), answer.headers);
      });
}

void subscribe(Responder& r, const http::Request& request, const api::Permit& permit) {
  http::Exchange& c = r.exchange();
  c.close_after();  // a stream ends only by closing (over HTTP/1.1)
  hub::ResumeRequest resume = resume_request(request);
  r.await_stream(std::make_unique<SseStream>(r.worker(), c, permit.channel));
  r.worker().channels().subscribe(
      permit.channel, resume,
      [r = &r, life = c.lifetime()](hub::Admission& admission) -> hub::Member {
        if (!http::Exchange::alive(life)) return {};
        return r->joined(admission);
      });
}

// GET /v1/events: every channel joins on its own (here, on its owner, or in Redis), and the
// stream's head goes out once all have answered (multi_stream.hpp).
void subscribe_many(Responder& r, const http::Request& request, api::Permit& permit) {
  http::Exchange& exchange = r.exchange();
  exchange.close_after();  // a stream ends only by closing
  size_t count = permit.channels.size();
  // One byte more than any cursor of these channels: a longer one is not theirs.
  hub::ResumeRequest resume = resume_request(request, hub::max_stream_cursor_length(count) + 1);
  MultiStream& stream = r.await_multi(
      std::make_unique<MultiStream>(r.worker(), exchange, std::move(permit.channels), resume));
  for (size_t i = 0; i < count && r.awaiting_multi(); ++i) {
    r.worker().channels().subscribe(
        stream.channel(i), stream.resume(i),
        [r = &r, life = exchange.lifetime(), i](hub::Admission& admission) -> hub::Member {
          if (!http::Exchange::alive(life)) return {};
          return r->multi_joined(i, admission);
        });
  }
}

void info(Responder& r, const api::Permit& permit) {
  http::Exchange& c = r.exchange();
  r.worker().channels().info(
      permit.channel,
      [c = &c, life = c.lifetime(), channel = permit.channel](const hub::InfoOutcome& outcome) {
        if (!http::Exchange::alive(life)) return;
        if (outcome.refused == hub::Refusal::kNone) {
          c->respond(200, "application/json", info_json(channel, outcome.info));
          return;
        }
        RefusalAnswer answer = refusal_answer(outcome.refused);
        c->respond_error(answer.status, answer.code, answer.message, answer.headers);
      });
}

// A generated answer can be stopped by the cancel API while it runs (generations.hpp). A tee is
// not a generation: its channel is the client's, never a gen-* one.
void register_generation(Worker& worker, upstream::RouteProxy& proxy,
                         const api::Principal& principal) {
  if (!hub::is_generation_name(proxy.channel())) return;
  proxy.hold(worker.generations().add(proxy.channel(), principal.starter(), proxy));
}

void route(Responder& r, http::Request& request, api::Permit permit) {
  http::Exchange& c = r.exchange();
  Worker& worker = r.worker();
  hub::ChannelService& channels = worker.channels();
  const config::RouteConfig& route = *permit.route;
  upstream::OutgoingRequest outgoing = upstream::forwardable_request(request, r.client_ip());
  strip_gateway_credentials(outgoing, permit.strip_credentials);
  upstream::Recording recording;
  bool respond_async = false;
  if (route.resumable) {
    std::string channel = permit.channel;  // a tee target the policy stage let through
    if (!channel.empty()) {
      recording.mode = upstream::Recording::Mode::kTee;
    } else {
      channel = channels.start_generation();
      if (channel.empty()) {
        c.respond_error(503, "too_many_channels", "the gateway is at limits.max_channels");
        return;
      }
      recording.mode = upstream::Recording::Mode::kGenerated;
      recording.finish = [&channels, channel] { channels.finish(channel); };
    }
    recording.channel = channel;
    recording.publish = [&channels, channel](std::string_view type, std::string_view data) {
      return channels.record(channel, type, data);
    };
    respond_async = request.header("prefer").find("respond-async") != std::string_view::npos;
    // Gateway-only headers: the upstream has no use for them.
    std::erase_if(outgoing.headers, [](const http::Header& h) {
      return h.name == "sse-channel" || h.name == "prefer";
    });
  }

  upstream::ProxyOptions options;
  options.keepalive_ms = static_cast<uint64_t>(worker.config().heartbeat.count());
  options.recording = std::move(recording);
  options.log_usage = worker.config().log.access;
  options.first_upstream = permit.upstream_index;  // the first with a free slot
  options.requester.key = std::string(permit.principal.label());
  if (permit.principal.kind == api::Principal::Kind::kJwt)
    options.requester.subject = permit.principal.claims.subject;
  options.requester.charge = std::move(permit.charge);  // the budget's, if any
  if (respond_async) {
    // "Open an EventSource, then POST the prompt": answer at once, run the answer detached.
    std::string channel = options.recording.channel;
    auto proxy =
        std::make_unique<upstream::RouteProxy>(worker, worker.metrics(), route, std::move(options));
    // The client address's stream slot, the budget's and the upstream's slot go back when the
    // answer ends.
    proxy->hold(std::move(permit.stream_slot));
    proxy->hold(std::move(permit.budget_slot));
    register_generation(worker, *proxy, permit.principal);
    proxy->start(std::move(outgoing), std::move(permit.upstream_slot));
    worker.adopt(std::move(proxy));
    std::string body = "{\"channel\":";
    base::append_json_string(body, channel);
    body += "}\n";
    c.respond(202, "application/json", body, "SSE-Channel: " + channel + "\r\n");
    return;
  }
  auto response = std::make_unique<ProxyResponse>(worker, c);
  options.downstream = response.get();
  auto proxy =
      std::make_unique<upstream::RouteProxy>(worker, worker.metrics(), route, std::move(options));
  proxy->hold(std::move(permit.stream_slot));
  proxy->hold(std::move(permit.budget_slot));
  register_generation(worker, *proxy, permit.principal);
  ProxyResponse& started = r.proxy(std::move(response));
  started.start(std::move(proxy), std::move(outgoing), std::move(permit.upstream_slot));
}

// DELETE /v1/generations/{gen}: answered once the worker that runs it (or Redis) has.
// A cancel answered 503 owner_timeout meanwhile is given up: its outcome is dropped, and a Redis
// lookup that answers late delivers nothing, so that the client's 503 stays true (it may retry).
void cancel(Responder& r, const api::Permit& permit) {
  http::Exchange& c = r.exchange();
  Generations::Wanted wanted = [r = &r, life = c.lifetime(), wait = r.await_cancel()] {
    return http::Exchange::alive(life) && r->cancel_awaited(wait);
  };
  r.worker().generations().cancel(
      permit.channel, permit.cancel, wanted,
      [r = &r, c = &c, wanted, name = permit.channel](CancelOutcome outcome) {
        if (!wanted()) return;
        // Before respond(): that may go on to the next pipelined request, a cancel of its own.
        r->cancel_answered();
        switch (outcome) {
          case CancelOutcome::kCancelled: {
            std::string body = "{\"channel\":";
            base::append_json_string(body, name);
            body += "}\n";
            c->respond(202, "application/json", body);
            return;
          }
          case CancelOutcome::kNotFound:
            c->respond_error(404, "not_found", "no running generation of this name");
            return;
          case CancelOutcome::kForbidden:
            c->respond_error(403, "forbidden", "the token may not cancel this generation");
            return;
          case CancelOutcome::kUnavailable:
            c->respond_error(503, "backplane_unavailable", "the Redis backplane is unreachable",
                             "Retry-After: 1\r\n");
            return;
        }
      });
}

void ops(Responder& r, const api::Permit& permit) {
  http::Exchange& c = r.exchange();
  Worker& worker = r.worker();
  switch (permit.api_route) {
    case api::Route::kReadyz:
      if (worker.draining())
        c.respond(503, "application/json", "{\"status\":\"draining\"}\n");
      else if (!worker.shared().backplane_ready())
        c.respond(503, "application/json", "{\"status\":\"backplane_unavailable\"}\n");
      else
        c.respond(200, "application/json", "{\"status\":\"ready\"}\n");
      return;
    case api::Route::kMetrics:
      c.respond(200, "text/plain; version=0.0.4; charset=utf-8", worker.metrics().serialize());
      return;
    default:
      c.respond(200, "application/json", "{\"status\":\"ok\"}\n");
      return;
  }
}

void preflight(Responder& r, const http::Request& request, const api::Permit& permit) {
  http::Exchange& c = r.exchange();
  const api::CorsPolicy& cors = r.worker().shared().policy.cors();
  std::string headers = "Allow: " + permit.allow + "\r\n";
  // A route's preflight always lists what the browser may send; the gateway's own paths do so
  // for CORS preflights (Access-Control-Request-Method) only, and carry the usual CORS lines
  // otherwise.
  if (permit.route || request.has_header("access-control-request-method")) {
    c.answer_headers({});
    headers += cors.preflight_headers(request.header("origin"), permit.allow);
  }
  c.respond(204, "", "", headers);
}

}  // namespace

void handle_request(Responder& r, http::Request& request, api::Permit permit) {
  http::Exchange& c = r.exchange();
  c.set_label(permit.label);
  switch (permit.kind) {
    case Kind::kPreflight:
      preflight(r, request, permit);
      return;
    case Kind::kPublish:
      publish(r, request, permit);
      return;
    case Kind::kSubscribe:
      subscribe(r, request, permit);
      return;
    case Kind::kMultiSubscribe:
      subscribe_many(r, request, permit);
      return;
    case Kind::kInfo:
      info(r, permit);
      return;
    case Kind::kRoute:
      route(r, request, std::move(permit));
      return;
    case Kind::kCancel:
      cancel(r, permit);
      return;
    case Kind::kOps:
      ops(r, permit);
      return;
    case Kind::kDemo:
      c.respond(200, "text/html; charset=utf-8", api::demo_page_html(),
                "Cache-Control: no-cache\r\n");
      return;
  }
}

}  // namespace ssegw::server
