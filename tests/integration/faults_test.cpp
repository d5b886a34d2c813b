// Fault injection (issue 6, item 3), on loopback and bounded in time:
// - upstreams that die (SIGKILL), stall, send garbage or reset in the middle of a chunk, behind a
//   route and behind a source, and come back;
// - clients that dribble their headers, half-close, vanish, read one byte a second, or churn;
// - a corpus of malformed and smuggling requests, none of which may reach an upstream;
// - fd exhaustion under a low RLIMIT_NOFILE.
//
// Each test checks the behaviour the fault must not break (exact events, exact counts, fds back
// to the baseline), not only that the gateway survives.
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;
using namespace std::string_literals;

namespace {

std::string url_of(uint16_t port) {
  return "http://127.0.0.1:" + std::to_string(port);
}

// The upstreams: block with one upstream "llm"; extra is more flow-map keys (", idle_timeout: 1s").
std::string upstream_yaml(const std::string& url, const std::string& extra = "") {
  return "upstreams:\n  llm: {url: \"" + url + "\"" + extra + "}\n";
}

std::string chat_route_yaml() {
  return "routes:\n  - {path: /v1/chat/completions, upstream: llm}\n";
}

// One source entry (under a "sources:" line) for channels matching glob.
std::string source_entry(const std::string& glob, const std::string& path) {
  return "  - {channels: \"" + glob + "\", upstream: llm, path: \"" + path +
         "\", idle_close: 5s, reconnect_min: 50ms, reconnect_max: 200ms}\n";
}

const std::string kChatBody =
    "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}";

std::string chat_request(const std::string& query) {
  return post_request("/v1/chat/completions?" + query, kChatBody,
                      "Content-Type: application/json\r\n");
}

// The n of a feed event's data {"feed":"...","n":N}; -1 when absent.
long feed_n(const SseEvent& e) {
  return json_number(e.data, "n").value_or(-1);
}

// Every event until the response ends (terminal chunk or close). Throws on timeout.
std::vector<SseEvent> read_to_end(SseStream& s, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  std::vector<SseEvent> events;
  while (!s.finished() && !s.closed()) {
    if (Clock::now() >= deadline)
      throw std::runtime_error("the response did not end in time; body so far: \"" +
                               printable(s.body()) + "\"");
    if (auto e = s.next_event(50ms)) events.push_back(std::move(*e));
  }
  while (auto e = s.next_event(0ms)) events.push_back(std::move(*e));
  return events;
}

// A proxied SSE answer that the upstream cut: a well-framed chunked body that ends cleanly with
// one error event of type upstream_disconnected.
void check_ends_with_disconnect(const SseStream& s, const std::vector<SseEvent>& events) {
  INFO("via the gateway: \"", printable(s.wire()), "\"");
  CHECK(s.head().status == 200);
  CHECK(s.framing_error() == "");
  CHECK(s.finished());  // a clean end of the body, so the client knows the answer is over
  REQUIRE(!events.empty());
  CHECK(events.back().event == "error");
  CHECK(events.back().data.rfind("{\"error\":{\"type\":\"upstream_disconnected\"", 0) == 0);
  long errors = std::count_if(events.begin(), events.end(),
                              [](const SseEvent& e) { return e.event == "error"; });
  CHECK(errors == 1);
}

// A complete chat answer of the mock: n tokens, then the finishing chunk and [DONE].
void check_complete_answer(const Response& r, int n) {
  INFO("answer: \"", printable(r.raw), "\"");
  CHECK(r.status == 200);
  CHECK(r.body.ends_with("data: [DONE]\n\n"));
  for (int i = 0; i < n; ++i)
    CHECK(r.body.find("\"content\":\"tok" + std::to_string(i) + " \"") != std::string::npos);
}

// The soft "Max open files" of a process, from /proc/PID/limits; -1 when absent.
long max_open_files(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(14));
    long soft = -1;
    fields >> soft;
    return soft;
  }
  return -1;
}

// A raw upstream that answers every request with fixed bytes, waits for them to reach the
// gateway, then resets the connection (SO_LINGER 0): an upstream that dies in the middle of what
// it was writing, at a byte position the mock's knobs cannot choose. It keeps the bytes of the
// last request it read, to show exactly what the gateway forwarded.
class ResettingUpstream {
 public:
  explicit ResettingUpstream(std::string response)
      : response_(std::move(response)), listener_(bind_loopback(16, /*nonblocking=*/true)) {
    thread_ = std::thread([this] { run(); });
  }
  ~ResettingUpstream() {
    stop_ = true;
    thread_.join();
  }
  ResettingUpstream(const ResettingUpstream&) = delete;
  ResettingUpstream& operator=(const ResettingUpstream&) = delete;

