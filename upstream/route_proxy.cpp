#include "upstream/route_proxy.hpp"

#include <uv.h>

#include <algorithm>
#include <chrono>

#include "gateway/base/ascii.hpp"
#include "gateway/base/log.hpp"
#include "gateway/http/response.hpp"
#include "upstream/forwarding.hpp"
#include "upstream/include_usage.hpp"
#include "upstream/trace_context.hpp"

namespace ssegw::upstream {
namespace {

// Bigger incomplete events are passed on anyway: the parsers refuse them beyond this.
constexpr size_t kMaxHeldBytes = 1 << 20;

// A non-streamed JSON answer is kept whole up to this size, to read its usage where the provider
// puts it; a larger one is estimated from its size.
constexpr size_t kMaxJsonAnswerBytes = 1 << 20;

// Retry-After in delta-seconds (an HTTP date counts as unknown: 0), capped far above any wait.
uint64_t retry_after_seconds(std::string_view value) {
  uint64_t seconds = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return 0;
    seconds = std::min<uint64_t>(seconds * 10 + static_cast<uint64_t>(c - '0'), 86400);
  }
  return seconds;
}

bool connect_failure(Failure failure) {
  return failure == Failure::kResolve || failure == Failure::kConnect ||
         failure == Failure::kConnectTimeout || failure == Failure::kTls;
}

}  // namespace

// Sees the events of a 2xx streaming answer: its terminator, its usage, and what is recorded.
class RouteProxy::Watcher : public SseParser::Sink, public NdjsonParser::Sink {
 public:
  explicit Watcher(RouteProxy& proxy) : proxy_(proxy) {}

  void on_event(const SseEvent& event) override {
    std::string_view type = event.effective_type();
    if (event.data == "[DONE]" || type == "message_stop" || type == "response.completed")
      proxy_.terminated_ = true;
    if (proxy_.route_.usage) {
      proxy_.meter_.on_event(type, event.data);
      proxy_.noticed_content();
    }
    if (proxy_.recording_.mode == Recording::Mode::kNone) return;
    if (!proxy_.strip_usage_) {
      proxy_.record(event.type, event.data);
      return;
    }
    // The channel records what the client would have had without the gateway's include_usage.
    std::string& stripped = proxy_.scratch_;
    if (!strip_injected_usage(event.data, stripped)) return;
    proxy_.record(event.type, stripped.empty() ? std::string_view(event.data) : stripped);
  }
  void on_line(std::string_view line) override {
    if (ndjson_done(line)) proxy_.terminated_ = true;
    if (proxy_.route_.usage) {
      proxy_.meter_.on_line(line);
      proxy_.noticed_content();
    }
    proxy_.record("", line);
  }

 private:
  RouteProxy& proxy_;
};

RouteProxy::RouteProxy(Upstreams& upstreams, metrics::Metrics& metrics,
                       const config::RouteConfig& route, ProxyOptions options)
    : upstreams_(upstreams),
      metrics_(metrics),
      route_(route),
      downstream_(options.downstream),
      connection_id_(options.downstream ? options.downstream->connection_id() : 0),
      recording_(std::move(options.recording)),
      requester_(std::move(options.requester)),
      keepalive_ms_(options.keepalive_ms),
      log_usage_(options.log_usage),
      first_upstream_(options.first_upstream),
      watcher_(std::make_unique<Watcher>(*this)) {}

RouteProxy::~RouteProxy() {
  if (exchange_) exchange_->cancel();
  exchange_ = nullptr;
  // Destroyed while running (the worker shuts down): the record and the leases still settle.
  if (!finished_ && started_ns_) {
    downstream_ = nullptr;
    finish(Outcome::kCancelled);
  }
}

// ---- attempts ---------------------------------------------------------------------------------

