// The hub's process-wide bounds: history.max_total_bytes (the eviction queue), the Watch answer
// that limits.max_sources gives, and generation channels that live until they are finished.
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "gateway/hub/hub.hpp"
#include "gateway/metrics/metrics.hpp"

using namespace ssegw;

namespace {

using Status = hub::Admission::Status;

class FakeSubscriber final : public hub::Subscriber {
 public:
  void deliver(const base::FrameRef& frame) override { frames.emplace_back(frame->raw()); }
  void end_of_stream() override {
    ++ends;
    if (channel()) owner_hub->detach(this);
  }

  std::vector<std::string> frames;
  int ends = 0;
  hub::Hub* owner_hub = nullptr;
};

// What the workers share, and one hub on it.
struct Shared {
  metrics::Metrics metrics;
  std::atomic<uint32_t> channel_count{0};
  std::atomic<uint64_t> history_bytes{0};

  double evicted(const char* reason) const {
    std::string want(reason);
    if (want == "total_bytes") return metrics.history_evicted_total_bytes.Value();
    if (want == "channel_limit") return metrics.history_evicted_channel_limit.Value();
    return metrics.history_evicted_ttl.Value();
  }
};

hub::HubOptions options(uint64_t max_total_bytes, uint32_t max_events = 1000,
                        uint64_t ttl_ms = 60000, uint32_t max_channels = 100) {
  hub::HubOptions o;
  o.history.max_events = max_events;
  o.history.ttl_ms = ttl_ms;
  o.max_total_bytes = max_total_bytes;
  o.max_channels = max_channels;
  return o;
}

// Every event below is 100 bytes of data published at wall time 10..99 ms: a frame of
// "id: NN-0\n" (9) + "data: " (6) + 100 + "\n\n" (2) = 117 bytes.
constexpr uint64_t kFrame = 117;

std::string data(char c) {
  return std::string(100, c);
}

std::string frame(const std::string& id, char c) {
  return "id: " + id + "\ndata: " + data(c) + "\n\n";
}

hub::ResumeRequest resume_from(const std::string& id) {
  return hub::ResumeRequest{true, id};
}

std::vector<uint64_t> retained_ms(hub::Hub& hub, const std::string& channel) {
  FakeSubscriber s;
  s.owner_hub = &hub;
  std::vector<uint64_t> out;
  // A resume from "0-0" replays everything held, after a gap notice.
  REQUIRE(hub.subscribe(channel, &s, resume_from("0-0")).served());
  hub.detach(&s);
  for (size_t i = 1; i < s.frames.size(); ++i) {
    auto id = hub::EventId::parse(s.frames[i].substr(4, s.frames[i].find('\n') - 4));
    REQUIRE(id);
    out.push_back(id->ms);
  }
  return out;
}

}  // namespace

TEST_CASE("hub/limits: past max_total_bytes the oldest events of all channels go first") {
  Shared shared;
  hub::Hub hub(options(4 * kFrame), shared.metrics, shared.channel_count, shared.history_bytes);
  // a@10, b@11, a@12, c@13: exactly at the limit, nothing evicted.
  for (auto [ch, ms] :
       std::vector<std::pair<const char*, uint64_t>>{{"a", 10}, {"b", 11}, {"a", 12}, {"c", 13}}) {
    auto p = hub.publish(ch, "", data(ch[0]), 0, ms);
    REQUIRE(p);
    CHECK(p->frame->size() == kFrame);
  }
  CHECK(shared.history_bytes == 4 * kFrame);
  CHECK(shared.metrics.history_bytes.Value() == 4 * kFrame);
  CHECK(shared.evicted("total_bytes") == 0);

  // b@14 takes it over: a@10, the oldest of all, goes.
  REQUIRE(hub.publish("b", "", data('b'), 0, 14));
  CHECK(shared.history_bytes == 4 * kFrame);
  CHECK(shared.evicted("total_bytes") == 1);
  CHECK(retained_ms(hub, "a") == std::vector<uint64_t>{12});
  CHECK(retained_ms(hub, "b") == std::vector<uint64_t>{11, 14});
  CHECK(retained_ms(hub, "c") == std::vector<uint64_t>{13});

  // c@15 and c@16: b@11, then a@12 go; channel a is left empty, and the sweep frees it.
  REQUIRE(hub.publish("c", "", data('c'), 0, 15));
  REQUIRE(hub.publish("c", "", data('c'), 0, 16));
  CHECK(shared.evicted("total_bytes") == 3);
  CHECK(hub.info("a").retained == 0);
  CHECK(retained_ms(hub, "b") == std::vector<uint64_t>{14});
  CHECK(retained_ms(hub, "c") == std::vector<uint64_t>{13, 15, 16});
  CHECK(hub.retained_events() == 4);
  CHECK(hub.retained_bytes() == 4 * kFrame);
  CHECK(hub.channel_count() == 3);
  hub.sweep(0);
  CHECK(hub.channel_count() == 2);
  CHECK(shared.channel_count == 2);

  SUBCASE("a resume from the last evicted id continues without a gap") {
    FakeSubscriber s;
    s.owner_hub = &hub;
    const double gaps = shared.metrics.replay_gaps.Value();
    REQUIRE(hub.subscribe("b", &s, resume_from("11-0")).served());
    CHECK(s.frames == std::vector<std::string>{frame("14-0", 'b')});
    CHECK(shared.metrics.replay_gaps.Value() == gaps);
    hub.detach(&s);
  }
  SUBCASE("a resume from an id evicted before that gets a gap, then what is held") {
    REQUIRE(hub.publish("c", "", data('c'), 0, 17));  // evicts c@13
    REQUIRE(hub.publish("c", "", data('c'), 0, 18));  // evicts b@14
    CHECK(retained_ms(hub, "c") == std::vector<uint64_t>{15, 16, 17, 18});
    FakeSubscriber s;
    s.owner_hub = &hub;
    const double gaps = shared.metrics.replay_gaps.Value();
    REQUIRE(hub.subscribe("c", &s, resume_from("10-0")).served());
    REQUIRE(s.frames.size() == 5);
    CHECK(s.frames[0] ==
          "event: gap\ndata: {\"last_event_id\":\"10-0\",\"first_available\":\"15-0\"}\n\n");
    CHECK(s.frames[1] == frame("15-0", 'c'));
    CHECK(s.frames[4] == frame("18-0", 'c'));
    CHECK(shared.metrics.replay_gaps.Value() == gaps + 1);
    hub.detach(&s);
  }
}

