// A generation's channel (a resumable answer's) exists from its creation until the answer is
// finished: the hub's sweep never frees it while it is empty, so a subscriber that comes late,
// before or after the first token, gets the whole answer from its first event.
//
// Before, the tick's sweep freed the empty channel of an answer whose first token was slow; the
// first token then made a new plain channel, and a subscriber arriving after it started
// mid-answer (first token at 1.5 s, subscriber at 2.2 s: the first event it saw was tok14).
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

// The answer's text from the events, which must carry strictly increasing ids.
std::string answer_text(const std::vector<SseEvent>& events) {
  std::string text;
  std::optional<EventId> previous;
  for (const SseEvent& e : events) {
    REQUIRE(e.id);
    auto id = parse_id(*e.id);
    REQUIRE(id);
    if (previous) CHECK(*previous < *id);
    previous = id;
    if (auto c = json_string(e.data, "content")) text += *c;
  }
  return text;
}

std::string full_answer(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += "tok" + std::to_string(i) + " ";
  return out;
}

}  // namespace

TEST_CASE("generations: a late subscriber gets the whole answer though the first token is slow") {
  MockLlm mock;
  // Heartbeats every 100 ms: the tick that writes them sweeps the hub right after, so a comment
  // seen by a client proves that a sweep has run (one worker: one tick for everything).
  Gateway gw("heartbeat: 100ms\nupstreams:\n  llm: {url: \"" + mock.url() +
             "\"}\nroutes:\n  - {path: /v1/chat/completions, upstream: llm, resumable: true}\n");
  const uint16_t port = gw.port();
  SseStream ticks(port, "ticks");
  ticks.expect_ok();

  constexpr int kTokens = 10;
  Response accepted = http(
      port, post_request("/v1/chat/completions?tokens=10&interval_ms=20&first_token_ms=1500",
                         "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                         "Prefer: respond-async\r\n"));
  REQUIRE(accepted.status == 202);
  const std::string ch = accepted.header("sse-channel");
  REQUIRE(ch.rfind("gen-", 0) == 0);
  CHECK(mock.wait_stat("active", 1) == 1);  // the upstream has the request, no token yet

  // Two ticks after the 202 (the first may have been on its way already): the channel was swept
  // while it held nothing.
  ticks.pump();
  REQUIRE(ticks.wait_comments(ticks.comments() + 2, 2s));
  CHECK(read_metric(port, "ssegw_channels_active") == 2);  // "ticks" and the generation

  // Before the first token: the subscriber follows the answer live from its start.
  SseStream early(port, ch);
  early.expect_ok();
  REQUIRE(mock.stat("tokens_sent") == 0);  // the premise: it came before the first token

  // After the first tokens: the subscriber gets them from the channel's history, then the rest.
  std::vector<SseEvent> early_events;
  while (mock.stat("tokens_sent") < 3) {
    std::optional<SseEvent> e = early.next_event(3s);
    REQUIRE(e);
    early_events.push_back(*e);
  }
  SseStream late(port, ch);
  late.expect_ok();
  std::vector<SseEvent> late_events;

  for (SseStream* s : {&early, &late}) {
    std::vector<SseEvent>& events = s == &early ? early_events : late_events;
    std::vector<SseEvent> rest = read_until_finished(*s);
    events.insert(events.end(), rest.begin(), rest.end());
    const std::string who = s == &early ? "early" : "late";
    INFO(who, " subscriber: \"", printable(s->body()), "\"");
    REQUIRE(events.size() == kTokens + 2);  // the tokens, the finishing chunk, [DONE]
    CHECK(json_string(events.front().data, "content") == "tok0 ");
    CHECK(events.back().data == "[DONE]");
    CHECK(answer_text(events) == full_answer(kTokens));
    for (const SseEvent& e : events) CHECK(e.event != "gap");
  }
  CHECK(mock.wait_stat("completed", 1) == 1);
}
