// The byte-level rules of RFC 9112 that llhttp 8.1 does not enforce, even in strict mode, checked
// on the raw bytes of one request before llhttp sees them: every line ends in CRLF (no bare CR or
// LF), no obs-fold, header names are tokens with the colon right after them, no control byte in
// a header value or a chunk extension, a request line of three parts with single spaces and a
// target of visible ASCII, bounded chunk-size lines, chunk data followed by CRLF, and no framing
// or connection field in the trailer section.
//
// Rules:
// - llhttp decides how a body is framed (Content-Length, chunked or none). At the end of the head
//   the scanner stops, RequestParser tells it what llhttp decided (begin_body()), and the scanner
//   then finds the end of the message on its own. RequestParser accepts a request only when both
//   end it at the same byte: a disagreement between the two parsers is an error, never a second
//   request.
// - scan() reads nothing past the end of the head (until begin_body()) nor past the end of the
//   message, so bytes of a pipelined request are never judged as part of the one before.
// - It copies nothing and keeps no pointer into the bytes it scans.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ssegw::http {

class StrictScanner {
 public:
  enum class Body { kNone, kLength, kChunked };

  // Scans from where the last call stopped. Returns the bytes used: fewer than length when the
  // head or the message ends (head_done(), done()) or at a byte that breaks a rule (error()).
  size_t scan(const char* data, size_t length);
  // After head_done(): how llhttp frames the body.
  void begin_body(Body body, uint64_t content_length);
  // For the next request.
  void reset();

  bool accepts_bytes() const {
    return state_ != State::kHeadDone && state_ != State::kDone && state_ != State::kFailed;
  }
  bool head_done() const { return state_ == State::kHeadDone; }
  bool done() const { return state_ == State::kDone; }
  // Why the bytes were refused; nullptr while they are fine.
  const char* error() const { return error_; }

  // Bytes scanned since the last call that count against the header limit but reach llhttp's
  // callbacks as nothing: empty lines before the request line, and chunk extensions (";" up to
  // the CR), which a client could otherwise stream without end.
  size_t take_empty_line_bytes() { return take(empty_line_bytes_); }
  size_t take_extension_bytes() { return take(extension_bytes_); }

  // The longest chunk size accepted, in hex digits (leading zeros included): 64 bits.
  static constexpr unsigned kMaxChunkSizeDigits = 16;

 private:
  enum class State : uint8_t {
    kBeforeRequestLine,  // empty lines (CRLF) may come first
    kEmptyLineLf,
    kRequestLine,
    kRequestLineLf,
    kFieldStart,  // a field line, or the CRLF that ends the section
    kFieldName,
    kFieldValue,
    kFieldLf,
    kSectionEndLf,
    kHeadDone,  // waiting for begin_body()
    kLengthBody,
    kChunkSizeStart,
    kChunkSize,
    kChunkExtension,
    kChunkSizeLf,
    kChunkData,
    kChunkDataCr,
    kChunkDataLf,
    kDone,
    kFailed,
  };

  size_t fail(size_t used, const char* why);
  bool forbidden_trailer() const;
  static size_t take(size_t& counter) {
    size_t n = counter;
    counter = 0;
    return n;
  }

  State state_ = State::kBeforeRequestLine;
  const char* error_ = nullptr;
  bool trailers_ = false;     // the field lines are the trailer section
  uint8_t spaces_ = 0;        // in the request line
  bool after_space_ = false;  // the last request-line byte was SP
  uint8_t chunk_digits_ = 0;
  uint8_t name_length_ = 0;  // of a trailer field name, capped at sizeof name_ + 1
  char name_[20] = {};       // a trailer field name, lower-cased (the forbidden ones are short)
  uint64_t chunk_size_ = 0;
  uint64_t remaining_ = 0;  // body or chunk-data bytes still to skip
  size_t empty_line_bytes_ = 0;
  size_t extension_bytes_ = 0;
};

}  // namespace ssegw::http