  std::string url() const { return url_of(listener_.port); }
  int requests() const { return requests_.load(); }
  std::string last_request() const {
    std::lock_guard lock(mu_);
    return last_request_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{listener_.fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      Fd c(::accept4(listener_.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!c) continue;
      try {
        std::string in;
        auto deadline = Clock::now() + 2s;
        while (in.find("\r\n\r\n") == std::string::npos && Clock::now() < deadline)
          if (read_some(c.get(), in, 100ms) == ReadStatus::kEof) break;
        read_some(c.get(), in, 50ms);  // the body, if any
        {
          std::lock_guard lock(mu_);
          last_request_ = in;
        }
        ++requests_;
        send_all(c.get(), response_, 2s);
        // A reset throws away what the gateway's kernel has not acknowledged: wait until it has
        // all of it. What it holds unread, the gateway still reads before it sees the reset.
        wait_until([&] {
          int unacked = 0;
          return ::ioctl(c.get(), SIOCOUTQ, &unacked) != 0 || unacked == 0;
        });
      } catch (const std::exception&) {
        // the gateway went first: nothing to reset
      }
      linger lg{1, 0};
      ::setsockopt(c.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
  }

  std::string response_;
  LoopbackSocket listener_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  mutable std::mutex mu_;
  std::string last_request_;
  std::thread thread_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Upstream faults: routes

TEST_CASE("faults: an upstream killed mid-answer ends the stream with upstream_disconnected") {
  const ReservedPort up;  // held while the mock is down, so that it comes back on it
  auto mock = std::make_unique<MockLlm>(up.port());
  Gateway gw(upstream_yaml(url_of(up.port()), ", connect_timeout: 30s") + chat_route_yaml());
  const uint16_t port = gw.port();
  // One whole answer first, so that a keep-alive connection to the doomed mock sits in the pool.
  check_complete_answer(http(port, chat_request("tokens=2&interval_ms=1")), 2);

  SseStream s = SseStream::raw(port, chat_request("tokens=1000&interval_ms=20"));
  for (int i = 0; i < 3; ++i) s.expect_event();
  mock->kill();
  auto events = read_to_end(s, 3s);
  check_ends_with_disconnect(s, events);

  // While it is down: 502 upstream_unavailable at once (the connection is refused; waiting for
  // connect_timeout would be a 504, long after this request's timeout), and the gateway serves
  // the rest.
  for (int i = 0; i < 2; ++i) {
    Response down = http(port, chat_request("tokens=2&interval_ms=1"));
    INFO("while down: \"", printable(down.raw), "\"");
    CHECK(down.status == 502);
    CHECK(down.body.find("\"code\":\"upstream_unavailable\"") != std::string::npos);
  }
  CHECK(http_get(port, "/healthz").status == 200);
  publish(port, "still", "alive");

  // It comes back on the same port: the next answers are whole (no stale pooled connection).
  mock = std::make_unique<MockLlm>(up.port());
  for (int i = 0; i < 3; ++i) check_complete_answer(http(port, chat_request("tokens=3")), 3);
  CHECK(mock->stat("completed") == 3);
  CHECK_FALSE(gw.wait_exit(0ms).has_value());
}

TEST_CASE("faults: garbage from the upstream ends the proxied stream with one error event") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock.url()) + chat_route_yaml() +
             "  - {path: /v1/messages, upstream: llm}\n"
             "  - {path: /v1/responses, upstream: llm}\n");
  for (const std::string path : {"/v1/chat/completions", "/v1/messages", "/v1/responses"}) {
    CAPTURE(path);
    // Three tokens, then "\0\xff\xfe<html>not an event stream</html>\r{{{\x01" and a close.
    SseStream s = SseStream::raw(
        gw.port(), post_request(path + "?tokens=10&interval_ms=5&garbage=3", kChatBody));
    auto events = read_to_end(s, 3s);
    check_ends_with_disconnect(s, events);
    // The garbage made no event of its own: every other event is the mock's JSON.
    for (size_t i = 0; i + 1 < events.size(); ++i) {
      CAPTURE(events[i].data);
      CHECK(events[i].data.rfind("{", 0) == 0);
      CHECK(events[i].data.find("html") == std::string::npos);
    }
  }
  CHECK(mock.stat("faulted") == 3);
  // The route still works.
  check_complete_answer(http(gw.port(), chat_request("tokens=2&interval_ms=1")), 2);
}

TEST_CASE(
    "faults: a stalled upstream gets keep-alives, then idle_timeout cuts it, and others flow") {
  MockLlm mock;
  Gateway gw("heartbeat: 500ms\n" + upstream_yaml(mock.url(), ", idle_timeout: 4s") +
             chat_route_yaml());
  const uint16_t port = gw.port();
  // Two tokens, then 10 s of silence, which cannot start before this.
  const auto silent_from = Clock::now();
  SseStream stalled =
      SseStream::raw(port, chat_request("tokens=5&interval_ms=5&stall_after=2&stall_ms=10000"));
  stalled.expect_event();
  stalled.expect_event();
  // Meanwhile other answers through the same route and the hub are served: all of them while the
  // stalled answer is still open (its idle_timeout has not cut it yet).
  SseStream sub(port, "during-stall");
  sub.expect_ok();
  for (int i = 0; i < 3; ++i) {
    check_complete_answer(http(port, chat_request("tokens=3&interval_ms=1")), 3);
    std::string id = publish(port, "during-stall", "x" + std::to_string(i));
    CHECK(sub.expect_event().id == id);
  }
  stalled.pump();
  CHECK_FALSE(stalled.finished());
  CHECK_FALSE(stalled.closed());
  auto events = read_to_end(stalled, kTimeout);
  auto took = std::chrono::duration_cast<Ms>(Clock::now() - silent_from);
  INFO("the stalled stream ended after ", took.count(), " ms of silence");
  check_ends_with_disconnect(stalled, events);
  CHECK(events.back().data.find("idle_timeout") != std::string::npos);
  CHECK(took >= 3700ms);           // idle_timeout (4 s), not earlier
  CHECK(stalled.comments() >= 2);  // keep-alive comments while the upstream was silent
  CHECK(mock.wait_stat("cancelled", 1, 2s) == 1);  // the gateway closed the silent upstream
  CHECK(mock.stat("active") == 0);
}

TEST_CASE("faults: an upstream reset in the middle of a chunk ends the stream cleanly") {
  const std::string event =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok0 \"}}]}\n\n";
  const std::string event_data = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok0 \"}}]}";
  // Two whole events, then a chunk that announces 0x40 bytes and stops after 23 of them (in the
  // middle of a JSON text), then a reset.
  ResettingUpstream mid_chunk(
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
      chunk(event) + chunk(event) + "40\r\ndata: {\"choices\":[{\"del");
  // A head cut short, then a reset.
  ResettingUpstream mid_head("HTTP/1.1 200 OK\r\nContent-Type: text/event-str");
  Gateway gw("upstreams:\n  llm: {url: \"" + mid_chunk.url() + "\"}\n  cut: {url: \"" +
             mid_head.url() +
             "\"}\n"
             "routes:\n  - {path: /v1/chat/completions, upstream: llm}\n"
             "  - {path: /v1/responses, upstream: cut}\n");

  SseStream s = SseStream::raw(gw.port(), chat_request("x=1"));
  auto events = read_to_end(s, 3s);
  check_ends_with_disconnect(s, events);
  REQUIRE(events.size() >= 3);
  CHECK(events[0].data == event_data);
  CHECK(events[1].data == event_data);
  // The half-written event must not reach the client as an event of its own: a client would
  // hand `{"choices":[{"del` to its JSON parser and fail there instead of on the error event.
  std::string before_error;
  for (size_t i = 0; i + 1 < events.size(); ++i) before_error += printable(events[i].data) + "\n";
  INFO("events before the error:\n", before_error);
  CHECK(events.size() == 3);
  CHECK(mid_chunk.requests() == 1);

  // Reset before the head was complete: nothing was sent yet, so a plain 502.
  Response r = http(gw.port(), post_request("/v1/responses", "{\"input\":\"x\"}"), 3s);
  INFO("mid-head reset: \"", printable(r.raw), "\"");
  CHECK(r.status == 502);
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.body.find("\"code\":\"upstream_unavailable\"") != std::string::npos);
  CHECK(mid_head.requests() == 1);
  CHECK(http_get(gw.port(), "/healthz").status == 200);
}

