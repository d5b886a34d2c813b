#include "gateway/hub/sse_frame.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "gateway/base/frame.hpp"
#include "gateway/base/json.hpp"

using namespace ssegw;

namespace {

std::string raw(const base::FrameRef& frame) {
  return std::string(frame->raw());
}

// The wire bytes of an event with id 7-1 and the given type and data.
std::string event(std::string_view type, std::string_view data) {
  return raw(hub::make_event_frame(hub::EventId{7, 1}, type, data));
}

}  // namespace

TEST_CASE("hub/sse_frame: simple data") {
  CHECK(raw(hub::make_event_frame(hub::EventId{1700000000000, 0}, "", "hello")) ==
        "id: 1700000000000-0\ndata: hello\n\n");
  CHECK(event("", "hello world") == "id: 7-1\ndata: hello world\n\n");
}

TEST_CASE("hub/sse_frame: event type") {
  CHECK(event("token", "x") == "id: 7-1\nevent: token\ndata: x\n\n");
  CHECK(event("a.b:c-d_e", "x") == "id: 7-1\nevent: a.b:c-d_e\ndata: x\n\n");
}

TEST_CASE("hub/sse_frame: the default type message is omitted") {
  CHECK(event("message", "x") == "id: 7-1\ndata: x\n\n");
  CHECK(event("", "x") == "id: 7-1\ndata: x\n\n");
  // Only the exact default is omitted.
  CHECK(event("Message", "x") == "id: 7-1\nevent: Message\ndata: x\n\n");
}

TEST_CASE("hub/sse_frame: empty data is one empty data line") {
  CHECK(event("", "") == "id: 7-1\ndata: \n\n");
  CHECK(event("done", "") == "id: 7-1\nevent: done\ndata: \n\n");
}

TEST_CASE("hub/sse_frame: multi-line data") {
  SUBCASE("LF") {
    CHECK(event("", "a\nb") == "id: 7-1\ndata: a\ndata: b\n\n");
  }
  SUBCASE("CR") {
    CHECK(event("", "a\rb") == "id: 7-1\ndata: a\ndata: b\n\n");
  }
  SUBCASE("CRLF is one line end") {
    CHECK(event("", "a\r\nb") == "id: 7-1\ndata: a\ndata: b\n\n");
  }
  SUBCASE("LF CR is two line ends") {
    CHECK(event("", "a\n\rb") == "id: 7-1\ndata: a\ndata: \ndata: b\n\n");
  }
  SUBCASE("mixed") {
    CHECK(event("", "a\nb\rc\r\nd\n\ne") ==
          "id: 7-1\ndata: a\ndata: b\ndata: c\ndata: d\ndata: \ndata: e\n\n");
  }
  SUBCASE("trailing LF gives a final empty line") {
    CHECK(event("", "a\n") == "id: 7-1\ndata: a\ndata: \n\n");
  }
  SUBCASE("trailing CR gives a final empty line") {
    CHECK(event("", "a\r") == "id: 7-1\ndata: a\ndata: \n\n");
  }
  SUBCASE("trailing CRLF gives a final empty line") {
    CHECK(event("", "a\r\n") == "id: 7-1\ndata: a\ndata: \n\n");
  }
  SUBCASE("only line ends") {
    CHECK(event("", "\n") == "id: 7-1\ndata: \ndata: \n\n");
    CHECK(event("", "\r\n\r\n") == "id: 7-1\ndata: \ndata: \ndata: \n\n");
  }
  SUBCASE("with a type") {
    CHECK(event("t", "x\ny") == "id: 7-1\nevent: t\ndata: x\ndata: y\n\n");
  }
}

TEST_CASE("hub/sse_frame: data bytes other than CR and LF pass unchanged") {
  std::string data = std::string("a\0b", 3) + "\t:\xff\xc3\xa9";
  CHECK(event("", data) == "id: 7-1\ndata: " + data + "\n\n");
}

TEST_CASE("hub/sse_frame: the largest id") {
  hub::EventId id{UINT64_MAX, UINT64_MAX};
  CHECK(raw(hub::make_event_frame(id, "", "x")) ==
        "id: 18446744073709551615-18446744073709551615\ndata: x\n\n");
}

TEST_CASE("hub/sse_frame: unnumbered event") {
  CHECK(raw(hub::make_unnumbered_event_frame("gap", "x\ny")) == "event: gap\ndata: x\ndata: y\n\n");
  CHECK(raw(hub::make_unnumbered_event_frame("", "")) == "data: \n\n");
}

