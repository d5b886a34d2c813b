#include "gateway/net/tcp_stream.hpp"

#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>

#include "gateway/base/check.hpp"
#include "gateway/net/tls_session.hpp"

namespace ssegw::net {
namespace {

// Enough for a deep batch in one writev, far below IOV_MAX (1024).
constexpr size_t kMaxBuffers = 256;

}  // namespace

TcpStream::TcpStream(Loop& loop) : loop_(loop) {
  // Initialised here, not in accept() or connect(): the handle is then always open until close(),
  // and close() always goes through the close callback.
  opened(uv_tcp_init(loop_.uv(), uv()), "uv_tcp_init");
  write_req_.data = this;
  shutdown_req_.data = this;
  connect_req_.data = this;
}

TcpStream::~TcpStream() = default;

int TcpStream::accept(uv_stream_t* server) {
  if (!is_open()) return UV_EINVAL;
  int r = uv_accept(server, reinterpret_cast<uv_stream_t*>(uv()));
  if (r == 0) uv_tcp_nodelay(uv(), 1);
  return r;
}

int TcpStream::connect(const sockaddr* addr) {
  if (!is_open()) return UV_EINVAL;
  uv_tcp_nodelay(uv(), 1);
  return uv_tcp_connect(&connect_req_, uv(), addr, on_connect);
}

void TcpStream::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<TcpStream*>(req->data);
  if (!self->is_open()) return;  // closed while connecting (UV_ECANCELED): on_close() follows
  self->on_connected(status);
}

void TcpStream::start_reading() {
  if (is_open()) uv_read_start(reinterpret_cast<uv_stream_t*>(uv()), on_alloc, on_read);
}

void TcpStream::stop_reading() {
  if (is_open()) uv_read_stop(reinterpret_cast<uv_stream_t*>(uv()));
}

void TcpStream::write(base::FrameRef frame, bool chunked, bool first) {
  if (!is_open()) return;
  queued_bytes_ += chunked ? frame->chunked().size() : frame->raw().size();
  queue_.push(std::move(frame), chunked);
  mark_dirty(first);
}

void TcpStream::write_view(const base::FrameRef& frame, std::string_view bytes) {
  if (!is_open() || bytes.empty()) return;
  queued_bytes_ += bytes.size();
  queue_.push_view(frame, bytes);
  mark_dirty();
}

void TcpStream::write_copy(std::string_view bytes) {
  if (!is_open() || bytes.empty()) return;
  queued_bytes_ += bytes.size();
  queue_.push_copy(bytes);
  mark_dirty();
}

// Written in the loop's flush pass, once per turn however many writes were queued.
void TcpStream::mark_dirty(bool first) {
  if (!dirty_ && !write_in_flight_) {
    dirty_ = true;
    loop_.mark_dirty(this, first);
  }
}

size_t TcpStream::fill_buffers(uv_buf_t* bufs, size_t max) const {
  size_t n = std::min(queue_.size(), max);
  for (size_t i = 0; i < n; ++i) {
    std::string_view bytes = queue_.at(i).bytes();
    if (i == 0) bytes.remove_prefix(head_offset_);
    bufs[i] = uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
  }
  return n;
}

uint64_t TcpStream::bytes_acked() const {
  if (tls_) [[unlikely]] {
    uv_os_fd_t fd;
    int unacked = 0;
    if (uv_fileno(uv_handle(), &fd) != 0 || ::ioctl(fd, TIOCOUTQ, &unacked) != 0 || unacked < 0)
      unacked = 0;
    return tls_bytes_acked(static_cast<uint64_t>(unacked));
  }
  // libuv writes an in-flight batch in pieces as the socket takes them, counting them off
  // write_queue_size; the batch leaves the queue (consume) only once all of it is written.
  uint64_t to_kernel = written_bytes_;
  if (write_in_flight_ && in_flight_bytes_ > uv()->write_queue_size)
    to_kernel += in_flight_bytes_ - uv()->write_queue_size;
  // What the kernel still holds, sent or not, is not acknowledged (TIOCOUTQ is SIOCOUTQ).
  uv_os_fd_t fd;
  int unacked = 0;
  if (uv_fileno(uv_handle(), &fd) != 0 || ::ioctl(fd, TIOCOUTQ, &unacked) != 0 || unacked < 0)
    return to_kernel;
  return to_kernel - std::min<uint64_t>(to_kernel, static_cast<uint64_t>(unacked));
}

void TcpStream::consume(size_t bytes) {
  // libuv never reports more written than it was given; past the queue, pop() would free frames
  // still referenced elsewhere. Once per write, not per frame.
  SSEGW_CHECK(bytes <= queued_bytes_);
  queued_bytes_ -= bytes;
  written_bytes_ += bytes;
  while (bytes > 0) {
    size_t left = queue_.front().bytes().size() - head_offset_;
    if (bytes < left) {
      head_offset_ += static_cast<uint32_t>(bytes);
      return;
    }
    bytes -= left;
    head_offset_ = 0;
    queue_.pop();
  }
}

void TcpStream::want_flush(bool first) {
  if (!is_open() || dirty_) return;
  dirty_ = true;
  loop_.mark_dirty(this, first);
}

