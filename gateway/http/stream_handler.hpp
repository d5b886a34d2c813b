// The server's side of one exchange: what a request means and the answer it carries. An
// HTTP/1.1 session has one at a time; an HTTP/2 session has one per stream (h2_session.hpp).
//
// Rules:
// - The transport calls handle() once per exchange, with a complete request that stays valid
//   until closed().
// - closed() is the last call, from the transport, when the exchange goes (the stream closed, or
//   the connection): the handler gives back what it holds. The transport deletes the handler
//   afterwards, never from inside one of the handler's own calls.
#pragma once

#include <cstdint>
#include <string>

#include "gateway/http/request.hpp"

namespace ssegw::http {

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;

  virtual void handle(Request& request) = 0;
  // The error an awaited answer gets when the answer timeout passes; also the place to count it
  // and to forget what was waited for.
  struct Timeout {
    const char* code;
    std::string message;
  };
  virtual Timeout answer_timeout() = 0;
  // The awaited answer has deadlines of its own (a route's connect and first-byte timeouts): the
  // answer timeout, made for channel owners and Redis, does not apply to it.
  virtual bool own_deadline() const { return false; }
  // The streamed answer's output drained, or shrank (for backpressure).
  virtual void drained() = 0;
  virtual void progress() = 0;
  // Heartbeats, stall checks and retries; every tick.
  virtual void tick(uint64_t now_ms) = 0;
  // Graceful shutdown: ends a streamed answer cleanly. False when there is none.
  virtual bool end_for_shutdown() = 0;
  virtual void closed() = 0;
};

}  // namespace ssegw::http
