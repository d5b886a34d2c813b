// http::Session on a real loop, driven by a raw-libuv client on loopback: the bytes of each
// answer, pipelined requests answered in order when answers are deferred and complete out of
// order, a request that may not overlap waiting for earlier answers, 100-continue, the header and
// answer timeouts, a chunked stream followed by a pipelined request, and the exchange's lifetime.
// Every test ends with the loop closed and uv_loop_close() == 0.
#include "gateway/http/session.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "gateway/net/loop.hpp"
#include "tests/support/uv_peer.hpp"

using namespace ssegw;

namespace {

// What the session did. Lives in the test: the session deletes itself.
struct Record {
  std::vector<std::string> handled;  // targets, in the order handle() saw them
  std::vector<std::pair<std::string, int>> counted;
  uint64_t started_ms = 0;  // the loop's clock when the session started reading
  int timeouts = 0;
  bool closed = false;
};

class TestSession final : public http::Session {
 public:
  using Handler = std::function<void(TestSession&, http::Request&)>;

  TestSession(net::Loop& loop, const Limits& limits, Record& record, Handler handler)
      : http::Session(loop, limits, 7), record_(record), handler_(std::move(handler)) {}

  // Requests whose target starts with this may go ahead while answers are deferred.
  std::string overlapping_prefix = "/publish";

 private:
  void on_connected(int status) override {
    if (status != 0) return;
    record_.started_ms = loop().now_ms();
    start();
  }
  void handle(http::Request& request) override {
    record_.handled.push_back(request.target);
    set_label("test");
    handler_(*this, request);
  }
  bool may_overlap(const http::Request& request) const override {
    return request.target.starts_with(overlapping_prefix);
  }
  void count(const char* label, int status) override {
    record_.counted.emplace_back(label, status);
  }
  Timeout answer_timeout() override {
    ++record_.timeouts;
    return {"answer_timeout", "no answer in time"};
  }
  void on_session_closed() override { record_.closed = true; }

  Record& record_;
  Handler handler_;
};

// A session connected to a raw client peer (the accepted end of our listener).
struct Fixture {
  explicit Fixture(TestSession::Handler handler, http::Session::Limits limits = {})
      : peers(loop.uv()) {
    session = new TestSession(loop, limits, record, std::move(handler));
    sockaddr_in address = peers.address();
    REQUIRE(session->connect(reinterpret_cast<const sockaddr*>(&address)) == 0);
    REQUIRE(run_until([&] { return peers.size() == 1; }));
  }
  ~Fixture() { finish(); }

  test::Peer& client() { return peers[0]; }
  bool run_until(const std::function<bool()>& done, uint64_t timeout_ms = 5000) {
    return test::run_until(loop.uv(), done, timeout_ms);
  }
  // What the client has once it holds as many bytes as `expected` (or after 5 s), to compare
  // with it: doctest prints both on a mismatch.
  std::string received(const std::string& expected) {
    run_until([&] { return client().received.size() >= expected.size(); });
    return client().received;
  }

  void finish() {
    if (finished) return;
    finished = true;
    if (!record.closed) session->close();
    peers.close();
    loop.close();
    CHECK(loop.finish() == 0);
    CHECK(record.closed);
  }

  net::Loop loop;
  test::Peers peers;
  Record record;
  TestSession* session = nullptr;
  bool finished = false;
};

std::string ok(std::string_view body, bool close = false) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n" +
         std::string(body);
}

std::string get(std::string_view target) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n\r\n";
}

}  // namespace

TEST_CASE("http/session: pipelined requests are answered in order, byte for byte") {
  Fixture f([](TestSession& s, http::Request& r) { s.respond(200, "text/plain", r.target); });
  f.client().write(get("/a") + get("/b") + get("/c"));
  std::string expected = ok("/a") + ok("/b") + ok("/c");
  CHECK(f.received(expected) == expected);
  CHECK(f.record.handled == std::vector<std::string>{"/a", "/b", "/c"});
  CHECK(f.record.counted.size() == 3);
  CHECK(f.record.counted[0] == std::pair<std::string, int>{"test", 200});
}

TEST_CASE("http/session: deferred answers completed out of order still leave in request order") {
  std::vector<http::AnswerSlot> slots;
  Fixture f([&](TestSession& s, http::Request&) { slots.push_back(s.defer()); });
  f.client().write(get("/publish/1") + get("/publish/2") + get("/publish/3"));
  REQUIRE(f.run_until([&] { return slots.size() == 3; }));
  // The last completes first: nothing may leave before the first answer.
  f.session->complete(slots[2], 200, "text/plain", "three");
  f.session->complete(slots[1], 200, "text/plain", "two");
  test::run_for(f.loop.uv(), 50);
  CHECK(f.client().received.empty());
  f.session->complete(slots[0], 200, "text/plain", "one");
  std::string expected = ok("one") + ok("two") + ok("three");
  CHECK(f.received(expected) == expected);
  // A late second completion of a slot is ignored.
  f.session->complete(slots[0], 500, "text/plain", "again");
  test::run_for(f.loop.uv(), 20);
  CHECK(f.client().received == ok("one") + ok("two") + ok("three"));
}