// ---------------------------------------------------------------------------------------------
// Upstream faults: sources

TEST_CASE("faults: a source outlives its upstream's death and resumes the channel on return") {
  const ReservedPort up;  // held while the mock is down, so that it comes back on it
  auto mock = std::make_unique<MockLlm>(up.port());
  Gateway gw(upstream_yaml(url_of(up.port()), ", connect_timeout: 500ms") + "sources:\n" +
             source_entry("feed.*", "/feed/{channel}?interval_ms=20"));
  const uint16_t port = gw.port();
  SseStream a(port, "feed.k"), b(port, "feed.k");
  a.expect_ok();
  b.expect_ok();
  std::vector<SseStream*> both = {&a, &b};
  auto count_at_least = [&](size_t n) {
    return [&, n] { return a.pending().size() >= n && b.pending().size() >= n; };
  };
  REQUIRE(pump_all(both, count_at_least(5), 5s));

  const std::string reconnects = "ssegw_upstream_reconnects_total{upstream=\"llm\"}";
  const auto reconnects_before = read_metric(port, reconnects).value_or(0);
  const auto killed = Clock::now();
  mock->kill();
  // Down for a while (the window is the point): the source keeps trying; subscribers stay
  // connected; the gateway serves.
  std::this_thread::sleep_for(800ms);
  const auto reconnects_down = wait_metric_at_least(port, reconnects, reconnects_before + 2);
  REQUIRE(reconnects_down);
  const long down_ms = std::chrono::duration_cast<Ms>(Clock::now() - killed).count();
  a.pump();
  b.pump();
  CHECK_FALSE(a.closed());
  CHECK_FALSE(b.closed());
  CHECK(http_get(port, "/healthz").status == 200);
  INFO("reconnects before the kill ", reconnects_before, ", after ", down_ms, " ms down ",
       *reconnects_down);
  CHECK(*reconnects_down >= reconnects_before + 2);  // tried more than once
  // Not in a loop: one attempt per 50 ms tick of the source manager at most, plus the one that
  // noticed the death.
  CHECK(*reconnects_down <= reconnects_before + down_ms / 50 + 2);
  const size_t before_return = a.pending().size();
  CHECK(b.pending().size() == before_return);

  // Back on the same port: the channel goes on where it stopped.
  mock = std::make_unique<MockLlm>(up.port());
  REQUIRE(pump_all(both, count_at_least(before_return + 10), 5s));
  for (SseStream* s : both) {
    std::vector<long> ns;
    std::set<std::string> ids;
    std::optional<EventId> prev;
    bool ordered = true;
    for (const SseEvent& e : s->pending()) {
      CHECK(e.event == "tick");
      ns.push_back(feed_n(e));
      CHECK(ids.insert(e.id.value_or("")).second);
      auto id = parse_id(e.id.value_or(""));
      if (!id || (prev && !(*prev < *id))) ordered = false;
      prev = id;
    }
    CHECK(ordered);
    std::string seq;
    for (long n : ns) seq += std::to_string(n) + " ";
    INFO("n values (the upstream died after ", before_return, "): ", seq);
    for (size_t i = 0; i < ns.size(); ++i) CHECK(ns[i] == static_cast<long>(i) + 1);
  }
  CHECK(mock->stat("/feed/feed.k") == 1);  // one request to the new mock, with Last-Event-ID
  CHECK(mock->stat("feeds_active") == 1);
}

