// Many cores (docs/architecture.md): with several workers, SO_REUSEPORT spreads connections,
// and a subscriber on any worker receives every event of its channel, in order.
#include <sched.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

TEST_CASE("workers: two workers deliver every event in order across connections") {
  Gateway gw("workers: 2\n");
  const uint16_t port = gw.port();
  CHECK(gw.first_line().find("\"workers\":2") != std::string::npos);

  const std::vector<std::string> channels = {"w.a", "w.b", "w.c", "w.d"};
  constexpr size_t kPerChannel = 15;  // 10 resume from a marker, 5 are live only
  constexpr size_t kEvents = 50;
  std::map<std::string, std::string> marker;
  for (auto& ch : channels) marker[ch] = publish(port, ch, "marker");

  struct Sub {
    std::unique_ptr<SseStream> stream;
    std::string channel;
  };
  std::vector<Sub> subs;
  std::vector<SseStream*> all;
  for (size_t i = 0; i < channels.size() * kPerChannel; ++i) {
    const std::string& ch = channels[i % channels.size()];
    SseStream::Options o;
    if (i < channels.size() * 10) o.last_event_id = marker[ch];
    subs.push_back({std::make_unique<SseStream>(port, ch, o), ch});
    all.push_back(subs.back().stream.get());
  }
  REQUIRE(pump_all(
      all,
      [&] {
        for (auto* s : all)
          if (!s->head_received()) return false;
        return true;
      },
      10s));
  for (auto* s : all) CHECK(s->head().head == kHead11);
  for (auto& ch : channels) {
    CAPTURE(ch);
    CHECK(wait_subscribers(port, ch, kPerChannel) == static_cast<long>(kPerChannel));
  }

  // Publish over eight keep-alive connections, and a fresh connection every seventh event, so
  // that publishes reach each channel through both workers.
  std::vector<std::unique_ptr<Publisher>> pubs;
  for (int i = 0; i < 8; ++i) pubs.push_back(std::make_unique<Publisher>(port));
  std::map<std::string, std::vector<std::string>> ids;
  for (size_t i = 0; i < kEvents; ++i) {
    for (size_t c = 0; c < channels.size(); ++c) {
      const std::string& ch = channels[c];
      size_t n = i * channels.size() + c;
      std::string data = ch + " #" + std::to_string(i);
      std::string id;
      if (n % 7 == 0) {
        Response r = http(port, post_request("/v1/channels/" + ch + "/events", data));
        REQUIRE(r.status == 200);
        id = extract_id(r.body);
        CHECK(json_number(r.body, "subscribers") == static_cast<long>(kPerChannel));
      } else {
        Publisher& pub = *pubs[n % pubs.size()];
        id = pub.publish(ch, data);
        CHECK(json_number(pub.last().body, "subscribers") == static_cast<long>(kPerChannel));
      }
      if (!ids[ch].empty()) CHECK(*parse_id(ids[ch].back()) < *parse_id(id));
      CHECK(parse_id(marker[ch]) < parse_id(id));
      ids[ch].push_back(id);
    }
  }
  CHECK(pump_until_events(all, kEvents, 15s));

  size_t complete = 0;
  bool reported = false;
  for (size_t k = 0; k < subs.size(); ++k) {
    std::vector<std::string> got;
    bool data_ok = true;
    auto& events = subs[k].stream->pending();
    for (size_t i = 0; i < events.size(); ++i) {
      got.push_back(events[i].id.value_or("(no id)"));
      if (events[i].data != subs[k].channel + " #" + std::to_string(i)) data_ok = false;
    }
    if (got == ids[subs[k].channel] && data_ok) {
      ++complete;
    } else if (!reported) {
      reported = true;
      CHECK(data_ok);
      check_same_ids(got, ids[subs[k].channel],
                     "subscriber " + std::to_string(k) + " of " + subs[k].channel);
    }
  }
  CHECK(complete == subs.size());
  CHECK(wait_metric(port, "ssegw_events_delivered_total", subs.size() * kEvents) ==
        subs.size() * kEvents);
}

TEST_CASE("workers: auto starts one worker per core") {
  Gateway gw("workers: auto\n");
  auto n = json_number(gw.first_line(), "workers");
  REQUIRE(n.has_value());
  cpu_set_t set;
  CPU_ZERO(&set);
  long affinity = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
  long hardware = static_cast<long>(std::thread::hardware_concurrency());
  INFO("first line: ", gw.first_line());
  CHECK((*n == affinity || *n == hardware));
  SseStream s(gw.port(), "auto");
  s.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), "auto", 1) == 1);
  std::string id = publish(gw.port(), "auto", "x");
  CHECK(s.expect_event().id == id);
}

