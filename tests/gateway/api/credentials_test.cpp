#include "gateway/api/credentials.hpp"

#include <doctest/doctest.h>

using namespace ssegw;

using api::Credential;

TEST_CASE("api/credentials: the source of the token is known") {
  using Source = Credential::Source;
  CHECK(api::find_credential("Bearer h", "ssegw_token=c", "access_token=q").source ==
        Source::kHeader);
  CHECK(api::find_credential("", "ssegw_token=c", "access_token=q").source == Source::kCookie);
  CHECK(api::find_credential("Basic x", "", "access_token=q").source == Source::kQuery);
  CHECK(api::find_credential("Basic x", "a=1", "x=1").source == Source::kNone);
  CHECK_FALSE(api::find_credential("", "", "access_token=").present());
  // A malformed escape is still a credential: it is refused, never taken as anonymous.
  Credential malformed = api::find_credential("", "", "access_token=%zz");
  CHECK(malformed.source == Source::kQuery);
  CHECK(malformed.token == "%zz");
}

TEST_CASE("api/credentials: without_token_cookie keeps every other cookie, in order") {
  CHECK(api::without_token_cookie("ssegw_token=abc") == "");
  CHECK(api::without_token_cookie("a=1; ssegw_token=abc; b=2") == "a=1; b=2");
  CHECK(api::without_token_cookie("a=1;ssegw_token=abc;b=2") == "a=1; b=2");
  CHECK(api::without_token_cookie("ssegw_token=x; ssegw_token=y; theme=dark") == "theme=dark");
  CHECK(api::without_token_cookie("x_ssegw_token=keep; ssegw_token_old=keep") ==
        "x_ssegw_token=keep; ssegw_token_old=keep");
  CHECK(api::without_token_cookie("a=ssegw_token") == "a=ssegw_token");
  CHECK(api::without_token_cookie(" ssegw_token = abc ; session=s") == "session=s");
  CHECK(api::without_token_cookie("") == "");
}

TEST_CASE("api/credentials: without_token_parameter keeps every other parameter, in order") {
  CHECK(api::without_token_parameter("/v1/chat") == "/v1/chat");
  CHECK(api::without_token_parameter("/v1/chat?access_token=abc") == "/v1/chat");
  CHECK(api::without_token_parameter("/v1/chat?a=1&access_token=abc&b=2") == "/v1/chat?a=1&b=2");
  CHECK(api::without_token_parameter("/v1/chat?access_token=x&access_token=y&b=2") ==
        "/v1/chat?b=2");
  CHECK(api::without_token_parameter("/p?access_tokens=keep&x_access_token=keep") ==
        "/p?access_tokens=keep&x_access_token=keep");
  CHECK(api::without_token_parameter("/p?access_token") == "/p");
  CHECK(api::without_token_parameter("/p?") == "/p");
}

TEST_CASE("api/credentials: bearer_token") {
  CHECK(api::bearer_token("Bearer abc") == "abc");
  CHECK(api::bearer_token("bearer  abc ") == "abc");
  CHECK(api::bearer_token("Basic abc") == "");
  CHECK(api::bearer_token("Bearer") == "");
}