void TcpStream::flush() {
  if (!is_open()) return;
  before_flush();
  if (!is_open() || write_in_flight_) return;
  if (tls_) [[unlikely]] {
    flush_tls(false);
    return;
  }
  if (queue_.empty()) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(uv());
  uv_buf_t bufs[kMaxBuffers];
  for (;;) {
    size_t n = fill_buffers(bufs, kMaxBuffers);
    int written = uv_try_write(stream, bufs, static_cast<unsigned>(n));
    if (written == UV_EAGAIN) break;
    if (written < 0) {
      close();
      return;
    }
    consume(static_cast<size_t>(written));
    if (queue_.empty()) {
      after_drain();
      return;
    }
    // A partial write means the socket buffer is full: hand the rest to libuv.
    size_t attempted = 0;
    for (size_t i = 0; i < n; ++i) attempted += bufs[i].len;
    if (static_cast<size_t>(written) < attempted) break;
  }
  size_t n = fill_buffers(bufs, kMaxBuffers);
  in_flight_bytes_ = 0;
  for (size_t i = 0; i < n; ++i) in_flight_bytes_ += bufs[i].len;
  int r = uv_write(&write_req_, stream, bufs, static_cast<unsigned>(n), on_write);
  if (r != 0) {
    close();
    return;
  }
  write_in_flight_ = true;
}

bool TcpStream::add_to(SendBatch& batch) {
  // A TLS stream's queue is plaintext: flush() encrypts it first.
  if (!is_open() || write_in_flight_ || queue_.empty() || tls_) return false;
  uv_os_fd_t fd;
  if (uv_fileno(uv_handle(), &fd) != 0) return false;
  uv_buf_t bufs[kMaxBuffers];
  size_t n = fill_buffers(bufs, kMaxBuffers);
  // libuv's uv_buf_t is laid out as struct iovec on Unix (uv-unix.h).
  static_assert(sizeof(uv_buf_t) == sizeof(iovec));
  batch.add(fd, reinterpret_cast<const iovec*>(bufs), n);
  return true;
}

void TcpStream::sent(int result) {
  if (!is_open()) return;
  if (result == -EAGAIN || result == -EWOULDBLOCK) {
    flush();  // a full socket: libuv waits for it
    return;
  }
  if (result < 0) {
    close();
    return;
  }
  consume(static_cast<size_t>(result));
  if (queue_.empty())
    after_drain();
  else
    flush();  // the rest: what the socket could not take, or past kMaxBuffers
}

void TcpStream::on_write(uv_write_t* req, int status) {
  auto* self = static_cast<TcpStream*>(req->data);
  self->write_in_flight_ = false;
  if (status < 0) {
    self->close();  // frames are released with the object, after the close callback
    return;
  }
  if (self->tls_) [[unlikely]] {
    self->tls_->consumed(self->in_flight_bytes_);  // the plaintext left the queue when encrypted
    if (!self->is_open()) return;
    self->on_write_progress();
    if (!self->is_open()) return;
    self->before_flush();  // as flush() does: an engine that frames late (HTTP/2) adds its bytes
    self->flush_tls(true);
    return;
  }
  self->consume(self->in_flight_bytes_);
  if (!self->is_open()) return;  // written before the close began: nothing to tell
  self->on_write_progress();
  if (!self->is_open()) return;
  if (self->queue_.empty())
    self->after_drain();
  else
    self->flush();
}

void TcpStream::after_drain() {
  if (shutdown_wanted_ && !shutdown_started_) start_shutdown();
  if (is_open()) on_drained();
}

void TcpStream::shutdown_after_flush() {
  if (tls_ && !tls_->handshake_done()) {
    // Nothing can reach a peer that has not finished the handshake, and a connection refused
    // before it (over a limit, timed out) should not cost the handshake's CPU.
    close();
    return;
  }
  shutdown_wanted_ = true;
  if (queue_.empty() && !write_in_flight_) start_shutdown();
}

void TcpStream::start_shutdown() {
  if (!is_open() || shutdown_started_) return;
  if (tls_ && !tls_notify_sent_) {
    // close_notify before the FIN: the peer can tell the end from a truncation. Once written,
    // after_drain() comes back here.
    tls_notify_sent_ = true;
    tls_->close_notify();
    flush_tls(false);
    return;
  }
  shutdown_started_ = true;
  if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(uv()), on_shutdown) != 0) close();
}

void TcpStream::on_shutdown(uv_shutdown_t* req, int status) {
  auto* self = static_cast<TcpStream*>(req->data);
  if (status < 0) self->close();
}

void TcpStream::close() {
  if (!is_open()) return;
  if (tls_ && !tls_reported_) tls_handshake_ended(false);
  if (!is_open()) return;
  if (dirty_) loop_.forget(this);
  dirty_ = false;
  Handle::close();
}

void TcpStream::closed() {
  on_close();
  delete this;
}

void TcpStream::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  TcpStream* self = owner(handle);
  *buf = uv_buf_init(self->loop_.read_buffer(), Loop::kReadBufferSize);
}

void TcpStream::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  TcpStream* self = owner(stream);
  if (nread > 0) {
    if (self->tls_) [[unlikely]]
      self->read_tls(buf->base, static_cast<size_t>(nread));
    else
      self->on_data(buf->base, static_cast<size_t>(nread));
  } else if (nread < 0) {
    self->on_read_end(static_cast<int>(nread));
  }
}

std::string TcpStream::peer_address() const {
  sockaddr_storage addr{};
  int len = sizeof(addr);
  if (uv_tcp_getpeername(uv(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  char host[64] = {0};
  if (addr.ss_family == AF_INET6)
    uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&addr), host, sizeof(host));
  else
    uv_ip4_name(reinterpret_cast<sockaddr_in*>(&addr), host, sizeof(host));
  return host;
}

}  // namespace ssegw::net
