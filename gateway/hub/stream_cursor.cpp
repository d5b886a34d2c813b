#include "gateway/hub/stream_cursor.hpp"

#include <charconv>
#include <limits>

namespace ssegw::hub {
namespace {

void append_number(std::string& out, uint64_t value) {
  char digits[20];
  char* end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, end);
}

// 1 to 20 digits that fit in 64 bits, at the front of text; consumed.
bool take_number(std::string_view& text, uint64_t& out) {
  size_t n = 0;
  while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
  if (n == 0 || n > 20) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + n, out);
  if (ec != std::errc() || ptr != text.data() + n) return false;
  text.remove_prefix(n);
  return true;
}

}  // namespace

// ---- StreamCursor ---------------------------------------------------------------------------

namespace {

// One entry's text, as append_stream_cursor writes it after the '_'.
size_t write_entry(char* out, const EventId& id, uint64_t base) {
  if (id == EventId{}) {
    *out = 'x';
    return 1;
  }
  char* end = std::to_chars(out, out + 20, id.ms - base).ptr;
  if (id.seq) {
    *end++ = '-';
    end = std::to_chars(end, end + 20, id.seq).ptr;
  }
  return static_cast<size_t>(end - out);
}

}  // namespace

// 0 when every entry is "x": the first real one then writes everything again.
uint64_t StreamCursor::base() const {
  uint64_t base = std::numeric_limits<uint64_t>::max();
  for (const EventId& id : positions_)
    if (id != EventId{} && id.ms < base) base = id.ms;
  return base == std::numeric_limits<uint64_t>::max() ? 0 : base;
}

void StreamCursor::assign(std::vector<EventId> positions) {
  positions_ = std::move(positions);
  stale_ = true;
}

void StreamCursor::set(size_t i, const EventId& id) {
  if (positions_[i] == id) return;
  positions_[i] = id;
  if (stale_) return;
  // base stays while it is at or below every entry and this one is within a day of it: then
  // only this entry changes. Keeping base the smallest would rewrite every entry each time the
  // channel furthest behind moves, which with channels taking turns is every event.
  if (id != EventId{} && (id.ms < base_ || id.ms - base_ > kMaxDeltaMs)) {
    stale_ = true;
    return;
  }
  char entry[42];
  size_t length = write_entry(entry, id, base_);
  size_t start = starts_[i];
  size_t end = i + 1 < starts_.size() ? starts_[i + 1] - 1 : text_.size();
  text_.replace(start, end - start, entry, length);
  int64_t shift = static_cast<int64_t>(length) - static_cast<int64_t>(end - start);
  for (size_t k = i + 1; k < starts_.size(); ++k)
    starts_[k] = static_cast<uint32_t>(static_cast<int64_t>(starts_[k]) + shift);
}

void StreamCursor::write_all() {
  base_ = base();
  starts_.resize(positions_.size());
  text_.resize(max_stream_cursor_length(positions_.size()));
  char* out = text_.data();
  char* p = std::to_chars(out, out + 20, base_).ptr;
  for (size_t i = 0; i < positions_.size(); ++i) {
    *p++ = '_';
    starts_[i] = static_cast<uint32_t>(p - out);
    p += write_entry(p, positions_[i], base_);
  }
  text_.resize(static_cast<size_t>(p - out));
  stale_ = false;
}

std::string_view StreamCursor::text() {
  if (stale_) write_all();
  return text_;
}

void append_stream_cursor(std::string& out, const EventId* positions, size_t count) {
  uint64_t base = std::numeric_limits<uint64_t>::max();
  for (size_t i = 0; i < count; ++i)
    if (positions[i] != EventId{} && positions[i].ms < base) base = positions[i].ms;
  if (base == std::numeric_limits<uint64_t>::max()) base = 0;
  append_number(out, base);
  for (size_t i = 0; i < count; ++i) {
    out += '_';
    const EventId& id = positions[i];
    if (id == EventId{}) {
      out += 'x';
      continue;
    }
    append_number(out, id.ms - base);
    if (id.seq) {
      out += '-';
      append_number(out, id.seq);
    }
  }
}

std::optional<std::vector<EventId>> parse_stream_cursor(std::string_view text, size_t count) {
  if (count == 0 || text.size() > max_stream_cursor_length(count)) return std::nullopt;
  uint64_t base = 0;
  if (!take_number(text, base)) return std::nullopt;
  std::vector<EventId> positions;
  positions.reserve(count);
  while (!text.empty()) {
    if (text.front() != '_' || positions.size() == count) return std::nullopt;
    text.remove_prefix(1);
    EventId id;
    if (!text.empty() && text.front() == 'x') {
      text.remove_prefix(1);
    } else {
      uint64_t delta = 0;
      if (!take_number(text, delta) || delta > std::numeric_limits<uint64_t>::max() - base)
        return std::nullopt;
      id.ms = base + delta;
      if (!text.empty() && text.front() == '-') {
        text.remove_prefix(1);
        if (!take_number(text, id.seq)) return std::nullopt;
      }
      // 0-0 is written "x" and no event has it: a 0-0 spelled out is not a cursor's.
      if (id == EventId{}) return std::nullopt;
    }
    positions.push_back(id);
  }
  if (positions.size() != count) return std::nullopt;
  return positions;
}

}  // namespace ssegw::hub
