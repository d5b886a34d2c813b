#include "gateway/hub/hub.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "gateway/hub/channel.hpp"
#include "gateway/hub/sse_frame.hpp"
#include "gateway/metrics/metrics.hpp"

using namespace ssegw;

namespace {

// Records the raw bytes of every frame it is given; may run a hook inside deliver().
class FakeSubscriber final : public hub::Subscriber {
 public:
  void end_of_stream() override {
    ++ends;
    if (channel()) owner_hub->detach(this);
  }
  void deliver(const base::FrameRef& frame) override {
    frames.emplace_back(frame->raw());
    if (on_deliver) on_deliver(*this);
  }

  std::vector<std::string> frames;
  std::function<void(FakeSubscriber&)> on_deliver;
  int ends = 0;
  hub::Hub* owner_hub = nullptr;
};

// A hub with its metrics and channel counter, as one worker holds them.
struct Fixture {
  explicit Fixture(hub::HubOptions options = {})
      : hub(options, metrics, channel_count, history_bytes) {}

  double published() const { return metrics.events_published.Value(); }
  double delivered() const { return metrics.events_delivered.Value(); }
  double replayed() const { return metrics.replayed_events.Value(); }
  double gaps() const { return metrics.replay_gaps.Value(); }

  metrics::Metrics metrics;
  std::atomic<uint32_t> channel_count{0};
  std::atomic<uint64_t> history_bytes{0};
  hub::Hub hub;
};

std::string ev(const char* id, const char* data) {
  return std::string("id: ") + id + "\ndata: " + data + "\n\n";
}

const hub::ResumeRequest kNoResume{};

hub::ResumeRequest resume_from(std::string id) {
  return hub::ResumeRequest{true, std::move(id)};
}

hub::HubOptions options_with(uint32_t max_events, uint32_t workers = 1, uint32_t max_channels = 100,
                             uint64_t ttl_ms = 60000) {
  hub::HubOptions o;
  o.history.max_events = max_events;
  o.history.ttl_ms = ttl_ms;
  o.workers = workers;
  o.max_channels = max_channels;
  return o;
}

}  // namespace

TEST_CASE("hub/channel: add, remove and fan_out") {
  hub::Channel channel("c", hub::HistoryLimits{}, false);
  FakeSubscriber a, b, c;
  channel.add(&a);
  channel.add(&b);
  channel.add(&c);
  CHECK(a.channel() == &channel);
  CHECK(channel.local_subscribers() == 3);
  base::FrameRef frame = base::Frame::copy_of("x");
  CHECK(channel.fan_out(frame) == 3);
  channel.remove(&a);  // the last one moves into a's slot
  CHECK(a.channel() == nullptr);
  CHECK(channel.local_subscribers() == 2);
  CHECK(channel.fan_out(frame) == 2);
  channel.remove(&c);
  channel.remove(&b);
  CHECK(channel.fan_out(frame) == 0);
  CHECK(a.frames.size() == 1);
  CHECK(b.frames.size() == 2);
  CHECK(c.frames.size() == 2);
  CHECK(channel.idle());
}

TEST_CASE("hub/channel: subscribers removing themselves during a fan-out") {
  hub::Channel channel("c", hub::HistoryLimits{}, false);
  FakeSubscriber s[5];
  for (auto& sub : s) channel.add(&sub);
  // The first, a middle one and the last leave on their first frame.
  for (int i : {0, 2, 4})
    s[i].on_deliver = [&channel](FakeSubscriber& self) {
      if (self.channel()) channel.remove(&self);
    };
  CHECK_FALSE(channel.idle());
  CHECK(channel.fan_out(base::Frame::copy_of("one")) == 5);
  CHECK(channel.local_subscribers() == 2);
  CHECK(channel.fan_out(base::Frame::copy_of("two")) == 2);
  for (int i : {0, 2, 4}) CHECK(s[i].frames == std::vector<std::string>{"one"});
  for (int i : {1, 3}) CHECK(s[i].frames == std::vector<std::string>{"one", "two"});
  // The slots were compacted: removing the rest still works.
  channel.remove(&s[3]);
  channel.remove(&s[1]);
  CHECK(channel.local_subscribers() == 0);
  CHECK(channel.idle());
}

