// Maps a request path to a route (docs/protocol.md) and validates the names inside it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw::api {

enum class Route {
  kNotFound,
  kChannelEvents,  // /v1/channels/{channel}/events: GET subscribes, POST publishes
  kChannelInfo,    // /v1/channels/{channel}
  kHealthz,
  kReadyz,
  kMetrics,
  kDemo,        // GET /: the chat page, when demo.enabled
  kGeneration,  // /v1/generations/{gen}: DELETE cancels a running generation
  kEvents,      // /v1/events?channel=a&channel=b: GET subscribes to many channels at once
};

struct RouteMatch {
  Route route = Route::kNotFound;
  std::string channel;        // decoded channel name, for channel and generation routes
  bool invalid_name = false;  // the path's name segment is not a valid channel (or generation)
};

RouteMatch match_route(std::string_view path);

// The route template used as the metrics label, e.g. "/v1/channels/{channel}/events".
const char* route_label(Route route);
// The Allow header value of a route.
const char* allowed_methods(Route route);

// The channel= parameters of a multi-channel stream's query, in order, decoded and checked.
struct ChannelList {
  enum class Error {
    kNone,
    kMissing,    // no channel= at all
    kTooMany,    // more than max
    kDuplicate,  // `bad` is named twice
    kInvalid,    // a name (or its percent-encoding) is not a valid channel name
  };
  Error error = Error::kNone;
  std::vector<std::string> names;
  std::string bad;  // kDuplicate: the name
};
// Stops at the first error: never holds more than max names, whatever the query says.
ChannelList parse_channel_list(std::string_view query, size_t max);

// 1 to 200 characters of [A-Za-z0-9_.:@~-].
inline constexpr const char* kChannelNameRule =
    "channel names are 1 to 200 characters of [A-Za-z0-9_.:@~-]";
bool valid_channel_name(std::string_view name);
// 1 to 64 characters of [A-Za-z0-9_.:-].
bool valid_event_type(std::string_view type);

}  // namespace ssegw::api
