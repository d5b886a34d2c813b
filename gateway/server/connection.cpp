#include "gateway/server/connection.hpp"

#include <llhttp.h>
#include <strings.h>

#include <algorithm>

#include "gateway/api/credentials.hpp"
#include "gateway/api/demo_page.hpp"
#include "gateway/base/clock.hpp"
#include "gateway/base/json.hpp"
#include "gateway/base/log.hpp"
#include "gateway/http/response.hpp"
#include "gateway/server/worker.hpp"

namespace ssegw::server {
namespace {

// Above this much unsent output, pipelined requests wait until the client reads.
constexpr size_t kOutputHighWater = 256 * 1024;
// How long a closing connection waits for the client to close after our FIN.
constexpr uint64_t kLingerMs = 2000;
// Publishes in flight to other workers per connection, before reading waits for their answers.
constexpr size_t kMaxPendingAnswers = 64;

http::ParserLimits parser_limits(const config::Config& config) {
  return {config.limits.max_header_bytes, config.limits.max_event_bytes};
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

}  // namespace

Connection::Connection(Worker& worker, uint64_t id)
    : net::TcpStream(worker.loop()),
      worker_(worker),
      id_(id),
      parser_(parser_limits(worker.config())) {}

void Connection::start() {
  phase_started_ms_ = worker_.loop().now_ms();
  start_reading();
}

bool Connection::admit_client() {
  std::string ip = peer_address();
  std::string key = api::client_key(ip);
  if (worker_.shared().client_limits.open_connection(key)) {
    client_ip_ = std::move(ip);
    client_key_ = std::move(key);
    return true;
  }
  worker_.metrics().rejected_connections_per_ip.Increment();
  start_reading();  // to see the client's close at once
  close_after_response_ = true;
  respond_error(429, "too_many_connections_per_ip",
                "this client address is at limits.max_connections_per_ip", "Retry-After: 1\r\n");
  return false;
}

void Connection::reject_overloaded() {
  start_reading();  // to see the client's close at once: until then it holds a connection slot
  route_label_ = "unmatched";
  close_after_response_ = true;
  respond_error(503, "too_many_connections", "the gateway is at limits.max_connections");
}

// ---- input ------------------------------------------------------------------------------------

void Connection::on_data(const char* data, size_t length) {
  if (phase_ == Phase::kStreaming || phase_ == Phase::kClosing) return;  // no more requests
  if (phase_ == Phase::kRequest && pending_.empty() && !reading_paused_) {
    size_t used = parse(data, length);
    if (used < length) pending_.assign(data + used, length - used);
  } else {
    pending_.append(data, length);
  }
  const auto& limits = worker_.config().limits;
  if (pending_.size() > size_t{limits.max_header_bytes} + limits.max_event_bytes) {
    stop_reading();
    reading_paused_ = true;
  }
}

// Parses and answers requests until input runs out or a request has to wait.
size_t Connection::parse(const char* data, size_t length) {
  size_t used = 0;
  while (used < length && phase_ == Phase::kRequest && is_open()) {
    if (queued_bytes() > kOutputHighWater) {
      // The client sends requests faster than it reads answers: wait for on_drained().
      stop_reading();
      reading_paused_ = true;
      break;
    }
    if (!parser_.in_progress() && served_any_) phase_started_ms_ = worker_.loop().now_ms();
    auto result = parser_.feed(data + used, length - used);
    used += result.consumed;
    if (result.status == http::RequestParser::Status::kError) {
      const http::ParseError& error = parser_.error();
      close_after_response_ = true;
      route_label_ = "unmatched";
      respond_error(error.status, error.code, error.message);
      return length;
    }
    if (result.status == http::RequestParser::Status::kNeedMore) {
      const http::Request& request = parser_.request();
      if (parser_.headers_complete() && request.expect_continue && !continue_sent_) {
        continue_sent_ = true;
        write(worker_.shared().continue_frame, false);
      }
      break;
    }
    dispatch();
  }
  return used;
}

void Connection::process_pending() {
  if (pending_.empty()) return;
  size_t used = parse(pending_.data(), pending_.size());
  pending_.erase(0, used);
}

// The connection may take requests again: after an owner's answer or once output has drained.
void Connection::resume_requests() {
  if (phase_ != Phase::kRequest || !is_open()) return;
  if (queued_bytes() > kOutputHighWater) return;
  bool was_paused = reading_paused_;
  reading_paused_ = false;
  process_pending();
  if (was_paused && !reading_paused_ && phase_ == Phase::kRequest) start_reading();
}

void Connection::on_read_end(int status) {
  // EOF or reset: whatever we were doing, nobody is listening any more.
  close();
}

void Connection::on_drained() {
  if (phase_ == Phase::kProxying && proxy_) {
    // A queue emptied by uv_try_write completes no uv_write, so this is the only progress
    // signal a paused upstream gets.
    proxy_->downstream_progress();
    return;
  }
  if (phase_ == Phase::kStreaming) {
    replay_allowance_ = 0;
    return;
  }
  if (resume_after_drain_) {
    resume_after_drain_ = false;
    resume_requests();
    return;
  }
  if (reading_paused_) resume_requests();
}

void Connection::on_close() {
  if (!client_key_.empty()) worker_.shared().client_limits.close_connection(client_key_);
  if (proxy_) {
    bool goes_on = proxy_->continues_without_client();
    proxy_->downstream_gone();
    if (goes_on) worker_.adopt(std::move(proxy_));
  }
  leave_channel();
  worker_.connection_closed(this);
}

// ---- requests ---------------------------------------------------------------------------------

void Connection::dispatch() {
  if (!may_dispatch_now()) return;
  served_any_ = true;
  http::Request& request = parser_.request();
  http10_ = request.http10();
  if (!request.keep_alive || parser_.upgrade() || worker_.draining()) close_after_response_ = true;
  const api::Policy& policy = worker_.shared().policy;
  cors_headers_ = policy.cors().response_headers(request.header("origin"));
  api::Admission admission =
      policy.admit(request, client_key_, worker_.loop().now_ms(), now_unix());
  if (const auto* refused = std::get_if<api::Refusal>(&admission)) {
    route_label_ = refused->label;
    respond_error(refused->status, refused->code, refused->message, refused->headers);
    return;
  }
  handle(std::move(std::get<api::Permit>(admission)));
}

void Connection::handle(api::Permit permit) {
  route_label_ = permit.label;
  using Kind = api::RequestKind;
  switch (permit.kind) {
    case Kind::kPreflight:
      handle_preflight(permit);
      return;
    case Kind::kPublish:
      handle_publish(permit);
      return;
    case Kind::kSubscribe:
      handle_subscribe(permit);
      return;
    case Kind::kInfo:
      handle_info(permit);
      return;
    case Kind::kRoute:
      handle_route(std::move(permit));
      return;
    case Kind::kOps:
      handle_ops(permit);
      return;
    case Kind::kDemo:
      respond(200, "text/html; charset=utf-8", api::demo_page_html(),
              "Cache-Control: no-cache\r\n");
      return;
  }
}

void Connection::handle_ops(const api::Permit& permit) {
  switch (permit.api_route) {
    case api::Route::kReadyz:
      if (worker_.draining())
        respond(503, "application/json", "{\"status\":\"draining\"}\n");
      else if (!worker_.shared().backplane_ready())
        respond(503, "application/json", "{\"status\":\"backplane_unavailable\"}\n");
      else
        respond(200, "application/json", "{\"status\":\"ready\"}\n");
      return;
    case api::Route::kMetrics:
      respond(200, "text/plain; version=0.0.4; charset=utf-8", worker_.metrics().serialize());
      return;
    default:
      respond(200, "application/json", "{\"status\":\"ok\"}\n");
      return;
  }
}

void Connection::handle_preflight(const api::Permit& permit) {
  const http::Request& request = parser_.request();
  const api::CorsPolicy& cors = worker_.shared().policy.cors();
  std::string headers = "Allow: " + permit.allow + "\r\n";
  // A route's preflight always lists what the browser may send; the gateway's own paths do so
  // for CORS preflights (Access-Control-Request-Method) only.
  if (permit.route || request.has_header("access-control-request-method"))
    headers += cors.preflight_headers(request.header("origin"), permit.allow);
  else
    headers += cors_headers_;
  cors_headers_.clear();  // already in `headers`
  respond(204, "", "", headers);
}

void Connection::handle_publish(const api::Permit& permit) {
  http::Request& request = parser_.request();
  const std::string& channel = permit.channel;
  const std::string& type = permit.event_type;

  // With Redis the owner answers once Redis has (with its count of this instance's subscribers).
  uint32_t owner = worker_.owner_of(channel);
  if (owner == worker_.index() && !worker_.backplane()) {
    auto published = worker_.hub().publish(channel, type, request.body, worker_.loop().now_ms(),
                                           base::wall_clock_ms());
    if (!published) {
      respond_error(503, "too_many_channels", "the gateway is at limits.max_channels");
      return;
    }
    respond_published(channel, *published);
    return;
  }
  auto* message = new Message(Message::Kind::kPublish);
  message->channel = channel;
  message->type = type;
  message->data = std::move(request.body);
  message->sequence = next_answer_;
  answers_.push_back({next_answer_++,
                      worker_.loop().now_ms(),
                      false,
                      close_after_response_,
                      http10_,
                      cors_headers_,
                      {}});
  worker_.ask_owner(owner, message, this);
  queue_answer_slot();
}

// The request's answer has a place in answers_. The next pipelined request goes ahead, unless
// this one closes the connection or too many answers are pending: then reading waits until
// flush_answers() has written them.
void Connection::queue_answer_slot() {
  bool closes = answers_.back().close_after;
  reset_for_next_request();
  if (closes || answers_.size() >= kMaxPendingAnswers) phase_ = Phase::kWaitingForOwner;
}

void Connection::handle_info(const api::Permit& permit) {
  const std::string& channel = permit.channel;
  uint32_t owner = worker_.owner_of(channel);
  if (owner == worker_.index() && !worker_.backplane()) {
    respond_info(channel, worker_.hub().info(channel));
    return;
  }
  auto* message = new Message(Message::Kind::kInfo);
  message->channel = channel;
  phase_ = Phase::kWaitingForOwner;
  owner_asked_ms_ = worker_.loop().now_ms();
  worker_.ask_owner(owner, message, this);
}

void Connection::handle_subscribe(const api::Permit& permit) {
  const http::Request& request = parser_.request();
  const std::string& channel = permit.channel;
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
  if (resume.last_event_id.size() > 256) resume.last_event_id.resize(256);
  close_after_response_ = true;  // a stream ends only by closing

  // With Redis even the owner answers later (after reading the stream): always by message.
  uint32_t owner = worker_.owner_of(channel);
  if (owner == worker_.index() && !worker_.backplane()) {
    using Status = hub::SubscribeResult::Status;
    switch (worker_.hub().subscribe(channel, this, resume).status) {
      case Status::kTooManyChannels:
        respond_error(503, "too_many_channels", "the gateway is at limits.max_channels");
        return;
      case Status::kTooManySources:
        respond_error(503, "too_many_sources", "the gateway is at limits.max_sources");
        return;
      case Status::kNoContent:
        respond(204, "", "");  // the generation is complete: tells EventSource to stop
        return;
      case Status::kEnded:
        if (!head_written_) write_stream_head();
        phase_ = Phase::kStreaming;
        end_stream();
        return;
      case Status::kLive:
        subscribed(false);
        return;
    }
  }
  auto* message = new Message(Message::Kind::kSubscribe);
  message->channel = channel;
  message->resume = std::move(resume);
  stream_channel_ = channel;
  phase_ = Phase::kWaitingForOwner;
  owner_asked_ms_ = worker_.loop().now_ms();
  worker_.ask_owner(owner, message, this);
}

void Connection::on_owner_reply(Message& reply) {
  if (reply.kind != Message::Kind::kPublishReply || !reply.sequence) owner_asked_ms_ = 0;
  if (!is_open()) {
    // Closed while the owner was answering: give back the place the owner counted for us.
    if (reply.kind == Message::Kind::kSubscribeReply && reply.ok && !reply.finished &&
        !reply.no_content && !reply.attached) {
      auto* undo = new Message(Message::Kind::kUnsubscribe);
      undo->channel = std::move(stream_channel_);
      worker_.send_to(reply.from, undo);
    }
    return;
  }
  if (reply.kind == Message::Kind::kPublishReply && reply.sequence) {
    answer_publish(reply);
    return;
  }
  phase_ = Phase::kRequest;
  if (reply.backplane_down) {
    stream_channel_.clear();
    respond_error(503, "backplane_unavailable", "the Redis backplane is unreachable",
                  "Retry-After: 1\r\n");
    resume_requests();
    return;
  }
  switch (reply.kind) {
    case Message::Kind::kPublishReply:
      if (reply.ok)
        respond_published(reply.channel, reply.published);
      else
        respond_error(503, "too_many_channels", "the gateway is at limits.max_channels");
      break;
    case Message::Kind::kInfoReply:
      respond_info(reply.channel, reply.info);
      break;
    case Message::Kind::kSubscribeReply:
      if (!reply.ok) {
        stream_channel_.clear();
        if (reply.too_many_sources)
          respond_error(503, "too_many_sources", "the gateway is at limits.max_sources");
        else
          respond_error(503, "too_many_channels", "the gateway is at limits.max_channels");
        break;
      }
      if (reply.no_content) {
        stream_channel_.clear();
        respond(204, "", "");
        break;
      }
      for (const base::FrameRef& frame : reply.frames) deliver(frame);
      if (reply.finished) {
        stream_channel_.clear();
        if (!head_written_) write_stream_head();
        phase_ = Phase::kStreaming;
        end_stream();
        return;
      }
      if (reply.attached) {  // the owner is this worker, and attached us already
        stream_channel_.clear();
        subscribed(false);
        return;
      }
      worker_.hub().attach_mirror(stream_channel_, this);
      subscribed(true);
      return;
    default:
      return;
  }
  resume_requests();
}

// A publish's answer from its owner: into its slot, then out with every answer ready before it.
void Connection::answer_publish(const Message& reply) {
  auto slot = std::find_if(answers_.begin(), answers_.end(),
                           [&](const Answer& a) { return a.sequence == reply.sequence; });
  if (slot == answers_.end()) return;
  std::string body;
  int status = 503;
  if (reply.ok) {
    status = 200;
    body = "{\"id\":\"" + reply.published.id.str() + "\",\"channel\":";
    base::append_json_string(body, reply.channel);
    body += ",\"subscribers\":" + std::to_string(reply.published.subscribers) + "}\n";
  } else if (reply.backplane_down) {
    body = http::json_error("backplane_unavailable", "the Redis backplane is unreachable");
  } else {
    body = http::json_error("too_many_channels", "the gateway is at limits.max_channels");
  }
  http::ResponseBuilder builder(status, slot->http10);
  if (reply.backplane_down) builder.raw_headers("Retry-After: 1\r\n");
  builder.raw_headers(slot->cors_headers);
  slot->bytes = builder.with_body("application/json", body, !slot->close_after);
  slot->ready = true;
  worker_.metrics().http_request(api::route_label(api::Route::kChannelEvents), status).Increment();
  flush_answers();
}

int64_t Connection::now_unix() const {
  return static_cast<int64_t>(base::wall_clock_ms() / 1000);
}

// ---- proxied routes ---------------------------------------------------------------------------

void Connection::handle_route(api::Permit permit) {
  const config::RouteConfig& route = *permit.route;
  http::Request& request = parser_.request();
  upstream::OutgoingRequest outgoing = upstream::forwardable_request(request, client_ip_);
  strip_gateway_credentials(outgoing, permit.strip_credentials);
  upstream::Recording recording;
  bool respond_async = false;
  if (route.resumable) {
    std::string channel = permit.channel;  // a tee target the policy stage let through
    if (!channel.empty()) {
      recording.mode = upstream::Recording::Mode::kTee;
    } else {
      channel = worker_.new_generation_channel();
      if (channel.empty()) {
        respond_error(503, "too_many_channels", "the gateway is at limits.max_channels");
        return;
      }
      recording.mode = upstream::Recording::Mode::kGenerated;
      recording.finish = [worker = &worker_, channel] { worker->finish_channel(channel); };
    }
    recording.channel = channel;
    recording.publish = [worker = &worker_, channel](std::string_view type, std::string_view data) {
      return worker->publish_into(channel, type, data);
    };
    respond_async = request.header("prefer").find("respond-async") != std::string_view::npos;
    // Gateway-only headers: the upstream has no use for them.
    std::erase_if(outgoing.headers, [](const http::Header& h) {
      return h.name == "sse-channel" || h.name == "prefer";
    });
  }

  uint64_t keepalive_ms = static_cast<uint64_t>(worker_.config().heartbeat.count());
  upstream::Client& client = worker_.upstream_client(route.upstream);
  auto proxy = std::make_unique<upstream::RouteProxy>(
      client, worker_.metrics(), route, respond_async ? nullptr : this, keepalive_ms, recording);
  // The client address's stream slot and the upstream's slot go back when the answer ends.
  proxy->hold(std::move(permit.stream_slot));
  proxy->hold(std::move(permit.upstream_slot));
  if (respond_async) {
    // "Open an EventSource, then POST the prompt": answer at once, run the answer detached.
    proxy->start(std::move(outgoing));
    worker_.adopt(std::move(proxy));
    std::string body = "{\"channel\":";
    base::append_json_string(body, recording.channel);
    body += "}\n";
    respond(202, "application/json", body, "SSE-Channel: " + recording.channel + "\r\n");
    return;
  }
  phase_ = Phase::kProxying;
  proxy_ = std::move(proxy);  // the previous request's proxy, long finished, goes
  proxy_->start(std::move(outgoing));
}

void Connection::start_response(int status, std::string header_lines, bool has_body) {
  http::ResponseBuilder builder(status, http10_);
  builder.raw_headers(header_lines);
  chunked_answer_ = has_body && !http10_;
  if (!has_body) {
    // The head is the whole answer: no framing, and the connection stays as usable as after
    // any complete answer.
    if (close_after_response_)
      builder.header("Connection", "close");
    else if (http10_)
      builder.header("Connection", "keep-alive");
  } else if (http10_) {
    close_after_response_ = true;  // the body ends with the connection
    builder.header("Connection", "close");
  } else {
    builder.header("Transfer-Encoding", "chunked");
    if (close_after_response_) builder.header("Connection", "close");
  }
  builder.raw_headers(cors_headers_);
  write(base::Frame::copy_of(builder.head()), false);
  count_request(status);
}

// A proxied answer has one stream per connection, so waiting for the end of the loop turn
// batches nothing; it only makes each chunk wait for every other upstream read of the turn.
void Connection::send(std::string_view body_bytes) {
  if (body_bytes.empty()) return;  // an empty chunk would end the body
  write(base::Frame::copy_of(body_bytes), chunked_answer_);
  flush();
}

void Connection::send_frame(const base::FrameRef& frame) {
  write(frame, chunked_answer_);
}

void Connection::finish() {
  if (chunked_answer_) write(worker_.shared().chunked_end_frame, false);
  phase_ = Phase::kRequest;
  after_response();
  // Pipelined requests wait until this answer is out: resuming here would run them inside the
  // proxy's own callback.
  if (phase_ == Phase::kRequest) resume_after_drain_ = true;
}

void Connection::abort() {
  close();
}

void Connection::on_write_progress() {
  if (phase_ == Phase::kProxying && proxy_) proxy_->downstream_progress();
}

// ---- answers ----------------------------------------------------------------------------------

void Connection::respond(int status, std::string_view content_type, std::string_view body,
                         std::string_view extra_headers) {
  http::ResponseBuilder builder(status, http10_);
  builder.raw_headers(extra_headers);
  builder.raw_headers(cors_headers_);
  bool keep_alive = !close_after_response_;
  std::string bytes = status == 204 ? builder.without_body(keep_alive)
                                    : builder.with_body(content_type, body, keep_alive);
  count_request(status);
  if (!answers_.empty()) {  // earlier publishes still await their owners: queue behind them
    answers_.push_back({next_answer_++, 0, true, !keep_alive, http10_, {}, std::move(bytes)});
    queue_answer_slot();
    return;
  }
  write(base::Frame::copy_of(bytes), false);
  after_response();
}

void Connection::respond_error(int status, const char* code, std::string_view message,
                               std::string_view extra_headers) {
  if (status == 400 || status == 408 || status == 413 || status == 431)
    close_after_response_ = true;  // the rest of the input cannot be trusted to frame requests
  respond(status, "application/json", http::json_error(code, message), extra_headers);
}

void Connection::respond_published(const std::string& channel, const hub::Published& published) {
  std::string body = "{\"id\":\"" + published.id.str() + "\",\"channel\":";
  base::append_json_string(body, channel);
  body += ",\"subscribers\":" + std::to_string(published.subscribers) + "}\n";
  respond(200, "application/json", body);
}

void Connection::respond_info(const std::string& channel, const hub::ChannelInfo& info) {
  auto id_or_null = [](const std::optional<hub::EventId>& id) {
    return id ? "\"" + id->str() + "\"" : std::string("null");
  };
  std::string body = "{\"channel\":";
  base::append_json_string(body, channel);
  body += ",\"subscribers\":" + std::to_string(info.subscribers) +
          ",\"retained\":" + std::to_string(info.retained) +
          ",\"first_id\":" + id_or_null(info.first_id) +
          ",\"last_id\":" + id_or_null(info.last_id) + "}\n";
  respond(200, "application/json", body);
}

void Connection::count_request(int status) {
  worker_.metrics().http_request(route_label_, status).Increment();
}

void Connection::after_response() {
  if (close_after_response_) {
    close_gracefully();
    return;
  }
  reset_for_next_request();
}

void Connection::reset_for_next_request() {
  parser_.next();
  continue_sent_ = false;
  cors_headers_.clear();
  phase_started_ms_ = worker_.loop().now_ms();
}

// While answers are pending only publishes go ahead (they queue their answers); anything else
// could answer out of order, or start a stream, so it waits for the queue to drain.
bool Connection::may_dispatch_now() {
  if (answers_.empty()) return true;
  const http::Request& request = parser_.request();
  if (request.method == HTTP_POST &&
      api::match_route(request.path()).route == api::Route::kChannelEvents)
    return true;
  deferred_dispatch_ = true;
  phase_ = Phase::kWaitingForOwner;
  return false;
}

void Connection::flush_answers() {
  size_t sent = 0;
  bool close_now = false;
  while (sent < answers_.size() && answers_[sent].ready && is_open()) {
    write(base::Frame::copy_of(answers_[sent].bytes), false);
    close_now = answers_[sent++].close_after;
    if (close_now) break;
  }
  answers_.erase(answers_.begin(), answers_.begin() + static_cast<ptrdiff_t>(sent));
  if (answers_.empty()) std::vector<Answer>().swap(answers_);  // give the memory back
  if (close_now) {
    answers_.clear();
    close_gracefully();
    return;
  }
  if (!answers_.empty()) {
    worker_.expect_reply(this);  // more answers to come
    return;
  }
  if (phase_ != Phase::kWaitingForOwner) {
    // A drain began while publishes were out and nothing else is in progress: done now.
    if (close_after_response_ && !parser_.in_progress() && pending_.empty()) close_gracefully();
    return;
  }
  phase_ = Phase::kRequest;
  if (deferred_dispatch_) {
    deferred_dispatch_ = false;
    dispatch();
  }
  resume_requests();
}

void Connection::close_gracefully() {
  phase_ = Phase::kClosing;
  phase_started_ms_ = worker_.loop().now_ms();
  pending_.clear();
  shutdown_after_flush();
}

// ---- streaming --------------------------------------------------------------------------------

void Connection::write_stream_head() {
  head_written_ = true;
  http::ResponseBuilder builder(200, http10_);
  builder.header("Content-Type", "text/event-stream; charset=utf-8")
      .header("Cache-Control", "no-cache, no-transform")
      .header("X-Accel-Buffering", "no");
  if (http10_)
    builder.header("Connection", "close");
  else
    builder.header("Transfer-Encoding", "chunked");
  builder.raw_headers(cors_headers_);
  write(base::Frame::copy_of(builder.head()), false);
  write(worker_.shared().retry_frame, !http10_);
  count_request(200);
}

void Connection::deliver(const base::FrameRef& frame) {
  if (!head_written_) write_stream_head();
  write(frame, !http10_);
  last_output_ms_ = worker_.loop().now_ms();
  if (attached_ &&
      queued_bytes() > worker_.config().slow_consumer.max_queued_bytes + replay_allowance_)
    cut_slow_consumer("max_queued_bytes");
}

void Connection::cut_slow_consumer(const char* why) {
  worker_.metrics().slow_consumer_disconnects.Increment();
  base::log::info(
      "slow consumer disconnected",
      {{"conn", id_}, {"limit", why}, {"queued_bytes", static_cast<uint64_t>(queued_bytes())}});
  leave_channel();
  close();
}

void Connection::end_of_stream() {
  if (phase_ == Phase::kStreaming) end_stream();
}

void Connection::subscribed(bool mirror) {
  if (!head_written_) write_stream_head();
  phase_ = Phase::kStreaming;
  attached_ = true;
  mirror_ = mirror;
  replay_allowance_ = queued_bytes();
  last_output_ms_ = worker_.loop().now_ms();
  pending_.clear();
  pending_.shrink_to_fit();
  parser_.request() = http::Request();  // a long-lived stream keeps no request memory
  if (worker_.draining()) begin_shutdown();
}

void Connection::leave_channel() {
  if (attached_) {
    attached_ = false;
    worker_.hub().detach(this);
    if (mirror_) {
      auto* message = new Message(Message::Kind::kUnsubscribe);
      message->channel = std::move(stream_channel_);
      worker_.send_to(worker_.owner_of(message->channel), message);
    }
  }
  if (phase_ == Phase::kWaitingForOwner) worker_.forget_asker(id_);
}

void Connection::end_stream() {
  leave_channel();
  if (!http10_) write(worker_.shared().chunked_end_frame, false);
  close_gracefully();
}

void Connection::begin_shutdown() {
  switch (phase_) {
    case Phase::kStreaming:
      end_stream();
      break;
    case Phase::kRequest:
      if (!parser_.in_progress() && pending_.empty() && idle_output() && answers_.empty())
        close();
      else
        close_after_response_ = true;
      break;
    case Phase::kWaitingForOwner:
    case Phase::kProxying:
      close_after_response_ = true;
      break;
    case Phase::kClosing:
      break;
  }
}

void Connection::tick(uint64_t now_ms) {
  if (!is_open()) return;
  const config::Config& config = worker_.config();
  switch (phase_) {
    case Phase::kRequest: {
      uint64_t waited = now_ms - phase_started_ms_;
      bool started = parser_.in_progress() || !pending_.empty() || !served_any_;
      if (started && waited >= static_cast<uint64_t>(config.limits.header_timeout.count())) {
        route_label_ = "unmatched";
        respond_error(408, "request_timeout", "the request was not complete in time");
      } else if (!started && answers_.empty() &&
                 waited >= static_cast<uint64_t>(config.limits.idle_timeout.count())) {
        close();
      }
      break;
    }
    case Phase::kStreaming: {
      if (now_ms - last_output_ms_ >= static_cast<uint64_t>(config.heartbeat.count())) {
        write(worker_.shared().heartbeat_frame, !http10_);
        last_output_ms_ = now_ms;
      }
      // Bytes wait and the kernel takes none: the client stopped reading. Its queue (a replay
      // is exempt from max_queued_bytes) must not stay pinned for as long as it holds the socket.
      uint64_t written = bytes_written();
      if (queued_bytes() == 0 || written != stall_written_) {
        stall_written_ = written;
        stalled_since_ms_ = 0;
      } else if (stalled_since_ms_ == 0) {
        stalled_since_ms_ = now_ms;
      } else if (now_ms - stalled_since_ms_ >=
                 static_cast<uint64_t>(config.slow_consumer.stall_timeout.count())) {
        cut_slow_consumer("stall_timeout");
      }
      break;
    }
    case Phase::kClosing:
      if (now_ms - phase_started_ms_ >= kLingerMs) close();
      break;
    case Phase::kProxying:
      if (proxy_) proxy_->tick(now_ms);
      break;
    case Phase::kWaitingForOwner:
      break;
  }
  // Pipelined publishes may wait in any phase; a subscribe or an info waits alone.
  uint64_t deadline = static_cast<uint64_t>(config.limits.owner_timeout.count());
  bool late = owner_asked_ms_ && now_ms - owner_asked_ms_ >= deadline;
  for (const Answer& answer : answers_)
    late = late || (!answer.ready && answer.asked_ms && now_ms - answer.asked_ms >= deadline);
  if (late) owner_timed_out();
}

// Whatever the owner answers now is too late to be trusted in order: every waiting request is
// answered 503 and the connection closes after the answers. A subscription the owner still
// makes is undone when its answer finds no asker (Worker::answer_asker).
void Connection::owner_timed_out() {
  worker_.metrics().owner_timeouts.Increment();
  worker_.forget_asker(id_);
  owner_asked_ms_ = 0;
  close_after_response_ = true;
  const char* message = "the channel's owner did not answer within limits.owner_timeout";
  if (!answers_.empty()) {
    for (Answer& answer : answers_) {
      if (answer.ready) continue;
      http::ResponseBuilder builder(503, answer.http10);
      builder.raw_headers("Retry-After: 1\r\n");
      builder.raw_headers(answer.cors_headers);
      answer.bytes = builder.with_body(
          "application/json", http::json_error("owner_timeout", message), /*keep_alive=*/false);
      answer.ready = true;
      answer.close_after = true;
      worker_.metrics().http_request(route_label_, 503).Increment();
    }
    phase_ = Phase::kWaitingForOwner;  // flush_answers() closes at the first of them
    flush_answers();
    return;
  }
  stream_channel_.clear();
  phase_ = Phase::kRequest;
  respond_error(503, "owner_timeout", message, "Retry-After: 1\r\n");
}

}  // namespace ssegw::server
