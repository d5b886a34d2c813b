#include "upstream/trace_context.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ssegw;
using upstream::new_traceparent;
using upstream::valid_traceparent;

TEST_CASE("upstream/trace_context: the spec's example and its broken forms") {
  CHECK(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid_traceparent(""));
  CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"));
  CHECK_FALSE(valid_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  CHECK_FALSE(valid_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"));
  CHECK_FALSE(valid_traceparent("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  // A later version may be longer; its first 55 characters are read.
  CHECK(valid_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"));
}

TEST_CASE("upstream/trace_context: a new traceparent is valid, sampled and new each time") {
  std::string a = new_traceparent(), b = new_traceparent();
  CHECK(valid_traceparent(a));
  CHECK(a.size() == 55);
  CHECK(a.starts_with("00-"));
  CHECK(a.ends_with("-01"));
  CHECK(a != b);
}