TEST_CASE("hub/limits: a live subscriber still gets an event evicted at once") {
  Shared shared;
  // Smaller than one event: every publish evicts itself after the fan-out's frame was taken.
  hub::Hub hub(options(kFrame - 1), shared.metrics, shared.channel_count, shared.history_bytes);
  FakeSubscriber s;
  s.owner_hub = &hub;
  REQUIRE(hub.subscribe("a", &s, {}).served());
  REQUIRE(hub.publish("a", "", data('a'), 0, 10));
  CHECK(s.frames == std::vector<std::string>{frame("10-0", 'a')});
  CHECK(hub.info("a").retained == 0);
  CHECK(shared.history_bytes == 0);
  CHECK(shared.evicted("total_bytes") == 1);
  // The client that has 10-0 resumes without a gap: it is the last evicted id.
  FakeSubscriber r;
  r.owner_hub = &hub;
  REQUIRE(hub.subscribe("a", &r, resume_from("10-0")).served());
  CHECK(r.frames.empty());
  hub.detach(&r);
  hub.detach(&s);
}

TEST_CASE("hub/limits: the eviction queue stays bounded when channels evict on their own") {
  Shared shared;
  // max_events 2: the hot channel's events go stale behind the cold channel's one live event at
  // the queue's front, so only compaction can drop them.
  hub::Hub hub(options(1ull << 40, 2, 1000), shared.metrics, shared.channel_count,
               shared.history_bytes);
  REQUIRE(hub.publish("cold", "", "c", 0, 1));
  size_t largest = 0;
  for (uint64_t i = 0; i < 20000; ++i) {
    REQUIRE(hub.publish("hot", "", "h", 0, 10 + i));
    largest = std::max(largest, hub.eviction_queue_size());
  }
  INFO("largest eviction queue: ", largest);
  CHECK(hub.retained_events() == 3);
  CHECK(largest > 1024);               // stale entries did pile up...
  CHECK(largest <= 2 * 3 + 1024 + 1);  // ...until a compaction dropped them
  CHECK(hub.eviction_queue_size() <= 2 * 3 + 1024 + 1);
  CHECK(shared.evicted("channel_limit") == 20000 - 2);

  // The compactions kept the live entries in order: the oldest event is still found first.
  // One byte over the limit, as if other workers held the rest.
  const uint64_t others = (1ull << 40) - shared.history_bytes + 1;
  shared.history_bytes += others;
  hub.sweep(0);
  shared.history_bytes -= others;
  CHECK(hub.info("cold").retained == 0);
  CHECK(hub.info("hot").retained == 2);
  CHECK(shared.evicted("total_bytes") == 1);

  // Past the TTL: nothing is retained, the queue and the shared count are empty again.
  hub.sweep(1000000);
  CHECK(hub.retained_events() == 0);
  CHECK(hub.eviction_queue_size() == 0);
  CHECK(shared.history_bytes == 0);
  CHECK(shared.metrics.history_bytes.Value() == 0);
  CHECK(shared.evicted("ttl") == 2);
  CHECK(hub.channel_count() == 0);
}

