#include "gateway/api/router.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace ssegw;

using api::match_route;
using api::Route;
using api::RouteMatch;

TEST_CASE("api/router: fixed routes") {
  CHECK(match_route("/healthz").route == Route::kHealthz);
  CHECK(match_route("/readyz").route == Route::kReadyz);
  CHECK(match_route("/metrics").route == Route::kMetrics);
  CHECK(match_route("/").route == Route::kDemo);
  for (std::string_view path : {"", "/healthz/", "/HEALTHZ", "/healthzz", "/metrics/x", "/v1",
                                "/v1/channels", "/v2/channels/a", "//healthz"}) {
    CAPTURE(path);
    RouteMatch m = match_route(path);
    CHECK(m.route == Route::kNotFound);
    CHECK_FALSE(m.invalid_name);
    CHECK(m.channel.empty());
  }
}

TEST_CASE("api/router: channel routes") {
  RouteMatch m = match_route("/v1/channels/abc");
  CHECK(m.route == Route::kChannelInfo);
  CHECK(m.channel == "abc");
  CHECK_FALSE(m.invalid_name);

  m = match_route("/v1/channels/abc/events");
  CHECK(m.route == Route::kChannelEvents);
  CHECK(m.channel == "abc");
  CHECK_FALSE(m.invalid_name);

  m = match_route("/v1/channels/Az09_.:@~-/events");
  CHECK(m.route == Route::kChannelEvents);
  CHECK(m.channel == "Az09_.:@~-");
  CHECK_FALSE(m.invalid_name);

  for (std::string_view path :
       {"/v1/channels/abc/", "/v1/channels/abc/event", "/v1/channels/abc/events/",
        "/v1/channels/abc/eventsx", "/v1/channels/a/b/events", "/v1/channels/abc/other"}) {
    CAPTURE(path);
    RouteMatch nf = match_route(path);
    CHECK(nf.route == Route::kNotFound);
    CHECK(nf.channel.empty());
  }
  // An empty name is a bad name (400), not an unknown path.
  RouteMatch empty_info = match_route("/v1/channels/");
  CHECK(empty_info.route == Route::kChannelInfo);
  CHECK(empty_info.invalid_name);
  RouteMatch empty_events = match_route("/v1/channels//events");
  CHECK(empty_events.route == Route::kChannelEvents);
  CHECK(empty_events.invalid_name);
}

TEST_CASE("api/router: channel names are percent-decoded") {
  RouteMatch m = match_route("/v1/channels/a%41b/events");
  CHECK(m.route == Route::kChannelEvents);
  CHECK(m.channel == "aAb");
  CHECK_FALSE(m.invalid_name);

  m = match_route("/v1/channels/%7Euser%40host%3A1");
  CHECK(m.route == Route::kChannelInfo);
  CHECK(m.channel == "~user@host:1");
  CHECK_FALSE(m.invalid_name);
}

TEST_CASE("api/router: invalid channel names") {
  for (std::string_view name : {"a%20b", "a b", "%2F", "a%2Fb", "a%2fb", "%", "%zz", "a%4", "a+b",
                                "%00", "caf%C3%A9", "a,b", "a%2F..%2Fb", "a\"b", "a#b"}) {
    CAPTURE(name);
    for (const char* suffix : {"", "/events"}) {
      RouteMatch m = match_route("/v1/channels/" + std::string(name) + suffix);
      CHECK(m.route == (*suffix ? Route::kChannelEvents : Route::kChannelInfo));
      CHECK(m.invalid_name);
      CHECK(m.channel.empty());
    }
  }
}

TEST_CASE("api/router: channel name length") {
  RouteMatch m = match_route("/v1/channels/" + std::string(200, 'a') + "/events");
  CHECK_FALSE(m.invalid_name);
  CHECK(m.channel == std::string(200, 'a'));

  m = match_route("/v1/channels/" + std::string(201, 'a') + "/events");
  CHECK(m.route == Route::kChannelEvents);
  CHECK(m.invalid_name);
  CHECK(m.channel.empty());

  // The limit applies to the decoded name: 200 escapes decode to 200 characters.
  std::string escaped;
  for (int i = 0; i < 200; ++i) escaped += "%41";
  m = match_route("/v1/channels/" + escaped);
  CHECK_FALSE(m.invalid_name);
  CHECK(m.channel == std::string(200, 'A'));
}

TEST_CASE("api/router: valid_channel_name") {
  CHECK(api::valid_channel_name("a"));
  CHECK(api::valid_channel_name("abcXYZ019_.:@~-"));
  CHECK(api::valid_channel_name(std::string(200, 'z')));
  CHECK_FALSE(api::valid_channel_name(""));
  CHECK_FALSE(api::valid_channel_name(std::string(201, 'z')));
  for (std::string_view bad : {"a b", "a/b", "a%b", "a+b", "a?b", "a\nb", "\xc3\xa9", "a*", "a!"}) {
    CAPTURE(bad);
    CHECK_FALSE(api::valid_channel_name(bad));
  }
  CHECK_FALSE(api::valid_channel_name(std::string_view("a\0b", 3)));
}

