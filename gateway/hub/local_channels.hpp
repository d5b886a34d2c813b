// The owner side of the channels a worker keeps in memory: the ChannelService over its Hub.
//
// Rules:
// - Used only on the owning worker's thread; every callback runs at once, before the call
//   returns.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "gateway/hub/channel_service.hpp"
#include "gateway/hub/hub.hpp"

namespace ssegw::hub {

class LocalChannels final : public ChannelService {
 public:
  // now_ms: the loop's monotonic clock; owns(name): whether this worker owns a channel name (a
  // new generation must be named so that it is).
  LocalChannels(Hub& hub, std::function<uint64_t()> now_ms,
                std::function<bool(std::string_view)> owns);

  void publish(const std::string& channel, std::string_view type, std::string data,
               PublishDone done) override;
  void subscribe(const std::string& channel, const ResumeRequest& resume, Join join) override;
  void leave(const std::string& channel, uint32_t worker) override;
  void info(const std::string& channel, InfoDone done) override;
  std::string start_generation() override;
  base::FrameRef record(const std::string& channel, std::string_view type,
                        std::string_view data) override;
  void finish(const std::string& channel) override;

 private:
  Hub& hub_;
  std::function<uint64_t()> now_ms_;
  std::function<bool(std::string_view)> owns_;
};

// A fresh generation name that `owns` accepts (one draw in `workers` is this worker's), or ""
// when the random source fails.
std::string owned_generation_name(const std::function<bool(std::string_view)>& owns);

}  // namespace ssegw::hub