TEST_CASE("hub/channel: ids come from take_next_id") {
  hub::Channel channel("c", hub::HistoryLimits{}, false);
  CHECK(channel.take_next_id(1000) == hub::EventId{1000, 0});
  CHECK(channel.take_next_id(1000) == hub::EventId{1000, 1});
  CHECK(channel.take_next_id(999) == hub::EventId{1000, 2});
  CHECK(channel.take_next_id(1001) == hub::EventId{1001, 0});
}

TEST_CASE("hub/hub: publish assigns increasing ids and fans out once to every subscriber") {
  Fixture f;
  FakeSubscriber a, b, c;
  for (FakeSubscriber* s : {&a, &b, &c}) REQUIRE(f.hub.subscribe("ch", s, kNoResume).served());
  CHECK(f.metrics.subscribers_active.Value() == 3);
  CHECK(f.metrics.channels_active.Value() == 1);
  CHECK(f.channel_count == 1);

  auto p1 = f.hub.publish("ch", "", "e0", 10, 1000);
  auto p2 = f.hub.publish("ch", "", "e1", 11, 1000);
  auto p3 = f.hub.publish("ch", "", "e2", 12, 999);  // the wall clock went back
  auto p4 = f.hub.publish("ch", "", "e3", 13, 1005);
  REQUIRE(p1);
  REQUIRE(p2);
  REQUIRE(p3);
  REQUIRE(p4);
  CHECK(p1->id == hub::EventId{1000, 0});
  CHECK(p2->id == hub::EventId{1000, 1});
  CHECK(p3->id == hub::EventId{1000, 2});
  CHECK(p4->id == hub::EventId{1005, 0});
  CHECK(p1->subscribers == 3);
  CHECK(p4->subscribers == 3);

  std::vector<std::string> expected{ev("1000-0", "e0"), ev("1000-1", "e1"), ev("1000-2", "e2"),
                                    ev("1005-0", "e3")};
  CHECK(a.frames == expected);
  CHECK(b.frames == expected);
  CHECK(c.frames == expected);

  CHECK(f.published() == 4);
  CHECK(f.delivered() == 12);
  double bytes = 0;
  for (const std::string& e : expected) bytes += 3.0 * e.size();
  CHECK(f.metrics.delivered_bytes.Value() == bytes);
  CHECK(f.replayed() == 0);
  CHECK(f.gaps() == 0);
  CHECK(f.metrics.publish_fanout_seconds.Collect().histogram.sample_count == 4);

  for (FakeSubscriber* s : {&a, &b, &c}) f.hub.detach(s);
  CHECK(f.metrics.subscribers_active.Value() == 0);
  // History keeps the channel.
  CHECK(f.hub.channel_count() == 1);
  CHECK(f.hub.info("ch").retained == 4);
}

TEST_CASE("hub/hub: publish with no subscriber keeps history and counts no delivery") {
  Fixture f;
  auto p = f.hub.publish("ch", "token", "x", 0, 7);
  REQUIRE(p);
  CHECK(p->id == hub::EventId{7, 0});
  CHECK(p->subscribers == 0);
  CHECK(f.published() == 1);
  CHECK(f.delivered() == 0);
  hub::ChannelInfo info = f.hub.info("ch");
  CHECK(info.subscribers == 0);
  CHECK(info.retained == 1);
  CHECK(info.first_id == hub::EventId{7, 0});
  CHECK(info.last_id == hub::EventId{7, 0});
}

TEST_CASE("hub/hub: channels are independent") {
  Fixture f;
  FakeSubscriber a, b;
  REQUIRE(f.hub.subscribe("a", &a, kNoResume).served());
  REQUIRE(f.hub.subscribe("b", &b, kNoResume).served());
  f.hub.publish("a", "", "to-a", 0, 100);
  f.hub.publish("b", "", "to-b", 0, 50);
  CHECK(a.frames == std::vector<std::string>{ev("100-0", "to-a")});
  CHECK(b.frames == std::vector<std::string>{ev("50-0", "to-b")});
  f.hub.detach(&a);
  f.hub.detach(&b);
}

