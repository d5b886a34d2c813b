#include "gateway/base/json.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ssegw;

namespace {

std::string json(std::string_view text) {
  std::string out;
  base::append_json_string(out, text);
  return out;
}

}  // namespace

TEST_CASE("base/json: is_valid_utf8 accepts well-formed text") {
  for (std::string_view text : {
           std::string_view(""),
           std::string_view("plain ascii"),
           std::string_view("\x7f"),
           std::string_view("\xc2\x80"),          // U+0080, smallest 2-byte
           std::string_view("\xc3\xa9"),          // é
           std::string_view("\xdf\xbf"),          // U+07FF
           std::string_view("\xe0\xa0\x80"),      // U+0800, smallest 3-byte
           std::string_view("\xe2\x82\xac"),      // €
           std::string_view("\xed\x9f\xbf"),      // U+D7FF, just below the surrogates
           std::string_view("\xee\x80\x80"),      // U+E000, just above them
           std::string_view("\xef\xbf\xbf"),      // U+FFFF
           std::string_view("\xf0\x90\x80\x80"),  // U+10000, smallest 4-byte
           std::string_view("\xf0\x9f\x98\x80"),  // 😀
           std::string_view("\xf4\x8f\xbf\xbf"),  // U+10FFFF, the largest
           std::string_view("a\0b", 3),           // NUL is a valid character
           std::string_view("mixed \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 end"),
       }) {
    CAPTURE(text);
    CHECK(base::is_valid_utf8(text));
  }
}

TEST_CASE("base/json: is_valid_utf8 rejects malformed text") {
  for (std::string_view text : {
           std::string_view("\x80"),                      // lone continuation
           std::string_view("\xbf"),                      // lone continuation
           std::string_view("\xc0\x80"),                  // overlong NUL
           std::string_view("\xc1\xbf"),                  // overlong U+007F
           std::string_view("\xe0\x80\x80"),              // overlong 3-byte
           std::string_view("\xe0\x9f\xbf"),              // overlong U+07FF
           std::string_view("\xf0\x80\x80\x80"),          // overlong 4-byte
           std::string_view("\xf0\x8f\xbf\xbf"),          // overlong U+FFFF
           std::string_view("\xed\xa0\x80"),              // U+D800 surrogate
           std::string_view("\xed\xbf\xbf"),              // U+DFFF surrogate
           std::string_view("\xed\xa0\xbd\xed\xb8\x80"),  // a CESU-8 surrogate pair
           std::string_view("\xf4\x90\x80\x80"),          // U+110000
           std::string_view("\xf5\x80\x80\x80"),          // lead byte past U+10FFFF
           std::string_view("\xf7\xbf\xbf\xbf"),
           std::string_view("\xf8\x88\x80\x80\x80"),  // 5-byte form
           std::string_view("\xfe"),
           std::string_view("\xff"),
           std::string_view("\xc3"),          // truncated 2-byte
           std::string_view("\xe2\x82"),      // truncated 3-byte
           std::string_view("\xe2"),          // truncated 3-byte
           std::string_view("\xf0\x9f\x98"),  // truncated 4-byte
           std::string_view("\xf0\x9f"),      // truncated 4-byte
           std::string_view("a\xe2\x82"),     // truncated at the end
           std::string_view("\xe2\x82z"),     // interrupted by ASCII
           std::string_view("\xc3\xc3\xa9"),  // interrupted by a new lead byte
           std::string_view("ok \xc3\xa9 then \xff"),
       }) {
    CAPTURE(text);
    CHECK_FALSE(base::is_valid_utf8(text));
  }
}

TEST_CASE("base/json: append_json_string escaping") {
  CHECK(json("") == "\"\"");
  CHECK(json("plain") == "\"plain\"");
  CHECK(json("a\"b") == "\"a\\\"b\"");
  CHECK(json("a\\b") == "\"a\\\\b\"");
  CHECK(json("/") == "\"/\"");
  CHECK(json("\n\r\t") == "\"\\n\\r\\t\"");
  CHECK(json("\b\f") == "\"\\u0008\\u000c\"");
  CHECK(json(std::string_view("\0", 1)) == "\"\\u0000\"");
  CHECK(json("\x01\x1f\x7f") == "\"\\u0001\\u001f\\u007f\"");
  CHECK(json(" ~") == "\" ~\"");
  // Valid UTF-8 passes unchanged.
  CHECK(json("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") == "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
  CHECK(json("\xf4\x8f\xbf\xbf") == "\"\xf4\x8f\xbf\xbf\"");
}

TEST_CASE("base/json: invalid UTF-8 bytes become \\ufffd, one per byte") {
  CHECK(json("\xff") == "\"\\ufffd\"");
  CHECK(json("a\x80z") == "\"a\\ufffdz\"");
  CHECK(json("\xc0\x80") == "\"\\ufffd\\ufffd\"");
  CHECK(json("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");
  CHECK(json("\xf4\x90\x80\x80") == "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
  CHECK(json("\xe2\x82") == "\"\\ufffd\\ufffd\"");
  CHECK(json("\xe2\x82\"") == "\"\\ufffd\\ufffd\\\"\"");  // the quote after it is still escaped
  CHECK(json("\xc3\xc3\xa9") == "\"\\ufffd\xc3\xa9\"");   // resynchronises on the next lead byte
  CHECK(json("\xf0\x9f\x98") == "\"\\ufffd\\ufffd\\ufffd\"");
}

TEST_CASE("base/json: output is always valid UTF-8 with no raw control characters") {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::string out = json(all);
  CHECK(base::is_valid_utf8(out));
  for (char c : out) CHECK(static_cast<unsigned char>(c) >= 0x20);
  CHECK(out.front() == '"');
  CHECK(out.back() == '"');
}

TEST_CASE("base/json: append_json_string appends") {
  std::string out = "{\"k\":";
  base::append_json_string(out, "v");
  out += '}';
  CHECK(out == "{\"k\":\"v\"}");
}
