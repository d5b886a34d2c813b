// Graceful shutdown (issue 2, Operations): SIGTERM and SIGINT end the streams cleanly and exit 0
// within shutdown_grace. The grace periods here are long, so that an exit that waited for one
// would come after the test's own timeout (10 s) and fail it: exiting 0 at all shows it did not.
#include <signal.h>

#include <string>
#include <thread>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

TEST_CASE("shutdown: SIGTERM ends subscriber streams cleanly and exits 0") {
  Gateway gw("shutdown_grace: 30s\n");
  SseStream s11(gw.port(), "bye");
  SseStream s10(gw.port(), "bye", {.version = "HTTP/1.0"});
  s11.expect_ok();
  s10.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), "bye", 2) == 2);
  std::string id = publish(gw.port(), "bye", "last words");
  CHECK(s11.expect_event().id == id);
  CHECK(s10.expect_event().id == id);
  Conn idle(gw.port());
  CHECK(idle.request(get_request("/healthz")).status == 200);

  int status = gw.stop_and_wait(10s);
  INFO("log: ", gw.log());
  CHECK(status == 0);  // by itself: stop_and_wait's SIGKILL after 10 s would be 137

  CHECK(s11.read_until_closed(2s));
  CHECK(s11.framing_error() == "");
  CHECK(s11.finished());
  INFO("HTTP/1.1 stream: \"", printable(s11.wire()), "\"");
  CHECK(s11.wire() ==
        kHead11 + chunk("retry: 2000\n\n") + chunk(sse_frame(id, "last words")) + "0\r\n\r\n");

  CHECK(s10.read_until_closed(2s));
  CHECK(s10.wire() == kHead10 + "retry: 2000\n\n" + sse_frame(id, "last words"));

  CHECK(idle.wait_closed(2s));
  CHECK(idle.buffer() == "");
  // Nothing listens any more.
  CHECK_THROWS(connect_to(gw.port(), 1s));
}

TEST_CASE("shutdown: SIGINT drains the same way and exits early once clients are gone") {
  Gateway gw("shutdown_grace: 30s\n");
  SseStream s(gw.port(), "int");
  s.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), "int", 1) == 1);
  // Like a browser, the client reads the end of the stream and then closes its side.
  bool ended = false;
  std::thread client([&] {
    ended = s.read_until_closed(5s);
    s.close();
  });
  gw.signal(SIGINT);
  auto status = gw.wait_exit(10s);  // nothing left to drain: no need to wait for the grace period
  client.join();
  CHECK(status == 0);
  CHECK(ended);
  CHECK(s.finished());
  CHECK(s.wire() == kHead11 + chunk("retry: 2000\n\n") + "0\r\n\r\n");
}

TEST_CASE("shutdown: a subscriber that never reads does not hold the exit past shutdown_grace") {
  // The queue limit is high so that the stuck subscriber is not shed before the signal.
  Gateway gw("shutdown_grace: 1s\nslow_consumer: {max_queued_bytes: 64MiB}\n");
  SseStream stuck(gw.port(), "stuck", {.rcvbuf = 4096});
  stuck.expect_ok();
  REQUIRE(wait_subscribers(gw.port(), "stuck", 1) == 1);
  {
    Publisher pub(gw.port());
    const std::string data(64 << 10, 's');
    for (int i = 0; i < 128; ++i) pub.publish("stuck", data);  // 8 MiB
  }
  CHECK(read_metric(gw.port(), "ssegw_slow_consumer_disconnects_total") == 0);
  auto t0 = Clock::now();
  int status = gw.stop_and_wait(10s);
  auto took = Clock::now() - t0;
  CHECK(status == 0);    // by itself, at the grace: stop_and_wait's SIGKILL after 10 s would be 137
  CHECK(took >= 900ms);  // it gave the stuck subscriber its grace first
}