void RouteProxy::start(OutgoingRequest request, base::Lease upstream_slot) {
  started_ns_ = uv_hrtime();
  usage_.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  usage_.route = route_.path;
  usage_.key_label = requester_.key;
  usage_.who = requester_.subject.empty() ? requester_.key : requester_.subject;
  usage_.model = request_model(request.body);
  // The trace goes on from the client's (first) traceparent, or starts here; exactly one goes up.
  auto trace = std::find_if(request.headers.begin(), request.headers.end(),
                            [](const http::Header& h) { return h.name == "traceparent"; });
  std::optional<std::string> continued;
  if (trace != request.headers.end()) continued = continued_traceparent(trace->value);
  usage_.traceparent = continued ? std::move(*continued) : new_traceparent();
  std::erase_if(request.headers, [](const http::Header& h) { return h.name == "traceparent"; });
  if (!usage_.traceparent.empty()) request.headers.push_back({"traceparent", usage_.traceparent});
  prompt_estimate_ =
      route_.usage ? estimate_prompt_tokens(request.body) : 0;  // as the client sent it
  strip_usage_ =
      route_.usage && route_.include_usage && inject_include_usage(route_.path, request.body);
  head_request_ = request.method == "HEAD";
  request_ = std::move(request);
  upstream_slot_ = std::move(upstream_slot);
  begin_attempt();
}

void RouteProxy::begin_attempt() {
  retry_at_ms_ = 0;
  const std::string& name = upstream_of(attempt_);
  client_ = &upstreams_.client(name);
  upstream_metrics_ = &metrics_.upstream(name);
  usage_.upstream = name;
  last_output_ms_ = client_->loop().now_ms();
  if (attempt_ > 0) {
    std::optional<base::Lease> slot = upstreams_.take_slot(name);
    if (!slot) {
      upstream_metrics_->busy->Increment();
      if (retry("busy")) return;
      status_ = 503;
      if (downstream_) {
        start_response(503, "Content-Type: application/json\r\nRetry-After: 1\r\n", !head_request_);
        if (!head_request_)
          downstream_->send(http::json_error(
              "upstream_busy", "every upstream of the route is at its max_concurrent"));
        downstream_->finish();
      }
      record("error", error_event_json("upstream_busy",
                                       "every upstream of the route is at its max_concurrent"));
      finish_recording();
      finish(Outcome::kUpstreamError);
      return;
    }
    upstream_slot_ = std::move(*slot);
  }
  sent_at_ns_ = uv_hrtime();
  last_chunk_ns_ = 0;
  // A failure that start() reports at once (a TLS write refused) has already moved on, to the
  // next attempt or to the end: only a still-current attempt keeps the exchange it returns.
  uint64_t serial = ++attempt_serial_;
  attempt_failed_ = false;
  Exchange* exchange = client_->start(request_, this);
  if (serial == attempt_serial_ && !attempt_failed_ && !finished_) exchange_ = exchange;
}

const std::string& RouteProxy::upstream_of(uint32_t attempt) const {
  return route_.upstreams[(first_upstream_ + attempt) % route_.upstreams.size()];
}

// Moves on to the next attempt, if there is one; reason names what failed, for the metric.
bool RouteProxy::retry(const char* reason, uint64_t min_delay_ms) {
  if (attempt_ + 1 >= route_.max_attempts) return false;
  const std::string& failed = usage_.upstream;
  metrics_.llm.retries(route_.path, failed, reason).Increment();
  base::log::info("route request retried", {{"conn", connection_id_},
                                            {"route", route_.path},
                                            {"upstream", failed},
                                            {"reason", reason},
                                            {"attempt", attempt_ + 2}});
  ++attempt_;
  upstream_slot_ = {};
  if (upstream_of(attempt_) != failed) {
    begin_attempt();  // another upstream: at once
    return true;
  }
  // The same upstream again: after a wait that doubles with each retry of it, and no shorter
  // than what a 429 asked for. tick() starts it.
  ++same_upstream_retries_;
  uint64_t backoff = kRetryDelayMs << std::min<uint32_t>(same_upstream_retries_ - 1, 5);
  retry_at_ms_ = client_->loop().now_ms() + std::max(backoff, min_delay_ms);
  return true;
}

