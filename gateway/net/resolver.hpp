// Asynchronous DNS (uv_getaddrinfo) with a cancellable owner.
//
// Rules:
// - The request memory belongs to libuv until its callback runs, so it is heap-allocated and
//   freed there. cancel() only detaches the callback: the result is then dropped.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <vector>

namespace ssegw::net {

class Loop;

struct ResolvedAddress {
  sockaddr_storage addr;
  socklen_t length;
};

class Resolve {
 public:
  using Callback = std::function<void(int status, std::vector<ResolvedAddress> addresses)>;
  // Starts resolving host:port. The callback runs once, unless cancel() comes first.
  static Resolve* start(Loop& loop, const std::string& host, uint16_t port, Callback callback);
  void cancel();

 private:
  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* result);
  uv_getaddrinfo_t req_;
  Callback callback_;
};

}  // namespace ssegw::net
