#include "gateway/net/frame_queue.hpp"

#include <doctest/doctest.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "gateway/base/frame.hpp"

using namespace ssegw;

using net::FrameQueue;

namespace {

std::vector<std::string> contents(const FrameQueue& q) {
  std::vector<std::string> out;
  for (size_t i = 0; i < q.size(); ++i) out.emplace_back(q.at(i).frame()->raw());
  return out;
}

}  // namespace

TEST_CASE("net/frame_queue: empty") {
  FrameQueue q;
  CHECK(q.empty());
  CHECK(q.size() == 0);
  q.clear();
  CHECK(q.empty());
}

TEST_CASE("net/frame_queue: push and pop keep order") {
  FrameQueue q;
  q.push(base::Frame::copy_of("a"), false);
  q.push(base::Frame::copy_of("b"), true);
  q.push(base::Frame::copy_of("c"), false);
  CHECK(q.size() == 3);
  CHECK_FALSE(q.empty());
  CHECK(q.front().frame()->raw() == "a");
  CHECK(q.front().bytes() == "a");
  CHECK(q.at(1).bytes() == "1\r\nb\r\n");  // the chunked view
  CHECK(q.at(2).bytes() == "c");
  q.pop();
  CHECK(q.front().bytes() == "1\r\nb\r\n");
  q.pop();
  CHECK(q.front().bytes() == "c");
  q.pop();
  CHECK(q.empty());
}

TEST_CASE("net/frame_queue: order across growth") {
  FrameQueue q;
  std::vector<std::string> expected;
  for (int i = 0; i < 100; ++i) {
    expected.push_back(std::to_string(i));
    q.push(base::Frame::copy_of(expected.back()), i % 2 == 0);
    REQUIRE(contents(q) == expected);
  }
  for (int i = 0; i < 100; ++i) {
    CHECK(q.front().frame()->raw() == std::to_string(i));
    CHECK(q.front().bytes().size() ==
          (i % 2 == 0 ? q.front().frame()->chunked().size() : q.front().frame()->raw().size()));
    q.pop();
  }
  CHECK(q.empty());
}

TEST_CASE("net/frame_queue: growth while wrapped around") {
  FrameQueue q;
  // Capacity 4: fill, pop two, push two so that the ring wraps, then grow.
  for (const char* s : {"0", "1", "2", "3"}) q.push(base::Frame::copy_of(s), false);
  q.pop();
  q.pop();
  q.push(base::Frame::copy_of("4"), false);
  q.push(base::Frame::copy_of("5"), false);
  CHECK(contents(q) == std::vector<std::string>{"2", "3", "4", "5"});
  q.push(base::Frame::copy_of("6"), true);  // full and wrapped: grows
  CHECK(contents(q) == std::vector<std::string>{"2", "3", "4", "5", "6"});
  CHECK(q.at(4).bytes() == "1\r\n6\r\n");
}

TEST_CASE("net/frame_queue: matches a deque under mixed pushes and pops") {
  FrameQueue q;
  std::deque<std::string> model;
  unsigned state = 12345;
  int next = 0;
  for (int step = 0; step < 5000; ++step) {
    state = state * 1103515245u + 12345u;
    // Pushes a little more often than pops, so that the ring grows, wraps and drains.
    bool push = model.empty() || (state >> 16) % 7 < 4;
    if (push) {
      model.push_back(std::to_string(next++));
      q.push(base::Frame::copy_of(model.back()), false);
    } else {
      REQUIRE(q.front().frame()->raw() == model.front());
      q.pop();
      model.pop_front();
    }
    REQUIRE(q.size() == model.size());
  }
  REQUIRE(contents(q) == std::vector<std::string>(model.begin(), model.end()));
}

TEST_CASE("net/frame_queue: shares frames and releases its references") {
  base::FrameRef frame = base::Frame::copy_of("shared bytes");
  const base::Frame* raw = frame.get();
  {
    FrameQueue q;
    for (int i = 0; i < 10; ++i) q.push(frame, i % 2 == 0);  // ten references, one frame
    for (size_t i = 0; i < q.size(); ++i) CHECK(q.at(i).frame() == raw);
    q.pop();
    q.pop();
    // Destroyed with eight references still queued.
  }
  // Ours is the only one left: the frame is still readable, and the reference releases it at the
  // end of the test (a leak or double free shows under ASan).
  CHECK(frame->raw() == "shared bytes");
  CHECK(frame.get() == raw);

  SUBCASE("clear releases them too") {
    FrameQueue q;
    for (int i = 0; i < 5; ++i) q.push(frame, false);
    q.clear();
    CHECK(q.empty());
    CHECK(frame->raw() == "shared bytes");
    q.push(frame, true);  // reusable after clear
    CHECK(q.front().bytes() == "c\r\nshared bytes\r\n");
  }
  SUBCASE("a moved-in reference is owned by the queue") {
    FrameQueue q;
    base::FrameRef copy = frame;
    q.push(std::move(copy), false);
    CHECK_FALSE(copy);
    q.pop();
    CHECK(frame->raw() == "shared bytes");
  }
}

TEST_CASE("net/frame_queue: the queue alone keeps a frame alive") {
  FrameQueue q;
  {
    base::FrameRef frame = base::Frame::copy_of("only in the queue");
    q.push(frame, false);
  }
  CHECK(q.front().bytes() == "only in the queue");
  q.pop();
  CHECK(q.empty());
}

TEST_CASE("net/frame_queue: views of a frame and copied pieces keep their order and bytes") {
  base::FrameRef frame = base::Frame::copy_of("id: 1\ndata: x\n\n");
  FrameQueue q;
  q.push_copy("head ");
  q.push_view(frame, frame->raw().substr(6));
  q.push_copy("tail");
  q.push_view(frame, frame->chunked());
  REQUIRE(q.size() == 4);
  CHECK(q.at(0).bytes() == "head ");
  CHECK(q.at(0).frame() == nullptr);
  CHECK(q.at(1).bytes() == "data: x\n\n");
  CHECK(q.at(1).frame() == frame.get());
  CHECK(q.at(2).bytes() == "tail");
  CHECK(q.at(3).bytes() == "f\r\nid: 1\ndata: x\n\n\r\n");
  q.clear();
  CHECK(q.arena_capacity() == 256);  // the emptied block stays for the next pieces
}
