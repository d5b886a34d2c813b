// net::TcpStream on a real loop against a raw-libuv peer on loopback: how frames leave (the
// Loop's once-per-turn flush, uv_try_write first, one writev in flight, partial writes), how the
// stream closes (a write in flight cancelled, FIN after the last byte), and what it counts. Every
// test ends with the loop closed and uv_loop_close() == 0.
#include "gateway/net/tcp_stream.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "gateway/base/frame.hpp"
#include "gateway/net/loop.hpp"
#include "tests/support/uv_peer.hpp"

using namespace ssegw;

using base::Frame;
using test::run_until;

namespace {

// What the stream told its owner. Lives in the test: the stream deletes itself.
struct Events {
  std::string data;
  int read_end = 1;   // 1: not yet
  int connected = 1;  // 1: not yet
  int drained = 0;
  int progress = 0;
  int closes = 0;
  int after_close = 0;  // hooks called once close() had begun: there must be none
  std::vector<const Events*>* drain_log = nullptr;  // where on_drained() notes this stream
};

class TestStream final : public net::TcpStream {
 public:
  TestStream(net::Loop& loop, Events& events) : net::TcpStream(loop), events_(events) {}

  int fd() const {
    uv_os_fd_t fd = -1;
    uv_fileno(uv_handle(), &fd);
    return fd;
  }
  // A small send buffer: writes larger than it are partial.
  void set_send_buffer(int bytes) {
    ::setsockopt(fd(), SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  }

 private:
  void note() {
    if (!is_open()) ++events_.after_close;
  }
  void on_data(const char* data, size_t length) override {
    note();
    events_.data.append(data, length);
  }
  void on_read_end(int status) override {
    note();
    events_.read_end = status;
  }
  void on_drained() override {
    note();
    ++events_.drained;
    if (events_.drain_log) events_.drain_log->push_back(&events_);
  }
  void on_write_progress() override {
    note();
    ++events_.progress;
  }
  void on_connected(int status) override {
    note();
    events_.connected = status;
  }
  void on_close() override { ++events_.closes; }

  Events& events_;
};

// A TestStream connected to an accepted raw peer.
struct Pair {
  explicit Pair(bool peer_reads = true) : peers(loop.uv()) {
    peers.read_on_accept = peer_reads;
    stream = new TestStream(loop, events);
    sockaddr_in address = peers.address();
    REQUIRE(stream->connect(reinterpret_cast<const sockaddr*>(&address)) == 0);
  }
  ~Pair() { finish(); }

  bool connected() {
    return run_until([&] { return events.connected == 0 && peers.size() == 1; });
  }
  test::Peer& peer() { return peers[0]; }
  bool run_until(const std::function<bool()>& done, uint64_t timeout_ms = 5000) {
    return test::run_until(loop.uv(), done, timeout_ms);
  }

  // Closes everything and checks that the loop ends with no handle left.
  void finish() {
    if (finished) return;
    finished = true;
    if (events.closes == 0) stream->close();
    peers.close();
    loop.close();
    CHECK(loop.finish() == 0);
    CHECK(events.closes == 1);
    CHECK(events.after_close == 0);
  }

