// One HTTP/1.1 client connection that streams a response: connect from a chosen loopback source
// address, write a request its owner keeps, read the response head with llhttp, and hand the
// de-chunked body on. What the body means and what each outcome counts as belong to the subclass:
// Subscriber (the fan-out runs) and LlmStream (--mode llm).
//
// Rules:
// - The object owns one uv_tcp_t. Its memory belongs to the owner (SubscriberPool, LlmRun), which
//   frees it only after the loop has run to completion, so late callbacks (a connect or write
//   cancelled by uv_close) still find valid memory; they check state_ and return.
// - close_handle() is safe in any state and twice; state_ becomes Closed only in the close
//   callback.
// - No callback destroys anything. A hook that ends the connection calls close_handle() (directly
//   or through the subclass's accounting) and returns.
#pragma once

#include <llhttp.h>
#include <netinet/in.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

namespace bench {

class H2Connection;

// Binds a socket made by uv_tcp_init_ex to 127.0.0.<source_ip> (0: no bind) with
// IP_BIND_ADDRESS_NO_PORT, so that the port is chosen at connect time per (source, destination)
// pair instead of being reserved at bind time for the source address alone.
int bind_source(uv_tcp_t* tcp, uint8_t source_ip);

class SseClient {
 public:
  // What the clients of one loop share. Their owner keeps it, and it outlives them.
  struct Loop {
    Loop(uv_loop_t* uv_loop, uint64_t& bytes_counter)
        : uv(uv_loop), bytes(bytes_counter), read_buffer(new char[kReadBuffer]) {}
    static constexpr size_t kReadBuffer = 64 * 1024;
    uv_loop_t* uv;
    uint64_t& bytes;      // every byte read, headers and framing included
    uint64_t now_ns = 0;  // uv_hrtime() at the latest read: the receipt time of what it holds
    std::unique_ptr<char[]> read_buffer;  // each read is parsed before the next one comes
  };

  enum class State : uint8_t { Idle, Connecting, AwaitingHead, Streaming, Closing, Closed };
  // How a connection that got as far as reading ended (state() tells whether the head came).
  enum class End : uint8_t {
    Complete,  // llhttp saw the end of the response (also a close-delimited body's close)
    Closed,    // EOF or a read error before that
    Protocol,  // bytes that llhttp rejects
  };

  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  State state() const { return state_; }
  bool pending() const { return state_ == State::Connecting || state_ == State::AwaitingHead; }
  bool active() const { return pending() || state_ == State::Streaming; }

 protected:
  SseClient() = default;
  ~SseClient() = default;

  // Idle -> Connecting: a socket from 127.0.0.<source_ip> (0: no bind) to `to`, which will send
  // `request` (it must outlive the connection). Calls on_connect_failed() when the socket cannot
  // be made or the connect cannot start.
  void connect(Loop& loop, const sockaddr_in& to, const std::string& request, uint8_t source_ip,
               uint64_t now_ns);
  // The same over a stream of an HTTP/2 connection (--http2): GET path on it.
  void connect_h2(Loop& loop, H2Connection& connection, const std::string& path, uint64_t now_ns);
  // Still waiting for the response head timeout_ns after connect().
  bool head_overdue(uint64_t now_ns, uint64_t timeout_ns) const {
    return pending() && now_ns - started_ns_ >= timeout_ns;
  }
  uint64_t started_ns() const { return started_ns_; }
  const Loop& loop() const { return *loop_; }
  // Closing (Closed in the close callback); a connection without a socket is Closed at once.
  void close_handle();

  // A socket, bind, connect or request write error, before any response.
  virtual void on_connect_failed() = 0;
  // A response head with a status other than 200: nothing more is read.
  virtual void on_bad_status(int status) = 0;
  // A 200 head: state() is now Streaming.
  virtual void on_streaming() = 0;
  // De-chunked body bytes of a Streaming response.
  virtual void on_body(const char* at, size_t len) = 0;
  // The response ended, or the connection failed after the request went out.
  virtual void on_end(End how) = 0;

  State state_ = State::Idle;

 private:
  friend class H2Connection;  // drives the hooks and the state of a stream it carries
  static const llhttp_settings_t kSettings;
  static void on_connect(uv_connect_t* req, int status);
  static void on_write(uv_write_t* req, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_close(uv_handle_t* handle);
  static int on_headers_complete(llhttp_t* parser);
  static int on_http_body(llhttp_t* parser, const char* at, size_t len);
  static int on_message_complete(llhttp_t* parser);

  bool reading() const { return state_ == State::AwaitingHead || state_ == State::Streaming; }

  Loop* loop_ = nullptr;
  const std::string* request_ = nullptr;
  H2Connection* h2_ = nullptr;  // the connection of a stream still attached to one
  bool handle_open_ = false;
  bool body_ended_ = false;  // llhttp saw the end of the response
  uint64_t started_ns_ = 0;

  uv_tcp_t tcp_;
  uv_connect_t connect_req_;
  uv_write_t write_req_;
  llhttp_t http_;
};

}  // namespace bench
