// The Redis backplane's codec on real replies: RESP bytes as Redis sends them, read by hiredis's
// own reader into the redisReply trees the backplane gets.
#include "gateway/backplane/stream_entry.hpp"

#include <doctest/doctest.h>
#include <hiredis/hiredis.h>

#include <memory>
#include <string>

#include "gateway/hub/sse_frame.hpp"

using namespace ssegw;

using backplane::is_error;
using backplane::parse_entry;
using backplane::text;

namespace {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// One reply from its RESP bytes.
Reply read_reply(const std::string& resp) {
  redisReader* reader = redisReaderCreate();
  REQUIRE(redisReaderFeed(reader, resp.data(), resp.size()) == REDIS_OK);
  void* reply = nullptr;
  int rc = redisReaderGetReply(reader, &reply);
  redisReaderFree(reader);
  REQUIRE(rc == REDIS_OK);
  REQUIRE(reply != nullptr);
  return Reply(static_cast<redisReply*>(reply));
}

std::string bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

// An XRANGE entry: *2 [id, *2n [field, value, ...]].
std::string entry(std::string_view id, std::initializer_list<std::string_view> fields) {
  std::string out = "*2\r\n" + bulk(id) + "*" + std::to_string(fields.size()) + "\r\n";
  for (std::string_view f : fields) out += bulk(f);
  return out;
}

struct Parsed {
  bool ok = false;
  hub::EventId id{};
  std::string_view data, type;
  std::optional<hub::EventId> end;
};

Parsed parse(const redisReply* reply) {
  Parsed p;
  p.ok = parse_entry(reply, p.id, p.data, p.type, p.end);
  return p;
}

}  // namespace

TEST_CASE("backplane/stream_entry: text() of each kind of reply") {
  CHECK(text(read_reply("$5\r\nhello\r\n").get()) == "hello");
  CHECK(text(read_reply("+OK\r\n").get()) == "OK");
  CHECK(text(read_reply("-ERR no such key\r\n").get()) == "ERR no such key");
  CHECK(text(read_reply(":42\r\n").get()).empty());
  CHECK(text(read_reply("$-1\r\n").get()).empty());  // nil
  CHECK(text(read_reply("*1\r\n$1\r\na\r\n").get()).empty());
  CHECK(text(nullptr).empty());
  std::string binary("a\0b", 3);
  CHECK(text(read_reply(bulk(binary)).get()) == binary);
}

TEST_CASE("backplane/stream_entry: is_error() is true for null and error replies only") {
  CHECK(is_error(nullptr));
  CHECK(is_error(read_reply("-NOSCRIPT No matching script\r\n").get()));
  CHECK_FALSE(is_error(read_reply("+OK\r\n").get()));
  CHECK_FALSE(is_error(read_reply(":0\r\n").get()));
  CHECK_FALSE(is_error(read_reply("$-1\r\n").get()));
  CHECK_FALSE(is_error(read_reply("*0\r\n").get()));
}

TEST_CASE("backplane/stream_entry: an event entry") {
  Reply reply = read_reply(entry(
      "1700000000000-3", {"n", "42", "data", "hello\nworld", "event", "delta", "uid", "up-7"}));
  Parsed p = parse(reply.get());
  CHECK(p.ok);
  CHECK(p.id == hub::EventId{1700000000000, 3});
  CHECK(p.data == "hello\nworld");
  CHECK(p.type == "delta");
  CHECK_FALSE(p.end.has_value());
}

TEST_CASE("backplane/stream_entry: fields it does not hold leave their outputs alone") {
  // A "message" event is stored without its event field: the caller's default type stays.
  Reply reply = read_reply(entry("5-0", {"data", ""}));
  Parsed p;
  p.type = "message";
  p.ok = parse_entry(reply.get(), p.id, p.data, p.type, p.end);
  CHECK(p.ok);
  CHECK(p.id == hub::EventId{5, 0});
  CHECK(p.data.empty());
  CHECK(p.type == "message");
}

TEST_CASE("backplane/stream_entry: a generation's end marker") {
  Parsed p = parse(read_reply(entry("9-1", {"end", "9-0"})).get());
  CHECK(p.ok);
  CHECK(p.id == hub::EventId{9, 1});
  REQUIRE(p.end.has_value());
  CHECK(*p.end == hub::EventId{9, 0});
  // An end marker whose value is no id: the entry parses, the end is unknown.
  Parsed bad = parse(read_reply(entry("9-2", {"end", "nonsense"})).get());
  CHECK(bad.ok);
  CHECK_FALSE(bad.end.has_value());
}

TEST_CASE("backplane/stream_entry: what is not a stream entry") {
  for (const std::string& resp : {
           std::string("$5\r\nhello\r\n"),                    // not an array
           std::string("*1\r\n$3\r\n1-0\r\n"),                // one element
           std::string("*3\r\n$3\r\n1-0\r\n*0\r\n*0\r\n"),    // three
           entry("not-an-id", {"data", "x"}),                 // a bad id
           std::string("*2\r\n$3\r\n1-0\r\n$4\r\ndata\r\n"),  // fields not an array
           std::string("*2\r\n:1\r\n*0\r\n"),                 // an integer id
       }) {
    CAPTURE(resp);
    Parsed p;
    p.data = "untouched";
    p.ok = parse_entry(read_reply(resp).get(), p.id, p.data, p.type, p.end);
    CHECK_FALSE(p.ok);
    CHECK(p.data == "untouched");
  }
  // An odd field list: the last name without a value is ignored.
  Reply reply = read_reply(entry("3-0", {"data", "x", "event"}));  // the views point into it
  Parsed odd = parse(reply.get());
  CHECK(odd.ok);
  CHECK(odd.data == "x");
  CHECK(odd.type.empty());
}

TEST_CASE("backplane/stream_entry: unnumbered_size() is the frame's size without its id line") {
  // The memory hub counts whole serialised frames; the script adds "id: " id "\n" (5 + #id).
  for (auto [type, data] : {std::pair<std::string_view, std::string_view>{"message", "hello"},
                            {"delta", "a\nb\nc"},
                            {"message", ""}}) {
    CAPTURE(type);
    CAPTURE(data);
    hub::EventId id{1700000000000, 12};
    size_t whole = hub::make_event_frame(id, type, data)->size();
    CHECK(backplane::unnumbered_size(type, data) == std::to_string(whole - 5 - id.str().size()));
  }
}
