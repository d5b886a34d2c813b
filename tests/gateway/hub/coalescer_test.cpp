// fanout.coalesce through the Hub: a quiet channel's event leaves with its loop turn, a busy
// one's wait for the end of its window and leave together, in order; a join sends what waits first,
// so nobody gets an event twice; a generation's answer is never held.
#include "gateway/hub/coalescer.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <vector>

#include "gateway/hub/channel.hpp"
#include "gateway/hub/hub.hpp"
#include "gateway/metrics/metrics.hpp"

using namespace ssegw;

namespace {

// The data of every frame it is given, in order.
class Recorder final : public hub::Subscriber {
 public:
  void deliver(const base::FrameRef& frame) override {
    std::string raw(frame->raw());
    size_t at = raw.find("data: ");
    data.push_back(raw.substr(at + 6, raw.find('\n', at) - at - 6));
  }
  void end_of_stream() override {
    data.push_back("<end>");
    if (channel()) hub->detach(this);
  }
  std::vector<std::string> data;
  hub::Hub* hub = nullptr;
};

using Data = std::vector<std::string>;

// A hub with a 5 ms window on a clock the test moves, and the wake-ups it asked for.
struct Coalescing {
  explicit Coalescing(uint64_t window_ms = 5) : hub(options(window_ms), metrics, channels, bytes) {
    hub.set_coalescing([this] { return now; }, [this](uint64_t due) { wakes.push_back(due); });
  }
  static hub::HubOptions options(uint64_t window_ms) {
    hub::HubOptions o;
    o.coalesce_ms = window_ms;
    o.workers = 2;
    return o;
  }
  void publish(const char* data, const char* channel = "c") {
    REQUIRE(hub.publish(channel, "", data, now, 1000 + now));
  }
  Recorder& join(const char* channel = "c", hub::ResumeRequest resume = {}) {
    auto& r = recorders.emplace_back();
    r.hub = &hub;
    hub.subscribe(channel, &r, resume);
    return r;
  }
  double coalesced() const { return metrics.fanout_coalesced_events.Value(); }
  // The worker's end-of-turn hook, which sends what is due by now.
  void end_turn() { hub.send_due(); }

  metrics::Metrics metrics;
  std::atomic<uint32_t> channels{0};
  std::atomic<uint64_t> bytes{0};
  hub::Hub hub;
  uint64_t now = 100;
  std::vector<uint64_t> wakes;
  std::vector<Recorder> recorders;  // reserved: subscribers must not move
  Coalescing& reserve() {
    recorders.reserve(8);
    return *this;
  }
};

}  // namespace

TEST_CASE("hub/coalescer: a quiet channel's event leaves with its turn, a busy one's wait") {
  Coalescing c;
  Recorder& r = c.reserve().join();
  c.publish("e1");  // quiet: it waits only for the end of this turn
  CHECK(r.data.empty());
  CHECK(c.wakes == std::vector<uint64_t>{100});  // "now": the worker's end-of-turn hook
  c.end_turn();
  CHECK(r.data == Data{"e1"});  // and a window to 105 opens
  c.now = 101;
  c.publish("e2");
  c.now = 103;
  c.publish("e3");
  c.end_turn();
  CHECK(r.data == Data{"e1"});
  CHECK(c.coalesced() == 2);
  CHECK(c.wakes == std::vector<uint64_t>{100, 105});  // one wake-up per listing
  c.now = 104;
  CHECK(c.hub.send_due() == 105);
  CHECK(r.data == Data{"e1"});
  c.now = 105;
  CHECK(c.hub.send_due() == 0);  // nothing else waits
  CHECK(r.data == Data{"e1", "e2", "e3"});
  // Sending the batch opened a new window (to 110): load keeps coalescing.
  c.now = 107;
  c.publish("e4");
  CHECK(r.data.size() == 3);
  CHECK(c.wakes.back() == 110);
  c.now = 110;
  c.hub.send_due();
  CHECK(r.data == Data{"e1", "e2", "e3", "e4"});
  // Quiet again after the window: a burst that one turn brings leaves together with that turn,
  // in one write per subscriber, and none of it counts as held.
  c.now = 130;
  c.publish("e5");
  c.publish("e6");
  c.publish("e7");
  CHECK(r.data.size() == 4);
  c.end_turn();
  CHECK(r.data == Data{"e1", "e2", "e3", "e4", "e5", "e6", "e7"});
  CHECK(c.coalesced() == 3);
  CHECK(c.hub.send_due() == 0);
}

TEST_CASE("hub/coalescer: a joiner gets what waited once, by replay, and the others by the batch") {
  Coalescing c;
  Recorder& a = c.reserve().join();
  c.publish("e1");
  c.end_turn();
  std::string first_id = c.hub.info("c").last_id->str();
  c.now = 101;
  c.publish("e2");
  c.publish("e3");
  CHECK(a.data == Data{"e1"});
  c.now = 102;
  Recorder& b = c.join("c", hub::ResumeRequest{true, first_id});
  CHECK(a.data == Data{"e1", "e2", "e3"});  // sent before b joined
  CHECK(b.data == Data{"e2", "e3"});        // its replay
  c.now = 105;
  c.hub.send_due();  // nothing left to send: no duplicate
  CHECK(a.data == Data{"e1", "e2", "e3"});
  CHECK(b.data == Data{"e2", "e3"});
  c.publish("e4");  // with Redis, the join opens the hub's channel first: what waits goes out
  c.now = 106;
  REQUIRE(c.hub.open_channel("c"));
  CHECK(a.data.back() == "e4");
  c.now = 108;
  c.publish("e5");  // the window opened at 106 ends at 111: wait
  CHECK(a.data.back() == "e4");
  c.now = 111;
  c.hub.send_due();
  CHECK(a.data == Data{"e1", "e2", "e3", "e4", "e5"});
  CHECK(b.data == Data{"e2", "e3", "e4", "e5"});
}

