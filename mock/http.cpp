#include "mock/http.hpp"

#include <strings.h>

#include <algorithm>
#include <utility>

namespace ssegw::mock {
namespace {

RequestReader* reader_of(llhttp_t* p) {
  return static_cast<RequestReader*>(p->data);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(c | 0x20);  // lower case
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool percent_decode(std::string_view raw, std::string& out) {
  out.clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '+') {
      out.push_back(' ');
    } else if (raw[i] != '%') {
      out.push_back(raw[i]);
    } else {
      int high = i + 2 < raw.size() ? hex_digit(raw[i + 1]) : -1;
      int low = high >= 0 ? hex_digit(raw[i + 2]) : -1;
      if (low < 0) return false;
      out.push_back(static_cast<char>(high << 4 | low));
      i += 2;
    }
  }
  return true;
}

struct Reason {
  int status;
  const char* text;
};

// The reasons the mock can need: its own answers, and any `status` or `interim` knob.
constexpr Reason kReasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {413, "Content Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

const char* reason(int status) {
  for (const Reason& r : kReasons)
    if (r.status == status) return r.text;
  return "Unknown";
}

}  // namespace

// ---- Request ----------------------------------------------------------------------------------

const std::string* Request::find_header(std::string_view name) const {
  for (const Header& h : headers)
    if (h.name == name) return &h.value;
  return nullptr;
}

std::string_view Request::header(std::string_view name) const {
  const std::string* value = find_header(name);
  return value ? std::string_view(*value) : std::string_view();
}

std::string_view Request::path() const {
  return std::string_view(target).substr(0, target.find('?'));
}

std::string_view Request::query() const {
  size_t mark = target.find('?');
  return mark == std::string::npos ? std::string_view() : std::string_view(target).substr(mark + 1);
}

Param query_param(std::string_view query, std::string_view name, std::string& value) {
  value.clear();
  for (std::string_view rest = query; !rest.empty();) {
    std::string_view pair = rest.substr(0, rest.find('&'));
    rest.remove_prefix(std::min(rest.size(), pair.size() + 1));
    std::string_view key = pair.substr(0, pair.find('='));
    if (key != name) continue;
    // "name" alone is present and empty.
    if (percent_decode(pair.substr(std::min(pair.size(), key.size() + 1)), value))
      return Param::kPresent;
    value.clear();
    return Param::kMalformed;
  }
  return Param::kAbsent;
}

// ---- RequestReader ----------------------------------------------------------------------------

RequestReader::RequestReader() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_url = on_url;
    s.on_header_field = on_header_field;
    s.on_header_value = on_header_value;
    s.on_chunk_extension_name = on_chunk_extension;
    s.on_chunk_extension_value = on_chunk_extension;
    s.on_headers_complete = on_headers_complete;
    s.on_body = on_body;
    s.on_message_complete = on_message_complete;
    return s;
  }();
  llhttp_init(&parser_, HTTP_REQUEST, &settings);
  parser_.data = this;
}

int RequestReader::fail(int status, std::string message) {
  error_status_ = status;
  error_message_ = std::move(message);
  return -1;
}

int RequestReader::count_head(size_t bytes, const char* what) {
  head_bytes_ += bytes;
  if (head_bytes_ <= kMaxHeadBytes) return 0;
  return fail(431, std::string(what) + " exceed " + std::to_string(kMaxHeadBytes) + " bytes");
}

int RequestReader::on_url(llhttp_t* p, const char* at, size_t length) {
  RequestReader* self = reader_of(p);
  if (self->count_head(length)) return -1;
  self->request_.target.append(at, length);
  return 0;
}

int RequestReader::on_header_field(llhttp_t* p, const char* at, size_t length) {
  RequestReader* self = reader_of(p);
  // A name may come in pieces (one per read); only its first piece starts a header, which costs
  // ": " and CRLF besides its bytes.
  bool first_piece = !self->in_name_;
  self->in_name_ = true;
  if (self->count_head(length + (first_piece ? 4 : 0))) return -1;
  if (self->headers_complete_) return 0;  // a trailer field
  std::vector<Header>& headers = self->request_.headers;
  if (first_piece) headers.emplace_back();
  for (const char* c = at; c != at + length; ++c)
    headers.back().name.push_back(*c >= 'A' && *c <= 'Z' ? static_cast<char>(*c + 32) : *c);
  return 0;
}

