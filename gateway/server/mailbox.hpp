// Messages between workers, and the lock-free queue that carries them (docs/architecture.md
// "Channels").
//
// Rules:
// - Any thread may push(); only the owning worker pops. The queue is Dmitry Vyukov's intrusive
//   multi-producer single-consumer list: push is one atomic exchange, pop takes no lock.
// - A message is owned by a unique_ptr until push() hands it to the queue, and by the popping
//   worker again after pop(). Frames inside are shared with atomic counts.
// - A request carries the id of its asker's pending callback; the reply carries it back. Id 0
//   means nobody waits for the answer.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "gateway/api/policy.hpp"
#include "gateway/base/frame.hpp"
#include "gateway/hub/channel_service.hpp"

namespace ssegw::server {

// To the owner of a channel: publish data into it.
struct PublishRequest {
  uint64_t id = 0;
  std::string channel;
  std::string type;
  std::string data;
};
struct PublishReply {
  uint64_t id = 0;
  hub::PublishOutcome outcome;
};
// To the owner: a subscriber on the sending worker joins from `resume`.
struct SubscribeRequest {
  uint64_t id = 0;
  std::string channel;
  hub::ResumeRequest resume;
};
struct SubscribeReply {
  uint64_t id = 0;
  std::string channel;
  hub::Admission admission;
};
// To the owner: one subscriber of the sending worker has left the channel.
struct Leave {
  std::string channel;
};
// To a worker mirroring a channel: a new frame of it (null: the channel finished).
struct Forward {
  std::string channel;
  base::FrameRef frame;
};
struct InfoRequest {
  uint64_t id = 0;
  std::string channel;
};
struct InfoReply {
  uint64_t id = 0;
  hub::InfoOutcome outcome;
};
// To the worker that runs a generation (the owner of its name): stop it, if `rights` allow
// (generations.hpp).
enum class CancelOutcome {
  kCancelled,    // 202
  kNotFound,     // 404: not running (or not to be told: CancelRights::Verdict::kHidden)
  kForbidden,    // 403
  kUnavailable,  // 503: with Redis, the lookup there failed
};
struct CancelRequest {
  uint64_t id = 0;
  std::string name;
  api::CancelRights rights;
};
struct CancelReply {
  uint64_t id = 0;
  CancelOutcome outcome = CancelOutcome::kNotFound;
};
// From main: drain; then, once every worker has drained, close the loop.
struct Shutdown {};
struct Stop {};

using Payload =
    std::variant<PublishRequest, PublishReply, SubscribeRequest, SubscribeReply, Leave, Forward,
                 InfoRequest, InfoReply, CancelRequest, CancelReply, Shutdown, Stop>;

struct Message {
  Message(uint32_t sender, Payload body) : from(sender), payload(std::move(body)) {}

  uint32_t from;  // the worker that sent it
  Payload payload;
  std::atomic<Message*> next{nullptr};
};

class Mailbox {
 public:
  Mailbox() : head_(&stub_), tail_(&stub_) {}
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;
  ~Mailbox() {
    while (pop()) {
    }
  }

  void push(std::unique_ptr<Message> message) { push_raw(message.release()); }

  // Null when empty, or when a producer is half-way through push(); its wake-up follows.
  std::unique_ptr<Message> pop() {
    Message* tail = tail_;
    Message* next = tail->next.load(std::memory_order_acquire);
    if (tail == &stub_) {
      if (!next) return nullptr;
      tail_ = next;
      tail = next;
      next = next->next.load(std::memory_order_acquire);
    }
    if (next) {
      tail_ = next;
      return std::unique_ptr<Message>(tail);
    }
    if (tail != head_.load(std::memory_order_acquire)) return nullptr;
    push_raw(&stub_);
    next = tail->next.load(std::memory_order_acquire);
    if (next) {
      tail_ = next;
      return std::unique_ptr<Message>(tail);
    }
    return nullptr;
  }

 private:
  void push_raw(Message* message) {
    message->next.store(nullptr, std::memory_order_relaxed);
    Message* previous = head_.exchange(message, std::memory_order_acq_rel);
    previous->next.store(message, std::memory_order_release);
  }

  Message stub_{0, Stop{}};  // never delivered: it only keeps the list non-empty
  std::atomic<Message*> head_;
  Message* tail_;
};

}  // namespace ssegw::server
