// The hub's view of one live SSE client: something that frames can be handed to.
//
// Rules:
// - deliver() must not block and must not detach other subscribers. It may detach itself (a slow
//   consumer closing): Channel tolerates that during a fan-out.
// - A Subscriber detaches (Hub::detach) before it is destroyed.
#pragma once

#include <cstdint>

#include "gateway/base/frame.hpp"

namespace ssegw::hub {

class Channel;

class Subscriber {
 public:
  virtual void deliver(const base::FrameRef& frame) = 0;
  // The channel is finished (a completed generation): end the stream after what was delivered.
  // Runs inside a fan-out, like deliver(); the subscriber detaches itself.
  virtual void end_of_stream() = 0;

  Channel* channel() const { return channel_; }

 protected:
  ~Subscriber() = default;

 private:
  friend class Channel;
  Channel* channel_ = nullptr;
  uint32_t slot_ = 0;
};

}  // namespace ssegw::hub
