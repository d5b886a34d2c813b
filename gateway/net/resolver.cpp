#include "gateway/net/resolver.hpp"

#include <cstring>

#include "gateway/net/loop.hpp"

namespace ssegw::net {

bool ip_literal(const std::string& host, uint16_t port, ResolvedAddress& out) {
  out = {};
  // A zone (fe80::1%eth0, %2): uv_ip6_addr knows interface names only and drops what it cannot
  // find; getaddrinfo reads both, and refuses an unknown one.
  if (host.find('%') != std::string::npos) return false;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.addr);
  if (uv_ip4_addr(host.c_str(), port, v4) == 0) {
    out.length = sizeof(sockaddr_in);
    return true;
  }
  out = {};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
  if (uv_ip6_addr(host.c_str(), port, v6) == 0) {
    out.length = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

Resolve* Resolve::start(Loop& loop, const std::string& host, uint16_t port, Callback callback) {
  auto* self = new Resolve();
  self->callback_ = std::move(callback);
  self->req_.data = self;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  std::string service = std::to_string(port);
  int r =
      uv_getaddrinfo(loop.uv(), &self->req_, on_resolved, host.c_str(), service.c_str(), &hints);
  if (r != 0) {
    // Report on the caller's stack would re-enter it; the caller handles a null return instead.
    delete self;
    return nullptr;
  }
  return self;
}

void Resolve::cancel() {
  callback_ = nullptr;
  uv_cancel(reinterpret_cast<uv_req_t*>(&req_));  // UV_EBUSY once running: it ends on its own
}

void Resolve::on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* result) {
  auto* self = static_cast<Resolve*>(req->data);
  std::vector<ResolvedAddress> addresses;
  for (addrinfo* ai = result; ai; ai = ai->ai_next) {
    ResolvedAddress a{};
    std::memcpy(&a.addr, ai->ai_addr, ai->ai_addrlen);
    a.length = ai->ai_addrlen;
    addresses.push_back(a);
  }
  uv_freeaddrinfo(result);
  Callback callback = std::move(self->callback_);
  delete self;
  if (callback) callback(status, std::move(addresses));
}

}  // namespace ssegw::net
