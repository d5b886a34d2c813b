// The Handle rule (net/handle.hpp) on each long-lived handle: Timer, Async, Signal, Listener and
// the Loop itself. Open, closing, closed; close() twice; no callback after close(); a loop that
// ends with uv_loop_close() == 0, or names what was left open.
#include "gateway/net/handles.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "gateway/net/loop.hpp"
#include "gateway/net/tcp_stream.hpp"
#include "tests/support/uv_peer.hpp"

using namespace ssegw;

using test::run_until;
using State = net::Timer::State;

TEST_CASE("net/handles: a timer fires, repeats, stops, and closes twice") {
  net::Loop loop;
  int fired = 0;
  net::Timer timer(loop, [&] { ++fired; });
  CHECK(timer.state() == State::kOpen);
  timer.start(1, 1);
  CHECK(run_until(loop.uv(), [&] { return fired >= 3; }));
  timer.stop();
  int stopped_at = fired;
  test::run_for(loop.uv(), 20);
  CHECK(fired == stopped_at);
  timer.close();
  CHECK(timer.state() == net::Timer::State::kClosing);
  timer.close();      // safe twice
  timer.start(0, 0);  // ignored once closing
  loop.close();
  CHECK(loop.finish() == 0);
  CHECK(timer.state() == net::Timer::State::kClosed);
  CHECK(fired == stopped_at);
}

TEST_CASE("net/handles: a timer closed before it fires never calls back") {
  net::Loop loop;
  int fired = 0;
  net::Timer timer(loop, [&] { ++fired; });
  timer.start(0, 0);
  timer.close();
  loop.close();
  CHECK(loop.finish() == 0);
  CHECK(fired == 0);
}

TEST_CASE("net/handles: an async wakes its loop from another thread") {
  net::Loop loop;
  std::thread::id ran_on;
  int woken = 0;
  net::Async async(loop, [&] {
    ++woken;
    ran_on = std::this_thread::get_id();
  });
  std::thread sender([&] { async.send(); });
  CHECK(run_until(loop.uv(), [&] { return woken >= 1; }));
  sender.join();
  CHECK(ran_on == std::this_thread::get_id());
  async.close();
  async.close();
  loop.close();
  CHECK(loop.finish() == 0);
  CHECK(async.state() == net::Async::State::kClosed);
}

// A wake-up is written only while none is unread; none may be lost: the last of many sends from
// another thread is always followed by a callback that sees what came before it.
TEST_CASE("net/handles: an async loses no wake-up among many sends from another thread") {
  net::Loop loop;
  constexpr uint64_t kSends = 200000;
  std::atomic<uint64_t> sent{0};
  uint64_t seen = 0;
  int callbacks = 0;
  net::Async async(loop, [&] {
    ++callbacks;
    seen = sent.load(std::memory_order_acquire);
  });
  std::thread sender([&] {
    for (uint64_t i = 0; i < kSends; ++i) {
      sent.fetch_add(1, std::memory_order_release);
      async.send();
    }
  });
  CHECK(run_until(loop.uv(), [&] { return seen == kSends; }));
  sender.join();
  CHECK(callbacks >= 1);
  CHECK(callbacks <= static_cast<int>(kSends));
  async.close();
  loop.close();
  CHECK(loop.finish() == 0);
}

TEST_CASE("net/handles: a signal is delivered on the loop, and closes twice") {
  net::Loop loop;
  int received = 0;
  net::Signal signal(loop, [&](int signum) { received = signum; });
  REQUIRE(signal.start(SIGUSR1) == 0);
  ::raise(SIGUSR1);
  CHECK(run_until(loop.uv(), [&] { return received != 0; }));
  CHECK(received == SIGUSR1);
  signal.close();
  signal.close();
  CHECK(signal.start(SIGUSR1) == UV_EINVAL);  // closing: refused, nothing installed
  loop.close();
  CHECK(loop.finish() == 0);
  CHECK(signal.state() == net::Signal::State::kClosed);
}

