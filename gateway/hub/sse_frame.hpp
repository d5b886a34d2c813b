// Serialises events into SSE wire bytes (docs/protocol.md#event-format), once per event.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "gateway/base/frame.hpp"
#include "gateway/hub/event_id.hpp"

namespace ssegw::hub {

// "id: <id>\n" ["event: <type>\n"] "data: <line>\n"... "\n". CR, LF and CRLF in data all end a
// line; the type "message" (the SSE default) and an empty type write no event: line.
base::FrameRef make_event_frame(const EventId& id, std::string_view type, std::string_view data);

// The lines of an event frame made here that a multi-channel stream writes its own way: the id
// ("" when none), the type ("" for the default) and where the rest (the data lines and the blank
// line) starts. Reads only the frame's first two lines.
struct FrameHead {
  std::string_view id;
  std::string_view type;
  size_t rest = 0;
};
FrameHead parse_frame_head(std::string_view raw);

// The same without an id line (for the gap notice, which is not part of the channel's stream).
base::FrameRef make_unnumbered_event_frame(std::string_view type, std::string_view data);

// "retry: <ms>\n\n": the first bytes of every stream.
base::FrameRef make_retry_frame(uint64_t retry_ms);

// ":\n\n": the heartbeat comment.
base::FrameRef make_heartbeat_frame();

// The gap notice: data {"last_event_id":"<requested>","first_available":"<id>"|null}.
base::FrameRef make_gap_frame(std::string_view requested, const std::optional<EventId>& first);

}  // namespace ssegw::hub
