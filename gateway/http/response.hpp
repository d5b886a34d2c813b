// Builds HTTP/1.1 response heads and small complete responses.
#pragma once

#include <string>
#include <string_view>

namespace ssegw::http {

const char* reason_phrase(int status);

class ResponseBuilder {
 public:
  ResponseBuilder(int status, bool http10);
  ResponseBuilder& header(std::string_view name, std::string_view value);
  // Appends ready-made "Name: value\r\n" lines.
  ResponseBuilder& raw_headers(std::string_view lines);
  // A complete response with Content-Length (and Connection: close unless keep_alive).
  std::string with_body(std::string_view content_type, std::string_view body, bool keep_alive);
  // A complete response that has no body by definition (204): no Content-Length either.
  std::string without_body(bool keep_alive);
  // A head with no body framing of its own (the caller adds Transfer-Encoding or closes).
  std::string head();

 private:
  std::string out_;
  bool http10_;
};

// The header lines of an event stream the gateway writes itself (a channel's stream, a
// multi-channel stream, a generated answer): no cache may hold it, and a proxy in front (nginx's
// X-Accel-Buffering) must not buffer it.
inline constexpr std::string_view kEventStreamHead =
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Cache-Control: no-cache, no-transform\r\n"
    "X-Accel-Buffering: no\r\n";

// {"error":{"code":"...","message":"..."}} followed by a newline.
std::string json_error(std::string_view code, std::string_view message);

}  // namespace ssegw::http
