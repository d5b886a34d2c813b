// The mock's HTTP/1.x: llhttp turned into one complete Request at a time, and the few answer
// shapes the mock writes. Nothing here is shared with the gateway, so that a bug in the
// gateway's HTTP code cannot hide behind the same bug in its test double.
//
// Rules:
// - llhttp's slices are copied into the Request as they arrive: nothing points into a read
//   buffer once read() returns.
// - read() stops right after a complete request (llhttp is paused), so that pipelined requests
//   are answered one at a time and in order; next() readies the reader for the following one.
// - Limits are checked inside the callbacks, which fail the parse: 431 past 16 KiB of request
//   line, headers and chunk extensions, 413 past 1 MiB of body. An error stays an error: the
//   connection answers it and closes.
// - It is as strict as llhttp's strict mode and no stricter: the gateway's extra request rules
//   (its byte scanner, its framing checks) are for the gateway's tests to prove, not for the
//   double to repeat. Malformed requests get llhttp's reason in the 400 body.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw::mock {

struct Header {
  std::string name;  // lower-case
  std::string value;
};

struct Request {
  llhttp_method_t method = HTTP_GET;
  bool http10 = false;
  bool keep_alive = true;
  bool expect_continue = false;  // "Expect: 100-continue" in an HTTP/1.1 request
  std::string target;            // path and query, as sent
  std::vector<Header> headers;   // trailer fields are not kept
  std::string body;              // de-chunked

  // The first header with this lower-case name: nullptr when there is none.
  const std::string* find_header(std::string_view name) const;
  std::string_view header(std::string_view name) const;  // its value, or empty
  std::string_view path() const;
  std::string_view query() const;  // after the '?'
};

enum class Param { kAbsent, kMalformed, kPresent };
// The first query parameter `name`, percent-decoded ('+' is a space) into `value`.
Param query_param(std::string_view query, std::string_view name, std::string& value);

class RequestReader {
 public:
  static constexpr size_t kMaxHeadBytes = 16 * 1024;
  static constexpr size_t kMaxBodyBytes = 1024 * 1024;

  enum class Status { kNeedMore, kComplete, kError };

  RequestReader();
  RequestReader(const RequestReader&) = delete;
  RequestReader& operator=(const RequestReader&) = delete;

  // Reads from `data`; `used` is how many bytes belong to the request (all of them unless it
  // completed before the end).
  Status read(const char* data, size_t length, size_t& used);
  // After kComplete: forgets the request and resumes parsing.
  void next();

  const Request& request() const { return request_; }
  bool headers_complete() const { return headers_complete_; }
  // After kError: the status (400, 413 or 431) and why.
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

 private:
  static int on_url(llhttp_t* p, const char* at, size_t length);
  static int on_header_field(llhttp_t* p, const char* at, size_t length);
  static int on_header_value(llhttp_t* p, const char* at, size_t length);
  static int on_chunk_extension(llhttp_t* p, const char* at, size_t length);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t length);
  static int on_message_complete(llhttp_t* p);

  int fail(int status, std::string message);
  int count_head(size_t bytes, const char* what = "request line and headers");

  llhttp_t parser_;
  Request request_;
  size_t head_bytes_ = 0;
  bool in_name_ = false;  // the last callback was a piece of a header name
  bool headers_complete_ = false;
  int error_status_ = 0;
  std::string error_message_;
};

// ---- answers ----------------------------------------------------------------------------------

// "HTTP/1.1 <status> <reason>\r\n" (HTTP/1.0 for an HTTP/1.0 request), then `headers`, each
// "Name: value\r\n", then the blank line. No body framing: the caller adds what it needs.
std::string response_head(int status, bool http10, std::string_view headers);

// A complete answer with a JSON body: `headers`, Content-Type, Content-Length, then
// "Connection: close" unless keep_alive (and "Connection: keep-alive" when an HTTP/1.0 one is
// kept), then the body.
std::string json_response(int status, bool http10, std::string headers, std::string_view body,
                          bool keep_alive);

}  // namespace ssegw::mock
