#include "bench/llm_stream.hpp"

#include <iterator>
#include <string_view>

#include "bench/llm_run.hpp"
#include "bench/llm_stamp.hpp"

namespace bench {

void LlmStream::init(LlmRun* run, uint32_t source_ip) {
  run_ = run;
  source_ip_ = static_cast<uint8_t>(source_ip);
  sse_.set_handler(&LlmStream::on_event, this);
}

void LlmStream::start(uint64_t now_ns) {
  if (state_ != State::Idle) return;
  ++run_->mutable_stats().started;
  // The request is shared by every stream and lives as long as the run.
  connect(run_->client_loop(), run_->options().llm_url.addr, run_->request(), source_ip_, now_ns);
}

void LlmStream::check_timeout(uint64_t now_ns, uint64_t timeout_ns) {
  if (head_overdue(now_ns, timeout_ns)) fail(Failure::Timeout);
}

void LlmStream::abort() {
  if (active()) fail(Failure::Unfinished);
}

void LlmStream::complete() {
  if (!active()) return;
  LlmStats& s = run_->mutable_stats();
  ++s.completed;
  if (!terminated_) ++s.no_terminator;
  if (chunks_ < run_->options().tokens) ++s.short_streams;
  resolve();
}

void LlmStream::fail(Failure why) {
  if (!active()) return;
  // The counter of each Failure, in the enum's order.
  static constexpr uint64_t LlmStats::*kCounters[] = {
      &LlmStats::failed_connect,   &LlmStats::failed_timeout,   &LlmStats::failed_status,
      &LlmStats::failed_closed,    &LlmStats::failed_truncated, &LlmStats::failed_protocol,
      &LlmStats::failed_unfinished};
  static_assert(std::size(kCounters) == static_cast<size_t>(Failure::Unfinished) + 1);
  LlmStats& s = run_->mutable_stats();
  ++(s.*kCounters[static_cast<size_t>(why)]);
  ++s.failed;
  resolve();
}

void LlmStream::resolve() {
  LlmStats& s = run_->mutable_stats();
  if (terminated_) ++s.terminated;
  s.comments += sse_.comments();
  bool was_pending = pending();
  close_handle();
  run_->on_resolved(was_pending);
}

void LlmStream::on_end(End how) {
  if (how == End::Complete) {
    complete();
  } else if (how == End::Protocol) {
    fail(Failure::Protocol);
  } else {
    fail(state_ == State::Streaming ? Failure::Truncated : Failure::Closed);
  }
}

void LlmStream::on_bad_status(int status) {
  run_->mutable_stats().last_bad_status = status;
  fail(Failure::Status);
}

void LlmStream::on_streaming() {
  ++run_->mutable_stats().headers;
  run_->on_head();
}

void LlmStream::on_event(void* context, const SseEvent& event) {
  static_cast<LlmStream*>(context)->handle_event(event);
}

void LlmStream::handle_event(const SseEvent& event) {
  LlmStats& s = run_->mutable_stats();
  uint64_t stamp = 0;
  if (is_llm_terminator(event.type, event.data_prefix)) {
    terminated_ = true;
  } else if (event.type == "error" || event.data_prefix.starts_with("{\"error\"")) {
    ++s.error_events;
  } else if (find_llm_stamp(event.data_prefix, stamp)) {
    uint64_t now = loop().now_ns;
    if (stamp > now) ++s.future_stamps;
    s.latency.record(now > stamp ? now - stamp : 0);
    if (chunks_ == 0) s.first_chunk.record(now - started_ns());
    if (s.first_chunk_ns == 0) s.first_chunk_ns = now;
    s.last_chunk_ns = now;
    ++chunks_;
    ++s.chunks;
  } else {
    ++s.other_events;
  }
}

}  // namespace bench
