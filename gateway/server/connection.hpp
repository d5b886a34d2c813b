// One client connection of a worker: an HTTP/1.1 session whose requests pass the policy stage
// (api::Policy) and then their handler (handlers.hpp), and the stream it may carry: an SSE
// subscription (SseStream) or a proxied answer (ProxyResponse).
//
// Rules:
// - The object is deleted only by the TCP handle's close callback, after on_session_closed(),
//   which gives everything back: the client address's count, the channel, the upstream request.
// - The worker links its connections in an intrusive list (prev/next), unlinked in
//   Worker::connection_closed().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "gateway/api/policy.hpp"
#include "gateway/http/session.hpp"
#include "gateway/hub/channel_service.hpp"
#include "upstream/usage_record.hpp"

namespace ssegw::server {

class Worker;
class SseStream;
class ProxyResponse;

class Connection final : public http::Session {
 public:
  Connection(Worker& worker, uint64_t id);

  // Counts the connection against its client address; over limits.max_connections_per_ip it
  // answers 429, closes and returns false.
  bool admit_client();
  // Over limits.max_connections: answers 503 and closes.
  void reject_overloaded();
  // Timeouts, heartbeats and the stream's checks; the worker's periodic tick.
  void tick(uint64_t now_ms);
  // Graceful shutdown: end a stream cleanly, let a request in progress finish.
  void begin_shutdown();

  Worker& worker() { return worker_; }
  const std::string& client_ip() const { return client_ip_; }

  // For the handlers. A subscription waits for its channel's answer (joined()), which starts
  // the stream or refuses it; a route streams through its ProxyResponse.
  void await_stream(std::unique_ptr<SseStream> stream);
  hub::Member joined(hub::Admission& admission);
  ProxyResponse& proxy(std::unique_ptr<ProxyResponse> response);

  // The worker's intrusive list of connections.
  Connection* prev = nullptr;
  Connection* next = nullptr;

 protected:
  ~Connection() override;

 private:
  void handle(http::Request& request) override;
  // The policy's answer for request, now or after the budget check.
  void admitted(http::Request& request, api::Admission admission);
  bool may_overlap(const http::Request& request) const override;
  void count(const char* label, int status) override;
  Timeout answer_timeout() override;
  void report_rejected(const upstream::UsageRecord& record);
  void on_stream_drained() override;
  void on_stream_progress() override;
  void on_session_closed() override;
  void on_tls_handshake(bool ok) override;
  int64_t now_unix() const;

  Worker& worker_;
  std::unique_ptr<SseStream> stream_;
  std::unique_ptr<ProxyResponse> proxy_;  // the last route's, until the next request
  bool stream_awaited_ = false;           // stream_ waits for its channel's answer
  uint64_t budget_checks_ = 0;            // budget checks started, to number them
  uint64_t budget_wait_ = 0;              // the check the current request waits for; 0: none
  // Written if that check times out. Behind a pointer: a record is ~350 bytes, and every
  // connection (idle subscribers included) would carry it inline.
  std::unique_ptr<upstream::UsageRecord> budget_timeout_record_;
  std::string client_ip_;   // the peer's address, for X-Forwarded-For
  std::string client_key_;  // its key in the per-address limits (api::client_key), counted there
                            // while not empty
};

}  // namespace ssegw::server
