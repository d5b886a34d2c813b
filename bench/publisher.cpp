#include "bench/publisher.hpp"

#include <algorithm>
#include <cstdio>

#include "bench/payload.hpp"

namespace bench {

namespace {

constexpr uint64_t kRetryNs = 100'000'000;

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

// --- PublisherConn -------------------------------------------------------------------------------

bool PublisherConn::enqueue(uint32_t channel) {
  if (queue_.size() >= kMaxQueue) return false;
  queue_.push_back(channel);
  return true;
}

uint64_t PublisherConn::drop_queue() {
  uint64_t n = queue_.size();
  queue_.clear();
  return n;
}

uint64_t PublisherConn::abandon_in_flight() {
  uint64_t n = in_flight_.size();
  in_flight_.clear();
  return n;
}

void PublisherConn::connect() {
  if (state_ != State::Closed) return;
  static const llhttp_settings_t callbacks = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_complete = &PublisherConn::on_message_complete;
    return s;
  }();
  llhttp_init(&http_, HTTP_RESPONSE, &callbacks);
  http_.data = this;
  close_after_response_ = false;
  if (uv_tcp_init(owner_->loop(), &tcp_) != 0) {
    retry_at_ns_ = uv_hrtime() + kRetryNs;
    return;
  }
  tcp_.data = this;
  state_ = State::Connecting;
  uv_tcp_nodelay(&tcp_, 1);  // requests are small and latency is what we measure
  connect_req_.data = this;
  const sockaddr_in& addr = owner_->run().options.publish_url.addr;
  if (uv_tcp_connect(&connect_req_, &tcp_, reinterpret_cast<const sockaddr*>(&addr),
                     &PublisherConn::on_connect) != 0) {
    broken();
  }
}

void PublisherConn::pump() {
  if (state_ == State::Closed) {
    if (!queue_.empty() && uv_hrtime() >= retry_at_ns_) {
      ++owner_->stats().reconnects;
      connect();
    }
    return;
  }
  if (state_ != State::Open || close_after_response_) return;
  RunState& run = owner_->run();
  PublishStats& stats = owner_->stats();
  const uint32_t pipeline = run.options.pipeline;
  bool built = false;
  uint64_t now = 0;
  while (in_flight_.size() < pipeline && !queue_.empty()) {
    if (!built) now = uv_hrtime();
    built = true;
    uint32_t channel = queue_.front();
    queue_.pop_front();
    ChannelState& cs = run.channels[channel];
    uint64_t seq = cs.seq.load(std::memory_order_relaxed) + 1;
    cs.seq.store(seq, std::memory_order_relaxed);
    uint32_t expected = cs.connected.load(std::memory_order_relaxed);
    owner_->build_request(pending_, channel, seq, now);
    in_flight_.push_back({channel, expected, now});
    ++stats.sent;
  }
  flush();
}

void PublisherConn::flush() {
  if (write_active_ || pending_.empty() || state_ != State::Open) return;
  writing_.swap(pending_);
  pending_.clear();
  uv_buf_t buf = uv_buf_init(writing_.data(), static_cast<unsigned>(writing_.size()));
  write_req_.data = this;
  if (uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1,
               &PublisherConn::on_write) != 0) {
    broken();
    return;
  }
  write_active_ = true;
}

void PublisherConn::broken() {
  owner_->stats().failed_conn += in_flight_.size();
  in_flight_.clear();
  pending_.clear();
  retry_at_ns_ = uv_hrtime() + kRetryNs;
  close();
}

void PublisherConn::close() {
  if (state_ == State::Closed || state_ == State::Closing) return;
  state_ = State::Closing;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &PublisherConn::on_close);
}

void PublisherConn::on_close(uv_handle_t* handle) {
  auto* self = static_cast<PublisherConn*>(handle->data);
  self->state_ = State::Closed;
  self->write_active_ = false;
}

void PublisherConn::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<PublisherConn*>(req->data);
  if (self->state_ != State::Connecting) return;
  if (status != 0) {
    self->broken();
    return;
  }
  self->state_ = State::Open;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp_), &PublisherConn::on_alloc,
                    &PublisherConn::on_read) != 0) {
    self->broken();
    return;
  }
  self->pump();
}

void PublisherConn::on_write(uv_write_t* req, int status) {
  auto* self = static_cast<PublisherConn*>(req->data);
  self->write_active_ = false;
  if (self->state_ != State::Open) return;  // cancelled by close; writing_ is still ours
  if (status != 0) {
    self->broken();
    return;
  }
  self->flush();
}

void PublisherConn::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<PublisherConn*>(handle->data);
  *buf = uv_buf_init(self->read_buf_, sizeof self->read_buf_);
}

void PublisherConn::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<PublisherConn*>(stream->data);
  if (self->state_ != State::Open) return;
  if (nread < 0) {
    self->broken();
    return;
  }
  if (nread == 0) return;
  llhttp_errno_t err = llhttp_execute(&self->http_, buf->base, static_cast<size_t>(nread));
  if (err != HPE_OK) {
    self->broken();
    return;
  }
  if (self->close_after_response_) {
    // The server will close after its answer: reconnect for what is left.
    if (self->in_flight_.empty()) self->close();
    return;
  }
  self->pump();
}

