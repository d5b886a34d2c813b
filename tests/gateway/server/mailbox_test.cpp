// The lock-free MPSC Mailbox under contention: several producer threads, one consumer. Meant for
// the ThreadSanitizer build too (make test-tsan runs it), where a missing release/acquire pair
// between push() and pop() is a reported race, not a lucky pass.
#include "gateway/server/mailbox.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace ssegw;

using server::Mailbox;
using server::Message;

namespace {

struct Tally {
  std::vector<uint64_t> next;  // per producer: the sequence expected next
  uint64_t popped = 0;
  bool in_order = true;
  bool intact = true;  // every payload as its producer wrote it
};

// Pops what is there; the consumer side of the worker's on_mail().
void drain(Mailbox& mailbox, Tally& tally) {
  while (Message* m = mailbox.pop()) {
    if (m->from >= tally.next.size() || m->sequence != tally.next[m->from]) tally.in_order = false;
    if (m->from < tally.next.size()) tally.next[m->from] = m->sequence + 1;
    if (!m->data.empty() && m->data != std::to_string(m->sequence)) tally.intact = false;
    ++tally.popped;
    delete m;
  }
}

}  // namespace

TEST_CASE("server/mailbox: one thread, first in first out") {
  Mailbox mailbox;
  CHECK(mailbox.pop() == nullptr);
  for (uint64_t i = 0; i < 5; ++i) {
    auto* m = new Message(Message::Kind::kForward);
    m->sequence = i;
    mailbox.push(m);
  }
  for (uint64_t i = 0; i < 5; ++i) {
    Message* m = mailbox.pop();
    REQUIRE(m != nullptr);
    CHECK(m->sequence == i);
    delete m;
  }
  CHECK(mailbox.pop() == nullptr);
  // The stub goes back in when the queue empties: the queue works again after that.
  auto* m = new Message(Message::Kind::kForward);
  m->sequence = 7;
  mailbox.push(m);
  Message* again = mailbox.pop();
  REQUIRE(again != nullptr);
  CHECK(again->sequence == 7);
  delete again;
  CHECK(mailbox.pop() == nullptr);
}

TEST_CASE("server/mailbox: the destructor frees what was never popped") {
  // Under ASan a leak here fails the run.
  Mailbox mailbox;
  for (int i = 0; i < 3; ++i) mailbox.push(new Message(Message::Kind::kForward));
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
      for (uint64_t i = 0; i < kPerProducer; ++i) {
        auto* m = new Message(Message::Kind::kForward);
        m->from = p;
        m->sequence = i;
        m->data = std::to_string(i);  // a payload the consumer reads: TSan sees its handover
        mailbox.push(m);
      }
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
