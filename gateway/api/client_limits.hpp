// Per-client-address limits (limits.max_connections_per_ip, publish_rate_per_ip,
// max_streams_per_ip): shared by all workers, so one mutex guards them. They are touched once per
// connection, publish or proxied request, never per delivered event.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "gateway/base/lease.hpp"

namespace ssegw::api {

// The key of a client address in these limits: an IPv4 address as it is, an IPv6 address by its
// /64 prefix ("2001:db8:1:2::/64"), since one subscriber usually holds a whole /64 and could
// otherwise take a fresh address for every request.
std::string client_key(std::string_view address);

class ClientLimits {
 public:
  ClientLimits(uint32_t max_connections, uint32_t publish_rate, uint32_t publish_burst,
               uint32_t max_streams);

  // Counts a connection from ip; false (and nothing counted) when ip is at its limit.
  bool open_connection(const std::string& ip);
  void close_connection(const std::string& ip);

  // Takes one publish from ip's token bucket. On refusal, retry_after_s says when one is back.
  bool take_publish(const std::string& ip, uint64_t now_ms, uint32_t& retry_after_s);

  // A running-stream slot of ip (a proxied answer, attached or detached), held until the lease
  // goes; nullopt when ip has max_streams running. The ClientLimits must outlive the lease.
  std::optional<base::Lease> take_stream(const std::string& ip);
  uint32_t streams(const std::string& ip);

  // Forgets buckets that have been full for a while, so the table does not grow without bound.
  void sweep(uint64_t now_ms);

 private:
  struct Bucket {
    double tokens;
    uint64_t updated_ms;
  };

  const uint32_t max_connections_;
  const uint32_t max_streams_;
  const double rate_;  // tokens per millisecond
  const double burst_;
  std::mutex mutex_;
  std::unordered_map<std::string, uint32_t> connections_;
  std::unordered_map<std::string, uint32_t> streams_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace ssegw::api
