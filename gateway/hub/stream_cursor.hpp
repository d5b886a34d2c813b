// The resume cursor of a multi-channel stream (docs/protocol.md "Multi-channel streams"): the
// last event id of each of the stream's channels, in the order of its URL, as one SSE id.
//
//   cursor = base 1*("_" entry)
//   base   = 1*20DIGIT                   at or below the ms of every entry that is not "x"
//   entry  = "x" / delta ["-" seq]       "x": nothing of this channel yet (id 0-0)
//   delta  = 1*20DIGIT                   the id's ms minus base
//   seq    = 1*20DIGIT                   the id's sequence, left out when 0
//
// Channels named by a reconnect's URL come in the same order, so an entry needs no name; ids of
// channels that publish at about the same time share most of their digits, which base takes out.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/hub/event_id.hpp"

namespace ssegw::hub {

// Appends the cursor of positions[0..count), with the smallest base, to out (no allocation once
// out has the room).
void append_stream_cursor(std::string& out, const EventId* positions, size_t count);

// The positions a cursor names: nullopt unless it follows the grammar exactly and has `count`
// entries.
std::optional<std::vector<EventId>> parse_stream_cursor(std::string_view text, size_t count);

// A stream's cursor, kept written for the next event's id: an event moves one entry, and only
// that entry is written again. Its base is the smallest entry's millisecond when the text is
// written from scratch, and stays while every entry is at or above it and the moved one within
// a day of it (so an entry has at most 8 digits of delta); past that, all is written again. The
// positions start at 0-0 ("x").
class StreamCursor {
 public:
  explicit StreamCursor(size_t count) : positions_(count) {}

  size_t size() const { return positions_.size(); }
  const EventId& operator[](size_t i) const { return positions_[i]; }
  void set(size_t i, const EventId& id);
  void assign(std::vector<EventId> positions);
  // The cursor's text: append_stream_cursor of the positions.
  std::string_view text();

 private:
  static constexpr uint64_t kMaxDeltaMs = 86'400'000;

  uint64_t base() const;
  void write_all();

  std::vector<EventId> positions_;
  std::string text_;
  std::vector<uint32_t> starts_;  // where entry i's text starts in text_ (after its '_')
  uint64_t base_ = 0;
  bool stale_ = true;  // text_ must be written again from scratch
};

// The longest cursor of `count` channels.
constexpr size_t max_stream_cursor_length(size_t count) {
  return 20 + count * (1 + 20 + 1 + 20);
}

}  // namespace ssegw::hub
