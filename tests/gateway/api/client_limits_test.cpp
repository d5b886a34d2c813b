#include "gateway/api/client_limits.hpp"

#include <doctest/doctest.h>

using namespace ssegw;

TEST_CASE("api/client_limits: IPv6 clients are keyed by their /64, IPv4 ones by the address") {
  CHECK(api::client_key("127.0.0.1") == "127.0.0.1");
  CHECK(api::client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
  CHECK(api::client_key("2001:db8:1:2::1") == api::client_key("2001:db8:1:2:ffff::9"));
  CHECK(api::client_key("2001:db8:1:3::1") != api::client_key("2001:db8:1:2::1"));
  CHECK(api::client_key("::1") == "::/64");
  CHECK(api::client_key("::ffff:10.0.0.1") == "::ffff:10.0.0.1");
  CHECK(api::client_key("not an address") == "not an address");
}

TEST_CASE("api/client_limits: stream slots per address come back with their lease") {
  api::ClientLimits limits(10, 10, 10, 2);
  auto a = limits.take_stream("a");
  auto b = limits.take_stream("a");
  REQUIRE(a);
  REQUIRE(b);
  CHECK_FALSE(limits.take_stream("a"));
  CHECK(limits.take_stream("b"));  // another address has its own
  CHECK(limits.streams("a") == 2);
  a.reset();
  CHECK(limits.streams("a") == 1);
  CHECK(limits.take_stream("a"));
  b->reset();
  b->reset();  // twice: given back once
  CHECK(limits.streams("a") == 0);
}