TEST_CASE("hub/hub: a subscriber that detaches itself inside deliver()") {
  Fixture f;
  FakeSubscriber first, quitter, last;
  quitter.on_deliver = [&f](FakeSubscriber& self) { f.hub.detach(&self); };
  REQUIRE(f.hub.subscribe("ch", &first, kNoResume).served());
  REQUIRE(f.hub.subscribe("ch", &quitter, kNoResume).served());
  REQUIRE(f.hub.subscribe("ch", &last, kNoResume).served());

  auto p1 = f.hub.publish("ch", "", "one", 0, 1);
  REQUIRE(p1);
  CHECK(p1->subscribers == 3);  // it was handed the frame
  CHECK(quitter.channel() == nullptr);
  CHECK(f.metrics.subscribers_active.Value() == 2);

  auto p2 = f.hub.publish("ch", "", "two", 0, 2);
  REQUIRE(p2);
  CHECK(p2->subscribers == 2);
  CHECK(first.frames == std::vector<std::string>{ev("1-0", "one"), ev("2-0", "two")});
  CHECK(last.frames == std::vector<std::string>{ev("1-0", "one"), ev("2-0", "two")});
  CHECK(quitter.frames == std::vector<std::string>{ev("1-0", "one")});
  CHECK(f.delivered() == 5);
  CHECK(f.hub.info("ch").subscribers == 2);

  f.hub.detach(&first);
  f.hub.detach(&last);
  f.hub.detach(&quitter);  // already detached: harmless
  CHECK(f.metrics.subscribers_active.Value() == 0);
}

TEST_CASE("hub/hub: every subscriber detaching inside deliver()") {
  Fixture f(options_with(10, 1, 100, 1000));
  FakeSubscriber s[3];
  for (auto& sub : s) {
    sub.on_deliver = [&f](FakeSubscriber& self) { f.hub.detach(&self); };
    REQUIRE(f.hub.subscribe("ch", &sub, kNoResume).served());
  }
  auto p = f.hub.publish("ch", "", "bye", 0, 1);
  REQUIRE(p);
  CHECK(p->subscribers == 3);
  for (auto& sub : s) CHECK(sub.frames == std::vector<std::string>{ev("1-0", "bye")});
  CHECK(f.hub.info("ch").subscribers == 0);
  CHECK(f.hub.channel_count() == 1);  // the history still holds the event
  f.hub.sweep(1000);
  CHECK(f.hub.channel_count() == 0);
  CHECK(f.channel_count == 0);
}

TEST_CASE("hub/hub: subscribe with resume replays the events after the id, then live ones") {
  Fixture f;
  for (int i = 0; i < 5; ++i)
    f.hub.publish("ch", "", ("e" + std::to_string(i)).c_str(), 0, 1000);  // 1000-0 .. 1000-4
  CHECK(f.published() == 5);

  FakeSubscriber s;
  REQUIRE(f.hub.subscribe("ch", &s, resume_from("1000-2")).served());
  CHECK(s.frames == std::vector<std::string>{ev("1000-3", "e3"), ev("1000-4", "e4")});
  CHECK(f.replayed() == 2);
  CHECK(f.delivered() == 2);
  CHECK(f.gaps() == 0);

  auto p = f.hub.publish("ch", "", "live", 0, 1001);
  REQUIRE(p);
  CHECK(p->subscribers == 1);
  CHECK(s.frames ==
        std::vector<std::string>{ev("1000-3", "e3"), ev("1000-4", "e4"), ev("1001-0", "live")});
  CHECK(f.delivered() == 3);
  CHECK(f.replayed() == 2);

  SUBCASE("resume from the last id replays nothing") {
    FakeSubscriber t;
    REQUIRE(f.hub.subscribe("ch", &t, resume_from("1001-0")).served());
    CHECK(t.frames.empty());
    CHECK(f.replayed() == 2);
    CHECK(f.gaps() == 0);
    f.hub.detach(&t);
  }
  SUBCASE("no resume replays nothing") {
    FakeSubscriber t;
    REQUIRE(f.hub.subscribe("ch", &t, kNoResume).served());
    CHECK(t.frames.empty());
    f.hub.detach(&t);
  }
  SUBCASE("an unparseable id gets a gap notice, then the whole history") {
    FakeSubscriber t;
    REQUIRE(f.hub.subscribe("ch", &t, resume_from("garbage")).served());
    REQUIRE(t.frames.size() == 7);
    CHECK(t.frames[0] ==
          "event: gap\ndata: {\"last_event_id\":\"garbage\",\"first_available\":\"1000-0\"}\n\n");
    CHECK(t.frames[1] == ev("1000-0", "e0"));
    CHECK(t.frames[6] == ev("1001-0", "live"));
    CHECK(f.gaps() == 1);
    CHECK(f.replayed() == 2 + 6);
    CHECK(f.delivered() == 3 + 6);
    f.hub.detach(&t);
  }
  SUBCASE("an empty id in a present resume is unparseable too") {
    FakeSubscriber t;
    REQUIRE(f.hub.subscribe("ch", &t, resume_from("")).served());
    REQUIRE(t.frames.size() == 7);
    CHECK(t.frames[0] ==
          "event: gap\ndata: {\"last_event_id\":\"\",\"first_available\":\"1000-0\"}\n\n");
    f.hub.detach(&t);
  }
  f.hub.detach(&s);
}

