#include "tests/integration/h2_client.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <stdexcept>

namespace itest {
namespace {

H2Client* self_of(void* user) {
  return static_cast<H2Client*>(user);
}

nghttp2_nv nv(const std::string& name, const std::string& value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

void put32(std::string& out, uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

uint32_t get32(std::string_view s, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(s[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3]));
}

}  // namespace

struct H2Client::Callbacks {
  static ssize_t send(nghttp2_session*, const uint8_t* data, size_t length, int, void* user) {
    self_of(user)->out_.append(reinterpret_cast<const char*>(data), length);
    return static_cast<ssize_t>(length);
  }
  static int header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                    size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    Stream& s = self_of(user)->streams_[frame->hd.stream_id];
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") s.status = std::stoi(v);
    s.headers.emplace_back(std::move(n), std::move(v));
    return 0;
  }
  static int data(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                  size_t length, void* user) {
    H2Client* self = self_of(user);
    self->streams_[stream_id].body.append(reinterpret_cast<const char*>(data), length);
    if (self->options_.stalled.count(stream_id))
      nghttp2_session_consume_connection(session, length);
    else
      nghttp2_session_consume(session, stream_id, length);
    return 0;
  }
  static int frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    H2Client* self = self_of(user);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      self->goaway_ = true;
      self->goaway_error_ = frame->goaway.error_code;
    } else if (frame->hd.type == NGHTTP2_RST_STREAM) {
      Stream& s = self->streams_[frame->hd.stream_id];
      s.reset = true;
      s.error_code = frame->rst_stream.error_code;
    }
    return 0;
  }
  static int close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user) {
    Stream& s = self_of(user)->streams_[stream_id];
    s.closed = true;
    if (error_code) s.error_code = error_code;
    return 0;
  }
  static ssize_t read_body(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source*, void* user) {
    std::string& body = self_of(user)->bodies_[stream_id];
    size_t n = std::min(length, body.size());
    std::copy(body.begin(), body.begin() + static_cast<ptrdiff_t>(n), buf);
    body.erase(0, n);
    if (body.empty()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
};

H2Client::H2Client(uint16_t port, Options options)
    : fd_(connect_to(port)), options_(std::move(options)) {
  nghttp2_session_callbacks* cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_send_callback(cb, Callbacks::send);
  nghttp2_session_callbacks_set_on_header_callback(cb, Callbacks::header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, Callbacks::data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, Callbacks::frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, Callbacks::close);
  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);  // the test opens windows itself
  nghttp2_session_client_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_window_size},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
  flush();
}

H2Client::~H2Client() {
  nghttp2_session_del(session_);
}

int32_t H2Client::submit(const std::string& method, const std::string& path,
                         const HeaderPairs& headers, const std::string& body) {
  static const std::string kMethod = ":method", kPath = ":path", kScheme = ":scheme",
                           kAuthority = ":authority", kHttp = "http", kHost = "127.0.0.1";
  std::vector<nghttp2_nv> list = {nv(kMethod, method), nv(kScheme, kHttp), nv(kAuthority, kHost),
                                  nv(kPath, path)};
  for (const auto& [name, value] : headers) list.push_back(nv(name, value));
  nghttp2_data_provider provider{};
  provider.read_callback = Callbacks::read_body;
  int32_t id = nghttp2_submit_request(session_, nullptr, list.data(), list.size(),
                                      body.empty() ? nullptr : &provider, nullptr);
  if (id < 0) throw std::runtime_error("nghttp2_submit_request failed");
  if (!body.empty()) bodies_[id] = body;
  streams_[id];
  flush();
  return id;
}

void H2Client::reset(int32_t stream_id, uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code);
  flush();
}

void H2Client::flush() {
  nghttp2_session_send(session_);
  if (!out_.empty() && !eof_) {
    try {
      send_all(fd_.get(), out_);
    } catch (const std::runtime_error&) {
      eof_ = true;  // the server closed: what it sent is still read
    }
  }
  out_.clear();
}

bool H2Client::pump_until(const std::function<bool()>& done, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    flush();
    if (done()) return true;
    if (eof_ || Clock::now() >= deadline) return done();
    std::string in;
    ReadStatus r = read_some(fd_.get(), in, 10ms);
    if (!in.empty()) {
      ssize_t used = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(in.data()),
                                              in.size());
      if (used < 0) eof_ = true;
    }
    if (r == ReadStatus::kEof) eof_ = true;
  }
}

H2Client::Stream& H2Client::finish(int32_t stream_id, Ms timeout) {
  if (!pump_until([&] { return streams_[stream_id].closed; }, timeout))
    throw std::runtime_error("stream " + std::to_string(stream_id) + " did not close in time");
  return streams_[stream_id];
}

// ---- raw frames -------------------------------------------------------------------------------

uint32_t H2Frame::error_code() const {
  if (type == kGoaway && payload.size() >= 8) return get32(payload, 4);
  if (type == kRstStream && payload.size() >= 4) return get32(payload, 0);
  return 0;
}

std::string h2_frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  std::string out;
  size_t n = payload.size();
  out += static_cast<char>(n >> 16);
  out += static_cast<char>(n >> 8);
  out += static_cast<char>(n);
  out += static_cast<char>(type);
  out += static_cast<char>(flags);
  put32(out, stream & 0x7fffffff);
  out.append(payload);
  return out;
}

std::string h2_headers_block(const HeaderPairs& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (name.size() >= 127 || value.size() >= 127)
      throw std::runtime_error("h2_headers_block: field too long");
    out += '\0';  // literal without indexing, new name
    out += static_cast<char>(name.size());
    out += name;
    out += static_cast<char>(value.size());
    out += value;
  }
  return out;
}

std::string h2_client_start() {
  return std::string(kH2Preface) + h2_frame(kSettings, 0, 0, "");
}

std::string h2_get(uint32_t stream, const std::string& path, const HeaderPairs& extra) {
  HeaderPairs fields = {
      {":method", "GET"}, {":scheme", "http"}, {":authority", "127.0.0.1"}, {":path", path}};
  fields.insert(fields.end(), extra.begin(), extra.end());
  return h2_frame(kHeaders, 0x5 /* END_STREAM | END_HEADERS */, stream, h2_headers_block(fields));
}

bool read_frames(int fd, std::string& buffer, std::vector<H2Frame>& frames, bool& eof,
                 const std::function<bool(const std::vector<H2Frame>&)>& done, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    while (buffer.size() >= 9) {
      size_t length = (static_cast<size_t>(static_cast<uint8_t>(buffer[0])) << 16) |
                      (static_cast<size_t>(static_cast<uint8_t>(buffer[1])) << 8) |
                      static_cast<uint8_t>(buffer[2]);
      if (buffer.size() < 9 + length) break;
      H2Frame f;
      f.type = static_cast<uint8_t>(buffer[3]);
      f.flags = static_cast<uint8_t>(buffer[4]);
      f.stream = get32(buffer, 5) & 0x7fffffff;
      f.payload = buffer.substr(9, length);
      frames.push_back(std::move(f));
      buffer.erase(0, 9 + length);
    }
    if (done(frames)) return true;
    if (eof || Clock::now() >= deadline) return done(frames);
    if (read_some(fd, buffer, 10ms) == ReadStatus::kEof) eof = true;
  }
}

const H2Frame* find_frame(const std::vector<H2Frame>& frames, uint8_t type, int64_t stream) {
  for (const H2Frame& f : frames)
    if (f.type == type && (stream < 0 || f.stream == static_cast<uint32_t>(stream))) return &f;
  return nullptr;
}

}  // namespace itest
