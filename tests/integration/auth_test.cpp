// Authentication and authorisation over real HTTP (docs/security.md): JWT (HS256 here; RS256 and
// ES256 are covered by the verifier's unit tests) beside static publish tokens.
#include <string>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/jwt_tokens.hpp"

using namespace itest;

namespace {

Response subscribe_with(uint16_t port, const std::string& path, const std::string& headers) {
  // A stream never ends by itself: read only its head.
  Conn c(port);
  c.send(get_request(path, headers));
  return c.read_response(2s);
}

int subscribe_status(uint16_t port, const std::string& path, const std::string& headers = "") {
  Conn c(port);
  c.send(get_request(path, headers));
  std::string got;
  while (got.find("\r\n") == std::string::npos) {
    if (read_some(c.fd(), got, 2s) != ReadStatus::kData) break;
  }
  return got.size() > 12 ? std::stoi(got.substr(9, 3)) : -1;
}

}  // namespace

TEST_CASE("auth: a JWT from the header, the cookie or the query lets a subscriber in") {
  Gateway gw(jwt_yaml());
  std::string t = token(grants("\"news.*\"", ""));
  CHECK(subscribe_status(gw.port(), "/v1/channels/news.a/events",
                         "Authorization: Bearer " + t + "\r\n") == 200);
  CHECK(subscribe_status(gw.port(), "/v1/channels/news.a/events",
                         "Cookie: theme=dark; ssegw_token=" + t + "\r\n") == 200);
  CHECK(subscribe_status(gw.port(), "/v1/channels/news.a/events?access_token=" + t) == 200);
}

TEST_CASE("auth: every rejection path answers 401 or 403 with a JSON error") {
  Gateway gw(jwt_yaml());
  const std::string path = "/v1/channels/news.a/events";
  auto bearer = [](const std::string& t) { return "Authorization: Bearer " + t + "\r\n"; };
  std::string good = token(grants("\"news.*\"", "\"news.*\""));
  // No token at all: subscribing needs one once jwt is set.
  CHECK(subscribe_status(gw.port(), path) == 401);
  // A bad signature (last character changed) and a token signed with another secret.
  std::string flipped = good;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  CHECK(subscribe_status(gw.port(), path, bearer(flipped)) == 401);
  CHECK(subscribe_status(gw.port(), path,
                         bearer(sign_hs256("{\"alg\":\"HS256\"}", grants("\"*\"", ""),
                                           "another-secret-another-secret-xx"))) == 401);
  // alg none, with an empty signature part.
  std::string none = base64url("{\"alg\":\"none\"}") + "." + base64url(grants("\"*\"", "")) + ".";
  CHECK(subscribe_status(gw.port(), path, bearer(none)) == 401);
  // Expired, and not valid yet.
  CHECK(subscribe_status(gw.port(), path, bearer(token(grants("\"*\"", "", now() - 10)))) == 401);
  CHECK(subscribe_status(gw.port(), path,
                         bearer(token("{\"ssegw\":{\"subscribe\":[\"*\"]},\"nbf\":" +
                                      std::to_string(now() + 3600) + "}"))) == 401);
  // Garbage.
  CHECK(subscribe_status(gw.port(), path, bearer("not.a.jwt")) == 401);
  // Valid, but for other channels: 403.
  Response r = subscribe_with(gw.port(), path, bearer(token(grants("\"sports.*\"", ""))));
  CHECK(r.status == 403);
  CHECK(r.body.find("\"code\":\"forbidden\"") != std::string::npos);
  // The JSON error of a 401.
  Response u = subscribe_with(gw.port(), path, "");
  CHECK(u.status == 401);
  CHECK(u.header("www-authenticate") == "Bearer");
  CHECK(u.body.find("\"code\":\"unauthorized\"") != std::string::npos);
}

TEST_CASE("auth: publishing needs a JWT publish claim or a static token") {
  Gateway gw(jwt_yaml("  publish_tokens: [\"static-token\"]\n"));
  auto post = [&](const std::string& headers) {
    return http(gw.port(), post_request("/v1/channels/news.a/events", "x", headers)).status;
  };
  CHECK(post("") == 401);
  CHECK(post("Authorization: Bearer static-token\r\n") == 200);  // static tokens keep working
  CHECK(post("Authorization: Bearer " + token(grants("", "\"news.*\"")) + "\r\n") == 200);
  CHECK(post("Authorization: Bearer " + token(grants("\"news.*\"", "")) + "\r\n") == 403);
  CHECK(post("Authorization: Bearer " + token(grants("", "\"news.*\"", now() - 1)) + "\r\n") ==
        401);
}

TEST_CASE("auth: a token that expires is refused on reconnect") {
  Gateway gw(jwt_yaml());
  std::string t = token(grants("\"c\"", "", now() + 2));
  SseStream s(gw.port(), "c", {.extra_headers = "Authorization: Bearer " + t + "\r\n"});
  s.expect_ok();
  std::this_thread::sleep_for(2500ms);  // the wait is the point: the token must expire
  // The open stream is not cut, but the browser's next reconnect with the same token is.
  CHECK(subscribe_status(gw.port(), "/v1/channels/c/events",
                         "Authorization: Bearer " + t + "\r\n") == 401);
}

TEST_CASE("auth: anonymous_subscribe lets tokenless subscribers in, but not bad tokens") {
  Gateway gw(jwt_yaml("  anonymous_subscribe: true\n"));
  CHECK(subscribe_status(gw.port(), "/v1/channels/open/events") == 200);
  CHECK(subscribe_status(gw.port(), "/v1/channels/open/events",
                         "Authorization: Bearer not.a.jwt\r\n") == 401);
  CHECK(http(gw.port(), post_request("/v1/channels/open/events", "x")).status == 401);
}