TEST_CASE("api/router: valid_event_type") {
  CHECK(api::valid_event_type("token"));
  CHECK(api::valid_event_type("a.b:c-d_E9"));
  CHECK(api::valid_event_type("message"));
  CHECK(api::valid_event_type(std::string(64, 't')));
  CHECK_FALSE(api::valid_event_type(std::string(65, 't')));
  CHECK_FALSE(api::valid_event_type(""));
  for (std::string_view bad : {"a b", "a@b", "a~b", "a/b", "a\nb", "a\rb", "a:b\n", "\xc3\xa9"}) {
    CAPTURE(bad);
    CHECK_FALSE(api::valid_event_type(bad));
  }
}

TEST_CASE("api/router: labels and allowed methods") {
  CHECK(std::string(api::route_label(Route::kChannelEvents)) == "/v1/channels/{channel}/events");
  CHECK(std::string(api::route_label(Route::kChannelInfo)) == "/v1/channels/{channel}");
  CHECK(std::string(api::route_label(Route::kHealthz)) == "/healthz");
  CHECK(std::string(api::route_label(Route::kReadyz)) == "/readyz");
  CHECK(std::string(api::route_label(Route::kMetrics)) == "/metrics");
  CHECK(std::string(api::route_label(Route::kNotFound)) == "unmatched");

  CHECK(std::string(api::allowed_methods(Route::kChannelEvents)) == "GET, POST, OPTIONS");
  CHECK(std::string(api::allowed_methods(Route::kChannelInfo)) == "GET, OPTIONS");
  CHECK(std::string(api::allowed_methods(Route::kHealthz)) == "GET, OPTIONS");
  CHECK(std::string(api::allowed_methods(Route::kMetrics)) == "GET, OPTIONS");
  CHECK(std::string(api::allowed_methods(Route::kNotFound)) == "");
}

TEST_CASE("api/router: the generation route takes generation names only") {
  const std::string gen = "gen-0123456789abcdef0123456789abcdef";
  RouteMatch m = match_route("/v1/generations/" + gen);
  CHECK(m.route == Route::kGeneration);
  CHECK(m.channel == gen);
  CHECK_FALSE(m.invalid_name);
  // Percent-decoded like channel names: "%67" is "g".
  m = match_route("/v1/generations/%67en-0123456789abcdef0123456789abcdef");
  CHECK(m.route == Route::kGeneration);
  CHECK(m.channel == gen);
  // Anything else in the name segment names no generation (the policy answers 404).
  for (std::string_view name :
       {"", "gen-", "gen-0123456789abcdef0123456789abcde", "gen-0123456789abcdef0123456789abcdef0",
        "gen-0123456789ABCDEF0123456789abcdef", "GEN-0123456789abcdef0123456789abcdef", "chat.1",
        "gen-0123456789abcdef0123456789abcdeg", "gen-0123456789abcdef0123456789abcde%", "%zz"}) {
    CAPTURE(name);
    RouteMatch bad = match_route("/v1/generations/" + std::string(name));
    CHECK(bad.route == Route::kGeneration);
    CHECK(bad.invalid_name);
    CHECK(bad.channel.empty());
  }
  // No sub-resources, and the collection itself is no route.
  for (std::string path : {"/v1/generations/" + gen + "/", "/v1/generations/" + gen + "/events",
                           std::string("/v1/generations"), std::string("/v1/generations/a/b")}) {
    CAPTURE(path);
    CHECK(match_route(path).route == Route::kNotFound);
  }
  CHECK(std::string(api::route_label(Route::kGeneration)) == "/v1/generations/{gen}");
  CHECK(std::string(api::allowed_methods(Route::kGeneration)) == "DELETE, OPTIONS");
}

TEST_CASE("api/router: /v1/events and its list of channels") {
  CHECK(match_route("/v1/events").route == Route::kEvents);
  CHECK(match_route("/v1/events/").route == Route::kNotFound);
  CHECK(std::string(api::route_label(Route::kEvents)) == "/v1/events");
  CHECK(std::string(api::allowed_methods(Route::kEvents)) == "GET, OPTIONS");

  using Error = api::ChannelList::Error;
  auto list = [](std::string_view query, size_t max = 4) {
    return api::parse_channel_list(query, max);
  };
  CHECK(list("channel=a&channel=b%2Ec&x=channel&channel=%7E").names ==
        std::vector<std::string>{"a", "b.c", "~"});
  CHECK(list("channel=a&channel=b").error == Error::kNone);
  CHECK(list("").error == Error::kMissing);
  CHECK(list("channels=a&Channel=b&x").error == Error::kMissing);
  CHECK(list("channel=a&channel=b&channel=c&channel=d&channel=e").error == Error::kTooMany);
  // A bad name is reported before the count: the first error in query order wins.
  CHECK(list("channel=a&channel=b&channel=c&channel=d&channel=%zz").error == Error::kInvalid);
  api::ChannelList twice = list("channel=a&channel=b&channel=a");
  CHECK(twice.error == Error::kDuplicate);
  CHECK(twice.bad == "a");
  CHECK(twice.names.size() == 2);  // stopped there
  for (std::string_view bad : {"channel", "channel=", "channel=a%2Fb", "channel=a b", "channel=%",
                               "channel=a&channel=%G1"}) {
    CAPTURE(bad);
    CHECK(list(bad).error == Error::kInvalid);
  }
  CHECK(list("channel=" + std::string(200, 'x')).error == Error::kNone);
  CHECK(list("channel=" + std::string(201, 'x')).error == Error::kInvalid);
}
