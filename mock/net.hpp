// The mock's sockets on libuv: the listener, and one accepted connection with its write queue.
//
// Rules:
// - A Stream owns its uv_tcp_t and is deleted in the handle's close callback, right after
//   on_close(). close() is safe to call any number of times; nothing is freed before libuv is
//   done with the handle.
// - Written bytes wait in out_ until flush(): uv_try_write first, and what the socket does not
//   take goes in one uv_write whose bytes move to in_flight_, untouched until its callback. At
//   most one write is in flight; what is written meanwhile goes out after it. libuv runs the
//   callback of a cancelled write before the close callback, so it finds the object alive.
// - flush() runs after every on_data(); whoever writes from elsewhere (a timer) calls it.
// - The Listener is a member of an object that outlives the loop's run: its close callback
//   touches nothing.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace ssegw::mock {

class Stream {
 public:
  explicit Stream(uv_loop_t* loop);
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Accepts the pending connection of `server`; on failure the caller still calls close().
  int accept(uv_stream_t* server);
  void start_reading();

  void write(std::string_view bytes);
  void flush();
  // Bytes the kernel has not taken yet.
  size_t queued_bytes() const { return out_.size() + in_flight_.size(); }
  // Sends FIN once everything queued is out; reading goes on until the peer closes.
  void shutdown_after_flush();
  void close();
  bool is_open() const { return state_ == State::kOpen; }
  uv_loop_t* loop() const { return loop_; }

 protected:
  virtual ~Stream() = default;
  virtual void on_data(const char* data, size_t length) = 0;
  // EOF or a read error.
  virtual void on_read_end() = 0;
  // The queue became empty.
  virtual void on_drained() {}
  // The last call before the object is deleted.
  virtual void on_close() {}

 private:
  enum class State : uint8_t { kOpen, kClosing };

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  void written(int status);
  void drained();

  uv_loop_t* loop_;
  uv_tcp_t tcp_;
  uv_write_t write_req_;
  uv_shutdown_t shutdown_req_;
  std::string out_;        // written, not handed to the kernel yet
  std::string in_flight_;  // the bytes of the uv_write in flight
  State state_ = State::kOpen;
  bool initialized_ = false;
  bool writing_ = false;
  bool shutdown_wanted_ = false;
  bool shutdown_started_ = false;
};

class Listener {
 public:
  using OnConnection = std::function<void(uv_stream_t* server)>;
  Listener(uv_loop_t* loop, OnConnection on_connection);
  // Binds host:port (a name or a numeric address; port 0 picks one) and listens. Returns false
  // with `error` filled in.
  bool listen(const std::string& host, uint16_t port, std::string& error);
  // "host:port" of the bound socket ("[v6]:port" for IPv6).
  std::string address() const;
  void close();

 private:
  uv_loop_t* loop_;
  uv_tcp_t tcp_;
  OnConnection on_connection_;
  bool open_ = false;
};

}  // namespace ssegw::mock
