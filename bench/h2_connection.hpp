// One HTTP/2 connection (h2c, prior knowledge) that carries the streams of several SseClients:
// with --http2 N the fan-out runs put N subscribers on each connection, as a browser does with
// many EventSources to one origin over HTTP/2. nghttp2's client session frames the bytes; the
// streams' outcomes reach each SseClient through the same hooks as an HTTP/1.1 response.
//
// Rules:
// - The pool owns the connection and frees it only after its loop has run to completion.
// - A client attaches before the connection is up or after; its request goes out once the
//   connection is, and a client that closes first resets its stream (RST_STREAM) and detaches.
// - The connection's failure ends every attached stream, each through its own hook.
#pragma once

#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <cstdint>
#include <string>
#include <unordered_map>

#include "bench/sse_client.hpp"

namespace bench {

class H2Connection {
 public:
  H2Connection(SseClient::Loop& loop, const sockaddr_in& to, std::string authority,
               uint8_t source_ip);
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;
  ~H2Connection();

  // Opens a stream for client: GET path. Connects on the first one.
  void attach(SseClient& client, const std::string& path);
  // The client is done with its stream (closed by the run, a timeout or a bad status).
  void detach(SseClient& client);
  // Closes the socket (the stop); attached streams end without their hooks.
  void close();

 private:
  static void on_connect(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_close(uv_handle_t* handle);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                       void* self);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_data_chunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                           size_t len, void* self);
  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* self);

  void start_connect();
  void submit(SseClient& client);
  void flush();
  void fail_all(SseClient::End how);
  SseClient* client_of(int32_t stream_id);

  SseClient::Loop& loop_;
  sockaddr_in to_;
  std::string authority_;
  uint8_t source_ip_;
  enum class State : uint8_t { Idle, Connecting, Open, Closing, Closed } state_ = State::Idle;
  uv_tcp_t tcp_;
  uv_connect_t connect_req_;
  uv_write_t write_req_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, SseClient*> streams_;
  std::unordered_map<SseClient*, std::string> waiting_;  // attached before the connection was up
  std::unordered_map<int32_t, int> status_;              // :status of each stream's response so far
  std::string out_;        // bytes nghttp2 gave us that the socket has not taken yet
  std::string in_flight_;  // the uv_write in flight
  bool writing_ = false;
  bool in_recv_ = false;
};

}  // namespace bench
