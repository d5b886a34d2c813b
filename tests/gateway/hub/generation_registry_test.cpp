// The registry of running generations (the cancel API's table on one worker).
#include "gateway/hub/generation_registry.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>

using namespace ssegw;

namespace {
const std::string kA = "gen-0123456789abcdef0123456789abcdef";
const std::string kB = "gen-fedcba9876543210fedcba9876543210";
}  // namespace

TEST_CASE("hub/generation_registry: entries are found, stopped once, and removed by serial") {
  hub::GenerationRegistry registry;
  int stops_a = 0;
  bool a_running = true;
  uint64_t a = registry.add(kA, "key:web", [&] {
    ++stops_a;
    bool was = a_running;
    a_running = false;
    return was;
  });
  uint64_t b = registry.add(kB, "", [] { return true; });
  CHECK(a != 0);
  CHECK(b != 0);
  CHECK(a != b);
  CHECK(registry.size() == 2);
  REQUIRE(registry.starter(kA));
  CHECK(*registry.starter(kA) == "key:web");
  REQUIRE(registry.starter(kB));
  CHECK(registry.starter(kB)->empty());
  CHECK_FALSE(registry.starter("gen-nothing"));
  CHECK_FALSE(registry.stop("gen-nothing"));

  CHECK(registry.stop(kA));
  CHECK(stops_a == 1);
  // The answer had ended already: stop() says so.
  CHECK_FALSE(registry.stop(kA));
  CHECK(stops_a == 2);

  // A second entry of a taken name is refused; a stale serial removes nothing.
  CHECK(registry.add(kA, "key:other", [] { return true; }) == 0);
  CHECK(*registry.starter(kA) == "key:web");
  registry.remove(kA, a + 100);
  CHECK(registry.size() == 2);
  registry.remove(kA, a);
  CHECK(registry.size() == 1);
  CHECK_FALSE(registry.starter(kA));
  registry.remove(kA, a);  // twice: nothing
  CHECK(registry.size() == 1);

  int seen = 0;
  registry.for_each([&](const std::string& name, const std::string& starter) {
    CHECK(name == kB);
    CHECK(starter.empty());
    ++seen;
  });
  CHECK(seen == 1);
}

TEST_CASE("hub/generation_registry: stopping an answer may remove its own entry") {
  // As a RouteProxy does: cancel() releases the lease whose release removes the entry, while the
  // registry is still inside stop(). The entry's function (and what it captured) goes with it.
  hub::GenerationRegistry registry;
  uint64_t serial = 0;
  auto captured = std::make_shared<int>(7);
  int seen = 0;
  serial = registry.add(kA, "sub:alice", [&registry, &serial, &seen, captured] {
    registry.remove(kA, serial);
    seen = *captured;  // still valid: stop() runs a copy
    return true;
  });
  captured.reset();
  CHECK(registry.stop(kA));
  CHECK(seen == 7);
  CHECK(registry.size() == 0);
  CHECK_FALSE(registry.stop(kA));
}
