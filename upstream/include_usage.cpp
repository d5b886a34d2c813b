#include "upstream/include_usage.hpp"

#include "upstream/forwarding.hpp"
#include "upstream/usage_meter.hpp"

namespace ssegw::upstream {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// "key" set to true at any depth, whitespace allowed around the colon.
bool has_true_flag(std::string_view json, std::string_view quoted_key) {
  size_t from = 0;
  while (true) {
    size_t pos = json.find(quoted_key, from);
    if (pos == std::string_view::npos) return false;
    size_t i = pos + quoted_key.size();
    from = i;
    while (i < json.size() && is_space(json[i])) ++i;
    if (i >= json.size() || json[i] != ':') continue;
    ++i;
    while (i < json.size() && is_space(json[i])) ++i;
    if (json.substr(i).starts_with("true")) return true;
  }
}

constexpr std::string_view kNullUsage[] = {",\"usage\":null", "\"usage\":null,",
                                           ", \"usage\": null", "\"usage\": null, "};

}  // namespace

bool inject_include_usage(std::string_view route_path, std::string& body) {
  if (!route_path.ends_with("/chat/completions")) return false;
  size_t open = 0;
  while (open < body.size() && is_space(body[open])) ++open;
  if (open >= body.size() || body[open] != '{') return false;
  if (!has_true_flag(body, "\"stream\"")) return false;
  if (body.find("\"stream_options\"") != std::string::npos) return false;
  size_t next = open + 1;
  while (next < body.size() && is_space(body[next])) ++next;
  bool empty_object = next < body.size() && body[next] == '}';
  body.insert(open + 1, empty_object ? R"("stream_options":{"include_usage":true})"
                                     : R"("stream_options":{"include_usage":true},)");
  return true;
}

bool strip_injected_usage(std::string_view data, std::string& out) {
  out.clear();
  if (data.find("\"usage\"") == std::string_view::npos) return true;
  if (data.find("\"choices\":[]") != std::string_view::npos &&
      find_json_number(data, "prompt_tokens").has_value())
    return false;
  for (std::string_view null_usage : kNullUsage) {
    size_t pos = data.find(null_usage);
    if (pos == std::string_view::npos) continue;
    out.reserve(data.size());
    out.append(data.substr(0, pos));
    out.append(data.substr(pos + null_usage.size()));
    return true;
  }
  return true;
}

void strip_injected_usage_events(std::string_view events, std::string& out) {
  std::string stripped;
  while (size_t end = sse_event_end(events)) {
    std::string_view event = events.substr(0, end);
    events.remove_prefix(end);
    // The usage sits in a data line; strip_injected_usage() works on the event's text as a
    // whole, which is the same thing for one-line data (all OpenAI sends).
    if (!strip_injected_usage(event, stripped)) continue;
    out.append(stripped.empty() ? event : std::string_view(stripped));
  }
  out.append(events);
}

}  // namespace ssegw::upstream