TEST_CASE("hub/hub: resume older than the retained history") {
  Fixture f(options_with(3));
  for (int i = 0; i < 5; ++i) f.hub.publish("ch", "", std::to_string(i).c_str(), 0, 100 + i);
  // Retained: 102-0, 103-0, 104-0; 101-0 was the last evicted.
  FakeSubscriber continuous, gapped;
  REQUIRE(f.hub.subscribe("ch", &continuous, resume_from("101-0")).served());
  CHECK(continuous.frames ==
        std::vector<std::string>{ev("102-0", "2"), ev("103-0", "3"), ev("104-0", "4")});
  CHECK(f.gaps() == 0);

  REQUIRE(f.hub.subscribe("ch", &gapped, resume_from("100-0")).served());
  CHECK(gapped.frames ==
        std::vector<std::string>{
            "event: gap\ndata: {\"last_event_id\":\"100-0\",\"first_available\":\"102-0\"}\n\n",
            ev("102-0", "2"), ev("103-0", "3"), ev("104-0", "4")});
  CHECK(f.gaps() == 1);
  CHECK(f.replayed() == 6);
  f.hub.detach(&continuous);
  f.hub.detach(&gapped);
}

TEST_CASE("hub/hub: resume on a channel with no history gets a gap with null") {
  Fixture f;
  FakeSubscriber s;
  REQUIRE(f.hub.subscribe("new", &s, resume_from("5-5")).served());
  CHECK(s.frames == std::vector<std::string>{"event: gap\ndata: {\"last_event_id\":\"5-5\","
                                             "\"first_available\":null}\n\n"});
  CHECK(f.gaps() == 1);
  CHECK(f.replayed() == 0);
  CHECK(f.delivered() == 0);
  f.hub.detach(&s);
  CHECK(f.hub.channel_count() == 0);  // nothing left: freed on detach
  CHECK(f.channel_count == 0);
  CHECK(f.metrics.channels_active.Value() == 0);
}

TEST_CASE("hub/hub: the gap notice echoes at most 128 bytes of the requested id") {
  Fixture f;
  FakeSubscriber s;
  REQUIRE(f.hub.subscribe("ch", &s, resume_from(std::string(300, 'a'))).served());
  REQUIRE(s.frames.size() == 1);
  CHECK(s.frames[0] == "event: gap\ndata: {\"last_event_id\":\"" + std::string(128, 'a') +
                           "\",\"first_available\":null}\n\n");
  f.hub.detach(&s);
}

TEST_CASE("hub/hub: remote subscribers") {
  Fixture f(options_with(100, 3));
  std::vector<std::tuple<uint32_t, std::string, std::string>> forwarded;
  f.hub.set_forward([&](uint32_t worker, const std::string& channel, const base::FrameRef& frame) {
    forwarded.emplace_back(worker, channel, std::string(frame->raw()));
  });

  FakeSubscriber local;
  REQUIRE(f.hub.subscribe("ch", &local, kNoResume).served());
  REQUIRE(f.hub.subscribe_remote("ch", 1, kNoResume).answered());
  REQUIRE(f.hub.subscribe_remote("ch", 1, kNoResume).answered());
  REQUIRE(f.hub.subscribe_remote("ch", 2, kNoResume).answered());
  CHECK(f.hub.info("ch").subscribers == 4);

  auto p = f.hub.publish("ch", "", "x", 0, 10);
  REQUIRE(p);
  CHECK(p->subscribers == 4);
  // Once per worker with remote subscribers, never once per subscriber, never to worker 0.
  REQUIRE(forwarded.size() == 2);
  CHECK(forwarded[0] == std::make_tuple(1u, std::string("ch"), ev("10-0", "x")));
  CHECK(forwarded[1] == std::make_tuple(2u, std::string("ch"), ev("10-0", "x")));
  CHECK(local.frames == std::vector<std::string>{ev("10-0", "x")});
  CHECK(f.delivered() == 1);  // remote deliveries are counted by the workers that hold them

  f.hub.unsubscribe_remote("ch", 2);
  CHECK(f.hub.info("ch").subscribers == 3);
  forwarded.clear();
  p = f.hub.publish("ch", "", "y", 0, 11);
  REQUIRE(p);
  CHECK(p->subscribers == 3);
  REQUIRE(forwarded.size() == 1);
  CHECK(std::get<0>(forwarded[0]) == 1);

  f.hub.unsubscribe_remote("ch", 2);  // already zero: stays zero
  f.hub.unsubscribe_remote("ch", 1);
  f.hub.unsubscribe_remote("ch", 1);
  f.hub.detach(&local);
  CHECK(f.hub.info("ch").subscribers == 0);
  forwarded.clear();
  p = f.hub.publish("ch", "", "z", 0, 12);
  REQUIRE(p);
  CHECK(p->subscribers == 0);
  CHECK(forwarded.empty());
  f.hub.unsubscribe_remote("nope", 1);  // unknown channel: ignored
}