TEST_CASE("hub/coalescer: mirroring workers get a batch's frames when it is sent, in order") {
  Coalescing c;
  std::vector<std::string> forwarded;
  c.hub.set_forward([&](uint32_t worker, const std::string& channel, const base::FrameRef& frame) {
    CHECK(worker == 1);
    CHECK(channel == "c");
    std::string raw = frame ? std::string(frame->raw()) : std::string();
    forwarded.push_back(frame ? raw.substr(raw.find("data: ")) : "<end>");
  });
  c.hub.subscribe_remote("c", 1, {});
  c.publish("e1");
  c.end_turn();
  c.now = 101;
  c.publish("e2");
  c.publish("e3");
  CHECK(forwarded == Data{"data: e1\n\n"});
  c.now = 105;
  c.hub.send_due();
  CHECK(forwarded == Data{"data: e1\n\n", "data: e2\n\n", "data: e3\n\n"});
  // finish() sends what waits, then the end.
  c.now = 106;
  c.publish("e4");
  c.hub.finish("c");
  CHECK(forwarded == Data{"data: e1\n\n", "data: e2\n\n", "data: e3\n\n", "data: e4\n\n", "<end>"});
}

TEST_CASE("hub/coalescer: a full batch leaves at once, and a generation's answer is never held") {
  Coalescing c;
  Recorder& r = c.reserve().join();
  c.publish("first");
  c.end_turn();
  for (size_t i = 0; i < hub::Coalescer::kMaxBatch - 1; ++i) c.publish("held");
  CHECK(r.data.size() == 1);
  c.publish("fills");
  CHECK(r.data.size() == 1 + hub::Coalescer::kMaxBatch);
  CHECK(r.data.back() == "fills");
  CHECK(c.coalesced() == hub::Coalescer::kMaxBatch);
  // A burst of 64 in one turn of a quiet channel fills a batch too: it leaves at once, and none
  // of it waited for a window.
  c.now = 200;
  for (size_t i = 0; i < hub::Coalescer::kMaxBatch; ++i) c.publish("burst");
  CHECK(r.data.size() == 1 + 2 * hub::Coalescer::kMaxBatch);
  CHECK(c.coalesced() == hub::Coalescer::kMaxBatch);

  REQUIRE(c.hub.create_generation_channel("gen"));
  Recorder& g = c.join("gen");
  for (const char* token : {"t1", "t2", "t3"}) c.publish(token, "gen");
  CHECK(g.data == Data{"t1", "t2", "t3"});
  // With Redis a generation's hub channel is an ordinary one: its name says what it is.
  REQUIRE(c.hub.open_channel("gen-0123456789abcdef0123456789abcdef"));
  Recorder& r2 = c.join("gen-0123456789abcdef0123456789abcdef");
  for (const char* token : {"t1", "t2"}) c.publish(token, "gen-0123456789abcdef0123456789abcdef");
  CHECK(r2.data == Data{"t1", "t2"});
  CHECK(c.coalesced() == hub::Coalescer::kMaxBatch);
}

TEST_CASE(
    "hub/coalescer: a channel is kept while it has a batch and freed after, and a drain sends") {
  hub::HubOptions o = Coalescing::options(5);
  o.history.max_events = 1;
  o.history.ttl_ms = 1;  // the history goes at the next sweep
  metrics::Metrics metrics;
  std::atomic<uint32_t> channels{0};
  std::atomic<uint64_t> bytes{0};
  hub::Hub hub(o, metrics, channels, bytes);
  uint64_t now = 100;
  hub.set_coalescing([&] { return now; }, [](uint64_t) {});
  Recorder r;
  r.hub = &hub;
  hub.subscribe("c", &r, {});
  REQUIRE(hub.publish("c", "", "e1", now, now));
  hub.send_due();  // the end of the turn
  REQUIRE(hub.publish("c", "", "e2", now, now));
  hub.detach(&r);  // nobody left, a batch waits
  now = 104;
  hub.sweep(now);  // the TTL empties the history; the batch keeps the channel
  CHECK(hub.channel_count() == 1);
  hub.send_due();
  CHECK(hub.channel_count() == 1);
  now = 105;
  CHECK(hub.send_due() == 0);
  CHECK(hub.channel_count() == 0);  // sent to nobody, then freed
  CHECK(r.data == Data{"e1"});

  // send_all_batches (a drain) sends whatever waits, window ended or not.
  Recorder s;
  s.hub = &hub;
  hub.subscribe("d", &s, {});
  REQUIRE(hub.publish("d", "", "d1", now, now));
  hub.send_due();
  REQUIRE(hub.publish("d", "", "d2", now, now));  // its window ends at 110
  CHECK(s.data == Data{"d1"});
  hub.send_all_batches();
  CHECK(s.data == Data{"d1", "d2"});
  hub.detach(&s);
}
