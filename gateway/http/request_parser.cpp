#include "gateway/http/request_parser.hpp"

#include <string_view>

#include "gateway/base/ascii.hpp"

namespace ssegw::http {

namespace {

// Unreachable while the scanner and llhttp agree on the grammar; if they ever do not, the
// request is refused rather than framed by one of them.
constexpr const char* kDisagreement =
    "malformed HTTP request: the scanner and llhttp disagree on where it ends";

}  // namespace

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
    s.on_url_complete = on_url_complete;
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

int RequestParser::count_header_bytes(size_t length, const char* what) {
  header_bytes_ += length;
  if (header_bytes_ > limits_.max_header_bytes)
    return fail(
        431, "headers_too_large",
        std::string(what) + " exceed " + std::to_string(limits_.max_header_bytes) + " bytes");
  return 0;
}

RequestParser::Result RequestParser::refuse(size_t length, std::string message) {
  fail(400, "bad_request", std::move(message));
  return {Status::kError, length};
}

// The target is copied into the request line of a proxied route: it must be one origin-form
// path (RFC 9112 3.2.1) of visible ASCII. absolute-form is refused rather than rewritten, so that
// no Host header can disagree with the authority that routed the request.
int RequestParser::check_target() {
  const std::string& target = request_.target;
  if (parser_.method == HTTP_CONNECT)
    return fail(400, "bad_request", "CONNECT is not supported (no authority-form targets)");
  if (target == "*") {
    if (parser_.method == HTTP_OPTIONS) return 0;
    return fail(400, "bad_request", "the request target \"*\" is for OPTIONS only");
  }
  if (target.empty() || target[0] != '/')
    return fail(400, "bad_request",
                "the request target must be a path starting with '/' (absolute-form and "
                "authority-form are not accepted)");
  for (unsigned char c : target) {
    // The scanner refused these already; this is the property a proxied route relies on.
    if (c <= 0x20 || c >= 0x7F)
      return fail(400, "bad_request", "the request target may hold only visible ASCII");
    if (c == '#')
      return fail(400, "bad_request", "the request target must not contain a fragment ('#')");
  }
  return 0;
}

// RFC 9112 6.1 and 6.3, and the request smuggling variants built on them (CL.TE, TE.CL, TE.TE):
// the only framing accepted is one Content-Length of digits, or one Transfer-Encoding that is
// exactly "chunked" in an HTTP/1.1 request without Content-Length. llhttp refuses some of these
// itself, before this runs; the rest would be read by it as something a proxy in front of the
// gateway might read differently.
int RequestParser::check_framing_headers() {
  const Request& r = request_;
  size_t transfer_encodings = 0, content_lengths = 0;
  std::string_view transfer_encoding, content_length;
  for (const Header& h : r.headers) {
    if (h.name == "transfer-encoding") {
      ++transfer_encodings;
      transfer_encoding = h.value;
    } else if (h.name == "content-length") {
      ++content_lengths;
      content_length = h.value;
    }
  }
  if (transfer_encodings > 0) {
    if (r.http10())
      return fail(400, "bad_request", "Transfer-Encoding is not allowed in an HTTP/1.0 request");
    if (transfer_encodings > 1)
      return fail(400, "bad_request", "more than one Transfer-Encoding header");
    if (transfer_encoding != "chunked")
      return fail(400, "bad_request", "Transfer-Encoding must be exactly \"chunked\"");
    if (content_lengths > 0)
      return fail(400, "bad_request", "Content-Length together with Transfer-Encoding");
  }
  if (content_lengths > 1) return fail(400, "bad_request", "more than one Content-Length header");
  if (content_lengths == 1 && (content_length.empty() ||
                               content_length.find_first_not_of("0123456789") != std::string::npos))
    return fail(400, "bad_request", "Content-Length must be decimal digits only");
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

int RequestParser::on_url_complete(llhttp_t* p) {
  return self_of(p)->check_target();
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
  base::append_lower(headers.back().name, std::string_view(at, length));
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
  if (r.version_major != 1 || r.version_minor > 1)  // llhttp also takes 0.9 and 2.0
    return self->fail(400, "bad_request", "only HTTP/1.0 and HTTP/1.1 are supported");
  if (self->check_framing_headers()) return -1;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > self->limits_.max_body_bytes)
    return self->fail(413, "payload_too_large",
                      "body exceeds " + std::to_string(self->limits_.max_body_bytes) + " bytes");
  std::string_view expect = r.header("expect");
  if (!expect.empty() && !r.http10()) {  // HTTP/1.0 servers must ignore Expect (RFC 9110)
    if (!base::iequals(expect, "100-continue"))
      return self->fail(400, "bad_request", "unsupported Expect header");
    r.expect_continue = true;
  }
  if (p->upgrade) self->upgrade_ = true;
  // llhttp has decided how the body is framed (llhttp__after_headers_complete: chunked wins, a
  // Content-Length of 0 is no body; CONNECT, which skips the body, never gets here). The scanner
  // now finds the end of that body by itself.
  if (!self->scanner_.head_done()) return self->fail(400, "bad_request", kDisagreement);
  if (p->flags & F_CHUNKED)
    self->scanner_.begin_body(StrictScanner::Body::kChunked, 0);
  else if (p->flags & F_CONTENT_LENGTH)
    self->scanner_.begin_body(StrictScanner::Body::kLength, p->content_length);
  else
    self->scanner_.begin_body(StrictScanner::Body::kNone, 0);
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
  if (error_.status != 0) return {Status::kError, length};  // an error stays an error
  size_t pos = 0;  // both the scanner and llhttp have used data[0, pos)
  for (;;) {
    // The scanner goes first, up to the end of the head or of the message; llhttp then gets
    // exactly the bytes the scanner accepted.
    size_t end = pos;
    if (scanner_.accepts_bytes()) {
      end += scanner_.scan(data + pos, length - pos);
      if (scanner_.error())
        return refuse(length, std::string("malformed HTTP request: ") + scanner_.error());
      if (count_header_bytes(scanner_.take_empty_line_bytes()) ||
          count_header_bytes(scanner_.take_extension_bytes(),
                             "chunk extensions, request line and headers"))
        return {Status::kError, length};
    }
    if (end == pos) {
      if (pos == length) return {Status::kNeedMore, length};
      // The scanner has reached the end of the head or of the message, and llhttp has not.
      return refuse(length, kDisagreement);
    }
    llhttp_errno_t err = llhttp_execute(&parser_, data + pos, end - pos);
    if (err == HPE_OK) {
      pos = end;
      continue;
    }
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
      size_t consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
      // llhttp ended the message: the scanner must end it at the same byte.
      if (!scanner_.done() || consumed != end) return refuse(length, kDisagreement);
      if (err == HPE_PAUSED_UPGRADE) upgrade_ = true;
      return {Status::kComplete, consumed};
    }
    if (error_.status == 0) {
      const char* reason = llhttp_get_error_reason(&parser_);
      error_ = {
          400, "bad_request",
          std::string("malformed HTTP request: ") + (reason ? reason : llhttp_errno_name(err))};
    }
    return {Status::kError, length};
  }
}

void RequestParser::next() {
  request_.clear();
  header_bytes_ = 0;
  in_field_ = false;
  in_progress_ = false;
  headers_complete_ = false;
  scanner_.reset();
  llhttp_resume(&parser_);
}

}  // namespace ssegw::http
