#include "upstream/sse_parser.hpp"

#include <limits>

namespace ssegw::upstream {

namespace {

constexpr unsigned char kBom[3] = {0xEF, 0xBB, 0xBF};

// Strings that grew past this for one huge event are given back on reset(), so that an idle
// connection does not keep the memory of its largest event.
constexpr size_t kKeepCapacity = 64 * 1024;

const char* find_line_end(const char* p, const char* end) {
  while (p < end && *p != '\n' && *p != '\r') ++p;
  return p;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

uint64_t parse_saturating(std::string_view digits) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  uint64_t value = 0;
  for (char c : digits) {
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (value > (kMax - d) / 10) return kMax;
    value = value * 10 + d;
  }
  return value;
}

void clear_buffer(std::string& s) {
  if (s.capacity() > kKeepCapacity) {
    std::string().swap(s);
  } else {
    s.clear();
  }
}

}  // namespace

const char* to_string(SseStatus status) {
  switch (status) {
    case SseStatus::kOk:
      return "ok";
    case SseStatus::kLineTooLong:
      return "line_too_long";
    case SseStatus::kEventTooLarge:
      return "event_too_large";
  }
  return "unknown";
}

SseParser::SseParser(const SseLimits& limits) : limits_(limits) {}

SseStatus SseParser::fail(SseStatus status) {
  status_ = status;
  clear_buffer(line_);
  clear_buffer(data_);
  return status;
}

SseStatus SseParser::feed(std::string_view bytes, Sink& sink) {
  complete_prefix_ = std::string_view::npos;
  if (status_ != SseStatus::kOk) return status_;
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  // The blank line that ends a block: right after it, or after the LF of its CRLF.
  const char* block_end = nullptr;

  // "UTF-8 decode" strips one leading BOM. Its bytes may arrive split across feeds; a prefix that
  // turns out not to be a BOM is the start of the first line.
  while (!bom_done_ && p < end) {
    if (static_cast<unsigned char>(*p) == kBom[bom_matched_]) {
      ++p;
      if (++bom_matched_ == sizeof kBom) bom_done_ = true;
    } else {
      bom_done_ = true;
      if (bom_matched_ > limits_.max_line_bytes) return fail(SseStatus::kLineTooLong);
      line_.assign(reinterpret_cast<const char*>(kBom), bom_matched_);
    }
  }

  while (p < end) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (*p == '\n') {
        if (after_blank_line_) block_end = p + 1;  // the CRLF of a block's blank line
        ++p;
        continue;
      }
    }
    const char* eol = find_line_end(p, end);
    size_t length = static_cast<size_t>(eol - p);
    if (line_.size() + length > limits_.max_line_bytes) return fail(SseStatus::kLineTooLong);
    if (eol == end) {
      line_.append(p, length);
      break;
    }
    // A line wholly inside this feed is parsed in place, without a copy.
    std::string_view line(p, length);
    if (!line_.empty()) {
      line_.append(p, length);
      line = line_;
    }
    // The CR ends the line now, so that a CR-only stream dispatches without waiting for the next
    // feed; an LF that follows it, in this feed or the next, is skipped.
    skip_lf_ = *eol == '\r';
    p = eol + 1;
    after_blank_line_ = line.empty();
    if (after_blank_line_) block_end = p;
    SseStatus status = process_line(line, sink);
    line_.clear();
    if (status != SseStatus::kOk) return fail(status);
  }
  if (block_end) complete_prefix_ = static_cast<size_t>(block_end - bytes.data());
  return SseStatus::kOk;
}

SseStatus SseParser::process_line(std::string_view line, Sink& sink) {
  if (line.empty()) {
    dispatch(sink);
    return SseStatus::kOk;
  }
  if (line.front() == ':') {
    sink.on_comment(line.substr(1));
    return SseStatus::kOk;
  }
  std::string_view name = line;
  std::string_view value;
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    name = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  block_pending_ = true;

  if (name == "data") {
    // data_ holds each value followed by LF; the event dispatches without the last LF.
    if (data_.size() + value.size() > limits_.max_event_bytes) {
      return SseStatus::kEventTooLarge;
    }
    data_.append(value);
    data_.push_back('\n');
  } else if (name == "event") {
    type_.assign(value);
  } else if (name == "id") {
    if (value.find('\0') == std::string_view::npos) {
      id_buffer_.assign(value);
      id_changed_ = true;
      block_has_id_ = true;
    }
  } else if (name == "retry") {
    if (all_digits(value)) sink.on_retry(parse_saturating(value));
  }
  return SseStatus::kOk;
}

void SseParser::dispatch(Sink& sink) {
  // The last event ID string is set even when no event follows (empty data), as the spec says.
  if (id_changed_) {
    last_event_id_.assign(id_buffer_);
    id_changed_ = false;
  }
  if (!data_.empty()) {
    SseEvent event;
    event.type = type_;
    event.data = std::string_view(data_).substr(0, data_.size() - 1);
    event.id = last_event_id_;
    event.has_id = block_has_id_;
    sink.on_event(event);
  }
  data_.clear();
  type_.clear();
  block_has_id_ = false;
  block_pending_ = false;
}

bool SseParser::finish() {
  bool discarded = status_ != SseStatus::kOk || block_pending_ ||
                   (!line_.empty() && line_.front() != ':') || (!bom_done_ && bom_matched_ > 0);
  reset(true);
  return discarded;
}

void SseParser::reset(bool keep_last_event_id) {
  status_ = SseStatus::kOk;
  clear_buffer(line_);
  clear_buffer(data_);
  type_.clear();
  if (!keep_last_event_id) last_event_id_.clear();
  id_buffer_ = last_event_id_;
  bom_matched_ = 0;
  bom_done_ = false;
  skip_lf_ = false;
  after_blank_line_ = false;
  id_changed_ = false;
  block_has_id_ = false;
  block_pending_ = false;
}

}  // namespace ssegw::upstream
