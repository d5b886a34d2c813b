#include "gateway/http/h2_stream.hpp"

#include <llhttp.h>
#include <nghttp2/nghttp2.h>

#include <string>
#include <vector>

#include "gateway/base/ascii.hpp"
#include "gateway/http/h2_session.hpp"
#include "gateway/http/response.hpp"

namespace ssegw::http {
namespace {

// llhttp's number for a method name; -1 for one it does not know (HTTP/1.1 answers those 400).
int method_number(std::string_view name) {
#define SSEGW_METHOD(num, upper, string) \
  if (name == #string) return num;
  HTTP_METHOD_MAP(SSEGW_METHOD)
#undef SSEGW_METHOD
  return -1;
}

// Headers that describe an HTTP/1.1 connection, never an HTTP/2 answer (RFC 9113 8.2.2).
bool hop_by_hop(std::string_view name) {
  return name == "connection" || name == "transfer-encoding" || name == "keep-alive" ||
         name == "proxy-connection" || name == "upgrade" || name == "te";
}

// The answer's header fields, from "Name: value\r\n" lines; the names lower-cased, as HTTP/2
// requires.
class HeaderList {
 public:
  void add(std::string name, std::string value) {
    names_.push_back(std::move(name));
    values_.push_back(std::move(value));
  }
  void add_lines(std::string_view lines) {
    while (!lines.empty()) {
      size_t end = lines.find("\r\n");
      std::string_view line = lines.substr(0, end);
      lines.remove_prefix(end == std::string_view::npos ? lines.size() : end + 2);
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name;
      base::append_lower(name, line.substr(0, colon));
      if (hop_by_hop(name)) continue;
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      add(std::move(name), std::string(value));
    }
  }
  std::vector<nghttp2_nv> nv() const {
    std::vector<nghttp2_nv> out;
    out.reserve(names_.size());
    for (size_t i = 0; i < names_.size(); ++i)
      out.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(names_[i].data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(values_[i].data())),
                     names_[i].size(), values_[i].size(), NGHTTP2_NV_FLAG_NONE});
    return out;
  }

 private:
  std::vector<std::string> names_;
  std::vector<std::string> values_;
};

ssize_t read_data(nghttp2_session*, int32_t, uint8_t*, size_t length, uint32_t* flags,
                  nghttp2_data_source* source, void*) {
  return static_cast<H2Stream*>(source->ptr)->read_length(length, flags);
}

}  // namespace

H2Stream::H2Stream(H2Session& session, int32_t id, uint64_t now_ms)
    : session_(session), id_(id), started_ms_(now_ms) {
  request_.version_major = 2;
  request_.version_minor = 0;
}

H2Stream::~H2Stream() = default;

uint64_t H2Stream::id() const {
  return session_.id();
}

Lifetime H2Stream::lifetime() const {
  if (!lifetime_) lifetime_ = std::make_shared<int>(0);
  return lifetime_;
}

// ---- the request ------------------------------------------------------------------------------

void H2Stream::add_header(std::string_view name, std::string_view value) {
  if (state_ != State::kRequest) return;
  // Each field costs its bytes plus 32, as HPACK counts a header list (RFC 7541 4.1): a 1-byte
  // indexed reference to a long field costs what the decoded field holds in memory, and a field
  // of nothing still costs a Header. The count caps the Headers (and their vector) per request.
  size_t cost = name.size() + value.size() + kFieldOverhead;
  header_bytes_ += cost;
  session_.header_bytes_ += cost;
  if (header_bytes_ > session_.limits().max_header_bytes) {
    refuse(431, "headers_too_large",
           "headers exceed " + std::to_string(session_.limits().max_header_bytes) + " bytes");
    return;
  }
  if (++header_fields_ > kMaxHeaderFields) {
    refuse(431, "headers_too_large",
           "more than " + std::to_string(kMaxHeaderFields) + " header fields");
    return;
  }
  // Requests held at once on the connection (waiting for an answer, or for the client to read
  // one): a cap of their header bytes across all streams.
  if (session_.header_bytes_ > session_.max_held_header_bytes_) {
    refuse(431, "headers_too_large", "the connection holds too many request headers");
    return;
  }
  // nghttp2 has checked the field (RFC 9113 8.2 and 8.3): lower-case names, no connection-specific
  // field, the pseudo-header fields of a request and each at most once.
  if (name == ":method") {
    int method = method_number(value);
    if (method < 0) return refuse(400, "bad_request", "unknown method");
    request_.method = static_cast<uint8_t>(method);
    has_method_ = true;
  } else if (name == ":path") {
    request_.target.assign(value);
    has_path_ = true;
  } else if (name == ":authority") {
    authority_.assign(value);
  } else if (name.empty() || name[0] == ':') {
    // :scheme; nghttp2 refuses any other pseudo-header field itself.
  } else if (name == "cookie") {
    // RFC 9113 8.2.3: cookie crumbs come as separate fields; HTTP/1.1 has them in one.
    for (Header& h : request_.headers)
      if (h.name == "cookie") {
        h.value += "; ";
        h.value.append(value);
        return;
      }
    request_.headers.push_back({std::string(name), std::string(value)});
  } else {
    request_.headers.push_back({std::string(name), std::string(value)});
  }
}

