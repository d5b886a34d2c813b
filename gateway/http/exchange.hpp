// The answering side of one request, whatever carries it (an HTTP/1.1 connection, an HTTP/2
// stream). Handlers see only this interface, never the transport.
//
// Rules:
// - A request is answered exactly once, in one of three ways:
//   - respond(): a complete answer, at once or later (the transport reads no further request
//     until then);
//   - defer(), then complete(): an answer that comes later while the transport goes on with
//     the pipelined requests that may overlap; answers still leave in request order;
//   - start_stream(), body writes, then end_stream() or abort().
// - A callback that answers later checks alive() first: the exchange's connection may be gone,
//   and then it must not be touched.
// - set_label() and answer_headers() apply to the request being handled, and are kept with a
//   deferred answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/base/frame.hpp"
#include "gateway/http/request.hpp"

namespace ssegw::http {

// A deferred answer's place in the order of answers.
using AnswerSlot = uint64_t;

// Expires when the exchange's transport goes: held by callbacks that answer later.
using Lifetime = std::weak_ptr<const void>;

class Exchange {
 public:
  virtual const Request& request() const = 0;
  virtual bool http10() const = 0;

  // The route template of the request, for metrics; a static string.
  virtual void set_label(const char* label) = 0;
  // Header lines ("Name: value\r\n") that every answer to this request carries (CORS).
  virtual void answer_headers(std::string lines) = 0;
  // The connection closes after this answer (a stream that ends only by closing).
  virtual void close_after() = 0;

  // A complete answer: the body with its Content-Length, or none at all for 204 and 304.
  virtual void respond(int status, std::string_view content_type, std::string_view body,
                       std::string_view extra_headers = {}) = 0;
  // A JSON error answer ({"error":{"code","message"}}). Over HTTP/1.1, 400, 408, 413 and 431
  // close the connection after it: the rest of the input cannot be trusted to frame requests.
  virtual void respond_error(int status, const char* code, std::string_view message,
                             std::string_view extra_headers = {}) = 0;
  virtual AnswerSlot defer() = 0;
  virtual void complete(AnswerSlot slot, int status, std::string_view content_type,
                        std::string_view body, std::string_view extra_headers = {}) = 0;

  // A streamed answer. Without a body the head is the whole answer (HEAD, 204, 304).
  virtual void start_stream(int status, std::string_view header_lines, bool has_body) = 0;
  virtual void write_body(std::string_view bytes) = 0;  // copied
  // What is queued leaves now, not at the end of the loop turn: a proxied answer sends the chunks
  // of each upstream read at once, so they do not wait for every other read of the turn.
  // (HTTP/2 frames its output at the end of the turn: nothing to do there.)
  virtual void send_now() = 0;
  virtual void write_frame(const base::FrameRef& frame) = 0;  // shared, framed for the wire
  // One body piece: prefix (copied: a subscriber's own lines) followed by frame->raw() from
  // offset on (shared, not copied).
  virtual void write_prefixed(std::string_view prefix, const base::FrameRef& frame,
                              size_t offset) = 0;
  virtual void end_stream() = 0;
  // The answer cannot be completed: the client must see that it was cut short.
  virtual void abort() = 0;

  // A streamed answer is open (started and not ended).
  virtual bool streaming() const = 0;
  // Bytes written to the transport that it has not passed on yet, and progress counters.
  virtual size_t unsent_bytes() const = 0;
  virtual uint64_t bytes_written() const = 0;
  virtual uint64_t bytes_acked() const = 0;
  virtual uint64_t id() const = 0;  // the connection's id, for log lines

  virtual Lifetime lifetime() const = 0;
  static bool alive(const Lifetime& lifetime) { return !lifetime.expired(); }

 protected:
  ~Exchange() = default;
};

}  // namespace ssegw::http
