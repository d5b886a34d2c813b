// One client connection of a worker: an HTTP/1.1 session whose requests go to its Responder
// (the policy stage, then the handler, and the stream the answer may carry), or an HTTP/2 one
// whose every stream has a Responder of its own.
//
// Rules:
// - The object is deleted only by the TCP handle's close callback, after on_session_closed(),
//   which gives everything back: the client address's count, and through the responders the
//   channels and the upstream requests.
// - The connection counts once against limits.max_connections and max_connections_per_ip,
//   whatever it carries; each HTTP/2 stream that holds a stream counts against
//   max_streams_per_ip like an HTTP/1.1 one (the policy stage's stream slot).
// - The worker links its connections in an intrusive list (prev/next), unlinked in
//   Worker::connection_closed().
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/http/h2_session.hpp"
#include "gateway/http/session.hpp"
#include "gateway/server/responder.hpp"

namespace ssegw::server {

class Worker;

class Connection final : public http::Session, private http::H2Session::Handler {
 public:
  Connection(Worker& worker, uint64_t id);

  // Counts the connection against its client address; over limits.max_connections_per_ip it
  // answers 429, closes and returns false.
  bool admit_client();
  // Over limits.max_connections: answers 503 and closes.
  void reject_overloaded();
  // Reads requests: HTTP/1.1, or HTTP/2 if the client starts with its preface (http2.enabled).
  void start();
  // Timeouts, heartbeats and the stream's checks; the worker's periodic tick.
  void tick(uint64_t now_ms);
  // Graceful shutdown: end a stream cleanly, let a request in progress finish.
  void begin_shutdown();

  Worker& worker() { return worker_; }
  const std::string& client_ip() const { return client_ip_; }
  const std::string& client_key() const { return client_key_; }

  // The worker's intrusive list of connections.
  Connection* prev = nullptr;
  Connection* next = nullptr;

 protected:
  ~Connection() override;

 private:
  // http::Session.
  void handle(http::Request& request) override { responder_.handle(request); }
  bool may_overlap(const http::Request& request) const override;
  void count(const char* label, int status) override;
  Timeout answer_timeout() override { return responder_.answer_timeout(); }
  bool own_deadline() const override { return responder_.own_deadline(); }
  void on_stream_drained() override { responder_.drained(); }
  void on_stream_progress() override { responder_.progress(); }
  void on_session_closed() override;
  void on_tls_handshake(bool ok) override;

  // http::H2Session::Handler.
  std::unique_ptr<http::StreamHandler> open_stream(http::Exchange& exchange) override;
  void http2_started() override;
  void stream_opened() override;
  void stream_closed() override;
  void goaway_sent(uint32_t error_code) override;
  void flood() override;
  void stream_stalled() override;

  Worker& worker_;
  Responder responder_;      // HTTP/1.1's, for each request in turn
  bool counted_h2_ = false;  // in ssegw_http2_connections_active
  std::string client_ip_;    // the peer's address, for X-Forwarded-For
  std::string client_key_;   // its key in the per-address limits (api::client_key), counted there
                             // while not empty
};

}  // namespace ssegw::server
