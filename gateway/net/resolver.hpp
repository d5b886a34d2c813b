// Asynchronous DNS (uv_getaddrinfo) with a cancellable owner, and the shortcut for a host that
// is already an address.
//
// Rules:
// - A request, not a handle (handle.hpp): the memory belongs to libuv until its callback runs, so
//   it is heap-allocated and freed there, and nowhere else.
// - The callback runs exactly once, with the addresses or an error, unless cancel() comes first.
//   cancel() detaches the callback (the owner hears nothing more, and may go at once) and asks
//   libuv to cancel the lookup: one still queued for the thread pool ends at once
//   (UV_EAI_CANCELED), one already running ends when getaddrinfo returns. Either way the loop
//   does not end before the request has, and the pointer is not to be used after cancel().
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

// host as an IPv4 or IPv6 address (no brackets), with port: true and `out` set, or false for a
// name, which needs a Resolve. An IPv6 address with a zone (%eth0) counts as a name.
bool ip_literal(const std::string& host, uint16_t port, ResolvedAddress& out);

class Resolve {
 public:
  using Callback = std::function<void(int status, std::vector<ResolvedAddress> addresses)>;
  // Starts resolving host:port. The callback runs once, unless cancel() comes first; never from
  // inside start(). Null when the lookup cannot start (the callback never runs then).
  static Resolve* start(Loop& loop, const std::string& host, uint16_t port, Callback callback);
  void cancel();

 private:
  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* result);
  uv_getaddrinfo_t req_;
  Callback callback_;
};

}  // namespace ssegw::net
