// Messages between workers, and the lock-free queue that carries them (docs/architecture.md).
//
// Rules:
// - Any thread may push(); only the owning worker pops. The queue is Dmitry Vyukov's intrusive
//   multi-producer single-consumer list: push is one atomic exchange, pop takes no lock.
// - A message belongs to the queue between push and pop, then to the popping worker, which
//   deletes it. Frames inside are shared with atomic counts.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "gateway/base/frame.hpp"
#include "gateway/hub/hub.hpp"

namespace ssegw::server {

struct Message {
  enum class Kind : uint8_t {
    kPublish,         // to the owner: publish data into channel
    kPublishReply,    // to the asker: the id, or a failure
    kSubscribe,       // to the owner: a subscriber on `from` wants channel from `resume`
    kSubscribeReply,  // to the asker: replay frames, or a failure
    kUnsubscribe,     // to the owner: one subscriber on `from` has gone
    kForward,         // to a mirror: a new frame of channel (none: the channel finished)
    kInfo,            // to the owner: channel information
    kInfoReply,
    kShutdown,  // from main: drain
    kStop,      // from main: every worker has drained; close the loop
  };

  explicit Message(Kind k) : kind(k) {}

  Kind kind;
  uint32_t from = 0;        // the worker that sent it
  uint64_t connection = 0;  // the asking connection's id on `from`
  uint64_t sequence = 0;    // kPublish and its reply: the asker's answer slot (0: none)
  std::string channel;
  std::string type;
  std::string data;
  hub::ResumeRequest resume;
  base::FrameRef frame;
  std::vector<base::FrameRef> frames;
  bool ok = true;
  bool finished = false;        // kSubscribeReply: the channel is finished; end after the frames
  bool no_content = false;      // kSubscribeReply: finished, and the client has its final event
  bool backplane_down = false;  // replies: failed because Redis is unreachable
  bool attached = false;        // kSubscribeReply: the owner attached the asker (same worker)
  // kSubscribeReply, not ok: refused at limits.max_sources (else limits.max_channels).
  bool too_many_sources = false;
  hub::Published published{};
  hub::ChannelInfo info{};

  std::atomic<Message*> next{nullptr};
};

class Mailbox {
 public:
  Mailbox() : head_(&stub_), tail_(&stub_) {}
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;
  ~Mailbox() {
    while (Message* m = pop()) delete m;
  }

  void push(Message* message) {
    message->next.store(nullptr, std::memory_order_relaxed);
    Message* previous = head_.exchange(message, std::memory_order_acq_rel);
    previous->next.store(message, std::memory_order_release);
  }

  // nullptr when empty, or when a producer is half-way through push(); its wake-up follows.
  Message* pop() {
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
      return tail;
    }
    if (tail != head_.load(std::memory_order_acquire)) return nullptr;
    push(&stub_);
    next = tail->next.load(std::memory_order_acquire);
    if (next) {
      tail_ = next;
      return tail;
    }
    return nullptr;
  }

 private:
  Message stub_{Message::Kind::kStop};  // never delivered: it only keeps the list non-empty
  std::atomic<Message*> head_;
  Message* tail_;
};

}  // namespace ssegw::server
