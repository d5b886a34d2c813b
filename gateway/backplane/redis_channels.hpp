// The owner side of the channels a worker owns when Redis keeps them: the ChannelService over the
// worker's RedisBackplane (numbering, history and replay in Redis Streams) and its Hub (fan-out to
// this worker's subscribers and to other workers' mirrors).
//
// Rules:
// - Used only on the owning worker's thread. Callbacks run once Redis has answered (or at once
//   when Redis is away: refused with kBackplaneUnavailable).
// - A subscriber joins the hub channel at the moment the backplane says (its cursor), so that
//   replay and live events meet with no gap and no duplicate.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "gateway/backplane/redis_backplane.hpp"
#include "gateway/hub/channel_service.hpp"
#include "gateway/hub/hub.hpp"

namespace ssegw::backplane {

class RedisChannels final : public hub::ChannelService {
 public:
  // owns(name): whether this worker owns a channel name (a new generation must be named so).
  RedisChannels(RedisBackplane& backplane, hub::Hub& hub,
                std::function<bool(std::string_view)> owns);

  void publish(const std::string& channel, std::string_view type, std::string data,
               PublishDone done) override;
  void subscribe(const std::string& channel, const hub::ResumeRequest& resume, Join join) override;
  void leave(const std::string& channel, uint32_t worker) override;
  void info(const std::string& channel, InfoDone done) override;
  std::string start_generation() override;
  base::FrameRef record(const std::string& channel, std::string_view type,
                        std::string_view data) override;
  void finish(const std::string& channel) override;

 private:
  RedisBackplane& backplane_;
  hub::Hub& hub_;
  std::function<bool(std::string_view)> owns_;
};

}  // namespace ssegw::backplane
