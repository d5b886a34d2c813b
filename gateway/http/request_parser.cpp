#include "gateway/http/request_parser.hpp"

#include <strings.h>

#include <cctype>

namespace http {

RequestParser::RequestParser(const ParserLimits& limits) : limits_(limits) {
  llhttp_init(&parser_, HTTP_REQUEST, &settings());
  parser_.data = this;
}

const llhttp_settings_t& RequestParser::settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = on_message_begin;
    s.on_url = on_url;
    s.on_header_field = on_header_field;
    s.on_header_value = on_header_value;
    s.on_headers_complete = on_headers_complete;
    s.on_body = on_body;
    s.on_message_complete = on_message_complete;
    return s;
  }();
  return settings;
}

static RequestParser* self_of(llhttp_t* p) {
  return static_cast<RequestParser*>(p->data);
}

int RequestParser::fail(int status, const char* code, std::string message) {
  error_ = {status, code, std::move(message)};
  return -1;
}

int RequestParser::count_header_bytes(size_t length) {
  header_bytes_ += length;
  if (header_bytes_ > limits_.max_header_bytes)
    return fail(
        431, "headers_too_large",
        "request line and headers exceed " + std::to_string(limits_.max_header_bytes) + " bytes");
  return 0;
}

int RequestParser::on_message_begin(llhttp_t* p) {
  RequestParser* self = self_of(p);
  self->in_progress_ = true;
  return 0;
}

int RequestParser::on_url(llhttp_t* p, const char* at, size_t length) {
  RequestParser* self = self_of(p);
  if (self->count_header_bytes(length)) return -1;
  self->request_.target.append(at, length);
  return 0;
}

int RequestParser::on_header_field(llhttp_t* p, const char* at, size_t length) {
  RequestParser* self = self_of(p);
  // A field may arrive in several pieces: only its first piece starts a new header. The state
  // is kept for trailer fields too, so the byte count does not depend on read boundaries.
  bool starts = !self->in_field_;
  self->in_field_ = true;
  // Each header costs its bytes plus the ": " and CRLF around them.
  if (self->count_header_bytes(length + (starts ? 4 : 0))) return -1;
  if (self->headers_complete_) return 0;  // trailer fields never become request headers
  auto& headers = self->request_.headers;
  if (starts) headers.emplace_back();
  for (size_t i = 0; i < length; ++i)
    headers.back().name += static_cast<char>(std::tolower(static_cast<unsigned char>(at[i])));
  return 0;
}

int RequestParser::on_header_value(llhttp_t* p, const char* at, size_t length) {
  RequestParser* self = self_of(p);
  self->in_field_ = false;
  if (self->count_header_bytes(length)) return -1;
  if (self->headers_complete_) return 0;
  self->request_.headers.back().value.append(at, length);
  return 0;
}

int RequestParser::on_headers_complete(llhttp_t* p) {
  RequestParser* self = self_of(p);
  Request& r = self->request_;
  r.method = static_cast<uint8_t>(p->method);
  r.version_major = p->http_major;
  r.version_minor = p->http_minor;
  r.keep_alive = llhttp_should_keep_alive(p) != 0;
  self->headers_complete_ = true;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > self->limits_.max_body_bytes)
    return self->fail(413, "payload_too_large",
                      "body exceeds " + std::to_string(self->limits_.max_body_bytes) + " bytes");
  std::string_view expect = r.header("expect");
  if (!expect.empty() && !r.http10()) {  // HTTP/1.0 servers must ignore Expect (RFC 9110)
    if (expect.size() != 12 || strncasecmp(expect.data(), "100-continue", 12) != 0)
      return self->fail(400, "bad_request", "unsupported Expect header");
    r.expect_continue = true;
  }
  if (p->upgrade) self->upgrade_ = true;
  return 0;
}

int RequestParser::on_body(llhttp_t* p, const char* at, size_t length) {
  RequestParser* self = self_of(p);
  if (self->request_.body.size() + length > self->limits_.max_body_bytes)
    return self->fail(413, "payload_too_large",
                      "body exceeds " + std::to_string(self->limits_.max_body_bytes) + " bytes");
  self->request_.body.append(at, length);
  return 0;
}

int RequestParser::on_message_complete(llhttp_t* p) {
  return HPE_PAUSED;
}

RequestParser::Result RequestParser::feed(const char* data, size_t length) {
  llhttp_errno_t err = llhttp_execute(&parser_, data, length);
  if (err == HPE_OK) return {Status::kNeedMore, length};
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    size_t consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
    if (err == HPE_PAUSED_UPGRADE) upgrade_ = true;
    return {Status::kComplete, consumed};
  }
  if (error_.status == 0) {
    const char* reason = llhttp_get_error_reason(&parser_);
    error_ = {400, "bad_request",
              std::string("malformed HTTP request: ") + (reason ? reason : llhttp_errno_name(err))};
  }
  return {Status::kError, length};
}

void RequestParser::next() {
  request_.clear();
  header_bytes_ = 0;
  in_field_ = false;
  in_progress_ = false;
  headers_complete_ = false;
  llhttp_resume(&parser_);
}

}  // namespace http