int PublisherConn::on_message_complete(llhttp_t* parser) {
  auto* self = static_cast<PublisherConn*>(parser->data);
  if (self->in_flight_.empty()) return -1;  // an answer to nothing we asked
  InFlight f = self->in_flight_.front();
  self->in_flight_.pop_front();
  PublishStats& stats = self->owner_->stats();
  if (parser->status_code >= 200 && parser->status_code < 300) {
    ++stats.published;
    stats.expected_deliveries += f.expected;
    uint64_t now = uv_hrtime();
    stats.ack.record(now - f.sent_ns);
  } else {
    ++stats.failed_status;
    stats.last_bad_status = parser->status_code;
  }
  if (!llhttp_should_keep_alive(parser)) self->close_after_response_ = true;
  return 0;
}

// --- Publisher -----------------------------------------------------------------------------------

Publisher::Publisher(RunState& run, uv_loop_t* loop) : run_(run), loop_(loop) {
  const Options& o = run.options;
  n_conns_ = std::min(o.publishers, o.channels);
  conns_.reset(new PublisherConn[n_conns_]);
  for (uint32_t i = 0; i < n_conns_; ++i) conns_[i].init(this);
  const char* content_type =
      o.publish_mode == PublishMode::Pushpin ? "application/json" : "text/plain";
  for (uint32_t c = 0; c < o.channels; ++c) {
    std::string h = "POST " + expand_channel(o.publish_url.path_query, run.names[c]) +
                    " HTTP/1.1\r\nHost: " + o.publish_url.host +
                    "\r\nContent-Type: " + content_type + "\r\nUser-Agent: ssegw-bench\r\n";
    if (!o.publish_token.empty()) h += "Authorization: Bearer " + o.publish_token + "\r\n";
    h += "Content-Length: ";
    heads_.push_back(std::move(h));
    if (o.publish_mode == PublishMode::Pushpin) json_channels_.push_back(json_escape(run.names[c]));
  }
}

void Publisher::build_request(std::string& out, uint32_t channel, uint64_t seq, uint64_t now_ns) {
  const Options& o = run_.options;
  PayloadStamp stamp{now_ns, seq, run_.run_id};
  scratch_.clear();
  if (o.publish_mode == PublishMode::Pushpin) {
    // Pushpin writes "content" to each http-stream subscriber as is, so it carries the SSE frame.
    scratch_ += "{\"items\":[{\"channel\":\"";
    scratch_ += json_channels_[channel];
    scratch_ += "\",\"formats\":{\"http-stream\":{\"content\":\"data: ";
    append_payload(scratch_, stamp, o.size);
    scratch_ += "\\n\\n\"}}}]}";
  } else {
    append_payload(scratch_, stamp, o.size);
  }
  out += heads_[channel];
  out += std::to_string(scratch_.size());
  out += "\r\n\r\n";
  out += scratch_;
}

void Publisher::connect() {
  for (uint32_t i = 0; i < n_conns_; ++i) conns_[i].connect();
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  timer_open_ = true;
}

void Publisher::start(uint64_t now_ns) {
  start_ns_ = now_ns;
  generating_ = true;
  uv_timer_start(&timer_, &Publisher::on_timer, 0, 1);
}

void Publisher::stop_generating(uint64_t now) {
  if (!generating_) return;
  generating_ = false;
  end_ns_ = now;
  for (uint32_t i = 0; i < n_conns_; ++i) stats_.unsent += conns_[i].drop_queue();
}

bool Publisher::idle() const {
  for (uint32_t i = 0; i < n_conns_; ++i) {
    if (!conns_[i].idle()) return false;
  }
  return true;
}

void Publisher::close() {
  for (uint32_t i = 0; i < n_conns_; ++i) {
    stats_.unanswered += conns_[i].abandon_in_flight();
    conns_[i].close();
  }
  if (timer_open_) {
    timer_open_ = false;
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Publisher::on_timer_close);
  }
}

void Publisher::on_timer(uv_timer_t* handle) {
  static_cast<Publisher*>(handle->data)->tick();
}

void Publisher::on_timer_close(uv_handle_t*) {}

void Publisher::tick() {
  if (generating_) {
    const Options& o = run_.options;
    uint64_t now = uv_hrtime();
    auto due = static_cast<uint64_t>(static_cast<double>(now - start_ns_) / 1e9 * o.rate);
    for (; issued_ < due; ++issued_) {
      uint32_t channel = static_cast<uint32_t>(issued_ % o.channels);
      if (!conns_[channel % n_conns_].enqueue(channel)) ++stats_.skipped;
    }
  }
  for (uint32_t i = 0; i < n_conns_; ++i) conns_[i].pump();
}

}  // namespace bench
