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

// The head of an event stream the gateway writes itself (a generated channel's frames, or an
// answer cancelled before the upstream's head came).
constexpr const char* kSseHead =
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Cache-Control: no-cache, no-transform\r\n"
    "X-Accel-Buffering: no\r\n";

// Bigger incomplete events are passed on anyway: the parsers refuse them beyond this.
constexpr size_t kMaxHeldBytes = 1 << 20;

// The usage of a non-streamed JSON answer comes at its end: this much of the end is kept.
constexpr size_t kJsonTailBytes = 64 << 10;

bool connect_failure(Failure failure) {
  return failure == Failure::kResolve || failure == Failure::kConnect ||
         failure == Failure::kConnectTimeout || failure == Failure::kTls;
}

double seconds_between(uint64_t from_ns, uint64_t to_ns) {
  return static_cast<double>(to_ns - from_ns) / 1e9;
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
    proxy_.meter_.on_event(type, event.data);
    proxy_.noticed_content();
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
    proxy_.meter_.on_line(line);
    proxy_.noticed_content();
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
  // The trace goes on from the client's traceparent, or starts here.
  auto trace = std::find_if(request.headers.begin(), request.headers.end(),
                            [](const http::Header& h) { return h.name == "traceparent"; });
  if (trace != request.headers.end() && valid_traceparent(trace->value)) {
    usage_.traceparent = trace->value;
  } else {
    if (trace != request.headers.end()) request.headers.erase(trace);
    usage_.traceparent = new_traceparent();
    if (!usage_.traceparent.empty()) request.headers.push_back({"traceparent", usage_.traceparent});
  }
  strip_usage_ = route_.include_usage && inject_include_usage(route_.path, request.body);
  head_request_ = request.method == "HEAD";
  request_ = std::move(request);
  upstream_slot_ = std::move(upstream_slot);
  begin_attempt();
}

void RouteProxy::begin_attempt() {
  retry_at_ms_ = 0;
  const std::string& name = route_.upstreams[attempt_ % route_.upstreams.size()];
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
  exchange_ = client_->start(request_, this);
}

// Moves on to the next attempt, if there is one; reason names what failed, for the metric.
bool RouteProxy::retry(const char* reason) {
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
  const std::string& next = route_.upstreams[attempt_ % route_.upstreams.size()];
  if (next == failed)
    retry_at_ms_ = client_->loop().now_ms() + kRetryDelayMs;  // tick() starts it
  else
    begin_attempt();
  return true;
}

// ---- the upstream's answer --------------------------------------------------------------------