// ---- the upstream's answer --------------------------------------------------------------------

void RouteProxy::on_head(int status, const std::vector<http::Header>& headers) {
  metrics_.upstream_request(*upstream_metrics_, std::to_string(status)).Increment();
  bool retryable = (status == 429 && (route_.retry_on & config::kRetry429)) ||
                   (status >= 500 && (route_.retry_on & config::kRetry5xx));
  // A 429 that asks for a longer wait than a retry may take goes to the client as it is.
  uint64_t retry_after_ms = 0;
  if (status == 429) {
    for (const http::Header& h : headers)
      if (h.name == "retry-after") retry_after_ms = retry_after_seconds(h.value) * 1000;
    if (retry_after_ms > kMaxRetryAfterMs && upstream_of(attempt_ + 1) == usage_.upstream)
      retryable = false;
  }
  if (retryable && attempt_ + 1 < route_.max_attempts) {
    exchange_->cancel();
    exchange_ = nullptr;
    retry(status == 429 ? "429" : "5xx", retry_after_ms);
    return;
  }
  head_received_ = true;
  success_ = status >= 200 && status < 300;
  has_body_ = response_has_body(head_request_, status);
  request_ = {};  // committed: no attempt follows, so the body kept for one goes now
  // A body is re-framed, so its length goes; but the Content-Length of an answer to HEAD or of
  // a 304 describes the representation and stays. A 204 has none to describe.
  bool keep_length = !has_body_ && status != 204;
  std::string lines;
  for (const http::Header& h : headers) {
    if (h.name == "content-length" && keep_length) {
      lines += h.name + ": " + h.value + "\r\n";
      continue;
    }
    if (is_hop_by_hop(h.name) && h.name != "accept-encoding") continue;
    if (h.name == "content-type") {
      std::string type = base::to_lower(h.value);
      if (type.starts_with("text/event-stream"))
        kind_ = Kind::kSse;
      else if (type.starts_with("application/x-ndjson") || type.starts_with("application/ndjson"))
        kind_ = Kind::kNdjson;
      else if (type.starts_with("application/json"))
        kind_ = Kind::kJson;
    }
    lines += h.name + ": " + h.value + "\r\n";
  }
  if (kind_ == Kind::kSse) lines += "X-Accel-Buffering: no\r\n";
  if (!has_body_) kind_ = Kind::kOther;  // no stream to watch, record or find truncated
  bool streaming = kind_ == Kind::kSse || kind_ == Kind::kNdjson;
  if (recording_.mode != Recording::Mode::kNone && (!success_ || !streaming)) {
    finish_recording();  // nothing to record: an error or a plain answer passes through
    recording_.mode = Recording::Mode::kNone;
  }
  if (recording_.mode == Recording::Mode::kGenerated) {
    // The client reads the channel's own frames: SSE with the gateway's ids, whatever the
    // upstream spoke (NDJSON lines become events).
    start_response(200, std::string(http::kEventStreamHead) + channel_header(), true);
    return;
  }
  if (recording_.mode == Recording::Mode::kTee) lines += channel_header();
  start_response(status, std::move(lines), has_body_);
}

void RouteProxy::on_body(std::string_view data) {
  uint64_t now = uv_hrtime();
  if (last_chunk_ns_ == 0)
    upstream_metrics_->time_to_first_byte->Observe(seconds_between(sent_at_ns_, now));
  else
    upstream_metrics_->inter_chunk->Observe(seconds_between(last_chunk_ns_, now));
  last_chunk_ns_ = now;
  bool streaming = success_ && (kind_ == Kind::kSse || kind_ == Kind::kNdjson);
  if (success_ && kind_ == Kind::kSse) sse_.feed(data, *watcher_);
  if (success_ && kind_ == Kind::kNdjson) ndjson_.feed(data, *watcher_);
  if (success_ && kind_ == Kind::kJson && route_.usage) {
    json_bytes_ += data.size();
    if (json_bytes_ <= kMaxJsonAnswerBytes)
      json_answer_.append(data);
    else
      std::string().swap(json_answer_);
  }
  if (recording_.mode != Recording::Mode::kGenerated) {
    if (streaming)
      forward_complete(data);
    else
      forward(data);
  }
}

