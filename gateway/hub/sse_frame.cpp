#include "gateway/hub/sse_frame.hpp"

#include <cstring>
#include <string>

#include "gateway/base/json.hpp"

namespace ssegw::hub {
namespace {

// Calls line(begin, length) for each line of data, splitting on CR, LF and CRLF. An empty payload
// is one empty line, so that the event still dispatches on the client.
template <typename F>
void for_each_line(std::string_view data, F&& line) {
  size_t start = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    char c = data[i];
    if (c != '\n' && c != '\r') continue;
    line(data.substr(start, i - start));
    if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
    start = i + 1;
  }
  line(data.substr(start));
}

bool is_default_type(std::string_view type) {
  return type.empty() || type == "message";
}

base::FrameRef make_frame(const EventId* id, std::string_view type, std::string_view data) {
  static constexpr std::string_view kId = "id: ", kEvent = "event: ", kData = "data: ";
  char id_text[EventId::kMaxLength];
  size_t id_len = id ? id->format(id_text) : 0;

  size_t size = 1;  // the blank line that ends the event
  if (id) size += kId.size() + id_len + 1;
  if (!is_default_type(type)) size += kEvent.size() + type.size() + 1;
  for_each_line(data, [&](std::string_view l) { size += kData.size() + l.size() + 1; });

  return base::Frame::make(size, [&](char* p) {
    auto put = [&p](std::string_view s) {
      std::memcpy(p, s.data(), s.size());
      p += s.size();
    };
    if (id) {
      put(kId);
      put({id_text, id_len});
      *p++ = '\n';
    }
    if (!is_default_type(type)) {
      put(kEvent);
      put(type);
      *p++ = '\n';
    }
    for_each_line(data, [&](std::string_view l) {
      put(kData);
      put(l);
      *p++ = '\n';
    });
    *p++ = '\n';
  });
}

}  // namespace

base::FrameRef make_event_frame(const EventId& id, std::string_view type, std::string_view data) {
  return make_frame(&id, type, data);
}

FrameHead parse_frame_head(std::string_view raw) {
  FrameHead head;
  // The line after `field`, if raw continues with it at head.rest.
  auto line = [&](std::string_view field, std::string_view& value) {
    std::string_view at = raw.substr(head.rest);
    if (!at.starts_with(field)) return;
    size_t end = at.find('\n');
    if (end == std::string_view::npos) return;
    value = at.substr(field.size(), end - field.size());
    head.rest += end + 1;
  };
  line("id: ", head.id);
  line("event: ", head.type);
  return head;
}

base::FrameRef make_unnumbered_event_frame(std::string_view type, std::string_view data) {
  return make_frame(nullptr, type, data);
}

base::FrameRef make_retry_frame(uint64_t retry_ms) {
  return base::Frame::copy_of("retry: " + std::to_string(retry_ms) + "\n\n");
}

base::FrameRef make_heartbeat_frame() {
  return base::Frame::copy_of(":\n\n");
}

base::FrameRef make_gap_frame(std::string_view requested, const std::optional<EventId>& first) {
  std::string data = "{\"last_event_id\":";
  base::append_json_string(data, requested);
  data += ",\"first_available\":";
  if (first)
    base::append_json_string(data, first->str());
  else
    data += "null";
  data += '}';
  return make_unnumbered_event_frame("gap", data);
}

}  // namespace ssegw::hub
