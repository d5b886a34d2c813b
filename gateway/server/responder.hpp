// The server's side of one exchange (an HTTP/1.1 connection's current request, or one HTTP/2
// stream): the policy stage (api::Policy), then the request's handler (handlers.hpp), and the
// stream the answer may carry: an SSE subscription (SseStream) or a proxied answer
// (ProxyResponse).
//
// Rules:
// - It lives as long as its exchange: the HTTP/1.1 connection holds one for all its requests, an
//   HTTP/2 stream one for its single request. closed() (the last call) gives back the channel
//   and the upstream request.
// - Callbacks that come back later (a channel's owner, Redis) check the exchange's lifetime
//   before they touch the responder.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/api/policy.hpp"
#include "gateway/http/exchange.hpp"
#include "gateway/http/stream_handler.hpp"
#include "gateway/hub/channel_service.hpp"
#include "upstream/usage_record.hpp"

namespace ssegw::server {

class Connection;
class Worker;
class SseStream;
class MultiStream;
class ProxyResponse;

class Responder final : public http::StreamHandler {
 public:
  Responder(Connection& connection, http::Exchange& exchange);
  ~Responder() override;

  // http::StreamHandler.
  void handle(http::Request& request) override;
  Timeout answer_timeout() override;
  bool own_deadline() const override;
  void drained() override;
  void progress() override;
  void tick(uint64_t now_ms) override;
  bool end_for_shutdown() override;
  void closed() override;

  Worker& worker();
  http::Exchange& exchange() { return exchange_; }
  const std::string& client_ip() const;

  // For the handlers. A subscription waits for its channel's answer (joined()), which starts
  // the stream or refuses it; a route streams through its ProxyResponse.
  void await_stream(std::unique_ptr<SseStream> stream);
  hub::Member joined(hub::Admission& admission);
  ProxyResponse& proxy(std::unique_ptr<ProxyResponse> response);
  // A multi-channel stream waits for each of its channels' joins (multi_joined()).
  MultiStream& await_multi(std::unique_ptr<MultiStream> stream);
  hub::Member multi_joined(size_t channel, hub::Admission& admission);
  bool awaiting_multi() const;
  // A cancel (DELETE /v1/generations/{gen}) waits for its outcome under the number await_cancel()
  // gives. answer_timeout() gives up on it: from then on cancel_awaited() is false, and its late
  // outcome must neither answer nor start anything more (such as the cancel's delivery).
  uint64_t await_cancel();
  bool cancel_awaited(uint64_t wait) const { return wait != 0 && cancel_wait_ == wait; }
  void cancel_answered() { cancel_wait_ = 0; }

 private:
  // The policy's answer for request, now or after the budget check.
  void admitted(http::Request& request, api::Admission admission);
  void report_rejected(const upstream::UsageRecord& record);

  Connection& connection_;
  http::Exchange& exchange_;
  std::unique_ptr<SseStream> stream_;
  std::unique_ptr<MultiStream> multi_;
  std::unique_ptr<ProxyResponse> proxy_;  // the last route's, until the next request
  bool stream_awaited_ = false;           // stream_ waits for its channel's answer
  bool route_awaited_ = false;            // this request's route waits for its upstream
  uint64_t waits_ = 0;                    // budget checks and cancels started, to number them
  uint64_t budget_wait_ = 0;              // the check the current request waits for; 0: none
  uint64_t cancel_wait_ = 0;              // the cancel the current request waits for; 0: none
  // Written if that check times out. Behind a pointer: a record is ~350 bytes, and every
  // connection (idle subscribers included) would carry it inline.
  std::unique_ptr<upstream::UsageRecord> budget_timeout_record_;
};

}  // namespace ssegw::server