TEST_CASE("faults: a source recovers from garbage, drops and stalls with no gap or duplicate") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock.url(), ", idle_timeout: 400ms") + "sources:\n" +
             source_entry("g.*", "/feed/{channel}?interval_ms=10&garbage=4") +
             source_entry("d.*", "/feed/{channel}?interval_ms=10&drop_after=4") +
             source_entry("s.*", "/feed/{channel}?interval_ms=10&stall_after=4&stall_ms=5000"));
  const uint16_t port = gw.port();
  SseStream g(port, "g.1"), d(port, "d.1"), st(port, "s.1");
  std::vector<SseStream*> all = {&g, &d, &st};
  for (SseStream* s : all) s->expect_ok();
  // 14 events each: at least three faults and reconnects per source.
  bool done = pump_all(
      all,
      [&] {
        for (SseStream* s : all)
          if (s->pending().size() < 14) return false;
        return true;
      },
      10s);
  CHECK(done);
  for (SseStream* s : all) {
    const std::string ch = s == &g ? "g.1" : s == &d ? "d.1" : "s.1";
    CAPTURE(ch);
    std::string got;
    for (const SseEvent& e : s->pending()) got += e.event + " " + e.data + "\n";
    INFO("events:\n", got);
    CHECK_FALSE(s->closed());
    REQUIRE(s->pending().size() >= 14);
    long n = 0;
    for (const SseEvent& e : s->pending()) {
      ++n;
      CHECK(e.event == "tick");
      CHECK(e.data == "{\"feed\":\"" + ch + "\",\"n\":" + std::to_string(n) + "}");
    }
  }
  std::string stats = mock.stats();
  INFO("mock stats: ", stats);
  CHECK(json_number(stats, "/feed/g.1") >= 4);
  CHECK(json_number(stats, "/feed/d.1") >= 4);
  CHECK(json_number(stats, "/feed/s.1") >= 4);
  CHECK(json_number(stats, "faulted") >= 6);
  CHECK(json_number(stats, "cancelled") >= 3);  // stalled feeds cut by idle_timeout
  CHECK(json_number(stats, "feeds_active") <= 3);
}

// ---------------------------------------------------------------------------------------------
// Clients

TEST_CASE("faults: 200 slowloris connections get 408 while normal clients are served") {
  Gateway gw("limits: {header_timeout: 3s}\n");
  const uint16_t port = gw.port();
  SseStream sub(port, "sl");
  sub.expect_ok();
  std::vector<Conn> slow;
  for (int i = 0; i < 200; ++i) {
    slow.emplace_back(port);
    slow.back().send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  }
  // Four rounds of one more byte on every slow connection, and a normal request, a publish and
  // its delivery in between. (How long a normal request takes meanwhile is a figure for bench/,
  // not a test: this one shows that it is served, not how fast.)
  for (int round = 0; round < 4; ++round) {
    for (Conn& c : slow) c.send("s");
    CHECK(http_get(port, "/healthz").status == 200);
    std::string id = publish(port, "sl", "r" + std::to_string(round));
    CHECK(sub.expect_event().id == id);
  }
  // All that was served while every slowloris connection was still waiting for its header
  // timeout: none has had an answer yet.
  int unanswered = 0;
  for (Conn& c : slow) unanswered += read_some(c.fd(), c.buffer(), 0ms) == ReadStatus::kTimeout;
  CHECK(unanswered == 200);
  // Then every slowloris connection gets its 408 and is closed.
  int answered = 0, closed = 0;
  for (Conn& c : slow) {
    Response r;
    try {
      r = c.read_response();
    } catch (const std::exception& e) {
      FAIL_CHECK("slow connection without a 408: ", e.what());
      continue;
    }
    if (r.status == 408 && r.body.rfind("{\"error\":{\"code\":\"request_timeout\"", 0) == 0)
      ++answered;
    if (c.wait_closed(kTimeout)) ++closed;
  }
  CHECK(answered == 200);
  CHECK(closed == 200);
  slow.clear();
  CHECK(wait_metric(port, "ssegw_connections_active", 2) == 2);  // sub and /metrics
}

// A client's FIN ends its stream, as nginx and Go's server treat it: EventSource never
// half-closes, and counting a gone client as a subscriber would hold sources open and skew
// ssegw_subscribers_active. The connection and its fd must then be freed, not left half-open.
TEST_CASE("faults: a subscriber that half-closes its socket is freed, fd and all") {
  Gateway gw;
  const uint16_t port = gw.port();
  const double fds0 = read_metric(port, "process_open_fds").value_or(-1);
  SseStream keeps(port, "half");
  keeps.expect_ok();
  SseStream after_head(port, "half");
  after_head.expect_ok();
  REQUIRE(::shutdown(after_head.fd(), SHUT_WR) == 0);
  SseStream at_once = SseStream::raw(port, get_request("/v1/channels/half/events"));
  REQUIRE(::shutdown(at_once.fd(), SHUT_WR) == 0);
  CHECK(wait_metric(port, "ssegw_subscribers_active", 1) == 1);
  CHECK(after_head.read_until_closed(2s));
  CHECK(at_once.read_until_closed(2s));
  // The one that did not half-close is unaffected.
  std::string id = publish(port, "half", "h");
  auto e = keeps.next_event(2s);
  REQUIRE(e.has_value());
  CHECK(e->id == id);
  CHECK(wait_metric(port, "process_open_fds", fds0 + 1) == fds0 + 1);  // only `keeps` remains
}