namespace {

// An accepted stream that only counts its close.
class Accepted final : public net::TcpStream {
 public:
  Accepted(net::Loop& loop, int& closes) : net::TcpStream(loop), closes_(closes) {}

 private:
  void on_data(const char*, size_t) override {}
  void on_read_end(int) override { close(); }
  void on_close() override { ++closes_; }
  int& closes_;
};

}  // namespace

TEST_CASE("net/handles: a listener hands each connection over, and closes twice") {
  net::Loop loop;
  std::string error;
  int fd = net::open_listen_socket("127.0.0.1", 0, false, error);
  REQUIRE(fd >= 0);
  uint16_t port = 0;
  CHECK(net::local_address(fd, &port).rfind("127.0.0.1:", 0) == 0);
  int accepted = 0, closes = 0;
  net::Listener listener(loop, [&](uv_stream_t* server) {
    auto* stream = new Accepted(loop, closes);
    ++accepted;
    if (stream->accept(server) == 0)
      stream->start_reading();
    else
      stream->close();
  });
  REQUIRE(listener.listen_fd(fd, 16) == 0);
  test::Peers clients(loop.uv(), /*listen=*/false);
  clients.connect(test::loopback(port));
  clients.connect(test::loopback(port));
  CHECK(run_until(loop.uv(), [&] { return accepted == 2; }));
  clients.close();  // the accepted streams read EOF and close themselves
  CHECK(run_until(loop.uv(), [&] { return closes == 2; }));
  listener.close();
  listener.close();
  loop.close();
  CHECK(loop.finish() == 0);
  CHECK(listener.state() == net::Listener::State::kClosed);
}

TEST_CASE("net/loop: finish() refuses to close a loop with a handle open, and names it") {
  net::Loop loop;
  net::Timer forgotten(loop, [] {});
  loop.close();
  CHECK(loop.finish() == UV_EBUSY);
  CHECK(loop.open_handles() == "timer");
  forgotten.close();
  CHECK(loop.open_handles() == "timer (closing)");
  CHECK(loop.finish() == 0);
}

// In a child process: the check (SSEGW_CHECK, on in Release too) aborts, and the parent sees it.
TEST_CASE("net/handle: destroying an owner before its close callback aborts") {
  auto dies = [](auto body) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Quietly: no assert message, and no crash report from doctest's own signal handler.
      std::signal(SIGABRT, SIG_DFL);
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, STDOUT_FILENO);
      ::dup2(devnull, STDERR_FILENO);
      body();
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  };
  CHECK(dies([] {
    net::Loop loop;
    net::Timer open(loop, [] {});  // never closed
  }));
  CHECK(dies([] {
    net::Loop loop;
    {
      net::Timer closing(loop, [] {});
      closing.close();  // closed, but its close callback has not run
    }
  }));
}

// The worker's cross-worker wake-ups ride on this: however many messages a turn posts, the hook
// runs once for them, before the turn ends (here: after a timer callback, before the loop polls).
TEST_CASE("net/handles: the loop's end-of-turn hook runs once per turn that asked for it") {
  net::Loop loop;
  std::vector<std::string> log;
  loop.set_end_of_turn([&] { log.push_back("hook"); });
  int fired = 0;
  net::Timer timer(loop, [&] {
    ++fired;
    log.push_back("timer");
    for (int i = 0; i < 3; ++i) loop.request_end_of_turn();
  });
  timer.start(0, 5);
  CHECK(run_until(loop.uv(), [&] { return fired >= 2; }));
  timer.stop();
  test::run_for(loop.uv(), 20);
  CHECK(log == std::vector<std::string>{"timer", "hook", "timer", "hook"});
  test::run_for(loop.uv(), 10);  // nobody asked: it does not run
  CHECK(log.size() == 4);
  timer.close();
  loop.close();
  CHECK(loop.finish() == 0);
}