// One read's events leave in one write, at once: not one write per chunk of the upstream's
// chunked encoding, nor at the end of the loop turn behind every other upstream's read.
void RouteProxy::on_read_done() {
  if (!downstream_) return;
  downstream_->send_queued();
  if (!paused_ && downstream_->unsent_bytes() > route_.high_water_bytes) {
    paused_ = true;
    last_progress_ms_ = client_->loop().now_ms();
    acked_mark_ = downstream_->bytes_acked();
    exchange_->pause();
  }
}

void RouteProxy::on_end() {
  exchange_ = nullptr;
  bool streaming = success_ && (kind_ == Kind::kSse || kind_ == Kind::kNdjson);
  if (streaming && !terminated_) {
    end_with_error_event("upstream_disconnected",
                         "the upstream ended the stream before its end marker",
                         Outcome::kTruncated);
    return;
  }
  forward(held_);  // a complete answer's trailing bytes, if any, pass through unchanged
  held_.clear();
  if (kind_ == Kind::kJson && route_.usage) {
    if (json_bytes_ <= kMaxJsonAnswerBytes)
      meter_.on_json_answer(json_answer_);
    else
      meter_.on_unread_bytes(json_bytes_);
  }
  finish_recording();
  if (downstream_) downstream_->finish();
  finish(success_ ? Outcome::kCompleted : Outcome::kUpstreamError);
}

void RouteProxy::on_failure(Failure failure, const std::string& detail) {
  exchange_ = nullptr;
  attempt_failed_ = true;
  // The request may have reached the upstream, which may bill its prompt (docs/protocol.md
  // "Usage"): anything but a failure to connect.
  if (!head_received_ && !connect_failure(failure)) maybe_billed_ = true;
  // The detail names the upstream's host and port: for the operator, never for the client.
  base::log::warn("upstream request failed", {{"conn", connection_id_},
                                              {"route", route_.path},
                                              {"upstream", usage_.upstream},
                                              {"failure", failure_name(failure)},
                                              {"detail", detail}});
  if (!head_sent_) {
    metrics_.upstream_request(*upstream_metrics_, failure_name(failure)).Increment();
    if (connect_failure(failure) && (route_.retry_on & config::kRetryConnectError) &&
        retry("connect_error"))
      return;
    if (failure == Failure::kFirstByteTimeout &&
        (route_.retry_on & config::kRetryFirstByteTimeout) && retry("first_byte_timeout"))
      return;
    bool timeout = failure == Failure::kConnectTimeout || failure == Failure::kFirstByteTimeout;
    const char* code = timeout ? "upstream_timeout" : "upstream_unavailable";
    record("error", error_event_json(code, failure_message(failure)));
    finish_recording();
    if (downstream_) {
      // An answer to HEAD has no body, not even an error's.
      start_response(timeout ? 504 : 502, "Content-Type: application/json\r\n", !head_request_);
      if (!head_request_) downstream_->send(http::json_error(code, failure_message(failure)));
      downstream_->finish();
    }
    status_ = timeout ? 504 : 502;
    finish(Outcome::kUpstreamError);
    return;
  }
  bool streaming = success_ && (kind_ == Kind::kSse || kind_ == Kind::kNdjson);
  if (streaming) {
    if (!terminated_) {
      end_with_error_event("upstream_disconnected", failure_message(failure), Outcome::kTruncated);
      return;
    }
    on_end();  // the answer was complete before the connection failed
    return;
  }
  finish_recording();
  if (downstream_) downstream_->abort();  // a plain body cut short must not look complete
  finish(success_ ? Outcome::kTruncated : Outcome::kUpstreamError);
}