TEST_CASE("hub/hub: subscribe_remote returns the replay") {
  Fixture f(options_with(100, 2));
  f.hub.publish("ch", "", "a", 0, 1);
  f.hub.publish("ch", "", "b", 0, 2);
  auto replay = f.hub.subscribe_remote("ch", 1, resume_from("1-0"));
  REQUIRE(replay.status == hub::Admission::Status::kLive);
  REQUIRE(replay.replay.size() == 1);
  CHECK(replay.replay[0]->raw() == ev("2-0", "b"));
  CHECK(f.replayed() == 1);
  CHECK(f.delivered() == 1);

  auto gapped = f.hub.subscribe_remote("ch", 1, resume_from("x"));
  REQUIRE(gapped.status == hub::Admission::Status::kLive);
  CHECK(gapped.replay.size() == 3);
  CHECK(f.gaps() == 1);
  CHECK(f.hub.info("ch").subscribers == 2);

  auto none = f.hub.subscribe_remote("ch", 1, kNoResume);
  REQUIRE(none.status == hub::Admission::Status::kLive);
  CHECK(none.replay.empty());
  CHECK(f.hub.info("ch").subscribers == 3);
}

TEST_CASE("hub/hub: remote subscribers alone keep a channel with no history") {
  Fixture f(options_with(100, 2, 100, 1000));
  REQUIRE(f.hub.subscribe_remote("ch", 1, kNoResume).answered());
  f.hub.sweep(1000000);
  CHECK(f.hub.channel_count() == 1);
  f.hub.unsubscribe_remote("ch", 1);
  CHECK(f.hub.channel_count() == 0);
  CHECK(f.channel_count == 0);
}

TEST_CASE("hub/hub: mirror channels") {
  Fixture f(options_with(100, 2, 1));
  FakeSubscriber a, b;
  f.hub.attach_mirror("m", &a);
  f.hub.attach_mirror("m", &b);
  CHECK(f.hub.channel_count() == 1);
  CHECK(f.channel_count == 0);  // mirrors do not count against max_channels
  CHECK(f.metrics.channels_active.Value() == 0);
  CHECK(f.metrics.subscribers_active.Value() == 2);

  base::FrameRef frame = hub::make_event_frame(hub::EventId{3, 0}, "", "m");
  f.hub.deliver_mirror("m", frame);
  f.hub.deliver_mirror("unknown", frame);  // ignored
  CHECK(a.frames == std::vector<std::string>{ev("3-0", "m")});
  CHECK(b.frames == std::vector<std::string>{ev("3-0", "m")});
  CHECK(f.delivered() == 2);
  CHECK(f.published() == 0);

  // A mirror subscriber that leaves during the fan-out; the last one frees the mirror.
  a.on_deliver = [&f](FakeSubscriber& self) { f.hub.detach(&self); };
  b.on_deliver = [&f](FakeSubscriber& self) { f.hub.detach(&self); };
  f.hub.deliver_mirror("m", frame);
  CHECK(a.frames.size() == 2);
  CHECK(b.frames.size() == 2);
  CHECK(f.hub.channel_count() == 0);
  CHECK(f.metrics.subscribers_active.Value() == 0);
}

