#include "gateway/server/proxy_response.hpp"

#include "gateway/server/worker.hpp"

namespace ssegw::server {

ProxyResponse::ProxyResponse(Worker& worker, http::Exchange& exchange)
    : worker_(worker), exchange_(exchange) {}

ProxyResponse::~ProxyResponse() = default;

void ProxyResponse::start(std::unique_ptr<upstream::RouteProxy> proxy,
                          upstream::OutgoingRequest request, base::Lease upstream_slot) {
  proxy_ = std::move(proxy);
  proxy_->start(std::move(request), std::move(upstream_slot));
}

void ProxyResponse::progress() {
  if (proxy_) proxy_->downstream_progress();
}

void ProxyResponse::tick(uint64_t now_ms) {
  if (proxy_) proxy_->tick(now_ms);
}

void ProxyResponse::gone() {
  if (!proxy_) return;
  bool goes_on = proxy_->continues_without_client();
  proxy_->downstream_gone();
  if (goes_on) worker_.adopt(std::move(proxy_));
}

void ProxyResponse::start_response(int status, std::string header_lines, bool has_body) {
  exchange_.start_stream(status, header_lines, has_body);
}

}  // namespace ssegw::server
