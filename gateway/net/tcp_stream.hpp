// Owner of one TCP connection, accepted or connected: reads, the outgoing frame queue, and the
// close.
//
// Rules:
// - A Handle (handle.hpp) that is always heap-allocated and deletes itself: only in the handle's
//   close callback, right after on_close(). close() is safe to call any number of times, from
//   anywhere, callbacks of this object included; the object stays valid until the close callback.
// - After close() the subclass hears nothing but on_close(): not on_data, on_read_end,
//   on_drained, on_write_progress nor on_connected.
// - Its requests (uv_write_t, uv_shutdown_t, uv_connect_t) are members, so their callbacks
//   recover the object from the request. Each completes exactly once; those in flight when the
//   handle closes complete with UV_ECANCELED before the close callback, and touch only this
//   object, still alive: the frames a cancelled write pointed into are released with it.
// - At most one uv_write is in flight. Frames queued meanwhile go out in the next writev, after a
//   uv_try_write attempt, so most writes never reach libuv's own queue.
// - queued_bytes() counts what the kernel has not accepted yet, for slow-consumer limits.
// - TLS (use_tls(), tcp_stream_tls.cpp): the queue holds plaintext, encrypted at flush time only
//   while less than kTlsMaxOutput of ciphertext waits; what is encrypted counts as taken. So with
//   TLS queued_bytes() and bytes_written() lag the kernel by at most that much ciphertext, and
//   bytes_acked() counts plaintext as acknowledged only once all ciphertext up to it is: the
//   slow-consumer cut and the stall checks keep working, within 64 KiB.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/net/frame_queue.hpp"
#include "gateway/net/handle.hpp"
#include "gateway/net/loop.hpp"
#include "gateway/net/send_batch.hpp"

namespace ssegw::net {

class TlsContext;
class TlsSession;

class TcpStream : public Handle<TcpStream, uv_tcp_t> {
 public:
  explicit TcpStream(Loop& loop);
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;

  // Accepts the pending connection of `server`. On failure the caller must still close().
  int accept(uv_stream_t* server);
  // Connects to addr; on_connected(status) follows. On failure the caller must still close().
  int connect(const sockaddr* addr);
  void start_reading();
  void stop_reading();
  // Makes an accepted connection the server side of TLS with `context`: after accept(), before
  // start_reading() and before anything is written. Reads are then decrypted before on_data()
  // and writes encrypted at flush; a connection not past the handshake is closed, not shut down.
  void use_tls(std::shared_ptr<const TlsContext> context);
  // The protocol the client and we agreed with ALPN: "" with plain TCP, or without ALPN.
  std::string_view alpn() const;

  // Queues a frame; it is written this loop turn. `first`: before the streams already waiting
  // to be flushed in this turn (an answer to a request, ahead of a fan-out's deliveries).
  void write(base::FrameRef frame, bool chunked, bool first = false);
  // Queues bytes that lie within the frame's memory (a piece of raw() or chunked()): shared, not
  // copied; the frame is held until they are written.
  void write_view(const base::FrameRef& frame, std::string_view bytes);
  // Queues a piece of frame->raw().
  void write_slice(const base::FrameRef& frame, size_t offset, size_t length) {
    write_view(frame, frame->raw().substr(offset, length));
  }
  // Queues a copy of bytes (small ones: frame headers, a subscriber's own prefix), kept in the
  // queue's arena: no allocation once the connection is warm.
  void write_copy(std::string_view bytes);
  size_t queued_bytes() const { return queued_bytes_; }
  // Bytes the peer has acknowledged so far. Unlike queued_bytes(), which drops only when a whole
  // write completes, and unlike what the socket takes (in steps of half its send buffer, which
  // grows to megabytes), it moves whenever the peer reads anything: it tells a client that reads
  // slowly from one that reads nothing. A system call; not for the hot path.
  uint64_t bytes_acked() const;
  // Bytes the kernel has taken from the queue so far (cheap: no system call).
  uint64_t bytes_written() const { return written_bytes_; }
  bool idle_output() const { return queue_.empty() && !write_in_flight_; }

  // Half-closes after the queue drains (FIN), so the peer reads the last response before the
  // connection goes; reading continues until the peer closes or close() is called.
  void shutdown_after_flush();
  // Drops what is queued and closes; on_close() follows from the close callback.
  void close();

  Loop& loop() { return loop_; }
  std::string peer_address() const;

  // Asks for this turn's flush pass even with nothing queued: an engine that frames its output
  // late (HTTP/2) queues it from before_flush(), once per turn however many writes asked.
  // `first` as for write().
  void want_flush(bool first = false);

  // For the Loop's flush pass.
  void flush();
  // A batched pass (send_batch.hpp): adds this stream's queued bytes as one send, when it has
  // some and no write in flight; then sent() gets what the send took (bytes, or -errno).
  bool add_to(SendBatch& batch);
  void sent(int result);

 protected:
  virtual ~TcpStream();
  virtual void on_data(const char* data, size_t length) = 0;
  // EOF or a read error.
  virtual void on_read_end(int status) = 0;
  // The queue became empty after a write.
  virtual void on_drained() {}
  // A write completed and queued_bytes() went down (for low-water marks).
  virtual void on_write_progress() {}
  // The outcome of connect(): 0 or a libuv error.
  virtual void on_connected(int status) {}
  // The last call before the object is deleted.
  virtual void on_close() {}
  // The flush pass is about to write: the last moment to queue this turn's bytes.
  virtual void before_flush() {}
  // With TLS, once per connection: the handshake completed (true) or failed, or the connection
  // ended before it completed (false).
  virtual void on_tls_handshake(bool ok) {}

 private:
  friend class Handle<TcpStream, uv_tcp_t>;
  // The close callback: on_close(), then delete.
  void closed();

  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_connect(uv_connect_t* req, int status);

  void mark_dirty(bool first = false);
  size_t fill_buffers(uv_buf_t* bufs, size_t max) const;
  void consume(size_t bytes);
  void after_drain();
  void start_shutdown();
  // The TLS side (tcp_stream_tls.cpp).
  void read_tls(const char* data, size_t length);
  // after_write: a write just completed, so on_drained() is due if nothing is left.
  void flush_tls(bool after_write);
  // Encrypts from the queue while the output is under its bound. False on a TLS error.
  bool encrypt_queue();
  void tls_handshake_ended(bool ok);
  uint64_t tls_bytes_acked(uint64_t unacked_ciphertext) const;

  Loop& loop_;
  uv_write_t write_req_;
  uv_shutdown_t shutdown_req_;
  uv_connect_t connect_req_;
  FrameQueue queue_;
  size_t queued_bytes_ = 0;
  uint64_t written_bytes_ = 0;  // taken by the kernel: consumed from the queue
  size_t in_flight_bytes_ = 0;
  uint32_t head_offset_ = 0;  // bytes of the first queued frame already written
  bool write_in_flight_ = false;
  bool dirty_ = false;
  bool shutdown_wanted_ = false;
  bool shutdown_started_ = false;
  bool tls_reported_ = false;        // on_tls_handshake() was called
  bool tls_notify_sent_ = false;     // close_notify queued before the FIN
  std::unique_ptr<TlsSession> tls_;  // null for plain TCP

  friend class Loop;
};

}  // namespace ssegw::net