TEST_CASE("hub/hub: max_channels") {
  Fixture f(options_with(100, 2, 2));
  REQUIRE(f.hub.publish("a", "", "x", 0, 1));
  FakeSubscriber s;
  REQUIRE(f.hub.subscribe("b", &s, kNoResume).served());
  CHECK(f.channel_count == 2);

  CHECK_FALSE(f.hub.publish("c", "", "x", 0, 1).has_value());
  FakeSubscriber t;
  CHECK_FALSE(f.hub.subscribe("c", &t, kNoResume).served());
  CHECK(t.channel() == nullptr);
  CHECK(f.hub.subscribe_remote("c", 1, kNoResume).refused == hub::Refusal::kTooManyChannels);
  CHECK(f.hub.channel_count() == 2);
  CHECK(f.channel_count == 2);
  CHECK(f.metrics.channels_active.Value() == 2);
  CHECK(f.published() == 1);
  CHECK(f.hub.info("c").retained == 0);

  // Existing channels still work.
  REQUIRE(f.hub.publish("a", "", "y", 0, 2));
  REQUIRE(f.hub.publish("b", "", "y", 0, 2));
  CHECK(s.frames.size() == 1);

  SUBCASE("the counter is shared: another hub sees the limit") {
    hub::Hub other(options_with(100, 2, 2), f.metrics, f.channel_count, f.history_bytes);
    CHECK_FALSE(other.publish("d", "", "x", 0, 1).has_value());
    CHECK(other.channel_count() == 0);
  }
  SUBCASE("a freed channel makes room") {
    f.hub.detach(&s);  // "b" has one event in history: still held
    CHECK(f.channel_count == 2);
    f.hub.sweep(1000000000);  // past every TTL
    CHECK(f.channel_count == 0);
    CHECK(f.hub.channel_count() == 0);
    REQUIRE(f.hub.publish("c", "", "x", 0, 1));
    CHECK(f.channel_count == 1);
  }
  f.hub.detach(&s);
}

TEST_CASE("hub/hub: sweep frees an idle channel after the TTL") {
  Fixture f(options_with(100, 1, 100, 1000));
  REQUIRE(f.hub.publish("ch", "", "x", 0, 1));
  REQUIRE(f.hub.publish("ch", "", "y", 400, 2));
  CHECK(f.hub.channel_count() == 1);
  f.hub.sweep(999);
  CHECK(f.hub.info("ch").retained == 2);
  f.hub.sweep(1000);
  CHECK(f.hub.info("ch").retained == 1);
  CHECK(f.hub.info("ch").first_id == hub::EventId{2, 0});
  CHECK(f.hub.channel_count() == 1);
  f.hub.sweep(1400);
  CHECK(f.hub.channel_count() == 0);
  CHECK(f.channel_count == 0);
  CHECK(f.metrics.channels_active.Value() == 0);
  hub::ChannelInfo info = f.hub.info("ch");
  CHECK(info.retained == 0);
  CHECK_FALSE(info.first_id.has_value());
  CHECK_FALSE(info.last_id.has_value());
}

TEST_CASE("hub/hub: sweep keeps a channel with a subscriber") {
  Fixture f(options_with(100, 1, 100, 1000));
  FakeSubscriber s;
  REQUIRE(f.hub.subscribe("ch", &s, kNoResume).served());
  REQUIRE(f.hub.publish("ch", "", "x", 0, 1));
  f.hub.sweep(5000);
  CHECK(f.hub.channel_count() == 1);
  CHECK(f.hub.info("ch").retained == 0);
  CHECK(f.hub.info("ch").subscribers == 1);
  f.hub.detach(&s);  // nothing left: freed at once
  CHECK(f.hub.channel_count() == 0);
  CHECK(f.channel_count == 0);
}

TEST_CASE("hub/hub: publish expires old history") {
  Fixture f(options_with(100, 1, 100, 1000));
  f.hub.publish("ch", "", "old", 0, 1);
  f.hub.publish("ch", "", "new", 1000, 2);
  hub::ChannelInfo info = f.hub.info("ch");
  CHECK(info.retained == 1);
  CHECK(info.first_id == hub::EventId{2, 0});
}

TEST_CASE("hub/hub: destroying the hub gives back its channel count") {
  metrics::Metrics metrics;
  std::atomic<uint32_t> count{0};
  std::atomic<uint64_t> bytes{0};
  {
    hub::Hub hub(options_with(100, 1, 100), metrics, count, bytes);
    hub.publish("a", "", "x", 0, 1);
    hub.publish("b", "", "x", 0, 1);
    CHECK(count == 2);
    CHECK(metrics.channels_active.Value() == 2);
  }
  CHECK(count == 0);
  CHECK(metrics.channels_active.Value() == 0);
}
