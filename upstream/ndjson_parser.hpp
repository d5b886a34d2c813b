// An incremental newline-delimited JSON splitter (Ollama streams one JSON object per line):
// bytes in, lines out, nothing else (no I/O, no JSON parsing beyond ndjson_done()).
//
// Rules:
// - The view given to on_line() points into the parser or into the bytes being fed. It is valid
//   only during the callback; copy what must outlive it.
// - A callback must not call feed(), finish() or reset() on the parser that called it.
// - Memory is bounded by NdjsonLimits. Going over the limit is an error value, not an exception,
//   and the parser stays in that error (every later feed() returns it) until reset().
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ssegw::upstream {

struct NdjsonLimits {
  // The longest line: its bytes before the LF, a CR included. Generous because Ollama's final
  // /api/generate line carries the whole `context` token array.
  size_t max_line_bytes = 4 * 1024 * 1024;
};

enum class NdjsonStatus {
  kOk,
  kLineTooLong,  // a line passed NdjsonLimits::max_line_bytes
};

const char* to_string(NdjsonStatus status);

class NdjsonParser {
 public:
  class Sink {
   public:
    virtual ~Sink() = default;
    // One line, without its LF and without one CR before it. Lines that are empty or only JSON
    // whitespace are skipped.
    virtual void on_line(std::string_view line) = 0;
  };

  explicit NdjsonParser(const NdjsonLimits& limits = {});

  // Parses the next bytes of the stream; any split of the stream gives the same callbacks.
  // Returns kOk, or the error the parser is in (sticky until reset()).
  NdjsonStatus feed(std::string_view bytes, Sink& sink);

  // End of stream. Ollama ends every line with LF, so a trailing line without one is a truncated
  // object: it is not emitted, and this returns true (also when the stream is in error). Then it
  // calls reset(), so the parser is ready for the next stream.
  bool finish();

  // Starts a new stream: clears the partial line and the error.
  void reset();

  NdjsonStatus status() const { return status_; }

 private:
  NdjsonLimits limits_;
  NdjsonStatus status_ = NdjsonStatus::kOk;
  std::string line_;  // a line whose LF has not arrived yet
};

// Whether `line` is a JSON object whose top-level key "done" has the literal value true (Ollama's
// last line). A small scanner, not a JSON parser: it walks the top-level keys, skips strings
// (with escapes) and nested objects and arrays, so `{"response":"\"done\":true"}` and
// `{"x":{"done":true}}` do not match. A line that is not a well-formed object at the top level
// gives false. With duplicate keys the last "done" wins, as in most JSON decoders.
bool ndjson_done(std::string_view line);

}  // namespace ssegw::upstream