// ---- to the client ----------------------------------------------------------------------------

void RouteProxy::start_response(int status, std::string lines, bool has_body) {
  head_sent_ = true;
  status_ = status;
  if (downstream_) downstream_->start_response(status, std::move(lines), has_body);
}

void RouteProxy::forward(std::string_view bytes) {
  if (bytes.empty() || !downstream_) return;
  downstream_->send(bytes);
  last_output_ms_ = client_->loop().now_ms();
}

// Whole events leave at once; the bytes after the last one wait in held_ until their event is
// complete. Where the last complete event ends in `data` comes from the SSE parser, which has
// just read it (or from its last newline, for NDJSON), so no byte is scanned twice: an event
// trickled in many small reads costs no rescan of what was held.
void RouteProxy::forward_complete(std::string_view data) {
  size_t complete = 0;  // bytes of held_ + data that are whole events
  if (kind_ == Kind::kSse && sse_.status() == SseStatus::kOk) {
    size_t prefix = sse_.complete_prefix();
    complete = prefix == std::string_view::npos ? 0 : held_.size() + prefix;
  } else if (kind_ == Kind::kSse) {  // the parser gave up (a limit): find the events ourselves
    held_.append(data);
    complete = complete_sse_prefix(held_);
    data = {};
  } else {
    size_t newline = data.rfind('\n');
    complete = newline == std::string_view::npos ? 0 : held_.size() + newline + 1;
  }
  // What leaves is whole events: with include_usage added, minus what it added.
  auto pass = [this](std::string_view events) {
    if (!strip_usage_ || kind_ != Kind::kSse || events.empty()) {
      forward(events);
      return;
    }
    scratch_.clear();
    strip_injected_usage_events(events, scratch_);
    forward(scratch_);
  };
  if (held_.empty()) {  // the usual case: no copy unless an event is split
    pass(data.substr(0, complete));
    held_.assign(data.substr(complete));
    return;
  }
  held_.append(data);
  if (held_.size() > kMaxHeldBytes) complete = held_.size();
  pass(std::string_view(held_).substr(0, complete));
  held_.erase(0, complete);
}

void RouteProxy::record(std::string_view type, std::string_view data) {
  if (recording_.mode == Recording::Mode::kNone) return;
  base::FrameRef frame = recording_.publish(type, data);
  if (recording_.mode == Recording::Mode::kGenerated && frame && downstream_) {
    downstream_->send_frame(frame);
    last_output_ms_ = client_->loop().now_ms();
  }
}

std::string RouteProxy::channel_header() const {
  std::string line = "SSE-Channel: ";
  line += recording_.channel;
  line += "\r\n";
  return line;
}

// After each event: the first content token starts the clock of time per token, and a prompt
// count the provider reports early (Anthropic's message_start) is charged at once.
void RouteProxy::noticed_content() {
  if (!first_token_ns_ && meter_.content_chars() > 0) first_token_ns_ = uv_hrtime();
  if (meter_.prompt() && *meter_.prompt() > charged_prompt_) {
    charge(*meter_.prompt() - charged_prompt_);
    charged_prompt_ = *meter_.prompt();
  }
}

void RouteProxy::finish_recording() {
  if (recording_.mode == Recording::Mode::kGenerated && recording_.finish) recording_.finish();
  recording_.finish = nullptr;
}

bool RouteProxy::continues_without_client() const {
  return !finished_ && recording_.mode != Recording::Mode::kNone &&
         route_.on_disconnect == config::DisconnectPolicy::kContinue;
}

void RouteProxy::downstream_progress() {
  if (paused_ && exchange_ && downstream_ &&
      downstream_->unsent_bytes() <= route_.low_water_bytes) {
    paused_ = false;
    exchange_->resume();
  }
}

}  // namespace ssegw::upstream