TEST_CASE("hub/limits: the shared byte count returns to 0 when channels and hubs go") {
  Shared shared;
  {
    hub::Hub a(options(1 << 20, 1000, 1000), shared.metrics, shared.channel_count,
               shared.history_bytes);
    hub::Hub b(options(1 << 20, 1000, 1000), shared.metrics, shared.channel_count,
               shared.history_bytes);
    REQUIRE(a.publish("x", "", data('x'), 0, 10));
    REQUIRE(a.publish("y", "", data('y'), 0, 11));
    REQUIRE(b.publish("z", "", data('z'), 0, 12));
    CHECK(shared.history_bytes == 3 * kFrame);
    CHECK(shared.metrics.history_bytes.Value() == 3 * kFrame);
    a.sweep(5000);  // past a's TTL: its channels are freed
    CHECK(a.channel_count() == 0);
    CHECK(a.eviction_queue_size() == 0);
    CHECK(shared.history_bytes == kFrame);
    // b still holds z when it is destroyed: it gives its bytes back.
  }
  CHECK(shared.history_bytes == 0);
  CHECK(shared.metrics.history_bytes.Value() == 0);
  CHECK(shared.channel_count == 0);
}

TEST_CASE("hub/limits: hubs share the total, the publisher evicts its own, the others at sweep") {
  Shared shared;
  hub::Hub a(options(4 * kFrame), shared.metrics, shared.channel_count, shared.history_bytes);
  hub::Hub b(options(4 * kFrame), shared.metrics, shared.channel_count, shared.history_bytes);
  REQUIRE(a.publish("a", "", data('a'), 0, 10));
  REQUIRE(a.publish("a", "", data('a'), 0, 11));
  REQUIRE(a.publish("a", "", data('a'), 0, 12));
  REQUIRE(b.publish("b", "", data('b'), 0, 13));
  CHECK(shared.history_bytes == 4 * kFrame);
  // b goes over: b gives up its own oldest (the hubs run on other threads: b cannot touch a's).
  REQUIRE(b.publish("b", "", data('b'), 0, 14));
  CHECK(shared.history_bytes == 4 * kFrame);
  CHECK(retained_ms(a, "a") == std::vector<uint64_t>{10, 11, 12});
  CHECK(retained_ms(b, "b") == std::vector<uint64_t>{14});

  // Publishes racing on two threads can leave the total over until a sweep: here two events'
  // worth more, as if counted by a third worker that holds nothing. a's sweep trims a's oldest.
  shared.history_bytes += 2 * kFrame;
  a.sweep(0);
  CHECK(retained_ms(a, "a") == std::vector<uint64_t>{12});
  CHECK(shared.history_bytes == 4 * kFrame);
  b.sweep(0);  // within the limit again: b keeps its event
  CHECK(retained_ms(b, "b") == std::vector<uint64_t>{14});
  shared.history_bytes -= 2 * kFrame;
}

