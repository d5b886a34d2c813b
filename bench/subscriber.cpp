#include "bench/subscriber.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>

#include "bench/payload.hpp"
#include "bench/subscriber_pool.hpp"

namespace bench {

void Subscriber::init(SubscriberPool* pool, uint32_t channel, uint32_t source_ip) {
  pool_ = pool;
  channel_ = channel;
  source_ip_ = static_cast<uint8_t>(source_ip);
  sse_.set_handler(&Subscriber::on_event, this);
}

void Subscriber::start(uint64_t now_ns) {
  if (state_ != State::Idle) return;
  const Options& o = pool_->run().options;
  bump(pool_->stats().started);
  started_ns_ = now_ns;
  state_ = State::Connecting;
  static const llhttp_settings_t callbacks = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_headers_complete = &Subscriber::on_headers_complete;
    s.on_body = &Subscriber::on_body;
    s.on_message_complete = &Subscriber::on_message_complete;
    return s;
  }();
  llhttp_init(&http_, HTTP_RESPONSE, &callbacks);
  http_.data = this;

  // uv_tcp_init_ex creates the socket now, so IP_BIND_ADDRESS_NO_PORT can go on before the bind:
  // the port is then chosen at connect time per (source, destination) pair instead of being
  // reserved at bind time for the source address alone.
  if (uv_tcp_init_ex(pool_->loop(), &tcp_, AF_INET) != 0) {
    state_ = State::Closed;
    ++pool_->stats().failed_connect;
    bump(pool_->stats().failed);
    pool_->on_resolved();
    return;
  }
  handle_open_ = true;
  tcp_.data = this;
  int rc = 0;
  if (source_ip_ != 0) {
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    }
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | source_ip_);
    rc = uv_tcp_bind(&tcp_, reinterpret_cast<const sockaddr*>(&src), 0);
  }
  if (rc == 0) {
    connect_req_.data = this;
    rc = uv_tcp_connect(&connect_req_, &tcp_,
                        reinterpret_cast<const sockaddr*>(&o.subscribe_url.addr),
                        &Subscriber::on_connect);
  }
  if (rc != 0) fail(Failure::Connect);
}

void Subscriber::check_timeout(uint64_t now_ns, uint64_t timeout_ns) {
  if (pending() && now_ns - started_ns_ >= timeout_ns) fail(Failure::Timeout);
}

void Subscriber::close() {
  if (state_ == State::Idle) {
    state_ = State::Closed;
    return;
  }
  if (state_ == State::Closing || state_ == State::Closed) return;
  pool_->stats().comments += sse_.comments();
  if (state_ == State::Streaming) {
    pool_->run().channels[channel_].connected.fetch_sub(1, std::memory_order_relaxed);
  } else if (pending()) {
    pool_->on_resolved();
  }
  if (!handle_open_) {
    state_ = State::Closed;
    return;
  }
  state_ = State::Closing;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Subscriber::on_close);
}

void Subscriber::on_close(uv_handle_t* handle) {
  auto* self = static_cast<Subscriber*>(handle->data);
  self->handle_open_ = false;
  self->state_ = State::Closed;
}

void Subscriber::fail(Failure why) {
  if (!pending()) return;
  SubscriberStats& s = pool_->stats();
  switch (why) {
    case Failure::Connect:
      ++s.failed_connect;
      break;
    case Failure::Timeout:
      ++s.failed_timeout;
      break;
    case Failure::Status:
      ++s.failed_status;
      break;
    case Failure::Closed:
      ++s.failed_closed;
      break;
    case Failure::Protocol:
      ++s.failed_protocol;
      break;
  }
  bump(s.failed);
  close();
}

void Subscriber::lose_stream() {
  if (state_ != State::Streaming) return;
  ++pool_->stats().disconnected;
  close();
}

void Subscriber::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<Subscriber*>(req->data);
  if (self->state_ != State::Connecting) return;  // closed meanwhile (timeout, stop)
  if (status != 0) {
    self->fail(Failure::Connect);
    return;
  }
  self->state_ = State::AwaitingHead;
  auto* stream = reinterpret_cast<uv_stream_t*>(&self->tcp_);
  const std::string& request = self->pool_->request(self->channel_);
  // The request is shared by every subscriber of the channel and lives as long as the pool.
  uv_buf_t buf =
      uv_buf_init(const_cast<char*>(request.data()), static_cast<unsigned>(request.size()));
  self->write_req_.data = self;
  if (uv_write(&self->write_req_, stream, &buf, 1, &Subscriber::on_write) != 0 ||
      uv_read_start(stream, &Subscriber::on_alloc, &Subscriber::on_read) != 0) {
    self->fail(Failure::Connect);
  }
}

