// net::Resolve: the callback runs exactly once, unless cancel() comes first; a cancelled lookup
// still queued for the thread pool ends at once, and the loop ends with no request left.
#include "gateway/net/resolver.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "gateway/net/loop.hpp"
#include "tests/support/thread_pool_blocker.hpp"
#include "tests/support/uv_peer.hpp"

using namespace ssegw;

using test::run_until;

TEST_CASE("net/resolver: a numeric address resolves once, never on the caller's stack") {
  net::Loop loop;
  int calls = 0, status = 1;
  std::vector<net::ResolvedAddress> found;
  net::Resolve* resolve =
      net::Resolve::start(loop, "127.0.0.1", 8080, [&](int s, std::vector<net::ResolvedAddress> a) {
        ++calls;
        status = s;
        found = std::move(a);
      });
  REQUIRE(resolve != nullptr);
  CHECK(calls == 0);
  CHECK(run_until(loop.uv(), [&] { return calls == 1; }));
  CHECK(status == 0);
  REQUIRE(!found.empty());
  const auto* in = reinterpret_cast<const sockaddr_in*>(&found[0].addr);
  CHECK(in->sin_family == AF_INET);
  CHECK(ntohs(in->sin_port) == 8080);
  loop.close();
  CHECK(loop.finish() == 0);
  CHECK(calls == 1);
}

TEST_CASE("net/resolver: a cancelled lookup never calls back") {
  net::Loop loop;
  int calls = 0;
  net::Resolve* resolve = net::Resolve::start(
      loop, "localhost", 80, [&](int, std::vector<net::ResolvedAddress>) { ++calls; });
  REQUIRE(resolve != nullptr);
  resolve->cancel();
  loop.close();
  CHECK(loop.finish() == 0);  // the request ended (cancelled, or finished and dropped)
  CHECK(calls == 0);
}

TEST_CASE("net/resolver: cancel() ends a lookup still queued for the thread pool at once") {
  // Every thread of the pool waits on the blocker, so the lookup queued after them cannot start:
  // only uv_cancel can end it before they are released.
  net::Loop loop;
  test::ThreadPoolBlocker blocker(loop.uv());
  int calls = 0;
  net::Resolve* resolve = net::Resolve::start(
      loop, "localhost", 80, [&](int, std::vector<net::ResolvedAddress>) { ++calls; });
  // CHECK, never REQUIRE, until the blockers are released: the thread pool is the process's,
  // and a test that left it blocked would hang every later lookup of the run.
  CHECK(resolve != nullptr);
  CHECK(loop.uv()->active_reqs.count == test::ThreadPoolBlocker::kBlockers + 1);
  if (resolve) resolve->cancel();
  // The cancelled lookup completes (UV_EAI_CANCELED) while every blocker still runs.
  CHECK(run_until(loop.uv(), [&] {
    return loop.uv()->active_reqs.count == test::ThreadPoolBlocker::kBlockers;
  }));
  CHECK(blocker.done() == 0);
  blocker.release();
  CHECK(run_until(loop.uv(), [&] { return blocker.all_done(); }));
  loop.close();
  CHECK(loop.finish() == 0);
  CHECK(calls == 0);
}

TEST_CASE("net/resolver: an IP address is read as it is, a name is not") {
  net::ResolvedAddress a{};
  REQUIRE(net::ip_literal("127.0.0.1", 9000, a));
  const auto* in = reinterpret_cast<const sockaddr_in*>(&a.addr);
  CHECK(in->sin_family == AF_INET);
  CHECK(ntohs(in->sin_port) == 9000);
  CHECK(ntohl(in->sin_addr.s_addr) == 0x7f000001);
  CHECK(a.length == sizeof(sockaddr_in));

  REQUIRE(net::ip_literal("::1", 443, a));  // the config keeps no brackets
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a.addr);
  CHECK(in6->sin6_family == AF_INET6);
  CHECK(ntohs(in6->sin6_port) == 443);
  CHECK(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
  CHECK(a.length == sizeof(sockaddr_in6));

  for (const char* name : {"localhost", "llm.internal", "1.2.3", "[::1]", "127.0.0.1 ", "",
                           "fe80::1%lo", "fe80::1%1"}) {  // a zone is getaddrinfo's to read
    CAPTURE(name);
    CHECK_FALSE(net::ip_literal(name, 80, a));
  }
}