TEST_CASE("hub/limits: a refused Watch leaves no subscriber attached and no count changed") {
  Shared shared;
  hub::Hub hub(options(1 << 20), shared.metrics, shared.channel_count, shared.history_bytes);
  std::vector<std::pair<std::string, bool>> calls;
  bool allow = false;
  hub.set_watch([&](const std::string& channel, bool watched) {
    calls.emplace_back(channel, watched);
    return allow;
  });

  SUBCASE("a new channel: refused, and not kept") {
    FakeSubscriber s;
    CHECK(hub.subscribe("feed.a", &s, {}).refused == hub::Refusal::kTooManySources);
    CHECK_FALSE(hub.subscribe("feed.a", &s, {}).served());
    CHECK(s.channel() == nullptr);
    CHECK(s.frames.empty());
    CHECK(hub.subscribe_remote("feed.a", 0, {}).refused == hub::Refusal::kTooManySources);
    CHECK_FALSE(hub.subscribe_remote("feed.a", 0, {}).answered());
    CHECK(hub.channel_count() == 0);
    CHECK(shared.channel_count == 0);
    CHECK(shared.metrics.channels_active.Value() == 0);
    CHECK(shared.metrics.subscribers_active.Value() == 0);
    CHECK(calls.size() == 4);
    for (auto& call : calls) CHECK(call == std::make_pair(std::string("feed.a"), true));
  }
  SUBCASE("a channel with history: refused before any replay is sent or counted") {
    REQUIRE(hub.publish("feed.a", "", "x", 0, 10));
    FakeSubscriber s;
    CHECK(hub.subscribe("feed.a", &s, resume_from("0-0")).refused == hub::Refusal::kTooManySources);
    auto remote = hub.subscribe_remote("feed.a", 0, resume_from("0-0"));
    CHECK(remote.refused == hub::Refusal::kTooManySources);
    CHECK(remote.replay.empty());
    CHECK(s.frames.empty());
    CHECK(s.channel() == nullptr);
    CHECK(hub.info("feed.a").subscribers == 0);
    CHECK(hub.info("feed.a").retained == 1);
    CHECK(shared.channel_count == 1);
    CHECK(shared.metrics.subscribers_active.Value() == 0);
    CHECK(shared.metrics.replayed_events.Value() == 0);
    CHECK(shared.metrics.replay_gaps.Value() == 0);
    CHECK(shared.metrics.events_delivered.Value() == 0);
  }
  SUBCASE("allowed: asked once for the first subscriber, told when the last one leaves") {
    allow = true;
    FakeSubscriber s, t;
    REQUIRE(hub.subscribe("feed.a", &s, {}).status == Status::kLive);
    REQUIRE(hub.subscribe("feed.a", &t, {}).status == Status::kLive);
    REQUIRE(hub.subscribe_remote("feed.a", 0, {}).status == Status::kLive);
    CHECK(calls == std::vector<std::pair<std::string, bool>>{{"feed.a", true}});
    allow = false;  // already watched: nobody asks
    FakeSubscriber u;
    REQUIRE(hub.subscribe("feed.a", &u, {}).status == Status::kLive);
    hub.detach(&s);
    hub.detach(&t);
    hub.detach(&u);
    hub.unsubscribe_remote("feed.a", 0);
    CHECK(calls == std::vector<std::pair<std::string, bool>>{{"feed.a", true}, {"feed.a", false}});
    CHECK(hub.channel_count() == 0);
  }
  SUBCASE("a finished channel needs no source: it is served without asking") {
    REQUIRE(hub.create_generation_channel("gen-x"));
    REQUIRE(hub.publish("gen-x", "", "x", 0, 10));
    hub.finish("gen-x");
    FakeSubscriber s;
    CHECK(hub.subscribe("gen-x", &s, {}).status == Status::kEnded);
    CHECK(s.frames.size() == 1);
    CHECK(calls.empty());
  }
}

TEST_CASE("hub/limits: an open generation stays until finished, then follows the TTL") {
  Shared shared;
  hub::Hub hub(options(1 << 20, 1000, 1000), shared.metrics, shared.channel_count,
               shared.history_bytes);
  REQUIRE(hub.create_generation_channel("gen-a"));
  // Before the first token: empty, unwatched, yet kept by every sweep.
  hub.sweep(0);
  hub.sweep(1000000);
  CHECK(hub.channel_count() == 1);
  CHECK(shared.channel_count == 1);

  REQUIRE(hub.publish("gen-a", "", "tok0", 2000000, 10));
  REQUIRE(hub.publish("gen-a", "", "tok1", 2000000, 11));
  // A late subscriber without Last-Event-ID gets the answer from its first event.
  FakeSubscriber s;
  s.owner_hub = &hub;
  REQUIRE(hub.subscribe("gen-a", &s, {}).status == Status::kLive);
  CHECK(s.frames ==
        std::vector<std::string>{"id: 10-0\ndata: tok0\n\n", "id: 11-0\ndata: tok1\n\n"});
  hub.detach(&s);
  // Its events expire with the TTL like any, but the channel stays while the answer is open.
  hub.sweep(2001000);
  CHECK(hub.info("gen-a").retained == 0);
  CHECK(hub.channel_count() == 1);

  REQUIRE(hub.publish("gen-a", "", "tok2", 2002000, 12));
  hub.finish("gen-a");
  CHECK(hub.channel_count() == 1);  // finished, with history: kept for the TTL
  hub.sweep(2002999);
  CHECK(hub.channel_count() == 1);
  hub.sweep(2003000);
  CHECK(hub.channel_count() == 0);
  CHECK(shared.channel_count == 0);

  SUBCASE("finished with nothing held: freed at once") {
    REQUIRE(hub.create_generation_channel("gen-b"));
    CHECK(hub.channel_count() == 1);
    hub.finish("gen-b");
    CHECK(hub.channel_count() == 0);
    CHECK(shared.channel_count == 0);
  }
  SUBCASE("open generations count in max_channels") {
    hub::Hub small(options(1 << 20, 1000, 1000, 2), shared.metrics, shared.channel_count,
                   shared.history_bytes);
    REQUIRE(small.create_generation_channel("gen-c"));
    REQUIRE(small.create_generation_channel("gen-d"));
    CHECK_FALSE(small.create_generation_channel("gen-e"));
    small.sweep(100000000);
    CHECK(small.channel_count() == 2);
    small.finish("gen-c");
    CHECK(small.create_generation_channel("gen-e"));
  }
}