void Subscriber::on_write(uv_write_t* req, int status) {
  auto* self = static_cast<Subscriber*>(req->data);
  if (status != 0 && self->state_ == State::AwaitingHead) self->fail(Failure::Connect);
}

void Subscriber::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  // One buffer per loop: each read is parsed to the end before the next one is allocated.
  auto* self = static_cast<Subscriber*>(handle->data);
  *buf = uv_buf_init(self->pool_->read_buffer(), SubscriberPool::kReadBuffer);
}

void Subscriber::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Subscriber*>(stream->data);
  if (self->state_ != State::AwaitingHead && self->state_ != State::Streaming) return;
  if (nread > 0) {
    self->pool_->stats().bytes += static_cast<uint64_t>(nread);
    self->pool_->now_ns = uv_hrtime();
    llhttp_errno_t err = llhttp_execute(&self->http_, buf->base, static_cast<size_t>(nread));
    if (self->state_ != State::AwaitingHead && self->state_ != State::Streaming) return;
    if (err == HPE_OK) return;
    if (err == HPE_PAUSED || self->stream_ended_) {
      self->lose_stream();  // the response ended: the server finished the stream
    } else if (self->state_ == State::Streaming) {
      self->lose_stream();
    } else {
      self->fail(Failure::Protocol);
    }
    return;
  }
  if (nread == 0) return;
  // EOF or a read error. A close-delimited body (HTTP/1.0, no chunking) ends here too.
  if (nread == UV_EOF) llhttp_finish(&self->http_);
  if (self->state_ == State::Streaming) {
    self->lose_stream();
  } else {
    self->fail(Failure::Closed);
  }
}

int Subscriber::on_headers_complete(llhttp_t* parser) {
  auto* self = static_cast<Subscriber*>(parser->data);
  if (self->state_ != State::AwaitingHead) return -1;
  if (parser->status_code != 200) {
    self->pool_->stats().last_bad_status = parser->status_code;
    self->fail(Failure::Status);
    return -1;
  }
  SubscriberPool& pool = *self->pool_;
  ChannelState& channel = pool.run().channels[self->channel_];
  // Events published before this point are not expected here; later ones carry higher seqs.
  self->last_seq_ = channel.seq.load(std::memory_order_relaxed);
  channel.connected.fetch_add(1, std::memory_order_relaxed);
  self->state_ = State::Streaming;
  pool.on_resolved();
  bump(pool.stats().connected);
  pool.stats().last_connected_ns.store(pool.now_ns, std::memory_order_relaxed);
  return 0;
}

int Subscriber::on_body(llhttp_t* parser, const char* at, size_t len) {
  auto* self = static_cast<Subscriber*>(parser->data);
  if (self->state_ == State::Streaming) self->sse_.feed(at, len);
  return 0;
}

int Subscriber::on_message_complete(llhttp_t* parser) {
  auto* self = static_cast<Subscriber*>(parser->data);
  self->stream_ended_ = true;
  return HPE_PAUSED;  // anything after the end of the stream is not ours to parse
}

void Subscriber::on_event(void* context, const SseEvent& event) {
  static_cast<Subscriber*>(context)->handle_event(event);
}

void Subscriber::handle_event(const SseEvent& event) {
  SubscriberStats& s = pool_->stats();
  if (!event.type.empty() && event.type != "message") {
    ++s.other_types;
    return;
  }
  PayloadStamp stamp;
  RunState& run = pool_->run();
  if (!parse_payload(event.data_prefix, stamp) || stamp.run != run.run_id) {
    ++s.foreign;
    return;
  }
  if (event.data_bytes != std::max<size_t>(run.options.size, stamp.header_len)) ++s.size_mismatch;
  if (stamp.seq <= last_seq_) {
    ++s.out_of_order;
    return;
  }
  s.gaps += stamp.seq - last_seq_ - 1;
  last_seq_ = stamp.seq;
  uint64_t now = pool_->now_ns;
  s.latency.record(now > stamp.t_ns ? now - stamp.t_ns : 0);
  bump(s.received);
}

}  // namespace bench
