#include "upstream/include_usage.hpp"

#include "gateway/base/ascii.hpp"
#include "upstream/forwarding.hpp"
#include "upstream/usage_meter.hpp"

namespace ssegw::upstream {
namespace {

constexpr std::string_view kUsageKey = "\"usage\"";
constexpr std::string_view kNullUsage[] = {",\"usage\":null", "\"usage\":null,",
                                           ", \"usage\": null", "\"usage\": null, "};

}  // namespace

bool inject_include_usage(std::string_view route_path, std::string& body) {
  if (!route_path.ends_with("/chat/completions")) return false;
  if (json_member(body, "stream") != "true") return false;  // the request's own, not a nested one
  std::string_view options = json_member(body, "stream_options");
  if (options.empty()) {
    size_t open = body.find('{');  // json_member found the object: its first byte is this brace
    size_t next = body.find_first_not_of(" \t\r\n", open + 1);
    bool empty_object = next != std::string::npos && body[next] == '}';
    body.insert(open + 1, empty_object ? R"("stream_options":{"include_usage":true})"
                                       : R"("stream_options":{"include_usage":true},)");
    return true;
  }
  size_t at = static_cast<size_t>(options.data() - body.data());
  if (options == "null") {
    body.replace(at, options.size(), R"({"include_usage":true})");
    return true;
  }
  if (options.front() != '{') return false;
  std::string_view include = json_member(options, "include_usage");
  if (include == "true") return false;  // the client asked: it gets exactly what it asked for
  if (include.empty()) {
    size_t next = body.find_first_not_of(" \t\r\n", at + 1);
    bool empty_object = next != std::string::npos && body[next] == '}';
    body.insert(at + 1, empty_object ? R"("include_usage":true)" : R"("include_usage":true,)");
    return true;
  }
  body.replace(static_cast<size_t>(include.data() - body.data()), include.size(), "true");
  return true;
}

namespace {

// The usage-only chunk the upstream adds at the end.
bool usage_only(std::string_view data) {
  return base::find_text(data, "\"choices\":[]") != std::string_view::npos &&
         find_json_number(data, "prompt_tokens").has_value();
}

// Where the added null usage sits in `data`, and its length; npos when it has none.
// `first`: where "usage" first occurs, or npos. The first form of kNullUsage that occurs wins, at
// its first occurrence (each form holds "usage": its occurrences are among those of "usage").
size_t null_usage(std::string_view data, size_t first, size_t& length) {
  for (std::string_view form : kNullUsage) {
    size_t key = form.find(kUsageKey);  // where "usage" sits in the form
    for (size_t usage = first; usage != std::string_view::npos;
         usage = base::find_text(data, kUsageKey, usage + 1)) {
      if (usage < key || data.substr(usage - key, form.size()) != form) continue;
      length = form.size();
      return usage - key;
    }
  }
  return std::string_view::npos;
}

}  // namespace

bool strip_injected_usage(std::string_view data, std::string& out) {
  out.clear();
  size_t usage = base::find_text(data, kUsageKey);
  if (usage == std::string_view::npos) return true;
  if (usage_only(data)) return false;
  size_t length = 0;
  size_t pos = null_usage(data, usage, length);
  if (pos == std::string_view::npos) return true;
  out.append(data.substr(0, pos));
  out.append(data.substr(pos + length));
  return true;
}

void strip_injected_usage_events(std::string_view events, std::string& out) {
  while (size_t end = sse_event_end(events)) {
    std::string_view event = events.substr(0, end);
    events.remove_prefix(end);
    // The usage sits in a data line; the event's text as a whole is searched, which is the same
    // thing for one-line data (all OpenAI sends). Appended straight to `out`: no copy per event.
    size_t usage = base::find_text(event, kUsageKey);
    if (usage == std::string_view::npos) {
      out.append(event);
      continue;
    }
    if (usage_only(event)) continue;
    size_t length = 0;
    size_t pos = null_usage(event, usage, length);
    if (pos == std::string_view::npos) {
      out.append(event);
      continue;
    }
    out.append(event.substr(0, pos));
    out.append(event.substr(pos + length));
  }
  out.append(events);
}

}  // namespace ssegw::upstream
