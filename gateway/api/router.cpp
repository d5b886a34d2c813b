#include "gateway/api/router.hpp"

#include "gateway/http/request.hpp"
#include "gateway/hub/generation.hpp"

namespace ssegw::api {
namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

bool valid_channel_name(std::string_view name) {
  if (name.empty() || name.size() > 200) return false;
  for (char c : name)
    if (!is_alnum(c) && c != '_' && c != '.' && c != ':' && c != '@' && c != '~' && c != '-')
      return false;
  return true;
}

bool valid_event_type(std::string_view type) {
  if (type.empty() || type.size() > 64) return false;
  for (char c : type)
    if (!is_alnum(c) && c != '_' && c != '.' && c != ':' && c != '-') return false;
  return true;
}

ChannelList parse_channel_list(std::string_view query, size_t max) {
  ChannelList list;
  std::string name;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) != "channel") continue;  // last_event_id, access_token, ...
    std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (!http::percent_decode(raw, name) || !valid_channel_name(name)) {
      list.error = ChannelList::Error::kInvalid;
      return list;
    }
    if (list.names.size() == max) {
      list.error = ChannelList::Error::kTooMany;
      return list;
    }
    // Quadratic, but over at most max (config::kMaxChannelsPerStream) short names.
    for (const std::string& seen : list.names) {
      if (seen != name) continue;
      list.error = ChannelList::Error::kDuplicate;
      list.bad = name;
      return list;
    }
    list.names.push_back(name);
  }
  if (list.names.empty()) list.error = ChannelList::Error::kMissing;
  return list;
}

RouteMatch match_route(std::string_view path) {
  RouteMatch match;
  if (path == "/healthz") {
    match.route = Route::kHealthz;
  } else if (path == "/readyz") {
    match.route = Route::kReadyz;
  } else if (path == "/metrics") {
    match.route = Route::kMetrics;
  } else if (path == "/v1/events") {
    match.route = Route::kEvents;
  } else if (path == "/") {
    match.route = Route::kDemo;
  } else if (path.starts_with("/v1/channels/")) {
    std::string_view rest = path.substr(13);
    std::string_view name = rest;
    Route route = Route::kChannelInfo;
    if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
      if (rest.substr(slash) != "/events") return match;
      name = rest.substr(0, slash);
      route = Route::kChannelEvents;
    }
    match.route = route;
    if (name.empty()) {
      match.invalid_name = true;
      return match;
    }
    // Names are matched after percent-decoding, so "%41" is "A", and "%2F" can never sneak a
    // slash into a name: it fails validation like any other character outside the set.
    if (!http::percent_decode(name, match.channel) || !valid_channel_name(match.channel)) {
      match.invalid_name = true;
      match.channel.clear();
    }
  } else if (path.starts_with("/v1/generations/")) {
    std::string_view name = path.substr(16);
    if (name.find('/') != std::string_view::npos) return match;  // no sub-resources
    match.route = Route::kGeneration;
    // Only the names the gateway makes ("gen-" and 32 lower-case hex digits) name a generation.
    if (!http::percent_decode(name, match.channel) || !hub::is_generation_name(match.channel)) {
      match.invalid_name = true;
      match.channel.clear();
    }
  }
  return match;
}

const char* route_label(Route route) {
  switch (route) {
    case Route::kChannelEvents:
      return "/v1/channels/{channel}/events";
    case Route::kChannelInfo:
      return "/v1/channels/{channel}";
    case Route::kHealthz:
      return "/healthz";
    case Route::kReadyz:
      return "/readyz";
    case Route::kMetrics:
      return "/metrics";
    case Route::kDemo:
      return "/";
    case Route::kGeneration:
      return "/v1/generations/{gen}";
    case Route::kEvents:
      return "/v1/events";
    case Route::kNotFound:
      break;
  }
  return "unmatched";
}

const char* allowed_methods(Route route) {
  switch (route) {
    case Route::kChannelEvents:
      return "GET, POST, OPTIONS";
    case Route::kGeneration:
      return "DELETE, OPTIONS";
    case Route::kNotFound:
      return "";
    default:
      return "GET, OPTIONS";
  }
}

}  // namespace ssegw::api
