#include "gateway/server/sse_stream.hpp"

#include "gateway/base/log.hpp"
#include "gateway/http/response.hpp"
#include "gateway/hub/channel.hpp"
#include "gateway/server/worker.hpp"

namespace ssegw::server {
SseStream::SseStream(Worker& worker, http::Exchange& exchange, std::string channel)
    : worker_(worker), exchange_(exchange), channel_(std::move(channel)) {}

SseStream::~SseStream() {
  leave();
}

hub::Member SseStream::begin(hub::Admission& admission) {
  exchange_.close_after();  // a stream ends only by closing
  exchange_.start_stream(200, http::kEventStreamHead, true);
  exchange_.write_frame(worker_.shared().retry_frame);
  for (const base::FrameRef& frame : admission.replay) exchange_.write_frame(frame);
  watch_.wrote(worker_.loop().now_ms());
  if (admission.status == hub::Admission::Status::kEnded || worker_.draining()) {
    exchange_.end_stream();  // a finished channel, or a shutdown: the replay was all of it
    return {};
  }
  replay_allowance_ = exchange_.unsent_bytes();
  return hub::Member{this, {}};
}

void SseStream::deliver(const base::FrameRef& frame) {
  exchange_.write_frame(frame);
  watch_.wrote(worker_.loop().now_ms());
  if (exchange_.unsent_bytes() >
      worker_.config().slow_consumer.max_queued_bytes + replay_allowance_)
    cut("max_queued_bytes");
}

void SseStream::end_of_stream() {
  end();
}

void SseStream::end() {
  leave();
  exchange_.end_stream();
}

void SseStream::leave() {
  hub::Channel* channel = this->channel();
  if (!channel) return;
  bool mirror = channel->mirror();
  worker_.hub().detach(this);
  if (mirror) worker_.channels().leave(channel_, worker_.index());
}

void SseStream::tick(uint64_t now_ms) {
  if (watch_.tick(worker_, exchange_, now_ms)) cut("stall_timeout");
}

void SseStream::cut(const char* why) {
  worker_.metrics().slow_consumer_disconnects.Increment();
  base::log::info("slow consumer disconnected",
                  {{"conn", exchange_.id()},
                   {"limit", why},
                   {"queued_bytes", static_cast<uint64_t>(exchange_.unsent_bytes())}});
  leave();
  exchange_.abort();
}

}  // namespace ssegw::server
