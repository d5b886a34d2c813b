#include "gateway/hub/local_channels.hpp"

#include "gateway/base/clock.hpp"
#include "gateway/hub/generation.hpp"

namespace ssegw::hub {

std::string owned_generation_name(const std::function<bool(std::string_view)>& owns) {
  for (;;) {
    std::optional<std::string> name = make_generation_name();
    if (!name) return std::string();
    if (owns(*name)) return *name;
  }
}

LocalChannels::LocalChannels(Hub& hub, std::function<uint64_t()> now_ms,
                             std::function<bool(std::string_view)> owns)
    : hub_(hub), now_ms_(std::move(now_ms)), owns_(std::move(owns)) {}

void LocalChannels::publish(const std::string& channel, std::string_view type, std::string data,
                            PublishDone done) {
  auto published = hub_.publish(channel, type, data, now_ms_(), base::wall_clock_ms());
  PublishOutcome outcome;
  if (published) {
    outcome.id = published->id;
    outcome.subscribers = published->subscribers;
  } else {
    outcome.refused = Refusal::kTooManyChannels;
  }
  if (done) done(outcome);
}

void LocalChannels::subscribe(const std::string& channel, const ResumeRequest& resume, Join join) {
  Admission admission = hub_.admit(channel, resume);
  bool live = admission.status == Admission::Status::kLive;
  Member member = join(admission);
  if (live) hub_.join(channel, member);
}

void LocalChannels::leave(const std::string& channel, uint32_t worker) {
  hub_.unsubscribe_remote(channel, worker);
}

void LocalChannels::info(const std::string& channel, InfoDone done) {
  done(InfoOutcome{Refusal::kNone, hub_.info(channel)});
}

std::string LocalChannels::start_generation() {
  std::string name = owned_generation_name(owns_);
  if (name.empty() || !hub_.create_generation_channel(name)) return std::string();
  return name;
}

base::FrameRef LocalChannels::record(const std::string& channel, std::string_view type,
                                     std::string_view data) {
  auto published = hub_.publish(channel, type, data, now_ms_(), base::wall_clock_ms());
  return published ? std::move(published->frame) : base::FrameRef();
}

void LocalChannels::finish(const std::string& channel) {
  hub_.finish(channel);
}

}  // namespace ssegw::hub
