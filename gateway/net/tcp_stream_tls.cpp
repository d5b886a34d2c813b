// TcpStream's TLS side (tcp_stream.hpp, "TLS"): decrypting reads, encrypting the frame queue at
// flush time, and the accounting that keeps queued_bytes() and bytes_acked() meaningful.
#include <algorithm>
#include <cstring>

#include "gateway/net/tcp_stream.hpp"
#include "gateway/net/tls_session.hpp"

namespace ssegw::net {
namespace {

// Ciphertext allowed to wait for the socket. Plaintext is encrypted only below it, so the rest
// stays in the frame queue, shared and counted by queued_bytes(), and a slow client costs at
// most this much encrypted copy.
constexpr size_t kTlsMaxOutput = 64 * 1024;
// Ciphertext past which a client is cut: our own output stays under kTlsMaxOutput plus one
// gathered record; more means the TLS layer answers the client's messages and it reads none.
constexpr size_t kTlsMaxTalk = 4 * kTlsMaxOutput;
// The largest TLS record's plaintext.
constexpr size_t kTlsRecordBytes = 16 * 1024;

}  // namespace

void TcpStream::use_tls(std::shared_ptr<const TlsContext> context) {
  tls_ = std::make_unique<TlsSession>(std::move(context));
}

std::string_view TcpStream::alpn() const {
  return tls_ ? tls_->alpn() : std::string_view();
}

void TcpStream::tls_handshake_ended(bool ok) {
  tls_reported_ = true;
  on_tls_handshake(ok);
}

void TcpStream::read_tls(const char* data, size_t length) {
  if (!tls_->feed(data, length)) {
    close();
    return;
  }
  // The session copied the ciphertext: the loop's read buffer is free for the plaintext.
  char* plain = loop_.read_buffer();
  for (;;) {
    long n = tls_->read(plain, Loop::kReadBufferSize);
    if (n < 0) {
      // Not TLS, a bad record, a failed handshake: OpenSSL's alert says why, if the socket takes
      // it now (no second try: the peer is not trusted with our time). close() counts a failed
      // handshake.
      std::string_view alert = write_in_flight_ ? std::string_view() : tls_->output();
      uv_buf_t buf =
          uv_buf_init(const_cast<char*>(alert.data()), static_cast<unsigned>(alert.size()));
      if (!alert.empty()) uv_try_write(reinterpret_cast<uv_stream_t*>(uv()), &buf, 1);
      close();
      return;
    }
    if (!tls_reported_ && tls_->handshake_done()) {
      tls_handshake_ended(true);
      if (!is_open()) return;
    }
    if (n == 0) break;
    on_data(plain, static_cast<size_t>(n));
    if (!is_open()) return;
  }
  // Our own plaintext stops being encrypted at kTlsMaxOutput; what the TLS layer says by itself
  // (alerts, key updates) is not bounded so: a client that makes it talk and never reads is cut.
  if (tls_->output_size() > kTlsMaxTalk) {
    close();
    return;
  }
  // The handshake's answers, a ticket, or plaintext queued before the handshake completed.
  if (tls_->output_size() > 0 || !queue_.empty()) mark_dirty();
  if (tls_->peer_closed()) on_read_end(UV_EOF);
}

bool TcpStream::encrypt_queue() {
  // Small pieces (a chunk's head, an HTTP/2 frame header, a subscriber's prefix) are gathered
  // into one record: each SSL_write is at least one record, 22 or more bytes and an AEAD pass.
  char gather[kTlsRecordBytes];
  size_t gathered = 0;
  while (!queue_.empty() && tls_->output_size() < kTlsMaxOutput) {
    std::string_view bytes = queue_.front().bytes().substr(head_offset_);
    if (gathered + bytes.size() <= sizeof gather) {
      std::memcpy(gather + gathered, bytes.data(), bytes.size());
      gathered += bytes.size();
      consume(bytes.size());
      continue;
    }
    if (gathered > 0) {
      if (!tls_->write({gather, gathered})) return false;
      gathered = 0;
      continue;
    }
    bytes = bytes.substr(0, kTlsMaxOutput);
    if (!tls_->write(bytes)) return false;
    consume(bytes.size());
  }
  return gathered == 0 || tls_->write({gather, gathered});
}

void TcpStream::flush_tls(bool after_write) {
  if (!is_open() || write_in_flight_) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(uv());
  bool wrote = after_write;
  for (;;) {
    if (tls_->handshake_done() && !encrypt_queue()) {
      close();
      return;
    }
    std::string_view out = tls_->output();
    if (out.empty()) break;
    uv_buf_t buf = uv_buf_init(const_cast<char*>(out.data()), static_cast<unsigned>(out.size()));
    int written = uv_try_write(stream, &buf, 1);
    if (written == UV_EAGAIN) {
      written = 0;
    } else if (written < 0) {
      close();
      return;
    }
    tls_->consumed(static_cast<size_t>(written));
    wrote = wrote || written > 0;
    if (static_cast<size_t>(written) < out.size()) {
      // The socket is full: libuv writes the rest, from the session's buffer, which stays put
      // until on_write (output() is not called while a write is in flight).
      out = out.substr(static_cast<size_t>(written));
      buf = uv_buf_init(const_cast<char*>(out.data()), static_cast<unsigned>(out.size()));
      in_flight_bytes_ = out.size();
      if (uv_write(&write_req_, stream, &buf, 1, on_write) != 0) {
        close();
        return;
      }
      write_in_flight_ = true;
      return;
    }
  }
  if (wrote && queue_.empty()) after_drain();
}

uint64_t TcpStream::tls_bytes_acked(uint64_t unacked_ciphertext) const {
  // Ciphertext not yet acknowledged: waiting in the session (an in-flight write included, less
  // what libuv has written of it) and in the kernel. Counting it against the plaintext taken
  // from the queue errs low by the records' overhead: "acknowledged" is never early.
  uint64_t waiting = tls_->output_size() + unacked_ciphertext;
  if (write_in_flight_ && in_flight_bytes_ > uv()->write_queue_size)
    waiting -= std::min<uint64_t>(waiting, in_flight_bytes_ - uv()->write_queue_size);
  return written_bytes_ - std::min(written_bytes_, waiting);
}

}  // namespace ssegw::net
