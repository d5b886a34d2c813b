#include "gateway/backplane/redis_channels.hpp"

#include "gateway/hub/local_channels.hpp"

namespace ssegw::backplane {

RedisChannels::RedisChannels(RedisBackplane& backplane, hub::Hub& hub,
                             std::function<bool(std::string_view)> owns)
    : backplane_(backplane), hub_(hub), owns_(std::move(owns)) {}

void RedisChannels::publish(const std::string& channel, std::string_view type, std::string data,
                            PublishDone done) {
  backplane_.publish(
      channel, type, data,
      [this, channel, done = std::move(done)](const RedisBackplane::Publication& publication) {
        if (!done) return;
        using Status = RedisBackplane::Publication::Status;
        hub::PublishOutcome outcome;
        switch (publication.status) {
          case Status::kStored:
            outcome.id = publication.id;
            // This instance's subscribers: the others are not known here.
            outcome.subscribers = hub_.info(channel).subscribers;
            break;
          case Status::kUnavailable:
            outcome.refused = hub::Refusal::kBackplaneUnavailable;
            break;
          case Status::kTooManyChannels:
            outcome.refused = hub::Refusal::kTooManyChannels;
            break;
        }
        done(outcome);
      });
}

void RedisChannels::subscribe(const std::string& channel, const hub::ResumeRequest& resume,
                              Join join) {
  backplane_.subscribe(channel, resume,
                       [this, channel, join = std::move(join)](hub::Admission& admission) {
                         using Status = hub::Admission::Status;
                         // The hub channel that fans Redis' events out here must exist before the
                         // subscriber is told it is live: over limits.max_channels it is refused
                         // instead.
                         if (admission.status == Status::kLive && !hub_.open_channel(channel)) {
                           admission = hub::Admission{};
                           admission.refused = hub::Refusal::kTooManyChannels;
                         }
                         bool live = admission.status == Status::kLive;
                         hub::Member member = join(admission);
                         if (!live) return;
                         if (member.local)
                           hub_.attach_local(channel, member.local);
                         else if (member.worker)
                           hub_.attach_remote(channel, *member.worker);
                         else
                           hub_.release_unused(channel);
                       });
}

void RedisChannels::leave(const std::string& channel, uint32_t worker) {
  hub_.unsubscribe_remote(channel, worker);
}

void RedisChannels::info(const std::string& channel, InfoDone done) {
  backplane_.info(channel, [done = std::move(done)](std::optional<hub::ChannelInfo> info) {
    if (info)
      done(hub::InfoOutcome{hub::Refusal::kNone, *info});
    else
      done(hub::InfoOutcome{hub::Refusal::kBackplaneUnavailable, {}});
  });
}

std::string RedisChannels::start_generation() {
  std::string name = hub::owned_generation_name(owns_);
  // Kept in Redis: no channel here until someone subscribes.
  if (!name.empty()) backplane_.start_generation(name);
  return name;
}

base::FrameRef RedisChannels::record(const std::string& channel, std::string_view type,
                                     std::string_view data) {
  if (backplane_.writes_generation(channel))
    return backplane_.publish_generation(channel, type, data);
  backplane_.publish(channel, type, data, nullptr);  // a tee: nobody waits for the answer
  return {};
}

void RedisChannels::finish(const std::string& channel) {
  backplane_.finish_generation(channel);
}

}  // namespace ssegw::backplane
