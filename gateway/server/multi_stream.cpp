#include "gateway/server/multi_stream.hpp"

#include "gateway/base/json.hpp"
#include "gateway/base/log.hpp"
#include "gateway/http/response.hpp"
#include "gateway/hub/channel.hpp"
#include "gateway/hub/sse_frame.hpp"
#include "gateway/hub/stream_cursor.hpp"
#include "gateway/server/worker.hpp"

namespace ssegw::server {
void MultiStream::Part::deliver(const base::FrameRef& frame) {
  stream->deliver(index, frame);
}

void MultiStream::Part::end_of_stream() {
  stream->channel_ended(index);
}

MultiStream::MultiStream(Worker& worker, http::Exchange& exchange,
                         std::vector<std::string> channels, const hub::ResumeRequest& resume)
    : worker_(worker),
      exchange_(exchange),
      count_(channels.size()),
      parts_(std::make_unique<Part[]>(channels.size())),
      cursor_(channels.size()),
      awaiting_(channels.size()) {
  for (size_t i = 0; i < count_; ++i) {
    Part& part = parts_[i];
    part.stream = this;
    part.index = static_cast<uint32_t>(i);
    part.name = std::move(channels[i]);
  }
  if (!resume.present) return;  // live only (a generation: from its start)
  if (auto cursor = hub::parse_stream_cursor(resume.last_event_id, count_)) {
    resume_ = Resume::kCursor;
    cursor_.assign(std::move(*cursor));
    return;
  }
  // Not this stream's cursor: an unknown id for every channel (a gap notice, then all that is
  // retained), echoing what the client sent, unless that reads as one channel's id.
  resume_ = Resume::kForeign;
  std::string_view sent = std::string_view(resume.last_event_id).substr(0, 128);
  foreign_ = hub::EventId::parse(sent) ? std::string("(malformed)") : std::string(sent);
}

hub::ResumeRequest MultiStream::resume(size_t i) const {
  hub::ResumeRequest resume;
  switch (resume_) {
    case Resume::kNone:
      break;
    case Resume::kCursor:
      resume.present = true;
      resume.last_event_id = cursor_[i].str();
      resume.before_first = cursor_[i] == hub::EventId{};
      break;
    case Resume::kForeign:
      resume.present = true;
      resume.last_event_id = foreign_;
      break;
  }
  return resume;
}

MultiStream::~MultiStream() {
  leave();
}

// ---- joining ----------------------------------------------------------------------------------

hub::Member MultiStream::joined(size_t i, hub::Admission& admission) {
  using Status = hub::Admission::Status;
  Part& part = parts_[i];
  if (!awaiting() || part.state != Part::State::kJoining) return {};
  --awaiting_;
  if (admission.status == Status::kRefused) {
    refuse(admission.refused);
    return {};
  }
  // Without a cursor the client has nothing: a channel that replays nothing starts at its join
  // position, one that replays (a generation from its start, a finished channel) before it all.
  if (resume_ == Resume::kNone && admission.replay.empty()) cursor_.set(i, admission.last_id);
  for (base::FrameRef& frame : admission.replay)
    pending_.push_back({part.index, Pending::Kind::kFrame, std::move(frame), {}});
  admission.replay.clear();
  hub::Member member;
  if (admission.status == Status::kLive) {
    pending_.push_back({part.index, Pending::Kind::kJoined, {}, admission.last_id});
    part.state = Part::State::kLive;
    member = hub::Member{&part, {}};
  } else {  // kEnded after its replay, or kNoContent: the client has it all
    pending_.push_back({part.index, Pending::Kind::kEnded, {}, {}});
    part.state = Part::State::kDone;
  }
  if (awaiting_ == 0) start();
  // The last join may have ended the stream (every channel finished, or a shutdown).
  return ended_ ? hub::Member{} : member;
}

void MultiStream::refuse(hub::Refusal refused) {
  refused_ = true;
  pending_.clear();
  int status = 503;
  const char* code = "too_many_channels";
  const char* message = "the gateway is at limits.max_channels";
  const char* headers = "";
  switch (refused) {
    case hub::Refusal::kTooManySources:
      code = "too_many_sources";
      message = "the gateway is at limits.max_sources";
      break;
    case hub::Refusal::kBackplaneUnavailable:
      code = "backplane_unavailable";
      message = "the Redis backplane is unreachable";
      headers = "Retry-After: 1\r\n";
      break;
    case hub::Refusal::kTooManyChannels:
    case hub::Refusal::kNone:
      break;
  }
  // The channels that joined leave at the next tick: never here, inside another channel's join.
  // Not when the stream closes: over HTTP/2 a client that keeps the window shut keeps the
  // answer, and the stream, open.
  exchange_.respond(status, "application/json", http::json_error(code, message), headers);
}

// Every channel answered: the head, then what waited, in the order it came.
void MultiStream::start() {
  started_ = true;
  bool all_no_content = true;
  for (const Pending& p : pending_)
    if (p.kind != Pending::Kind::kEnded) all_no_content = false;
  if (all_no_content) {  // every channel finished, and the client has each one's final event
    ended_ = true;
    pending_.clear();
    exchange_.respond(204, "", "");  // tells EventSource to stop
    return;
  }
  exchange_.start_stream(200, http::kEventStreamHead, true);
  exchange_.write_frame(worker_.shared().retry_frame);
  for (const Pending& p : pending_) apply(p);
  pending_.clear();
  pending_.shrink_to_fit();  // the stream no longer needs it: memory per idle stream
  pending_live_bytes_ = 0;
  watch_.wrote(worker_.loop().now_ms());
  if (all_done() || worker_.draining()) {
    end();
    return;
  }
  replay_allowance_ = exchange_.unsent_bytes();
}

void MultiStream::apply(const Pending& p) {
  switch (p.kind) {
    case Pending::Kind::kFrame:
      write(p.index, p.frame);
      return;
    case Pending::Kind::kJoined:
      cursor_.set(p.index, p.joined_at);  // the replay is out: live starts after this
      return;
    case Pending::Kind::kEnded:
      write_end(p.index);
      return;
  }
}

// ---- live -------------------------------------------------------------------------------------

void MultiStream::deliver(uint32_t i, const base::FrameRef& frame) {
  if (refused_ || ended_) return;  // leaving with the connection
  if (!started_) {
    pending_.push_back({i, Pending::Kind::kFrame, frame, {}});
    pending_live_bytes_ += frame->size();
    if (pending_live_bytes_ > worker_.config().slow_consumer.max_queued_bytes)
      cut("max_queued_bytes");
    return;
  }
  write(i, frame);
  watch_.wrote(worker_.loop().now_ms());
  if (exchange_.unsent_bytes() >
      worker_.config().slow_consumer.max_queued_bytes + replay_allowance_)
    cut("max_queued_bytes");
}

void MultiStream::channel_ended(uint32_t i) {
  Part& part = parts_[i];
  if (part.state == Part::State::kDone) return;
  part.state = Part::State::kDone;
  leave(part);  // inside the channel's fan-out: a subscriber may detach itself
  if (refused_ || ended_) return;
  if (!started_) {
    pending_.push_back({i, Pending::Kind::kEnded, {}, {}});
    return;
  }
  write_end(i);
  if (all_done()) end();
}

// "id: <cursor>\nevent: <channel>[:<type>]\n", then the frame after its own id and event lines.
void MultiStream::write(uint32_t i, const base::FrameRef& frame) {
  hub::FrameHead head = hub::parse_frame_head(frame->raw());
  prefix_.clear();
  if (!head.id.empty()) {  // a gap notice has none, and moves no cursor
    if (std::optional<hub::EventId> id = hub::EventId::parse(head.id)) cursor_.set(i, *id);
    prefix_ += "id: ";
    prefix_ += cursor_.text();
    prefix_ += '\n';
  }
  prefix_ += "event: ";
  prefix_ += parts_[i].name;
  if (!head.type.empty()) {
    prefix_ += ':';
    prefix_ += head.type;
  }
  prefix_ += '\n';
  exchange_.write_prefixed(prefix_, frame, head.rest);
}

// A finished channel (a completed generation) says so once; the others go on.
void MultiStream::write_end(uint32_t i) {
  std::string notice = "event: ";
  notice += parts_[i].name;
  notice += ":end\ndata: {\"channel\":";
  base::append_json_string(notice, parts_[i].name);
  notice += "}\n\n";
  exchange_.write_body(notice);
}

bool MultiStream::all_done() const {
  for (size_t i = 0; i < count_; ++i)
    if (parts_[i].state != Part::State::kDone) return false;
  return true;
}

// ---- ending -----------------------------------------------------------------------------------

void MultiStream::end() {
  leave();
  if (ended_ || refused_) return;
  ended_ = true;
  exchange_.end_stream();
}

void MultiStream::leave() {
  for (size_t i = 0; i < count_; ++i) leave(parts_[i]);
}

void MultiStream::leave(Part& part) {
  hub::Channel* channel = part.channel();
  if (!channel) return;
  bool mirror = channel->mirror();
  worker_.hub().detach(&part);
  if (mirror) worker_.channels().leave(part.name, worker_.index());
}

void MultiStream::tick(uint64_t now_ms) {
  if (refused_) return leave();  // outside any join callback (refuse())
  if (!started_ || ended_ || !exchange_.streaming()) return;
  if (watch_.tick(worker_, exchange_, now_ms)) cut("stall_timeout");
}

void MultiStream::cut(const char* why) {
  worker_.metrics().slow_consumer_disconnects.Increment();
  base::log::info("slow consumer disconnected",
                  {{"conn", exchange_.id()},
                   {"limit", why},
                   {"channels", static_cast<uint64_t>(count_)},
                   {"queued_bytes", static_cast<uint64_t>(exchange_.unsent_bytes())}});
  ended_ = true;
  pending_.clear();
  exchange_.abort();  // the parts leave with the connection, not inside a fan-out
}

}  // namespace ssegw::server