  net::Loop loop;
  test::Peers peers;
  Events events;
  TestStream* stream = nullptr;
  bool finished = false;
};

// `count` frames of `size` bytes, each one recognisable: its index, then a letter.
std::string queue_frames(TestStream* stream, int count, size_t size) {
  std::string all;
  for (int i = 0; i < count; ++i) {
    std::string frame(size, static_cast<char>('a' + i % 26));
    std::string tag = std::to_string(i) + ":";
    frame.replace(0, tag.size(), tag);
    all += frame;
    stream->write(Frame::copy_of(frame), false);
  }
  return all;
}

}  // namespace

TEST_CASE("net/tcp_stream: frames queued in one turn leave together, in one writev") {
  Pair p;
  REQUIRE(p.connected());
  std::string a(100, 'a'), b(200, 'b'), c(300, 'c');
  p.stream->write(Frame::copy_of(a), false);
  p.stream->write(Frame::copy_of(b), false);
  p.stream->write(Frame::copy_of(c), false);
  // Nothing is written on the caller's stack: the loop flushes dirty streams once per turn.
  CHECK(p.stream->bytes_written() == 0);
  CHECK(p.stream->queued_bytes() == 600);
  CHECK_FALSE(p.stream->idle_output());
  CHECK(p.run_until([&] { return p.peer().received.size() == 600; }));
  CHECK(p.peer().received == a + b + c);
  CHECK(p.peer().reads == 1);  // one writev: the peer's first read has all three
  CHECK(p.stream->bytes_written() == 600);
  CHECK(p.stream->queued_bytes() == 0);
  CHECK(p.stream->idle_output());
  CHECK(p.events.drained == 1);
  // uv_try_write took everything: no uv_write was needed, so no write completed.
  CHECK(p.events.progress == 0);
}

TEST_CASE("net/tcp_stream: a flush tries uv_try_write first and queues nothing it took") {
  Pair p;
  REQUIRE(p.connected());
  base::FrameRef frame = Frame::copy_of("hello");
  p.stream->write(frame, false);
  p.stream->write(frame, true);  // the chunk-framed view of the same frame
  p.stream->flush();
  // Written on this stack, before any loop turn: the socket took it all at once.
  CHECK(p.stream->bytes_written() == 5 + std::string("5\r\nhello\r\n").size());
  CHECK(p.stream->queued_bytes() == 0);
  CHECK(p.events.drained == 1);
  CHECK(p.run_until([&] { return p.peer().received.size() == 15; }));
  CHECK(p.peer().received == "hello5\r\nhello\r\n");
}

TEST_CASE("net/tcp_stream: partial writes go on in one write at a time, byte-exact") {
  Pair p(/*peer_reads=*/false);
  REQUIRE(p.connected());
  p.stream->set_send_buffer(16 * 1024);
  constexpr int kFrames = 32;
  constexpr size_t kSize = 32 * 1024 + 7;  // not a multiple of anything the kernel uses
  std::string expected = queue_frames(p.stream, kFrames, kSize);
  p.stream->flush();
  // The peer reads nothing, so the socket took a part only; the rest waits in one uv_write.
  uint64_t first = p.stream->bytes_written();
  CHECK(first < expected.size());
  CHECK(p.stream->queued_bytes() == expected.size() - first);
  CHECK(p.stream->bytes_acked() < expected.size());
  CHECK(p.events.drained == 0);

  p.peer().start_reading();
  CHECK(p.run_until([&] { return p.peer().received.size() == expected.size(); }, 20000));
  CHECK(p.peer().received == expected);
  CHECK(p.stream->bytes_written() == expected.size());
  CHECK(p.stream->queued_bytes() == 0);
  CHECK(p.events.drained == 1);
  CHECK(p.events.progress >= 1);
  // Acknowledged once the peer's kernel has it all: an ACK is no loop event, so this polls.
  CHECK(p.run_until([&] { return p.stream->bytes_acked() == expected.size(); }));
}

TEST_CASE("net/tcp_stream: a close with a write in flight cancels it and touches nothing freed") {
  Pair p(/*peer_reads=*/false);
  REQUIRE(p.connected());
  p.stream->set_send_buffer(16 * 1024);
  std::string expected = queue_frames(p.stream, 64, 64 * 1024);
  p.stream->flush();
  REQUIRE(p.stream->queued_bytes() > 0);  // a uv_write is in flight
  p.stream->close();
  p.stream->close();  // safe twice
  CHECK_FALSE(p.stream->is_open());
  p.stream->write(Frame::copy_of("dropped"), false);  // after close: dropped, not queued
  // The write completes with UV_ECANCELED before the close callback; the stream hears nothing of
  // it (after_close stays 0, checked in finish()), and its frames go with the object (ASan).
  CHECK(p.run_until([&] { return p.events.closes == 1; }));
  CHECK(p.events.progress == 0);
  CHECK(p.events.drained == 0);
  p.peer().start_reading();
  CHECK(p.run_until([&] { return p.peer().eof || p.peer().read_error != 0; }));
  CHECK(p.peer().received.size() < expected.size());
}

TEST_CASE("net/tcp_stream: shutdown_after_flush sends FIN after the last byte") {
  SUBCASE("with a backlog") {
    Pair p(/*peer_reads=*/false);
    REQUIRE(p.connected());
    p.stream->set_send_buffer(16 * 1024);
    std::string expected = queue_frames(p.stream, 32, 32 * 1024);
    p.stream->flush();
    REQUIRE(p.stream->queued_bytes() > 0);
    p.stream->shutdown_after_flush();
    p.peer().start_reading();
    CHECK(p.run_until([&] { return p.peer().eof; }, 20000));
    CHECK(p.peer().received == expected);  // every byte, then the FIN
    CHECK(p.stream->is_open());            // a half-close: reading goes on
    CHECK(p.events.closes == 0);
    // The peer answers and closes; the stream reads it, then EOF.
    p.stream->start_reading();
    p.peer().write("bye");
    p.peer().shutdown();
    CHECK(p.run_until([&] { return p.events.read_end == UV_EOF; }));
    CHECK(p.events.data == "bye");
  }
  SUBCASE("with nothing queued: at once") {
    Pair p;
    REQUIRE(p.connected());
    p.stream->shutdown_after_flush();
    CHECK(p.run_until([&] { return p.peer().eof; }));
    CHECK(p.peer().received.empty());
  }
}

TEST_CASE("net/tcp_stream: reads reach on_data, and the peer's close on_read_end") {
  Pair p;
  REQUIRE(p.connected());
  p.stream->start_reading();
  p.peer().write("ping");
  CHECK(p.run_until([&] { return p.events.data == "ping"; }));
  p.stream->stop_reading();
  p.peer().write("pong");
  test::run_for(p.loop.uv(), 50);
  CHECK(p.events.data == "ping");  // stopped: nothing read
  p.stream->start_reading();
  CHECK(p.run_until([&] { return p.events.data == "pingpong"; }));
  p.peer().close();
  CHECK(p.run_until([&] { return p.events.read_end == UV_EOF; }));
  CHECK(p.events.closes == 0);  // the owner decides when to close
}

TEST_CASE("net/tcp_stream: connect outcomes") {
  SUBCASE("refused") {
    net::Loop loop;
    Events events;
    test::RefusingPort port;
    auto* stream = new TestStream(loop, events);
    sockaddr_in address = test::loopback(port.port());
    REQUIRE(stream->connect(reinterpret_cast<const sockaddr*>(&address)) == 0);
    CHECK(run_until(loop.uv(), [&] { return events.connected != 1; }));
    CHECK(events.connected == UV_ECONNREFUSED);
    stream->close();
    loop.close();
    CHECK(loop.finish() == 0);
    CHECK(events.closes == 1);
  }
  SUBCASE("closed while connecting: no on_connected, one on_close") {
    Pair p;
    p.stream->close();
    CHECK(p.run_until([&] { return p.events.closes == 1; }));
    CHECK(p.events.connected == 1);
  }
}

// Issue 15: a publisher hears back before the fan-out's writes of the same turn.
TEST_CASE("net/tcp_stream: a stream written with `first` is flushed ahead of those waiting") {
  net::Loop loop;
  test::Peers peers(loop.uv());
  Events events[3];
  TestStream* streams[3];
  sockaddr_in address = peers.address();
  for (int i = 0; i < 3; ++i) {
    streams[i] = new TestStream(loop, events[i]);
    REQUIRE(streams[i]->connect(reinterpret_cast<const sockaddr*>(&address)) == 0);
  }
  REQUIRE(test::run_until(loop.uv(), [&] {
    return peers.size() == 3 && events[0].connected == 0 && events[1].connected == 0 &&
           events[2].connected == 0;
  }));
  // Two deliveries, then an answer, in one turn (a timer callback, as a read would be).
  std::vector<const Events*> drained;
  for (Events& e : events) e.drain_log = &drained;
  uv_timer_t timer;
  uv_timer_init(loop.uv(), &timer);
  struct Turn {
    TestStream** streams;
  } turn{streams};
  timer.data = &turn;
  uv_timer_start(
      &timer,
      [](uv_timer_t* t) {
        auto* s = static_cast<Turn*>(t->data)->streams;
        s[0]->write(Frame::copy_of("delivery 0"), false);
        s[1]->write(Frame::copy_of("delivery 1"), false);
        s[2]->write(Frame::copy_of("answer"), false, true);
        uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
      },
      0, 0);
  // Each write completes at once (uv_try_write), and on_drained() comes from inside flush(): the
  // order of the drains is the order of the flushes.
  REQUIRE(test::run_until(loop.uv(), [&] { return drained.size() == 3; }));
  CHECK(drained == std::vector<const Events*>{&events[2], &events[0], &events[1]});
  for (TestStream* s : streams) s->close();
  peers.close();
  loop.close();
  CHECK(loop.finish() == 0);
}

// fanout.io_uring: a turn's flushes go out as one io_uring submission; a socket that takes only
// part of its bytes goes on through libuv. Every peer gets its exact bytes.
TEST_CASE("net/tcp_stream: a batched flush pass delivers every stream's bytes exactly") {
  net::Loop loop;
  if (!loop.use_send_batch()) {
    MESSAGE("this kernel refuses io_uring: nothing to test");
    loop.close();
    CHECK(loop.finish() == 0);
    return;
  }
  test::Peers peers(loop.uv());
  constexpr int kStreams = 4;
  Events events[kStreams];
  TestStream* streams[kStreams];
  sockaddr_in address = peers.address();
  for (int i = 0; i < kStreams; ++i) {
    streams[i] = new TestStream(loop, events[i]);
    REQUIRE(streams[i]->connect(reinterpret_cast<const sockaddr*>(&address)) == 0);
  }
  REQUIRE(test::run_until(loop.uv(), [&] {
    if (peers.size() != kStreams) return false;
    for (Events& e : events)
      if (e.connected != 0) return false;
    return true;
  }));
  // The peers arrive in connect order or not: match them by the bytes they get.
  streams[0]->set_send_buffer(16 * 1024);
  std::string expected[kStreams];
  expected[0] = queue_frames(streams[0], 32, 32 * 1024 + 7);  // far more than the socket takes
  for (int i = 1; i < kStreams; ++i) expected[i] = queue_frames(streams[i], 3, 100 + i);
  size_t total = 0;
  for (const std::string& e : expected) total += e.size();
  REQUIRE(test::run_until(
      loop.uv(),
      [&] {
        size_t got = 0;
        for (size_t i = 0; i < peers.size(); ++i) got += peers[i].received.size();
        return got == total;
      },
      20000));
  for (int i = 0; i < kStreams; ++i) {
    bool found = false;
    for (size_t j = 0; j < peers.size(); ++j) found = found || peers[j].received == expected[i];
    CHECK_MESSAGE(found, "stream " << i);
    CHECK(streams[i]->bytes_written() == expected[i].size());
    CHECK(events[i].drained == 1);
  }
  for (TestStream* s : streams) s->close();
  peers.close();
  loop.close();
  CHECK(loop.finish() == 0);
}
