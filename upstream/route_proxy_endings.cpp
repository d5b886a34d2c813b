// How a RouteProxy's answer ends (route_proxy.hpp): the client leaves, the cancel API stops it,
// the client stalls, a retry's wait runs out; and finish(), the one place every ending passes
// once to settle the usage, charge the requester and give the leases back.
#include <uv.h>

#include "gateway/base/log.hpp"
#include "gateway/http/response.hpp"
#include "upstream/forwarding.hpp"
#include "upstream/route_proxy.hpp"

namespace ssegw::upstream {

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
  stop_exchange();
  record("error", error_event_json("cancelled", "the client disconnected"));
  finish_recording();
  finish(Outcome::kCancelled);
}

// Cancels the running attempt, counted as cancelled; a request that was out before its head may
// be billed all the same.
void RouteProxy::stop_exchange() {
  if (!exchange_) return;
  exchange_->cancel();
  exchange_ = nullptr;
  upstream_metrics_->cancelled->Increment();
  if (head_sent_) return;
  metrics_.upstream_request(*upstream_metrics_, "cancelled").Increment();
  if (!head_received_) maybe_billed_ = true;
}

bool RouteProxy::cancel() {
  if (finished_) return false;
  stop_exchange();
  if (!head_sent_) {
    // Nothing of the answer went out yet: the client gets an event stream that carries the error.
    kind_ = Kind::kSse;
    std::string lines(http::kEventStreamHead);
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
  // Tokens for an answer the upstream gave (2xx): as reported, else estimated. A request that
  // went out but got no head (the client left, first_byte_timeout) may have been billed for its
  // prompt: that estimate. An error answer, or no connection at all, generated nothing.
  if (success_) {
    usage_.prompt_estimated = !meter_.prompt();
    usage_.prompt_tokens = meter_.prompt().value_or(prompt_estimate_);
    usage_.completion_estimated = !meter_.completion();
    usage_.completion_tokens = meter_.completion().value_or(meter_.estimated_completion());
  } else if (maybe_billed_ && !head_received_) {
    usage_.prompt_estimated = true;
    usage_.prompt_tokens = prompt_estimate_;
  }
  if (usage_.prompt_tokens > charged_prompt_) charge(usage_.prompt_tokens - charged_prompt_);
  charged_prompt_ = usage_.prompt_tokens;
  charge(usage_.completion_tokens);
  if (route_.usage) report_usage(usage_, metrics_, log_usage_);
  leases_.clear();
  upstream_slot_ = {};
  request_ = {};
  std::string().swap(held_);
  std::string().swap(json_answer_);
}

}  // namespace ssegw::upstream
