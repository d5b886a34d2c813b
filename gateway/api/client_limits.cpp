#include "gateway/api/client_limits.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>

namespace ssegw::api {

std::string client_key(std::string_view address) {
  std::string text(address);
  in6_addr v6{};
  if (text.find(':') == std::string::npos || inet_pton(AF_INET6, text.c_str(), &v6) != 1)
    return text;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) return text;  // an IPv4 client on a dual-stack socket
  std::fill(v6.s6_addr + 8, v6.s6_addr + 16, 0);
  char out[INET6_ADDRSTRLEN];
  if (!inet_ntop(AF_INET6, &v6, out, sizeof out)) return text;
  return std::string(out) + "/64";
}

ClientLimits::ClientLimits(uint32_t max_connections, uint32_t publish_rate, uint32_t publish_burst,
                           uint32_t max_streams)
    : max_connections_(max_connections),
      max_streams_(max_streams),
      rate_(static_cast<double>(publish_rate) / 1000.0),
      burst_(static_cast<double>(std::max<uint32_t>(publish_burst, 1))) {}

bool ClientLimits::open_connection(const std::string& ip) {
  std::lock_guard lock(mutex_);
  uint32_t& count = connections_[ip];
  if (count >= max_connections_) {
    if (count == 0) connections_.erase(ip);
    return false;
  }
  ++count;
  return true;
}

void ClientLimits::close_connection(const std::string& ip) {
  std::lock_guard lock(mutex_);
  auto it = connections_.find(ip);
  if (it == connections_.end()) return;
  if (--it->second == 0) connections_.erase(it);
}

std::optional<base::Lease> ClientLimits::take_stream(const std::string& ip) {
  std::lock_guard lock(mutex_);
  uint32_t& count = streams_[ip];
  if (count >= max_streams_) {
    if (count == 0) streams_.erase(ip);
    return std::nullopt;
  }
  ++count;
  return base::Lease([this, ip] {
    std::lock_guard lock(mutex_);
    auto it = streams_.find(ip);
    if (it != streams_.end() && --it->second == 0) streams_.erase(it);
  });
}

uint32_t ClientLimits::streams(const std::string& ip) {
  std::lock_guard lock(mutex_);
  auto it = streams_.find(ip);
  return it == streams_.end() ? 0 : it->second;
}

bool ClientLimits::take_publish(const std::string& ip, uint64_t now_ms, uint32_t& retry_after_s) {
  std::lock_guard lock(mutex_);
  auto [it, fresh] = buckets_.try_emplace(ip, Bucket{burst_, now_ms});
  Bucket& b = it->second;
  if (!fresh && now_ms > b.updated_ms) {
    b.tokens = std::min(burst_, b.tokens + static_cast<double>(now_ms - b.updated_ms) * rate_);
    b.updated_ms = now_ms;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return true;
  }
  double wait_ms = (1.0 - b.tokens) / rate_;
  retry_after_s = static_cast<uint32_t>(std::max(1.0, std::ceil(wait_ms / 1000.0)));
  return false;
}

void ClientLimits::sweep(uint64_t now_ms) {
  std::lock_guard lock(mutex_);
  // A bucket that would be full again by now carries no information.
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    double refilled =
        it->second.tokens + static_cast<double>(now_ms - it->second.updated_ms) * rate_;
    if (now_ms >= it->second.updated_ms && refilled >= burst_)
      it = buckets_.erase(it);
    else
      ++it;
  }
}

}  // namespace ssegw::api