TEST_CASE("faults: a subscriber that never reads is cut as a slow consumer and its fd freed") {
  Gateway gw("slow_consumer: {max_queued_bytes: 64KiB}\n");
  const uint16_t port = gw.port();
  const double fds0 = read_metric(port, "process_open_fds").value_or(-1);
  // A client that vanished without a FIN looks the same from the gateway: a window that never
  // opens again.
  SseStream gone(port, "v", {.rcvbuf = 2048});
  gone.expect_ok();
  SseStream good(port, "v");
  good.expect_ok();
  auto pub = std::make_unique<Publisher>(port);
  const std::string payload(8192, 'p');
  std::vector<std::string> ids;
  double cut = 0;
  for (int i = 0; i < 1000 && cut < 1; ++i) {
    ids.push_back(pub->publish("v", payload));
    good.pump();
    if (i % 20 == 19) cut = read_metric(port, "ssegw_slow_consumer_disconnects_total").value_or(0);
  }
  INFO(ids.size(), " events of 8 KiB published");
  CHECK(cut == 1);
  // The reader got every event, in order.
  REQUIRE(pump_all(
      {&good}, [&] { return good.pending().size() >= ids.size(); }, 10s));
  std::vector<std::string> got;
  for (const SseEvent& e : good.pending()) got.push_back(e.id.value_or(""));
  check_same_ids(got, ids, "the reading subscriber");
  CHECK(wait_subscribers(port, "v", 1) == 1);
  pub.reset();
  // The gateway holds nothing of the cut client: one connection (good) besides /metrics, and
  // one fd more than before either subscriber came.
  const double conns = wait_metric(port, "ssegw_connections_active", 2).value_or(-1);
  const double fds = wait_metric(port, "process_open_fds", fds0 + 1).value_or(-1);
  INFO("connections_active ", conns, "; open fds ", fds, " (", fds0, " before the subscribers)");
  CHECK(conns == 2);
  CHECK(fds == fds0 + 1);
}

