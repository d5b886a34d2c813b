// The llhttp adapter for upstream responses: bytes in, one response's final head and its body out
// (the request side is gateway/http/request_parser.hpp).
//
// Rules:
// - Static trampolines call member functions. Header names (lower-cased) and values are copied as
//   they arrive; body slices go to the handler zero-copy, valid only during the call.
// - Limits live inside the callbacks, which stop the parse with a refusal: the heads of one
//   response, interim heads and trailers included, hold at most max_head_bytes (each field counts
//   4 more, for ": " and CRLF, however many pieces its name arrives in).
// - Interim heads (1xx) are read and dropped: the handler sees only the final head. A 101 is
//   refused: no request of ours asks to upgrade.
// - Which responses have a body follows RFC 9112 §6.3: none for a HEAD request, a 1xx, a 204 or a
//   304, whatever the head says; else chunked, Content-Length, or all bytes until the connection
//   closes (finish() ends such a body).
// - feed() stops right after the end of the response (llhttp is paused): what bytes after it mean
//   is the caller's business. reset() readies the parser for the next response.
// - A handler callback may stop the parse by returning false (the exchange was cancelled from
//   inside it): feed() then returns kStopped, and nothing more reaches the handler.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/request.hpp"

namespace ssegw::upstream {

// Whether a final response has a body at all (RFC 9112 §6.3): an answer to HEAD, a 204 or a
// 304 has none, whatever its Content-Length says.
bool response_has_body(bool head_request, int status);

class ResponseParser {
 public:
  class Handler {
   public:
    // The final head. False stops the parse.
    virtual bool on_response_head(int status, const std::vector<http::Header>& headers) = 0;
    // A piece of the body, chunk framing removed. False stops the parse.
    virtual bool on_response_body(std::string_view data) = 0;

   protected:
    ~Handler() = default;
  };

  enum class Status {
    kNeedMore,  // every byte used; the response is not complete yet
    kComplete,  // the response ended after `consumed` bytes
    kStopped,   // a handler callback returned false
    kError,     // not a valid response: error() says why
  };
  struct Result {
    Status status;
    size_t consumed;  // bytes of the input used (kComplete: up to the end of the response)
  };

  static constexpr size_t kDefaultMaxHeadBytes = 64 * 1024;

  explicit ResponseParser(Handler& handler, size_t max_head_bytes = kDefaultMaxHeadBytes);
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Before each response: head_request says it answers a HEAD request (no body, whatever the head
  // says: only the request tells).
  void reset(bool head_request);
  Result feed(const char* data, size_t length);
  // The connection ended: kComplete when that completes the response (a body delimited by the
  // close, or a response complete already), else kError (truncated).
  Status finish();

  // The final head has arrived (its body may still be arriving).
  bool head_complete() const { return head_complete_; }
  // After kComplete: whether the connection may carry another response.
  bool keep_alive() const { return complete_ && llhttp_should_keep_alive(&parser_) != 0; }
  // After kError: why, in words ("response heads larger than 64 KiB", or llhttp's reason).
  const std::string& error() const { return error_; }

 private:
  static int on_header_field(llhttp_t* p, const char* at, size_t length);
  static int on_header_value(llhttp_t* p, const char* at, size_t length);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t length);
  static int on_message_complete(llhttp_t* p);
  static const llhttp_settings_t& settings();

  // Counts head bytes against the limit: false (and the refusal) when over.
  bool count_head_bytes(size_t length);
  int refuse(std::string why);

  Handler& handler_;
  size_t max_head_bytes_;
  llhttp_t parser_;
  std::vector<http::Header> headers_;
  std::string error_;
  size_t head_bytes_ = 0;  // of every head of the response, interim ones and trailers included
  bool in_field_ = false;  // the last callback was a piece of a header name
  bool head_request_ = false;
  bool head_complete_ = false;
  bool complete_ = false;
  bool stopped_ = false;
};

}  // namespace ssegw::upstream