void RouteProxy::on_head(int status, const std::vector<http::Header>& headers) {
  metrics_.upstream_request(*upstream_metrics_, std::to_string(status)).Increment();
  bool retryable = (status == 429 && (route_.retry_on & config::kRetry429)) ||
                   (status >= 500 && (route_.retry_on & config::kRetry5xx));
  if (retryable && attempt_ + 1 < route_.max_attempts) {
    exchange_->cancel();
    exchange_ = nullptr;
    retry(status == 429 ? "429" : "5xx");
    return;
  }
  success_ = status >= 200 && status < 300;
  has_body_ = response_has_body(head_request_, status);
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
    start_response(200, std::string(kSseHead) + channel_header(), true);
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
  if (success_ && kind_ == Kind::kJson) {
    json_tail_.append(data);
    if (json_tail_.size() > 2 * kJsonTailBytes)
      json_tail_.erase(0, json_tail_.size() - kJsonTailBytes);
  }
  if (recording_.mode != Recording::Mode::kGenerated) {
    if (streaming)
      forward_complete(data);
    else
      forward(data);
  }
  if (downstream_ && !paused_ && downstream_->unsent_bytes() > route_.high_water_bytes) {
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
  if (kind_ == Kind::kJson) meter_.on_json_answer(json_tail_);
  finish_recording();
  if (downstream_) downstream_->finish();
  finish(success_ ? Outcome::kCompleted : Outcome::kUpstreamError);
}

void RouteProxy::on_failure(Failure failure, const std::string& detail) {
  exchange_ = nullptr;
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

void RouteProxy::forward_complete(std::string_view data) {
  auto complete = [this](std::string_view d) {
    if (kind_ == Kind::kSse) return complete_sse_prefix(d);
    size_t newline = d.rfind('\n');
    return newline == std::string_view::npos ? size_t{0} : newline + 1;
  };
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
    size_t cut = complete(data);
    pass(data.substr(0, cut));
    held_.assign(data.substr(cut));
  } else {
    held_.append(data);
    size_t cut = held_.size() > kMaxHeldBytes ? held_.size() : complete(held_);
    pass(std::string_view(held_).substr(0, cut));
    held_.erase(0, cut);
  }
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

// ---- endings ----------------------------------------------------------------------------------

void RouteProxy::downstream_gone() {
  downstream_ = nullptr;
  if (continues_without_client()) {
    if (paused_ && exchange_) {  // nobody to wait for any more
      paused_ = false;
      exchange_->resume();
    }
    return;
  }
  if (finished_) return;
  if (exchange_) {
    exchange_->cancel();
    exchange_ = nullptr;
    upstream_metrics_->cancelled->Increment();
    if (!head_sent_) metrics_.upstream_request(*upstream_metrics_, "cancelled").Increment();
  }
  record("error", error_event_json("cancelled", "the client disconnected"));
  finish_recording();
  finish(Outcome::kCancelled);
}

bool RouteProxy::cancel() {
  if (finished_) return false;
  if (exchange_) {
    exchange_->cancel();
    exchange_ = nullptr;
    upstream_metrics_->cancelled->Increment();
    if (!head_sent_) metrics_.upstream_request(*upstream_metrics_, "cancelled").Increment();
  }
  if (!head_sent_) {
    // Nothing of the answer went out yet: the client gets an event stream that carries the error.
    kind_ = Kind::kSse;
    std::string lines = kSseHead;
    if (recording_.mode != Recording::Mode::kNone) lines += channel_header();
    start_response(200, std::move(lines), true);
  }
  if (kind_ == Kind::kOther || kind_ == Kind::kJson) {
    finish_recording();
    if (downstream_) downstream_->abort();  // a plain body cut short must not look complete
    finish(Outcome::kCancelled);
    return true;
  }
  end_with_error_event("cancelled", "the generation was cancelled", Outcome::kCancelled);
  return true;
}

// A stream that cannot end as its protocol ends: the client (or, in generated mode, the channel
// and through it the client) gets an error event instead, then the end.
void RouteProxy::end_with_error_event(const std::string& type, const std::string& message,
                                      Outcome outcome) {
  std::string error = error_event_json(type, message);
  record("error", error);  // in generated mode this is also what the client gets
  if (recording_.mode != Recording::Mode::kGenerated) {
    held_.clear();  // half an event or line: useless to the client
    if (kind_ == Kind::kSse)
      forward("event: error\ndata: " + error + "\n\n");
    else
      forward(error + "\n");
  }
  finish_recording();
  if (downstream_) downstream_->finish();
  finish(outcome);
}

void RouteProxy::tick(uint64_t now_ms) {
  if (finished_) return;
  if (retry_at_ms_ && now_ms >= retry_at_ms_) {
    begin_attempt();
    return;
  }
  if (!downstream_) return;
  if (paused_) {
    uint64_t acked = downstream_->bytes_acked();
    if (acked != acked_mark_) {
      acked_mark_ = acked;
      last_progress_ms_ = now_ms;
    } else if (now_ms - last_progress_ms_ >= static_cast<uint64_t>(route_.stall_timeout.count())) {
      stall(now_ms);
      return;
    }
  }
  if (!head_sent_ || !success_) return;
  if (kind_ != Kind::kSse && recording_.mode != Recording::Mode::kGenerated) return;
  if (now_ms - last_output_ms_ < keepalive_ms_) return;
  // Only between events: nothing of an event is out while its end is held back, so a comment
  // line can never split one.
  if (held_.empty()) forward(":\n\n");
  last_output_ms_ = now_ms;
}

// The client took nothing for stall_timeout while the upstream waited for it: it goes as if it
// had left (the upstream request is cancelled, or with on_disconnect: continue runs on detached),
// and its connection is dropped, so that the truncation shows.
void RouteProxy::stall(uint64_t now_ms) {
  upstream_metrics_->stalls->Increment();
  base::log::warn("client stalled: disconnected",
                  {{"conn", connection_id_},
                   {"route", route_.path},
                   {"upstream", usage_.upstream},
                   {"unsent_bytes", static_cast<uint64_t>(downstream_->unsent_bytes())},
                   {"stalled_ms", now_ms - last_progress_ms_}});
  Downstream* downstream = downstream_;
  downstream_gone();
  downstream->abort();
}

void RouteProxy::charge(uint64_t tokens) {
  if (tokens && requester_.charge) requester_.charge(tokens);
}

// Every ending comes here once: the usage record, the last charge, the leases.
void RouteProxy::finish(Outcome outcome) {
  if (finished_) return;
  finished_ = true;
  paused_ = false;
  retry_at_ms_ = 0;
  uint64_t now = uv_hrtime();
  usage_.status = status_;
  usage_.outcome = outcome;
  usage_.duration_s = seconds_between(started_ns_, now);
  if (first_token_ns_) usage_.time_to_first_token_s = seconds_between(started_ns_, first_token_ns_);
  // Tokens for an answer the upstream gave (2xx): as reported, else estimated. An error answer
  // or none at all generated nothing.
  if (success_) {
    usage_.prompt_estimated = !meter_.prompt();
    usage_.prompt_tokens = meter_.prompt().value_or(estimate_prompt_tokens(request_.body));
    usage_.completion_estimated = !meter_.completion();
    usage_.completion_tokens = meter_.completion().value_or(meter_.estimated_completion());
  }
  if (usage_.prompt_tokens > charged_prompt_) charge(usage_.prompt_tokens - charged_prompt_);
  charged_prompt_ = usage_.prompt_tokens;
  charge(usage_.completion_tokens);
  report_usage(usage_, metrics_, log_usage_);
  leases_.clear();
  upstream_slot_ = {};
  request_ = {};
  std::string().swap(held_);
  std::string().swap(json_tail_);
}

}  // namespace ssegw::upstream
