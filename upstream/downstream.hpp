// What a proxied response is written to: the client's connection. The upstream side knows this
// interface only, so it never depends on the server code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/base/frame.hpp"

namespace ssegw::upstream {

class Downstream {
 public:
  // The response head: a status and "Name: value\r\n" lines. With has_body the downstream frames
  // the body (chunked for HTTP/1.1, close-delimited for HTTP/1.0) and adds its own headers
  // (CORS). Without (an answer to HEAD, a 204, a 304) the head is the whole answer: no framing
  // is added, header_lines may carry a Content-Length that describes the representation, no
  // send() follows, and finish() ends the answer without writing anything.
  virtual void start_response(int status, std::string header_lines, bool has_body) = 0;
  // Queued: what one upstream read gave leaves together, at send_queued().
  virtual void send(std::string_view body_bytes) = 0;
  // Shared, already serialised bytes (a channel's event frame): no copy.
  virtual void send_frame(const base::FrameRef& frame) = 0;
  // Sends what is queued now rather than at the end of the loop turn.
  virtual void send_queued() = 0;
  // The answer is complete.
  virtual void finish() = 0;
  // The body cannot be completed: drop the connection so the client sees the truncation.
  virtual void abort() = 0;
  virtual size_t unsent_bytes() const = 0;
  // Bytes the client has acknowledged so far: it moves whenever the client reads anything, so it
  // tells a slow reader from one that stopped (stall_timeout). A system call: not per chunk.
  virtual uint64_t bytes_acked() const = 0;
  // The client connection's id, for log lines.
  virtual uint64_t connection_id() const = 0;

 protected:
  ~Downstream() = default;
};

}  // namespace ssegw::upstream