int RequestReader::on_header_value(llhttp_t* p, const char* at, size_t length) {
  RequestReader* self = reader_of(p);
  self->in_name_ = false;
  if (self->count_head(length)) return -1;
  if (!self->headers_complete_) self->request_.headers.back().value.append(at, length);
  return 0;
}

int RequestReader::on_chunk_extension(llhttp_t* p, const char*, size_t length) {
  return reader_of(p)->count_head(length, "chunk extensions, request line and headers");
}

int RequestReader::on_headers_complete(llhttp_t* p) {
  RequestReader* self = reader_of(p);
  Request& r = self->request_;
  self->headers_complete_ = true;
  r.method = static_cast<llhttp_method_t>(p->method);
  r.http10 = p->http_major == 1 && p->http_minor == 0;
  r.keep_alive = llhttp_should_keep_alive(p) != 0;
  if (p->http_major != 1 || p->http_minor > 1)
    return self->fail(400, "only HTTP/1.0 and HTTP/1.1 are supported");
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > kMaxBodyBytes)
    return self->fail(413, "body exceeds " + std::to_string(kMaxBodyBytes) + " bytes");
  // An HTTP/1.0 server ignores Expect (RFC 9110 §10.1.1).
  std::string_view expect = r.header("expect");
  if (!expect.empty() && !r.http10) {
    if (expect.size() != 12 || strncasecmp(expect.data(), "100-continue", 12) != 0)
      return self->fail(400, "unsupported Expect header");
    r.expect_continue = true;
  }
  return 0;
}

int RequestReader::on_body(llhttp_t* p, const char* at, size_t length) {
  RequestReader* self = reader_of(p);
  if (self->request_.body.size() + length > kMaxBodyBytes)
    return self->fail(413, "body exceeds " + std::to_string(kMaxBodyBytes) + " bytes");
  self->request_.body.append(at, length);
  return 0;
}

int RequestReader::on_message_complete(llhttp_t*) {
  return HPE_PAUSED;
}

RequestReader::Status RequestReader::read(const char* data, size_t length, size_t& used) {
  used = length;
  if (error_status_ != 0) return Status::kError;
  const char* from = data;
  llhttp_errno_t err = llhttp_execute(&parser_, from, length);
  if (err == HPE_PAUSED_UPGRADE) {
    // llhttp stops once more after an Upgrade request, which was answered already. The mock
    // switches to no other protocol: the bytes after it are HTTP again.
    from = llhttp_get_error_pos(&parser_);
    llhttp_resume_after_upgrade(&parser_);
    err = llhttp_execute(&parser_, from, length - static_cast<size_t>(from - data));
  }
  if (err == HPE_OK) return Status::kNeedMore;
  if (err == HPE_PAUSED) {
    used = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
    return Status::kComplete;
  }
  if (error_status_ == 0) {
    const char* why = llhttp_get_error_reason(&parser_);
    fail(400, std::string("malformed HTTP request: ") + (why ? why : llhttp_errno_name(err)));
  }
  return Status::kError;
}

void RequestReader::next() {
  llhttp_resume(&parser_);
  request_ = Request{};
  head_bytes_ = 0;
  in_name_ = false;
  headers_complete_ = false;
}

// ---- answers ----------------------------------------------------------------------------------

std::string response_head(int status, bool http10, std::string_view headers) {
  std::string out = http10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason(status);
  out += "\r\n";
  out += headers;
  out += "\r\n";
  return out;
}

std::string json_response(int status, bool http10, std::string headers, std::string_view body,
                          bool keep_alive) {
  headers += "Content-Type: application/json\r\nContent-Length: ";
  headers += std::to_string(body.size());
  headers += "\r\n";
  if (!keep_alive)
    headers += "Connection: close\r\n";
  else if (http10)
    headers += "Connection: keep-alive\r\n";
  std::string out = response_head(status, http10, headers);
  out += body;
  return out;
}

}  // namespace ssegw::mock