TEST_CASE("faults: a client reading 1 byte per second is cut, and the other subscribers keep up") {
  Gateway gw("slow_consumer: {max_queued_bytes: 32KiB}\n");
  const uint16_t port = gw.port();
  // The dripping client reads its own bytes (SseStream would read all it can).
  Fd slow = connect_to(port, kTimeout, 4096);
  send_all(slow.get(), get_request("/v1/channels/drip/events"));
  std::vector<std::unique_ptr<SseStream>> fast;
  std::vector<SseStream*> fast_ptrs;
  for (int i = 0; i < 3; ++i) {
    fast.push_back(std::make_unique<SseStream>(port, "drip"));
    fast.back()->expect_ok();
    fast_ptrs.push_back(fast.back().get());
  }
  REQUIRE(wait_subscribers(port, "drip", 4) == 4);
  Publisher pub(port);
  const std::string payload(8192, 'd');
  std::vector<std::string> ids;
  std::string dripped;
  const auto t0 = Clock::now();
  auto next_drip = t0;
  double cut = 0;
  auto cut_at = t0;
  // 8 KiB every 5 ms or so, until 20 events after the cut (or 10 s).
  size_t after_cut = 0;
  while (after_cut < 20 && Clock::now() - t0 < 10s) {
    ids.push_back(pub.publish("drip", payload));
    pump_all(
        fast_ptrs, [] { return false; }, 5ms);
    if (Clock::now() >= next_drip) {  // one byte a second
      char b;
      if (::recv(slow.get(), &b, 1, MSG_DONTWAIT) == 1) dripped += b;
      next_drip += 1s;
    }
    if (cut >= 1) {
      ++after_cut;
    } else if (ids.size() % 20 == 0) {
      cut = read_metric(port, "ssegw_slow_consumer_disconnects_total").value_or(0);
      if (cut >= 1) cut_at = Clock::now();
    }
  }
  INFO(ids.size(), " events published; the slow client read ", dripped.size(),
       " bytes and was cut after ", std::chrono::duration_cast<Ms>(cut_at - t0).count(), " ms");
  CHECK(cut == 1);
  CHECK(dripped.size() >= 1);
  // Every fast subscriber has every event, in order.
  CHECK(pump_all(
      fast_ptrs,
      [&] {
        for (SseStream* s : fast_ptrs)
          if (s->pending().size() < ids.size()) return false;
        return true;
      },
      10s));
  for (SseStream* s : fast_ptrs) {
    std::vector<std::string> got;
    for (const SseEvent& e : s->pending()) got.push_back(e.id.value_or(""));
    check_same_ids(got, ids, "a fast subscriber");
    CHECK_FALSE(s->closed());
  }
  CHECK(wait_subscribers(port, "drip", 3) == 3);
  // Read at full speed, the cut client's stream ends: what it got is a well-framed prefix of
  // the stream the others got.
  std::string wire = dripped;
  CHECK(wait_closed(slow.get(), wire, 5s));
  size_t he = wire.find("\r\n\r\n");
  REQUIRE(he != std::string::npos);
  CHECK(wire.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  std::string rest = wire.substr(he + 4), body;
  Dechunker dechunker;
  dechunker.feed(rest, body);
  CHECK(dechunker.error() == "");
  std::vector<std::string> got;
  for (size_t p = body.find("\nid: "); p != std::string::npos; p = body.find("\nid: ", p + 1)) {
    size_t e = body.find('\n', p + 5);
    if (e == std::string::npos) break;
    got.push_back(body.substr(p + 5, e - p - 5));
  }
  INFO("the cut client received ", got.size(), " events");
  CHECK(got.size() < ids.size());
  CHECK(std::equal(got.begin(), got.end(), ids.begin()));
}

TEST_CASE("faults: 5,000 connect/disconnect cycles leak no fd, no connection, little memory") {
  Gateway gw("history: {max_events: 50}\nlimits: {header_timeout: 1s}\n");
  const uint16_t port = gw.port();
  auto cycle = [&](int i) {
    switch (i % 6) {
      case 0: {  // connect, say nothing, close
        Conn c(port);
        break;
      }
      case 1: {  // half a request, close
        Conn c(port);
        c.send("GET /v1/channels/churn/events HTTP/1.1\r\nHo");
        break;
      }
      case 2: {  // subscribe, close at once (the answer may race with the close)
        SseStream s(port, "churn." + std::to_string(i % 50));
        break;
      }
      case 3:  // publish on a fresh connection
        publish(port, "churn.p", "event " + std::to_string(i));
        break;
      case 4: {  // subscribe, read the head, close
        SseStream s(port, "churn");
        s.expect_ok();
        break;
      }
      default: {  // a request, then a reset instead of a FIN
        Conn c(port);
        c.send(get_request("/healthz"));
        linger lg{1, 0};
        ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        break;
      }
    }
  };
  // Warm-up: allocator caches, channel tables and the history ring reach their steady size.
  for (int i = 0; i < 600; ++i) cycle(i);
  REQUIRE(wait_metric(port, "ssegw_connections_active", 1, 5s) == 1);
  REQUIRE(wait_metric(port, "ssegw_subscribers_active", 0, 5s) == 0);
  const double fds0 = read_metric(port, "process_open_fds").value_or(-1);
  const double rss0 = read_metric(port, "process_resident_memory_bytes").value_or(-1);
  const double conns0 = read_metric(port, "ssegw_connections_active").value_or(-1);

  const auto t0 = Clock::now();
  for (int i = 0; i < 5000; ++i) cycle(i);
  INFO("5,000 cycles took ", std::chrono::duration_cast<Ms>(Clock::now() - t0).count(), " ms");

  CHECK(wait_metric(port, "ssegw_connections_active", conns0, 5s) == conns0);
  CHECK(wait_metric(port, "ssegw_subscribers_active", 0, 2s) == 0);
  CHECK(wait_metric(port, "process_open_fds", fds0, 3s) == fds0);
  const double rss1 = read_metric(port, "process_resident_memory_bytes").value_or(-1);
  INFO("RSS before ", rss0 / 1024, " KiB, after ", rss1 / 1024, " KiB");
  CHECK(rss0 > 0);
  // A few MiB for allocator caches. Under ASan or TSan freed memory sits in the sanitizer's
  // quarantine, so RSS says nothing about leaks there; LeakSanitizer at exit covers that build.
  if (!gateway_sanitized()) CHECK(rss1 - rss0 < 4.0 * 1024 * 1024);
  CHECK(read_metric(port, "ssegw_channels_active") <= 2);  // churn.p and its history; no leftovers
  CHECK(http_get(port, "/healthz").status == 200);
}

// ---------------------------------------------------------------------------------------------
// Malformed requests

namespace {

struct BadRequest {
  std::string name;
  std::string bytes;
  std::set<int> statuses;  // the right answers
  std::string code;        // the JSON error code; "" when several statuses are right
  bool closes;             // malformed HTTP: the gateway answers, then closes
};

// A second, valid request to the route, sent in the same write as a smuggling attempt: it must
// not be answered, because the gateway closes after the 400.
const std::string kSmuggled =
    "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";

void check_rejected(uint16_t port, const BadRequest& c) {
  CAPTURE(c.name);
  INFO("request: \"", printable(c.bytes), "\"");
  Conn conn(port);
  try {
    conn.send(c.bytes, 2s);
  } catch (const std::exception&) {
    // the gateway may answer and close before the last bytes are sent
  }
  Response r;
  try {
    r = conn.read_response(3s);
  } catch (const std::exception& e) {
    FAIL_CHECK("no answer: ", e.what());
    return;
  }
  INFO("response: \"", printable(r.raw), "\"");
  if (!c.code.empty()) {
    check_error(r, *c.statuses.begin(), c.code);
  } else {
    CHECK(c.statuses.count(r.status) == 1);
    CHECK(r.header("content-type") == "application/json");
    CHECK(r.body.rfind("{\"error\":{\"code\":\"", 0) == 0);
  }
  if (c.closes) {
    CHECK(conn.wait_closed(2s));
    INFO("after the answer: \"", printable(conn.buffer()), "\"");
    CHECK(conn.buffer().empty());  // in particular, no answer to a smuggled second request
  }
}

std::vector<BadRequest> malformed_corpus() {
  const std::string route = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n";
  const std::set<int> k400 = {400};
  std::vector<BadRequest> v;
  auto bad = [&](std::string name, std::string bytes) {
    v.push_back({std::move(name), std::move(bytes), k400, "bad_request", true});
  };
  auto channel = [&](std::string name, std::string bytes) {
    v.push_back({std::move(name), std::move(bytes), k400, "invalid_channel", false});
  };
  auto any = [&](std::string name, std::string bytes, std::set<int> statuses, bool closes) {
    v.push_back({std::move(name), std::move(bytes), std::move(statuses), "", closes});
  };

  // Methods.
  any("unknown method", "FOO / HTTP/1.1\r\nHost: x\r\n\r\n", {400, 405, 501}, false);
  any("unknown method on the route", "FOO /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n",
      {400, 405, 501}, false);
  any("lower-case method", "post /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n", {400, 405, 501},
      false);
  bad("control byte in the method", std::string("PO\x01T /v1/chat/completions HTTP/1.1\r\n\r\n"));
  any("CONNECT to another host", "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example\r\n\r\n",
      {400, 404, 405, 501}, false);
  bad("extra token in the request line", "GET /healthz HTTP/1.1 x\r\nHost: x\r\n\r\n");

  // Smuggling: conflicting framing, each followed by a second request in the same write.
  bad("Content-Length then Transfer-Encoding",
      route + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + kSmuggled);
  bad("Transfer-Encoding then Content-Length",
      route + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + kSmuggled);
  bad("two different Content-Length",
      route + "Content-Length: 2\r\nContent-Length: 7\r\n\r\n{}" + kSmuggled);
  bad("a Content-Length list", route + "Content-Length: 2, 7\r\n\r\n{}" + kSmuggled);
  bad("a signed Content-Length", route + "Content-Length: +2\r\n\r\n{}" + kSmuggled);
  bad("Transfer-Encoding: chunked, identity",
      route + "Transfer-Encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + kSmuggled);
  bad("an unknown transfer coding with Content-Length",
      route + "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + kSmuggled);
  bad("obs-fold Transfer-Encoding with Content-Length",
      route + "Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + kSmuggled);
  bad("space before the colon",
      route + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + kSmuggled);

  // Chunked bodies.
  bad("bad chunk size", route + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n");
  bad("negative chunk size", route + "Transfer-Encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n");
  any("overflowing chunk size",
      route + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff2\r\n{}\r\n0\r\n\r\n", {400, 413},
      true);
  bad("chunk data longer than its size",
      route + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}xx\r\n0\r\n\r\n" + kSmuggled);

  // Overlong lines (limits.max_header_bytes is 4 KiB here).
  any("overlong request line",
      "GET /v1/channels/" + std::string(8000, 'a') + "/events HTTP/1.1\r\n", {414, 431}, true);
  v.push_back({"overlong header line on the route",
               route + "X-Big: " + std::string(8000, 'b') + "\r\nContent-Length: 2\r\n\r\n{}",
               {431},
               "headers_too_large",
               true});
  v.push_back(
      {"declared body over max_event_bytes",
       "POST /v1/channels/a/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n",
       {413},
       "payload_too_large",
       true});

  // NUL bytes.
  any("NUL in the path", "GET /v1/channels/a\0b/events HTTP/1.1\r\nHost: x\r\n\r\n"s, {400}, false);
  bad("NUL in the route path",
      "POST /v1/chat/completions\0 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"s);
  bad("NUL in a header value", route + "X-A: a\0b\r\nContent-Length: 2\r\n\r\n{}"s);
  bad("NUL in a header name", route + "X\0A: b\r\nContent-Length: 2\r\n\r\n{}"s);
  channel("percent-encoded NUL in a channel", get_request("/v1/channels/a%00b/events"));

  // Invalid UTF-8 in channel names: raw bytes and percent-encoded.
  for (const char* raw : {"caf\xe9", "a\xff", "\xc0\xaf", "\xed\xa0\x80"}) {
    any("raw invalid UTF-8 in a channel: " + printable(raw),
        get_request(std::string("/v1/channels/") + raw + "/events"), {400}, false);
  }
  for (const char* enc : {"caf%E9", "a%FF", "%C0%AF", "%ED%A0%80", "%F4%90%80%80", "a%zz", "a%4"}) {
    channel(std::string("percent-encoded invalid UTF-8 in a subscribe: ") + enc,
            get_request(std::string("/v1/channels/") + enc + "/events"));
    channel(std::string("percent-encoded invalid UTF-8 in a publish: ") + enc,
            post_request(std::string("/v1/channels/") + enc + "/events", "x"));
  }

  // Absolute-form to another host, and HTTP/2 spoken to an HTTP/1.1 port.
  any("absolute-form URI to another host on the route",
      "POST http://evil.example/v1/chat/completions HTTP/1.1\r\nHost: evil.example\r\n"
      "Content-Length: 2\r\n\r\n{}",
      {400, 404, 421}, false);
  // The exact preface starts HTTP/2 (http2_conformance_test.cpp); one that differs is HTTP/1.1.
  any("HTTP/2 preface, one byte off", "PRI * HTTP/2.0\r\n\r\nSX\r\n\r\n", {400, 505}, true);
  any("unknown HTTP version", "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", {400, 505}, true);
  return v;
}

}  // namespace

TEST_CASE("faults: a malformed request corpus gets the right 4xx and never reaches an upstream") {
  MockLlm mock;
  Gateway gw("limits: {max_header_bytes: 4KiB}\n" + upstream_yaml(mock.url()) + chat_route_yaml());
  const uint16_t port = gw.port();
  for (const BadRequest& c : malformed_corpus()) check_rejected(port, c);

  CHECK_FALSE(gw.wait_exit(0ms).has_value());
  std::string stats = mock.stats();
  INFO("mock stats: ", stats);
  CHECK(json_number(stats, "requests") == 0);
  CHECK(json_number(stats, "connections_total") == 1);  // this stats request
  CHECK(wait_metric(port, "ssegw_connections_active", 1, 5s) == 1);
  // The check above can fail: a valid request does reach the mock.
  check_complete_answer(http(port, chat_request("tokens=2&interval_ms=1")), 2);
  CHECK(mock.stat("requests") == 1);
}

TEST_CASE("faults: a folded header is refused or reaches the upstream unfolded, never as framing") {
  ResettingUpstream up(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  Gateway gw(upstream_yaml(up.url()) + chat_route_yaml());
  // RFC 9112 5.2: reject obs-fold with 400, or replace it with spaces before forwarding.
  Conn c(gw.port());
  Response r = c.request(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n"
      "Content-Length: 2\r\n\r\n{}",
      3s);
  INFO("answer: \"", printable(r.raw), "\"");
  if (r.status == 400) {
    CHECK(up.requests() == 0);
    return;
  }
  CHECK(r.status == 200);
  CHECK(r.body == "{}");
  REQUIRE(up.requests() == 1);
  const std::string sent = up.last_request();
  const std::string head = lower(sent.substr(0, sent.find("\r\n\r\n") + 2));
  INFO("forwarded: \"", printable(sent), "\"");
  CHECK(head.find("\r\n ") == std::string::npos);   // no fold reaches the upstream
  CHECK(head.find("\r\n\t") == std::string::npos);  // nor a tab-led one
  CHECK(head.find("\r\ntransfer-encoding:") == std::string::npos);
  CHECK(head.find("\r\ncontent-length: 2\r\n") != std::string::npos);
  CHECK(sent.ends_with("\r\n\r\n{}"));
}

TEST_CASE("faults: HTTP/1.1 requests without a Host or with two get 400, not the upstream") {
  MockLlm mock;
  Gateway gw(upstream_yaml(mock.url()) + chat_route_yaml());
  const std::vector<BadRequest> cases = {
      {"two Host headers",
       "POST /v1/chat/completions HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n"
       "Content-Length: 2\r\n\r\n{}",
       {400},
       "bad_request",
       true},
      {"no Host header",
       "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
       {400},
       "bad_request",
       true},
  };
  for (const BadRequest& c : cases) check_rejected(gw.port(), c);
  CHECK(mock.stat("requests") == 0);
}

// ---------------------------------------------------------------------------------------------
// fd exhaustion

TEST_CASE(
    "faults: at the fd limit new connections are refused, the loop does not spin, and it "
    "recovers") {
  GatewayOptions opts;
  opts.yaml = "limits: {header_timeout: 30s, idle_timeout: 60s}\nheartbeat: 30s\n";
  opts.command_prefix = {"/bin/sh", "-c", "ulimit -n 64 && exec \"$0\" \"$@\""};
  Gateway gw(opts);
  const uint16_t port = gw.port();
  REQUIRE(max_open_files(gw.pid()) == 64);

  // One connection opened and closed before the limit is reached. Under UBSan the first
  // destruction of a connection checks its vtable, and that check needs a file descriptor of its
  // own (a pipe, to test that the memory is readable): at the limit it fails, and reports an
  // "invalid vptr" that is not there. Once checked, the answer is cached.
  {
    Conn warm(port);
    REQUIRE(warm.request(get_request("/healthz", "Connection: close\r\n")).status == 200);
    REQUIRE(warm.wait_closed(kTimeout));
  }
  CHECK(wait_metric(port, "ssegw_connections_active", 1) == 1);  // the scrape's own

  // One keep-alive connection and one subscriber first, to use while saturated.
  Conn control(port);
  REQUIRE(control.request(get_request("/healthz")).status == 200);
  SseStream watcher(port, "fd");
  watcher.expect_ok();

  // Subscribers until five in a row are not served.
  std::vector<std::unique_ptr<SseStream>> held;
  int served = 0, answered_503 = 0, closed = 0, queued = 0, misses = 0;
  for (int i = 0; i < 200 && misses < 5; ++i) {
    std::unique_ptr<SseStream> s;
    try {
      s = std::make_unique<SseStream>(port, "fd");
      s->wait_head(500ms);
    } catch (const std::exception&) {
    }
    if (!s) {  // reset before the request was even sent
      ++misses;
      ++closed;
      continue;
    }
    if (s->head_received() && s->head().status == 200) {
      ++served;
      misses = 0;
    } else {
      ++misses;
      if (s->head_received()) {
        INFO("refusal: \"", printable(s->wire()), "\"");
        CHECK(s->head().status == 503);
        CHECK(s->body().find("too_many_connections") != std::string::npos);
        ++answered_503;
      } else if (s->closed()) {
        ++closed;
      } else {
        ++queued;
      }
    }
    held.push_back(std::move(s));
  }
  INFO("served ", served, ", refused with 503 ", answered_503, ", closed ", closed, ", queued ",
       queued);
  CHECK(misses == 5);  // the gateway did reach its limit
  CHECK(served >= 20);
  CHECK(served < 64);

  // Saturated: new connections keep knocking; the gateway must not spin on them. A connection
  // left in the accept queue would keep the listening socket readable, and the loop would wake
  // for it again and again; instead libuv sheds it (accepts it on a reserve fd and closes it at
  // once). So every knock ends: closed without an answer, or refused with a 503; none waits.
  std::vector<Fd> knocking;
  for (int i = 0; i < 20; ++i) {
    try {
      knocking.push_back(connect_to(port));
      send_all(knocking.back().get(), get_request("/healthz"));
    } catch (const std::exception&) {
      // shed before the request was even written
    }
  }
  int shed = 0, refused = 0, waiting = 0;
  for (Fd& k : knocking) {
    std::string got;
    if (!wait_closed(k.get(), got, kTimeout)) {
      ++waiting;
    } else if (got.empty()) {
      ++shed;
    } else {
      INFO("answer to a knock: \"", printable(got), "\"");
      CHECK(got.rfind("HTTP/1.1 503 ", 0) == 0);
      ++refused;
    }
  }
  INFO(knocking.size(), " knocks: shed ", shed, ", refused with 503 ", refused, ", waiting ",
       waiting);
  CHECK(waiting == 0);
  CHECK(shed + refused == static_cast<int>(knocking.size()));
  // The connections it holds still work.
  CHECK(control.request(get_request("/healthz")).status == 200);
  Response pub = control.request(post_request("/v1/channels/fd/events", "saturated"));
  CHECK(pub.status == 200);
  auto e = watcher.next_event(2s);
  REQUIRE(e.has_value());
  CHECK(e->data == "saturated");

  // Freed fds: new requests are served again.
  held.clear();
  knocking.clear();
  int status = 0;
  CHECK(wait_until(
      [&] {
        try {
          status = http_get(port, "/healthz", 500ms).status;
        } catch (const std::exception&) {
          // shed: the gateway has not seen its fds come back yet
        }
        return status == 200;
      },
      kTimeout, 50ms));
  CHECK(status == 200);
  SseStream again(port, "fd");
  again.expect_ok();
  std::string id = publish(port, "fd", "recovered");
  CHECK(again.expect_event().id == id);
  CHECK(watcher.expect_event().id == id);
}