// Pipelined publishes to channels owned by the other worker go out without waiting for each
// answer (issue 4: the publisher's worker was a coin toss); the answers must still leave in
// request order, interleaved with answers given on the spot, and the events in publish order.
TEST_CASE("workers: pipelined publishes across workers are answered in request order") {
  Gateway gw("workers: 2\n");
  const uint16_t port = gw.port();
  const std::vector<std::string> channels = {"p.a", "p.b", "p.c", "p.d"};  // on both workers
  std::vector<std::unique_ptr<SseStream>> subs;
  for (const std::string& ch : channels) {
    subs.push_back(std::make_unique<SseStream>(port, ch));
    subs.back()->expect_ok();
  }

  // 80 publishes in one write, round robin over the channels, with a health check and an
  // unknown path (404, which keeps the connection) among them, and Connection: close at the end.
  std::string batch;
  std::vector<int> want_status;
  for (int i = 0; i < 80; ++i) {
    const std::string& ch = channels[i % channels.size()];
    batch += post_request("/v1/channels/" + ch + "/events", "n" + std::to_string(i));
    want_status.push_back(200);
    if (i == 30) {
      batch += get_request("/healthz");
      want_status.push_back(200);
    }
    if (i == 50) {
      batch += get_request("/v1/nowhere");
      want_status.push_back(404);
    }
  }
  batch += post_request("/v1/channels/p.b/events", "last", "Connection: close\r\n");
  want_status.push_back(200);

  Conn conn(port);
  conn.send(batch);
  std::vector<Response> got;
  for (size_t i = 0; i < want_status.size(); ++i) got.push_back(conn.read_response());
  CHECK(conn.wait_closed(kTimeout));

  std::map<std::string, std::vector<std::string>> ids;  // per channel, in answer order
  size_t publish = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].status == want_status[i]);
    if (want_status[i] != 200 || got[i].body.find("\"id\"") == std::string::npos) continue;
    const std::string ch = publish < 80 ? channels[publish % channels.size()] : "p.b";
    CHECK(got[i].body.find("\"channel\":\"" + ch + "\"") != std::string::npos);
    ids[ch].push_back(extract_id(got[i].body));
    ++publish;
  }
  CHECK(publish == 81);
  CHECK(got[31].body == "{\"status\":\"ok\"}\n");
  CHECK(got[52].body.find("not_found") != std::string::npos);

  // Each subscriber got its channel's events in publish order, with the answered ids.
  for (size_t c = 0; c < channels.size(); ++c) {
    CAPTURE(channels[c]);
    const std::vector<std::string>& want = ids[channels[c]];
    for (size_t k = 0; k < want.size(); ++k) {
      SseEvent e = subs[c]->expect_event();
      CHECK(e.id == want[k]);
      size_t n = c + channels.size() * k;
      CHECK(e.data == (n < 80 ? "n" + std::to_string(n) : "last"));
    }
  }
}

// More pipelined publishes than may be pending at once (64): reading waits for answers, then
// goes on, and every publish happens exactly once.
TEST_CASE("workers: 150 pipelined publishes to the other worker's channels, each once") {
  Gateway gw("workers: 2\n");
  const uint16_t port = gw.port();
  const std::vector<std::string> channels = {"q.a", "q.b", "q.c", "q.d"};  // on both workers
  std::vector<std::unique_ptr<SseStream>> subs;
  for (const std::string& ch : channels) {
    subs.push_back(std::make_unique<SseStream>(port, ch));
    subs.back()->expect_ok();
  }
  std::string batch;
  for (int i = 0; i < 150; ++i)
    batch += post_request("/v1/channels/" + channels[i % channels.size()] + "/events",
                          "n" + std::to_string(i));
  Conn conn(port);
  conn.send(batch);
  for (int i = 0; i < 150; ++i) {
    CAPTURE(i);
    CHECK(conn.read_response().status == 200);
  }
  for (size_t c = 0; c < channels.size(); ++c) {
    for (size_t i = c; i < 150; i += channels.size()) {
      SseEvent e = subs[c]->expect_event();
      CHECK(e.data == "n" + std::to_string(i));
    }
    CHECK_FALSE(subs[c]->next_event(100ms).has_value());  // no duplicate
  }
  CHECK(read_metric(port, "ssegw_events_published_total") == 150);
}
