// The upstream client's pure decisions: which answers have a body, and what a client may be told
// of a failure. The exchanges themselves run against the mock in tests/integration/.
#include "upstream/http_client.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ssegw;

using upstream::Failure;

TEST_CASE("http_client: HEAD, 1xx, 204 and 304 answers have no body") {
  for (int status : {200, 201, 206, 400, 404, 429, 500, 502}) {
    CAPTURE(status);
    CHECK(upstream::response_has_body(false, status));
    CHECK_FALSE(upstream::response_has_body(true, status));
  }
  for (int status : {100, 103, 199, 204, 304}) {
    CAPTURE(status);
    CHECK_FALSE(upstream::response_has_body(false, status));
    CHECK_FALSE(upstream::response_has_body(true, status));
  }
}

TEST_CASE("http_client: failure messages name the kind and no address") {
  for (Failure f : {Failure::kResolve, Failure::kConnect, Failure::kConnectTimeout, Failure::kTls,
                    Failure::kFirstByteTimeout, Failure::kIdleTimeout, Failure::kDisconnected,
                    Failure::kProtocol}) {
    const std::string message = upstream::failure_message(f);
    const std::string kind = std::string("(") + upstream::failure_name(f) + ")";
    CAPTURE(message);
    CHECK(message.rfind("the upstream ", 0) == 0);
    CHECK(message.size() > kind.size());
    CHECK(message.substr(message.size() - kind.size()) == kind);
    CHECK(message.find(':') == std::string::npos);  // no host:port, no "what: detail"
  }
}
