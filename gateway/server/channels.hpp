// Channels seen from one worker (docs/architecture.md "Channels"): every call goes to this
// worker's owner side (hub::LocalChannels, or backplane::RedisChannels with Redis) when the
// channel is this worker's (hash of its name), else across the mailbox to the worker that owns
// it, whose owner side answers.
//
// Rules:
// - Everything runs on the worker's own thread; callbacks run there too.
// - A request to another worker carries an id; its callback waits in a table until the reply
//   comes (the owner always replies, or the connection's answer deadline passes and the callback
//   finds its exchange gone).
// - A remote subscriber joins in two places: the owner counts one subscriber of this worker, and
//   this worker's mirror of the channel holds the subscriber. A reply whose subscriber left
//   meanwhile is given back to the owner (Leave), so counts stay exact.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>

#include "gateway/hub/channel_service.hpp"
#include "gateway/hub/hub.hpp"
#include "gateway/server/mailbox.hpp"

namespace ssegw::server {

class Worker;

class Channels final : public hub::ChannelService {
 public:
  Channels(Worker& worker, hub::ChannelService& owner_side, hub::Hub& hub);

  void publish(const std::string& channel, std::string_view type, std::string data,
               PublishDone done) override;
  void subscribe(const std::string& channel, const hub::ResumeRequest& resume, Join join) override;
  void leave(const std::string& channel, uint32_t worker) override;
  void info(const std::string& channel, InfoDone done) override;
  std::string start_generation() override { return owner_side_.start_generation(); }
  base::FrameRef record(const std::string& channel, std::string_view type,
                        std::string_view data) override;
  void finish(const std::string& channel) override { owner_side_.finish(channel); }

  // The mailbox's messages about channels; false for others (Shutdown, Stop).
  bool on_message(uint32_t from, Payload& payload);

 private:
  bool mine(const std::string& channel) const;
  void on_publish(uint32_t from, PublishRequest& request);
  void on_subscribe(uint32_t from, SubscribeRequest& request);
  void on_info(uint32_t from, InfoRequest& request);
  void on_subscribe_reply(uint32_t from, SubscribeReply& reply);
  template <typename Done, typename Outcome>
  void answer(std::unordered_map<uint64_t, Done>& table, uint64_t id, const Outcome& outcome);

  Worker& worker_;
  hub::ChannelService& owner_side_;
  hub::Hub& hub_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, PublishDone> publishes_;
  std::unordered_map<uint64_t, Join> joins_;
  std::unordered_map<uint64_t, InfoDone> infos_;
};

}  // namespace ssegw::server
