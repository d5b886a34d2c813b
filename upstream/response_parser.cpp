#include "upstream/response_parser.hpp"

#include <cctype>

#include "gateway/base/ascii.hpp"

namespace ssegw::upstream {
namespace {

std::string size_in_words(size_t bytes) {
  if (bytes % 1024 == 0) return std::to_string(bytes / 1024) + " KiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace

bool response_has_body(bool head_request, int status) {
  return !head_request && status >= 200 && status != 204 && status != 304;
}

const llhttp_settings_t& ResponseParser::settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_header_field = on_header_field;
    s.on_header_value = on_header_value;
    s.on_headers_complete = on_headers_complete;
    s.on_body = on_body;
    s.on_message_complete = on_message_complete;
    return s;
  }();
  return settings;
}

ResponseParser::ResponseParser(Handler& handler, size_t max_head_bytes)
    : handler_(handler), max_head_bytes_(max_head_bytes) {
  reset(false);
}

void ResponseParser::reset(bool head_request) {
  llhttp_init(&parser_, HTTP_RESPONSE, &settings());
  parser_.data = this;
  headers_.clear();
  error_.clear();
  head_bytes_ = 0;
  in_field_ = false;
  head_request_ = head_request;
  head_complete_ = false;
  complete_ = false;
  stopped_ = false;
}

ResponseParser::Result ResponseParser::feed(const char* data, size_t length) {
  if (complete_) return {Status::kComplete, 0};
  if (stopped_) return {Status::kStopped, 0};
  if (!error_.empty()) return {Status::kError, 0};
  llhttp_errno_t err = llhttp_execute(&parser_, data, length);
  if (err == HPE_OK) return {Status::kNeedMore, length};
  size_t used = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
  if (stopped_) return {Status::kStopped, used};
  if (err == HPE_PAUSED && complete_) return {Status::kComplete, used};
  // A callback's own refusal says more than llhttp's "User callback error".
  if (error_.empty()) error_ = llhttp_get_error_reason(&parser_);
  return {Status::kError, used};
}

ResponseParser::Status ResponseParser::finish() {
  if (complete_) return Status::kComplete;
  if (stopped_) return Status::kStopped;
  if (!error_.empty() || !head_complete_) {
    if (error_.empty()) error_ = "the connection ended before the response head";
    return Status::kError;
  }
  // A body delimited by the close ends here: llhttp then calls on_message_complete.
  llhttp_finish(&parser_);
  if (complete_) return Status::kComplete;
  error_ = "the connection ended inside the response body";
  return Status::kError;
}

bool ResponseParser::count_head_bytes(size_t length) {
  head_bytes_ += length;
  if (head_bytes_ <= max_head_bytes_) return true;
  error_ = "response heads larger than " + size_in_words(max_head_bytes_);
  return false;
}

int ResponseParser::refuse(std::string why) {
  error_ = std::move(why);
  return -1;
}

int ResponseParser::on_header_field(llhttp_t* p, const char* at, size_t length) {
  auto* self = static_cast<ResponseParser*>(p->data);
  // A name may come in several pieces (one per read): the 4 bytes of ": " and CRLF count once.
  bool starts = !self->in_field_;
  if (!self->count_head_bytes(length + (starts ? 4 : 0))) return -1;
  self->in_field_ = true;
  if (self->head_complete_) return 0;  // a trailer field: counted, not kept
  if (starts) self->headers_.emplace_back();
  base::append_lower(self->headers_.back().name, std::string_view(at, length));
  return 0;
}

int ResponseParser::on_header_value(llhttp_t* p, const char* at, size_t length) {
  auto* self = static_cast<ResponseParser*>(p->data);
  if (!self->count_head_bytes(length)) return -1;
  self->in_field_ = false;
  if (self->head_complete_) return 0;
  self->headers_.back().value.append(at, length);
  return 0;
}

int ResponseParser::on_headers_complete(llhttp_t* p) {
  auto* self = static_cast<ResponseParser*>(p->data);
  int status = static_cast<int>(p->status_code);
  if (status == 101) return self->refuse("101 Switching Protocols, but no upgrade was asked for");
  if (status < 200) {  // interim (103 Early Hints, say): dropped; the final head follows
    self->headers_.clear();
    self->in_field_ = false;
    return 1;  // no body, whatever its headers say
  }
  self->head_complete_ = true;
  if (!self->handler_.on_response_head(status, self->headers_)) {
    self->stopped_ = true;
    return -1;
  }
  // llhttp cannot know the request's method, and reads a 304's Content-Length as a body length:
  // 1 tells it that this answer ends with its head.
  return response_has_body(self->head_request_, status) ? 0 : 1;
}

int ResponseParser::on_body(llhttp_t* p, const char* at, size_t length) {
  auto* self = static_cast<ResponseParser*>(p->data);
  if (self->handler_.on_response_body({at, length})) return 0;
  self->stopped_ = true;
  return -1;
}

int ResponseParser::on_message_complete(llhttp_t* p) {
  auto* self = static_cast<ResponseParser*>(p->data);
  if (p->status_code < 200) return 0;  // an interim answer ended: parsing goes on to the final
  self->complete_ = true;
  return HPE_PAUSED;
}

}  // namespace ssegw::upstream