TEST_CASE("http/session: a request that may not overlap waits until earlier answers are out") {
  std::vector<http::AnswerSlot> slots;
  Fixture f([&](TestSession& s, http::Request& r) {
    if (r.target.starts_with("/publish"))
      slots.push_back(s.defer());
    else
      s.respond(200, "text/plain", "read");
  });
  f.client().write(get("/publish/1") + get("/read"));
  REQUIRE(f.run_until([&] { return slots.size() == 1; }));
  test::run_for(f.loop.uv(), 50);
  // /read was parsed but not handed to handle(): it could answer before /publish/1.
  CHECK(f.record.handled == std::vector<std::string>{"/publish/1"});
  f.session->complete(slots[0], 202, "text/plain", "done");
  std::string accepted =
      "HTTP/1.1 202 Accepted\r\nContent-Type: text/plain\r\nContent-Length: "
      "4\r\n\r\ndone";
  std::string expected = accepted + ok("read");
  CHECK(f.received(expected) == expected);
  CHECK(f.record.handled == std::vector<std::string>{"/publish/1", "/read"});
}

TEST_CASE("http/session: Expect: 100-continue gets its interim answer before the body is sent") {
  Fixture f([](TestSession& s, http::Request& r) { s.respond(200, "text/plain", r.body); });
  f.client().write(
      "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
  CHECK(f.received(interim) == interim);
  CHECK(f.record.handled.empty());
  f.client().write("hello");
  std::string expected = interim + ok("hello");
  CHECK(f.received(expected) == expected);
}

TEST_CASE("http/session: a request not complete within header_timeout_ms gets 408 and the close") {
  http::Session::Limits limits;
  limits.header_timeout_ms = 1000;
  Fixture f([](TestSession& s, http::Request&) { s.respond(200, "text/plain", "x"); }, limits);
  // The interim answer shows that the head is parsed and the body is awaited.
  f.client().write(
      "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
  REQUIRE(f.received(interim) == interim);
  f.session->tick(f.record.started_ms + 999);
  test::run_for(f.loop.uv(), 20);
  CHECK(f.client().received == interim);
  f.session->tick(f.record.started_ms + 1000);
  std::string body =
      R"({"error":{"code":"request_timeout","message":"the request was not complete in time"}})"
      "\n";
  std::string expected = interim +
                         "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                         "Content-Length: " +
                         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  CHECK(f.received(expected) == expected);
  CHECK(f.run_until([&] { return f.client().eof; }));
  CHECK(f.record.handled.empty());
}

TEST_CASE("http/session: deferred answers past answer_timeout_ms all get 503 and the close") {
  http::Session::Limits limits;
  limits.answer_timeout_ms = 500;
  std::vector<http::AnswerSlot> slots;
  Fixture f([&](TestSession& s, http::Request&) { slots.push_back(s.defer()); }, limits);
  f.client().write(get("/publish/1") + get("/publish/2"));
  REQUIRE(f.run_until([&] { return slots.size() == 2; }));
  f.session->complete(slots[1], 200, "text/plain", "two");  // ready, but behind the first
  f.session->tick(f.loop.now_ms() + 500);
  std::string body = R"({"error":{"code":"answer_timeout","message":"no answer in time"}})"
                     "\n";
  std::string unavailable =
      "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  // The first gets the timeout and the connection closes after it: the ready second answer
  // would have said keep-alive on a closing connection.
  CHECK(f.received(unavailable) == unavailable);
  CHECK(f.run_until([&] { return f.client().eof; }));
  CHECK(f.record.timeouts == 1);
}

TEST_CASE("http/session: a chunked stream, then the pipelined request behind it") {
  Fixture f([](TestSession& s, http::Request& r) {
    if (r.target == "/stream") {
      s.start_stream(200, "Content-Type: text/event-stream\r\n", true);
      s.write_body("data: a\n\n");
      s.write_frame(base::Frame::copy_of("data: bc\n\n"));
      s.end_stream();
    } else {
      s.respond(200, "text/plain", "after");
    }
  });
  f.client().write(get("/stream") + get("/next"));
  std::string stream =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
      "Transfer-Encoding: chunked\r\n\r\n"
      "9\r\ndata: a\n\n\r\n"
      "a\r\ndata: bc\n\n\r\n"
      "0\r\n\r\n";
  std::string expected = stream + ok("after");
  CHECK(f.received(expected) == expected);
  CHECK(f.record.handled == std::vector<std::string>{"/stream", "/next"});
}

TEST_CASE("http/session: body writes wait, and send_now() sends them in one write at once") {
  uint64_t before = 1, after = 0;
  Fixture f([&](TestSession& s, http::Request&) {
    s.start_stream(200, "Content-Type: text/event-stream\r\n", true);
    s.write_body("data: a\n\n");
    s.write_body("data: b\n\n");
    before = s.bytes_written();
    s.send_now();
    after = s.bytes_written();  // on this stack, not at the end of the turn
  });
  f.client().write(get("/stream"));
  std::string expected =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
      "Transfer-Encoding: chunked\r\n\r\n"
      "9\r\ndata: a\n\n\r\n"
      "9\r\ndata: b\n\n\r\n";
  CHECK(f.received(expected) == expected);
  CHECK(before == 0);
  CHECK(after == expected.size());
  CHECK(f.client().reads == 1);  // head and both chunks in one write
}

TEST_CASE("http/session: a prefixed piece is one chunk: the prefix, then the frame's rest") {
  std::string long_prefix(300, 'p');  // past the room for one copied piece with the chunk head
  Fixture f([&](TestSession& s, http::Request&) {
    s.start_stream(200, "Content-Type: text/event-stream\r\n", true);
    base::FrameRef frame = base::Frame::copy_of("id: 1-0\ndata: x\n\n");
    s.write_prefixed("id: 7\n", frame, 8);
    s.write_prefixed(long_prefix, frame, 0);
    s.write_prefixed("", frame, frame->size());  // an empty piece writes nothing
    s.end_stream();
  });
  f.client().write(get("/stream"));
  std::string expected =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
      "Transfer-Encoding: chunked\r\n\r\n"
      "f\r\nid: 7\ndata: x\n\n\r\n"
      "13d\r\n" +
      long_prefix +
      "id: 1-0\ndata: x\n\n\r\n"
      "0\r\n\r\n";
  CHECK(f.received(expected) == expected);
}

TEST_CASE("http/session: HTTP/1.0 takes a prefixed piece unframed") {
  Fixture f([](TestSession& s, http::Request&) {
    s.start_stream(200, "Content-Type: text/event-stream\r\n", true);
    s.write_prefixed("id: 7\n", base::Frame::copy_of("id: 1-0\ndata: x\n\n"), 8);
    s.end_stream();
  });
  f.client().write("GET /stream HTTP/1.0\r\n\r\n");
  std::string expected =
      "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
      "id: 7\ndata: x\n\n";
  CHECK(f.received(expected) == expected);
}

TEST_CASE("http/session: HTTP/1.0 streams end with the connection, not with a chunk") {
  Fixture f([](TestSession& s, http::Request&) {
    s.start_stream(200, "Content-Type: text/event-stream\r\n", true);
    s.write_body("data: a\n\n");
    s.end_stream();
  });
  f.client().write("GET /stream HTTP/1.0\r\n\r\n");
  std::string expected =
      "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
      "data: a\n\n";
  CHECK(f.received(expected) == expected);
  CHECK(f.run_until([&] { return f.client().eof; }));
}

TEST_CASE(
    "http/session: a malformed request gets 400 and the close, then later bytes are ignored") {
  Fixture f([](TestSession& s, http::Request&) { s.respond(200, "text/plain", "x"); });
  f.client().write("GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n" +
                   get("/b"));
  REQUIRE(f.run_until([&] { return f.client().eof; }));
  CHECK(f.client().received.starts_with("HTTP/1.1 400 Bad Request\r\n"));
  CHECK(f.client().received.find("Connection: close\r\n") != std::string::npos);
  CHECK(f.record.handled.empty());
  REQUIRE(f.record.counted.size() == 1);
  CHECK(f.record.counted[0] == std::pair<std::string, int>{"unmatched", 400});
}

TEST_CASE("http/session: the lifetime expires when the connection goes, and not before") {
  http::Lifetime lifetime;
  Fixture f([&](TestSession& s, http::Request&) { lifetime = s.lifetime(); });
  f.client().write(get("/wait"));
  REQUIRE(f.run_until([&] { return !f.record.handled.empty(); }));
  CHECK(http::Exchange::alive(lifetime));
  f.client().close();
  REQUIRE(f.run_until([&] { return f.record.closed; }));
  CHECK_FALSE(http::Exchange::alive(lifetime));
}
