// An incremental text/event-stream parser: bytes in, events out, nothing else (no I/O).
//
// It follows the WHATWG HTML "event stream interpretation" algorithm
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
// one leading UTF-8 BOM is skipped; lines end with CRLF, LF or CR; a CR at the end of one feed()
// and an LF at the start of the next are one line ending; a blank line dispatches the event; an
// event cut off by EOF is discarded. It works on bytes and does not replace invalid UTF-8 with
// U+FFFD as a browser would: a proxy forwards what the upstream sent.
//
// Rules:
// - The views in an SseEvent and in on_comment() point into the parser or into the bytes being
//   fed. They are valid only during the callback; copy what must outlive it.
// - A callback must not call feed(), finish() or reset() on the parser that called it.
// - Memory is bounded by SseLimits. Going over a limit is an error value, not an exception, and
//   the parser stays in that error (every later feed() returns it) until reset().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ssegw::upstream {

struct SseEvent {
  // The raw event type buffer. Empty means "message" (the spec's default); see effective_type().
  std::string_view type;
  // The data buffer without its final LF: "data: a\ndata: b\n\n" gives "a\nb".
  std::string_view data;
  // The last event ID string at dispatch. It persists across events: an event block without an
  // `id` field carries the id of an earlier one, and `id:` with an empty value resets it to "".
  std::string_view id;
  // This event block itself had an accepted `id` field. A proxy that re-frames events uses it to
  // write `id:` only where the upstream did.
  bool has_id = false;

  std::string_view effective_type() const { return type.empty() ? "message" : type; }
};

struct SseLimits {
  // The longest line, without its line ending. The default leaves room for a field name, so that
  // one `data:` line can carry a whole event of max_event_bytes.
  size_t max_line_bytes = 1024 * 1024 + 64;
  // The largest data of one event, as dispatched (lines joined with LF, without the final LF).
  size_t max_event_bytes = 1024 * 1024;
};

enum class SseStatus {
  kOk,
  kLineTooLong,    // a line passed SseLimits::max_line_bytes
  kEventTooLarge,  // an event's data passed SseLimits::max_event_bytes
};

const char* to_string(SseStatus status);

class SseParser {
 public:
  class Sink {
   public:
    virtual ~Sink() = default;
    virtual void on_event(const SseEvent& event) = 0;
    // A line starting with ':'; `text` is what follows the colon, unmodified (": ping" gives
    // " ping"). A proxy may count keep-alives with it.
    virtual void on_comment([[maybe_unused]] std::string_view text) {}
    // A `retry` field whose value is one or more ASCII digits and nothing else: the upstream's
    // reconnection time. Reported when the line is read, not at dispatch (the spec sets it at
    // once). Saturates at UINT64_MAX.
    virtual void on_retry([[maybe_unused]] uint64_t ms) {}
  };

  explicit SseParser(const SseLimits& limits = {});

  // Parses the next bytes of the stream; any split of the stream gives the same callbacks.
  // Returns kOk, or the error the parser is in (sticky until reset()).
  SseStatus feed(std::string_view bytes, Sink& sink);

  // End of stream. The spec discards an event without its terminating blank line; this returns
  // true when something was discarded: fields read since the last blank line, an unterminated
  // line other than a comment, or the stream is in error. Then it calls reset(true), so the
  // parser is ready for the next connection.
  bool finish();

  // Starts a new stream (a reconnect): clears the buffers, the line state, the BOM state and the
  // error. The last event ID string is kept unless keep_last_event_id is false, and it seeds the
  // new stream's id buffer, so events of the new stream without `id` carry it on (as browsers do
  // across reconnects).
  void reset(bool keep_last_event_id = true);

  // The last event ID string: what to send as Last-Event-ID on a reconnect. It changes only when
  // an event block is dispatched (an `id` cut off by EOF does not count).
  const std::string& last_event_id() const { return last_event_id_; }
  // Seeds the last event ID, as if the stream had been read up to it (before the first feed).
  void set_last_event_id(std::string id) { last_event_id_ = id_buffer_ = std::move(id); }
  SseStatus status() const { return status_; }
  // How many bytes of the last feed() end with the last complete event block in it (its blank
  // line, with the LF of a CRLF), or npos when no block ended in it. A proxy forwards whole
  // events with it, without scanning the bytes a second time.
  size_t complete_prefix() const { return complete_prefix_; }

 private:
  SseStatus process_line(std::string_view line, Sink& sink);
  void dispatch(Sink& sink);
  SseStatus fail(SseStatus status);

  SseLimits limits_;
  SseStatus status_ = SseStatus::kOk;
  std::string line_;               // a line whose end has not arrived yet
  std::string data_;               // the data buffer: each `data` value followed by LF
  std::string type_;               // the event type buffer
  std::string id_buffer_;          // the last event ID buffer
  std::string last_event_id_;      // the last event ID string, set from id_buffer_ at dispatch
  uint8_t bom_matched_ = 0;        // bytes of a leading BOM seen so far
  bool bom_done_ = false;          // past the point where a BOM may appear
  bool skip_lf_ = false;           // the last line ended with CR; a following LF belongs to it
  bool after_blank_line_ = false;  // the last line was blank: it ended an event block
  bool id_changed_ = false;        // id_buffer_ was set since the last dispatch
  bool block_has_id_ = false;      // the current event block had an accepted `id` field
  bool block_pending_ = false;     // the current event block had a field line
  size_t complete_prefix_ = std::string_view::npos;
};

}  // namespace ssegw::upstream
