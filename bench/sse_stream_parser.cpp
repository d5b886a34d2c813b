#include "bench/sse_stream_parser.hpp"

#include <algorithm>
#include <cstring>

namespace bench {

namespace {

const char* find_eol(const char* p, const char* end) {
  while (p < end && *p != '\n' && *p != '\r') ++p;
  return p;
}

}  // namespace

template <size_t kPrefix>
void BasicSseStreamParser<kPrefix>::feed(const char* p, size_t len) {
  const char* end = p + len;
  while (p < end) {
    char c = *p;
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') {  // the LF of a CRLF whose CR ended the previous line
        ++p;
        continue;
      }
    }
    switch (state_) {
      case State::LineStart:
        if (c == '\r' || c == '\n') {
          dispatch();
          after_cr_ = c == '\r';
          ++p;
          continue;
        }
        if (c == ':') {
          ++comments_;
          state_ = State::Ignore;
          ++p;
          continue;
        }
        name_len_ = 0;
        state_ = State::Name;
        continue;  // the same byte starts the name

      case State::Name:
        if (c == ':' || c == '\r' || c == '\n') {
          std::string_view name(name_, std::min<size_t>(name_len_, sizeof name_));
          bool exact = name_len_ <= sizeof name_;
          field_ = !exact            ? Field::Unknown
                   : name == "data"  ? Field::Data
                   : name == "id"    ? Field::Id
                   : name == "event" ? Field::Event
                                     : Field::Unknown;
          value_len_ = 0;
          if (field_ == Field::Data) {
            if (has_data_) {  // lines of one event's data join with LF
              ++data_bytes_;
              if (prefix_len_ < kDataPrefix) prefix_[prefix_len_++] = '\n';
            }
            has_data_ = true;
          }
          ++p;
          if (c == ':') {
            state_ = State::SkipSpace;
          } else {
            end_line();
            after_cr_ = c == '\r';
          }
          continue;
        }
        if (name_len_ < sizeof name_) name_[name_len_] = c;
        if (name_len_ <= sizeof name_) ++name_len_;
        ++p;
        continue;

      case State::SkipSpace:
        state_ = State::Value;
        if (c == ' ') ++p;
        continue;

      case State::Value: {
        const char* eol = find_eol(p, end);
        size_t n = static_cast<size_t>(eol - p);
        if (field_ == Field::Data) {
          data_bytes_ += n;
          size_t take = std::min(n, kDataPrefix - prefix_len_);
          std::memcpy(prefix_ + prefix_len_, p, take);
          prefix_len_ += static_cast<uint16_t>(take);
        } else if (field_ != Field::Unknown) {
          size_t take = std::min(n, kIdMax - value_len_);
          std::memcpy(value_ + value_len_, p, take);
          value_len_ += static_cast<uint16_t>(take);
        }
        p = eol;
        if (p < end) {
          after_cr_ = *p == '\r';
          ++p;
          end_line();
        }
        continue;
      }

      case State::Ignore: {
        p = find_eol(p, end);
        if (p < end) {
          after_cr_ = *p == '\r';
          ++p;
          state_ = State::LineStart;
        }
        continue;
      }
    }
  }
}

template <size_t kPrefix>
void BasicSseStreamParser<kPrefix>::end_line() {
  if (field_ == Field::Id) {
    // An id containing NUL is ignored (WHATWG); the others replace the last event id.
    if (std::memchr(value_, '\0', value_len_) == nullptr) {
      id_len_ = static_cast<uint8_t>(std::min<size_t>(value_len_, kIdMax));
      std::memcpy(id_, value_, id_len_);
    }
  } else if (field_ == Field::Event) {
    type_len_ = static_cast<uint8_t>(std::min<size_t>(value_len_, kTypeMax));
    std::memcpy(type_, value_, type_len_);
  }
  field_ = Field::Unknown;
  value_len_ = 0;
  state_ = State::LineStart;
}

template <size_t kPrefix>
void BasicSseStreamParser<kPrefix>::dispatch() {
  if (has_data_) {
    SseEvent event;
    event.type = std::string_view(type_, type_len_);
    event.id = std::string_view(id_, id_len_);
    event.data_prefix = std::string_view(prefix_, prefix_len_);
    event.data_bytes = data_bytes_;
    on_event_(context_, event);
  }
  has_data_ = false;
  data_bytes_ = 0;
  prefix_len_ = 0;
  type_len_ = 0;
}

template class BasicSseStreamParser<96>;
template class BasicSseStreamParser<256>;

}  // namespace bench
