// The llhttp adapter: bytes in, one complete Request out at a time.
//
// Rules:
// - Static trampolines call member functions; llhttp's slices are copied into the Request as
//   they arrive, so nothing points into a read buffer after feed() returns.
// - Size limits are enforced inside the callbacks, which fail the parse (Node's
//   node_http_parser.cc does the same): 431 for headers, 413 for bodies.
// - feed() stops right after a complete request (llhttp is paused), so that pipelined requests
//   are answered one at a time and in order; next() readies the parser for the following one.
// - Strict HTTP: llhttp is built in strict mode, and every byte passes a StrictScanner before
//   llhttp sees it. llhttp sees only bytes the scanner accepted, and a request is complete only
//   when both parsers end it at the same byte. What the head says about framing is checked in
//   on_headers_complete (one Transfer-Encoding, exactly "chunked", never with Content-Length or
//   in HTTP/1.0); the target in on_url_complete (origin-form, or "*" for OPTIONS). Every refusal
//   is a 400 after which the connection closes, so nothing after it is read as a request.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <string>

#include "gateway/http/request.hpp"
#include "gateway/http/strict_scanner.hpp"

namespace ssegw::http {

struct ParserLimits {
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
};

struct ParseError {
  int status = 0;  // 400, 413 or 431
  const char* code = "";
  std::string message;
};

class RequestParser {
 public:
  enum class Status { kNeedMore, kComplete, kError };
  struct Result {
    Status status;
    size_t consumed;  // bytes of the input used
  };

  explicit RequestParser(const ParserLimits& limits);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  Result feed(const char* data, size_t length);
  // After kComplete: clears the request and lets the parser continue with the next one.
  void next();

  Request& request() { return request_; }
  const Request& request() const { return request_; }
  const ParseError& error() const { return error_; }
  // Some bytes of a request have arrived, and it is not complete yet.
  bool in_progress() const { return in_progress_; }
  // The headers of the current request are complete (its body may still be arriving).
  bool headers_complete() const { return headers_complete_; }
  // The request asked to switch protocols; nothing after it can be parsed as HTTP.
  bool upgrade() const { return upgrade_; }

 private:
  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, size_t length);
  static int on_url_complete(llhttp_t* p);
  static int on_header_field(llhttp_t* p, const char* at, size_t length);
  static int on_header_value(llhttp_t* p, const char* at, size_t length);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t length);
  static int on_message_complete(llhttp_t* p);
  static const llhttp_settings_t& settings();

  int fail(int status, const char* code, std::string message);
  int count_header_bytes(size_t length, const char* what = "request line and headers");
  int check_target();
  int check_framing_headers();
  Result refuse(size_t length, std::string message);

  llhttp_t parser_;
  StrictScanner scanner_;
  ParserLimits limits_;
  Request request_;
  ParseError error_;
  size_t header_bytes_ = 0;
  bool in_field_ = false;  // the last callback was (a piece of) a header field name
  bool in_progress_ = false;
  bool headers_complete_ = false;
  bool upgrade_ = false;
};

}  // namespace ssegw::http