void H2Stream::add_body(std::string_view bytes) {
  if (state_ != State::kRequest) return;
  if (request_.body.size() + bytes.size() > session_.limits().max_body_bytes) {
    refuse(413, "payload_too_large",
           "body exceeds " + std::to_string(session_.limits().max_body_bytes) + " bytes");
    return;
  }
  request_.body.append(bytes);
}

// What HTTP/1.1's parser checks of the request line (request_parser.cpp): one origin-form path
// of visible ASCII, "*" for OPTIONS only, no CONNECT.
void H2Stream::dispatch(std::unique_ptr<StreamHandler> handler) {
  if (state_ != State::kRequest) return;
  if (request_.method == HTTP_CONNECT)
    return refuse(400, "bad_request", "CONNECT is not supported (no authority-form targets)");
  if (!has_method_ || !has_path_)
    return refuse(400, "bad_request", "a request needs :method and :path");
  const std::string& target = request_.target;
  if (target == "*") {
    if (request_.method != HTTP_OPTIONS)
      return refuse(400, "bad_request", "the request target \"*\" is for OPTIONS only");
  } else if (target.empty() || target[0] != '/') {
    return refuse(400, "bad_request", "the request target must be a path starting with '/'");
  }
  for (unsigned char c : target) {
    if (c <= 0x20 || c >= 0x7F)
      return refuse(400, "bad_request", "the request target may hold only visible ASCII");
    if (c == '#')
      return refuse(400, "bad_request", "the request target must not contain a fragment ('#')");
  }
  // :authority stands for Host (RFC 9113 8.3.1); a Host field of its own is then ignored.
  if (!authority_.empty()) {
    std::erase_if(request_.headers, [](const Header& h) { return h.name == "host"; });
    request_.headers.push_back({"host", std::move(authority_)});
  }
  handler_ = std::move(handler);
  state_ = State::kAwaiting;
  session_.body_done(this);
  awaited_since_ms_ = session_.now_ms();
  handler_->handle(request_);
}

void H2Stream::refuse(int status, const char* code, std::string message) {
  if (answered()) return;
  label_ = "unmatched";
  respond_error(status, code, message);
  state_ = State::kRefused;
  release_request();
  session_.body_done(this);
}

// The request is no longer needed: its answer is complete (or the stream was reset or refused).
// Never from inside a handler's call, which may still read the request it was given.
void H2Stream::release_request() {
  request_ = Request();
  std::string().swap(authority_);
  std::string().swap(answer_headers_);
  session_.header_bytes_ -= header_bytes_;
  header_bytes_ = 0;
  request_released_ = true;
}

// ---- answers ----------------------------------------------------------------------------------

void H2Stream::submit(int status, std::string_view content_type, std::string_view header_lines,
                      std::string_view extra_lines, size_t content_length, bool with_body) {
  HeaderList headers;
  headers.add(":status", std::to_string(status));
  if (!content_type.empty()) headers.add("content-type", std::string(content_type));
  if (content_length != std::string::npos)
    headers.add("content-length", std::to_string(content_length));
  headers.add_lines(extra_lines);
  headers.add_lines(header_lines);
  headers.add_lines(answer_headers_);
  std::vector<nghttp2_nv> nv = headers.nv();
  nghttp2_data_provider provider;
  provider.source.ptr = this;
  provider.read_callback = read_data;
  nghttp2_submit_response(session_.nghttp2(), id_, nv.data(), nv.size(),
                          with_body ? &provider : nullptr);
  session_.handler().count(label_, status);
  session_.tcp().want_flush(/*first=*/true);  // answers leave before deliveries
}

void H2Stream::respond(int status, std::string_view content_type, std::string_view body,
                       std::string_view extra_headers) {
  if (answered() && state_ != State::kDeferred) return;
  bool no_body = status == 204 || status == 304;
  bool head = request_.method == HTTP_HEAD;
  bool with_body = !no_body && !head && !body.empty();
  submit(status, no_body ? std::string_view() : content_type, {}, extra_headers,
         no_body ? std::string::npos : body.size(), with_body);
  if (with_body) {
    queue_.push(base::Frame::copy_of(body), false);
    queued(body.size());
  }
  end_queued_ = true;
  state_ = State::kAnswered;
}

