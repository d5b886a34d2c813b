#include "gateway/base/ascii.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ssegw;

TEST_CASE("base/ascii: to_lower folds A-Z and nothing else") {
  CHECK(base::to_lower("Content-Length: 100-Continue") == "content-length: 100-continue");
  CHECK(base::to_lower("@[`{") == "@[`{");  // the bytes around A-Z and a-z
  // Not a locale's idea of case: bytes above 0x7f stay as they are.
  CHECK(base::to_lower("\xC3\x89T\xC3\x89") == "\xC3\x89t\xC3\x89");
  CHECK(base::to_lower("") == "");
  std::string out = "x-";
  base::append_lower(out, "Forwarded-FOR");
  CHECK(out == "x-forwarded-for");
  static_assert(base::to_lower('Z') == 'z' && base::to_lower('z') == 'z');
}

TEST_CASE("base/ascii: iequals ignores ASCII case only") {
  CHECK(base::iequals("100-Continue", "100-continue"));
  CHECK(base::iequals("BEARER ", "Bearer "));
  CHECK(base::iequals("", ""));
  CHECK_FALSE(base::iequals("bearer", "bearer "));
  CHECK_FALSE(
      base::iequals("@", "`"));  // 0x40 and 0x60 differ by the case bit, and are not letters
  CHECK_FALSE(base::iequals("\xC3\xA9", "\xC3\x89"));
  static_assert(base::iequals("Host", "hOST"));
}

TEST_CASE("base/ascii: hex_digit takes both cases and nothing else") {
  std::string seen;
  for (int c = 0; c < 256; ++c) {
    int d = base::hex_digit(static_cast<char>(c));
    if (d >= 0) seen += static_cast<char>(c);
    if (d >= 0) CHECK(d == (c <= '9' ? c - '0' : base::to_lower(static_cast<char>(c)) - 'a' + 10));
  }
  CHECK(seen == "0123456789ABCDEFabcdef");
}

TEST_CASE("base/ascii: find_text answers as string_view::find does") {
  const std::string_view texts[] = {"",     "a",   "\"usage\"", R"({"a":"usage","usage":null})",
                                    "aaab", "abab"};
  const std::string_view needles[] = {"", "a", "b", "ab", "\"usage\"", "usage\":null", "zz"};
  for (std::string_view text : texts) {
    for (std::string_view needle : needles) {
      for (size_t from = 0; from <= text.size() + 1; ++from) {
        CAPTURE(text);
        CAPTURE(needle);
        CAPTURE(from);
        CHECK(base::find_text(text, needle, from) == text.find(needle, from));
      }
    }
  }
}
