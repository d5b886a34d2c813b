// Turns a de-chunked text/event-stream into events, a byte range at a time, and nothing else.
//
// It keeps no line buffer: fields are consumed as they stream past, and only the first
// kDataPrefix bytes of an event's data, the id and the event type (each truncated) are kept. A
// subscriber's memory is therefore constant whatever the server sends, which is what a load
// generator with tens of thousands of connections needs. The prefix size is a template parameter:
// the fan-out subscribers need 96 bytes for their stamp, an LLM stream needs more, because its
// stamp sits behind the JSON envelope of the chunk (SseStreamParser and LlmSseParser below). Lines
// end in CR, LF or CRLF, also when the CR and the LF arrive in different reads (WHATWG HTML
// §9.2.6).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bench {

struct SseEvent {
  std::string_view type;         // empty for the default "message"
  std::string_view id;           // the last event id so far (persists across events)
  std::string_view data_prefix;  // the first bytes of the data, lines joined by '\n'
  size_t data_bytes = 0;         // the whole data's length, lines joined by '\n'
};

template <size_t kPrefix>
class BasicSseStreamParser {
 public:
  static constexpr size_t kDataPrefix = kPrefix;
  static_assert(kDataPrefix > 0 && kDataPrefix < UINT16_MAX);
  static constexpr size_t kIdMax = 128;
  static constexpr size_t kTypeMax = 64;

  using OnEvent = void (*)(void* context, const SseEvent& event);
  BasicSseStreamParser() = default;
  BasicSseStreamParser(OnEvent on_event, void* context) : on_event_(on_event), context_(context) {}
  void set_handler(OnEvent on_event, void* context) {
    on_event_ = on_event;
    context_ = context;
  }

  void feed(const char* data, size_t len);

  uint64_t comments() const { return comments_; }

 private:
  enum class State : uint8_t { LineStart, Name, SkipSpace, Value, Ignore };
  enum class Field : uint8_t { Unknown, Data, Id, Event };

  void end_line();
  void dispatch();

  OnEvent on_event_ = nullptr;
  void* context_ = nullptr;

  State state_ = State::LineStart;
  Field field_ = Field::Unknown;
  bool after_cr_ = false;
  uint8_t name_len_ = 0;
  char name_[8];  // longer names are unknown fields

  // The value of the current id/event line, committed at its end.
  uint16_t value_len_ = 0;
  char value_[kIdMax];

  // The event being assembled.
  bool has_data_ = false;
  uint8_t type_len_ = 0;
  uint8_t id_len_ = 0;
  uint16_t prefix_len_ = 0;
  size_t data_bytes_ = 0;
  char type_[kTypeMax];
  char id_[kIdMax];
  char prefix_[kDataPrefix];

  uint64_t comments_ = 0;
};

// Instantiated in sse_stream_parser.cpp.
using SseStreamParser = BasicSseStreamParser<96>;
// The mock's OpenAI chunk has its content 125 bytes in, its Anthropic delta 78 (llm_stamp.hpp).
using LlmSseParser = BasicSseStreamParser<256>;

}  // namespace bench
