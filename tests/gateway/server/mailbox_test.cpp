// The lock-free MPSC Mailbox under contention: several producer threads, one consumer. Meant for
// the ThreadSanitizer build too (make test-tsan runs it), where a missing release/acquire pair
// between push() and pop() is a reported race, not a lucky pass.
#include "gateway/server/mailbox.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace ssegw;

using server::Mailbox;
using server::Message;
using server::PublishRequest;

namespace {

// A message whose request id is its producer's sequence number, with a payload to check.
std::unique_ptr<Message> numbered(uint32_t from, uint64_t sequence) {
  return std::make_unique<Message>(from,
                                   PublishRequest{sequence, "ch", "", std::to_string(sequence)});
}

uint64_t sequence_of(const Message& m) {
  return std::get<PublishRequest>(m.payload).id;
}

struct Tally {
  std::vector<uint64_t> next;  // per producer: the sequence expected next
  uint64_t popped = 0;
  bool in_order = true;
  bool intact = true;  // every payload as its producer wrote it
};

// Pops what is there; the consumer side of the worker's on_mail().
void drain(Mailbox& mailbox, Tally& tally) {
  while (std::unique_ptr<Message> m = mailbox.pop()) {
    uint64_t sequence = sequence_of(*m);
    if (m->from >= tally.next.size() || sequence != tally.next[m->from]) tally.in_order = false;
    if (m->from < tally.next.size()) tally.next[m->from] = sequence + 1;
    if (std::get<PublishRequest>(m->payload).data != std::to_string(sequence)) tally.intact = false;
    ++tally.popped;
  }
}

}  // namespace

TEST_CASE("server/mailbox: one thread, first in first out") {
  Mailbox mailbox;
  CHECK(mailbox.pop() == nullptr);
  for (uint64_t i = 0; i < 5; ++i) mailbox.push(numbered(0, i));
  for (uint64_t i = 0; i < 5; ++i) {
    std::unique_ptr<Message> m = mailbox.pop();
    REQUIRE(m != nullptr);
    CHECK(sequence_of(*m) == i);
  }
  CHECK(mailbox.pop() == nullptr);
  // The stub goes back in when the queue empties: the queue works again after that.
  mailbox.push(numbered(0, 7));
  std::unique_ptr<Message> again = mailbox.pop();
  REQUIRE(again != nullptr);
  CHECK(sequence_of(*again) == 7);
  CHECK(mailbox.pop() == nullptr);
}

TEST_CASE("server/mailbox: the destructor frees what was never popped") {
  // Under ASan a leak here fails the run.
  Mailbox mailbox;
  for (int i = 0; i < 3; ++i) mailbox.push(numbered(0, static_cast<uint64_t>(i)));
}

TEST_CASE("server/mailbox: stress, several producers and one consumer") {
  constexpr uint32_t kProducers = 4;
  constexpr uint64_t kPerProducer = 50000;
  Mailbox mailbox;
  std::atomic<uint32_t> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> producers;
  for (uint32_t p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      // The payload is read by the consumer: TSan sees its handover.
      for (uint64_t i = 0; i < kPerProducer; ++i) mailbox.push(numbered(p, i));
    });
  }
  while (ready.load() != kProducers) std::this_thread::yield();
  go.store(true, std::memory_order_release);

  Tally tally;
  tally.next.assign(kProducers, 0);
  // pop() may return null while a producer is half-way through push() (the worker then waits for
  // its wake-up); the consumer here just tries again until every message has come out.
  while (tally.popped < kProducers * kPerProducer) {
    drain(mailbox, tally);
    std::this_thread::yield();
  }
  for (auto& t : producers) t.join();
  drain(mailbox, tally);

  CHECK(tally.in_order);
  CHECK(tally.intact);
  CHECK(tally.popped == kProducers * kPerProducer);  // each exactly once: none lost, none twice
  for (uint32_t p = 0; p < kProducers; ++p) CHECK(tally.next[p] == kPerProducer);
  CHECK(mailbox.pop() == nullptr);
}