void H2Stream::respond_error(int status, const char* code, std::string_view message,
                             std::string_view extra_headers) {
  respond(status, "application/json", json_error(code, message), extra_headers);
}

AnswerSlot H2Stream::defer() {
  if (state_ != State::kAwaiting) return 0;
  state_ = State::kDeferred;
  return 1;  // one answer per stream
}

void H2Stream::complete(AnswerSlot slot, int status, std::string_view content_type,
                        std::string_view body, std::string_view extra_headers) {
  if (slot != 1 || state_ != State::kDeferred) return;  // timed out meanwhile
  respond(status, content_type, body, extra_headers);
}

void H2Stream::start_stream(int status, std::string_view header_lines, bool has_body) {
  if (answered() && state_ != State::kDeferred) return;
  bool head = request_.method == HTTP_HEAD;
  submit(status, {}, header_lines, {}, std::string::npos, has_body && !head);
  state_ = has_body && !head ? State::kStreaming : State::kAnswered;
  if (long_lived_) release_request();
}

// A proxied answer's chunk: one stream per request, so the copy is not per subscriber.
void H2Stream::write_body(std::string_view bytes) {
  if (bytes.empty() || state_ != State::kStreaming) return;
  queue_.push(base::Frame::copy_of(bytes), false);
  queued(bytes.size());
}

void H2Stream::write_frame(const base::FrameRef& frame) {
  if (state_ != State::kStreaming || frame->size() == 0) return;
  queue_.push(frame, false);
  queued(frame->size());
}

void H2Stream::write_prefixed(std::string_view prefix, const base::FrameRef& frame, size_t offset) {
  if (state_ != State::kStreaming) return;
  std::string_view rest = frame->raw().substr(offset);
  if (!prefix.empty()) queue_.push_copy(prefix);
  if (!rest.empty()) queue_.push_view(frame, rest);
  queued(prefix.size() + rest.size());
}

void H2Stream::end_stream() {
  if (state_ != State::kStreaming) return;
  state_ = State::kAnswered;
  end_queued_ = true;
  if (data_deferred_) {
    data_deferred_ = false;
    session_.resume(this);
  }
}

void H2Stream::abort() {
  if (state_ == State::kReset) return;
  state_ = State::kReset;
  queue_.clear();
  queued_bytes_ = 0;
  head_offset_ = 0;
  nghttp2_submit_rst_stream(session_.nghttp2(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
  session_.tcp().want_flush();
}

// ---- the DATA source --------------------------------------------------------------------------

void H2Stream::queued(size_t bytes) {
  if (bytes == 0) return;
  queued_bytes_ += bytes;
  if (data_deferred_) {
    data_deferred_ = false;
    nghttp2_session_resume_data(session_.nghttp2(), id_);
  }
  session_.tcp().want_flush();  // this turn's pass serialises it, with everything else
}

ssize_t H2Stream::read_length(size_t max, uint32_t* flags) {
  if (state_ == State::kReset) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (queued_bytes_ == 0) {
    if (end_queued_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    data_deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  size_t length = std::min(max, queued_bytes_);
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (length == queued_bytes_ && end_queued_) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(length);
}

// The frame's header (copied into the connection's arena), then `length` bytes off the front of
// the queue: views of the shared frames, and copies of the small copied pieces.
void H2Stream::send(const uint8_t* frame_header, size_t length) {
  net::TcpStream& tcp = session_.tcp();
  tcp.write_copy({reinterpret_cast<const char*>(frame_header), 9});
  queued_bytes_ -= length;
  sent_bytes_ += length;
  notify_ = true;
  while (length > 0) {
    const net::FrameQueue::Entry& entry = queue_.front();
    size_t left = entry.length - head_offset_;
    size_t take = std::min(left, length);
    std::string_view bytes = entry.bytes().substr(head_offset_, take);
    if (const base::Frame* frame = entry.frame()) {
      frame->retain();  // the connection's queue holds its own reference
      tcp.write_view(base::FrameRef::adopt(const_cast<base::Frame*>(frame)), bytes);
    } else {
      tcp.write_copy(bytes);
    }
    length -= take;
    if (take < left) {
      head_offset_ += static_cast<uint32_t>(take);
      return;
    }
    head_offset_ = 0;
    queue_.pop();
  }
}

}  // namespace ssegw::http
