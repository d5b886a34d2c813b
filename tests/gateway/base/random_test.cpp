#include "gateway/base/random.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>

using namespace ssegw;

TEST_CASE("base/random: hex digits appended, never the same twice") {
  std::string out = "gen-";
  REQUIRE(base::append_random_hex(out, 16));
  CHECK(out.size() == 4 + 32);
  CHECK(out.find_first_not_of("0123456789abcdef", 4) == std::string::npos);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id;
    REQUIRE(base::append_random_hex(id, 8));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}
