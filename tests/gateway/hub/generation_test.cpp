#include "gateway/hub/generation.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>

using namespace ssegw;

TEST_CASE("hub/generation: names are gen- and 32 lower-case hex digits, all different") {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    std::optional<std::string> name = hub::make_generation_name();
    REQUIRE(name.has_value());
    CHECK(name->size() == 36);
    CHECK(hub::is_generation_name(*name));
    seen.insert(*name);
  }
  CHECK(seen.size() == 2000);
  // Every hex digit shows up in every position over 2000 draws of a uniform source (the chance
  // that one of the 512 pairs is missing is below 10^-50): not a seeded 32-bit PRNG's few bits.
  for (size_t pos = 4; pos < 36; ++pos) {
    std::set<char> digits;
    for (const std::string& name : seen) digits.insert(name[pos]);
    CAPTURE(pos);
    CHECK(digits.size() == 16);
  }
}

TEST_CASE("hub/generation: the predicate and the reserved prefix") {
  CHECK(hub::is_generation_name("gen-0123456789abcdef0123456789abcdef"));
  CHECK_FALSE(hub::is_generation_name("gen-0123456789abcdef"));  // the old 64-bit form
  CHECK_FALSE(hub::is_generation_name("gen-0123456789ABCDEF0123456789abcdef"));
  CHECK_FALSE(hub::is_generation_name("gen-0123456789abcdef0123456789abcdeg"));
  CHECK_FALSE(hub::is_generation_name("gen-0123456789abcdef0123456789abcdef0"));
  CHECK_FALSE(hub::is_generation_name("xen-0123456789abcdef0123456789abcdef"));
  CHECK(hub::has_generation_prefix("gen-"));
  CHECK(hub::has_generation_prefix("gen-anything"));
  CHECK_FALSE(hub::has_generation_prefix("generation"));
}
