// The downstream side of a proxied route (docs/protocol.md "Routes"): the client's exchange as an
// upstream::Downstream, and the RouteProxy that writes to it.
//
// Rules:
// - The connection owns its ProxyResponse (the last one, until the next request replaces it);
//   the ProxyResponse owns the RouteProxy, except when the client leaves while an answer that
//   goes on without it is still running: then the worker adopts the RouteProxy (gone()).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/http/exchange.hpp"
#include "upstream/downstream.hpp"
#include "upstream/route_proxy.hpp"

namespace ssegw::server {

class Worker;

class ProxyResponse final : public upstream::Downstream {
 public:
  ProxyResponse(Worker& worker, http::Exchange& exchange);
  ~ProxyResponse();

  // Runs proxy (made with this as its downstream) for request.
  void start(std::unique_ptr<upstream::RouteProxy> proxy, upstream::OutgoingRequest request,
             base::Lease upstream_slot);
  // The client's unsent output shrank: a paused upstream may read again.
  void progress();
  // Keep-alive comments and the stall check; every tick while the answer streams.
  void tick(uint64_t now_ms);
  // The client left: the upstream is cancelled, or the answer goes on detached.
  void gone();

  // upstream::Downstream.
  void start_response(int status, std::string header_lines, bool has_body) override;
  void send(std::string_view body_bytes) override { exchange_.write_body(body_bytes); }
  void send_queued() override { exchange_.send_now(); }
  void send_frame(const base::FrameRef& frame) override { exchange_.write_frame(frame); }
  void finish() override { exchange_.end_stream(); }
  void abort() override { exchange_.abort(); }
  size_t unsent_bytes() const override { return exchange_.unsent_bytes(); }
  uint64_t bytes_acked() const override { return exchange_.bytes_acked(); }
  uint64_t connection_id() const override { return exchange_.id(); }

 private:
  Worker& worker_;
  http::Exchange& exchange_;
  std::unique_ptr<upstream::RouteProxy> proxy_;
};

}  // namespace ssegw::server