TEST_CASE("hub/sse_frame: retry frame") {
  CHECK(raw(hub::make_retry_frame(2000)) == "retry: 2000\n\n");
  CHECK(raw(hub::make_retry_frame(0)) == "retry: 0\n\n");
}

TEST_CASE("hub/sse_frame: heartbeat frame") {
  CHECK(raw(hub::make_heartbeat_frame()) == ":\n\n");
}

TEST_CASE("hub/sse_frame: gap frame") {
  SUBCASE("with a first available id") {
    CHECK(raw(hub::make_gap_frame("1-0", hub::EventId{5, 2})) ==
          "event: gap\ndata: {\"last_event_id\":\"1-0\",\"first_available\":\"5-2\"}\n\n");
  }
  SUBCASE("with null") {
    CHECK(raw(hub::make_gap_frame("1-0", std::nullopt)) ==
          "event: gap\ndata: {\"last_event_id\":\"1-0\",\"first_available\":null}\n\n");
  }
  SUBCASE("empty requested id") {
    CHECK(raw(hub::make_gap_frame("", std::nullopt)) ==
          "event: gap\ndata: {\"last_event_id\":\"\",\"first_available\":null}\n\n");
  }
  SUBCASE("hostile requested id stays valid JSON on one line") {
    std::string requested = "a\"b\\c\nd\re\tf\x01g\x1f\x7f\xff\xc0\xaf\xed\xa0\x80z\xc3\xa9";
    std::string bytes = raw(hub::make_gap_frame(requested, hub::EventId{9, 0}));
    CHECK(bytes ==
          "event: gap\ndata: {\"last_event_id\":"
          "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001f\\u007f\\ufffd\\ufffd\\ufffd"
          "\\ufffd\\ufffd\\ufffdz\xc3\xa9\",\"first_available\":\"9-0\"}\n\n");
    // Exactly two lines plus the blank one, and the data line is valid UTF-8.
    CHECK(bytes.find('\r') == std::string::npos);
    size_t newlines = 0;
    for (char c : bytes) newlines += c == '\n';
    CHECK(newlines == 3);
    CHECK(base::is_valid_utf8(bytes));
  }
}

TEST_CASE("hub/sse_frame: Frame::chunked is hex size, CRLF, bytes, CRLF") {
  struct Case {
    size_t size;
    const char* hex;
  };
  for (Case c : {Case{0, "0"}, Case{15, "f"}, Case{16, "10"}, Case{255, "ff"}, Case{4096, "1000"},
                 Case{70000, "11170"}}) {
    CAPTURE(c.size);
    std::string body(c.size, 'x');
    for (size_t i = 0; i < c.size; ++i) body[i] = static_cast<char>('a' + i % 26);
    base::FrameRef frame = base::Frame::copy_of(body);
    CHECK(frame->size() == c.size);
    CHECK(frame->raw() == body);
    char hex[32];
    std::snprintf(hex, sizeof hex, "%zx", c.size);
    CHECK(std::string(hex) == c.hex);
    CHECK(frame->chunked() == std::string(c.hex) + "\r\n" + body + "\r\n");
    // The two views share one buffer.
    CHECK(frame->chunked().data() + frame->chunked().size() - 2 - c.size == frame->raw().data());
  }
}

TEST_CASE("hub/sse_frame: event frames are chunk-framed too") {
  base::FrameRef frame = hub::make_event_frame(hub::EventId{1, 0}, "", "hi");
  CHECK(frame->chunked() == "12\r\nid: 1-0\ndata: hi\n\n\r\n");
}

TEST_CASE("hub/sse_frame: a frame's head, for a multi-channel stream to write its own") {
  auto check = [](const base::FrameRef& frame, std::string_view id, std::string_view type,
                  std::string_view rest) {
    hub::FrameHead head = hub::parse_frame_head(frame->raw());
    CHECK(head.id == id);
    CHECK(head.type == type);
    CHECK(frame->raw().substr(head.rest) == rest);
  };
  check(hub::make_event_frame(hub::EventId{7, 1}, "", "x"), "7-1", "", "data: x\n\n");
  check(hub::make_event_frame(hub::EventId{7, 1}, "token", "a\nevent: b"), "7-1", "token",
        "data: a\ndata: event: b\n\n");
  check(hub::make_gap_frame("1-0", std::nullopt), "", "gap",
        "data: {\"last_event_id\":\"1-0\",\"first_available\":null}\n\n");
  check(hub::make_unnumbered_event_frame("", "id: 1"), "", "", "data: id: 1\n\n");
  check(hub::make_heartbeat_frame(), "", "", ":\n\n");
}
