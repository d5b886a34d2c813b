// What passes between a route's client and its upstream, and what does not (RFC 9110 §7.6.1):
// the request sent upstream, the response head sent back, and the boundaries of the events a
// proxy forwards whole.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/request.hpp"
#include "upstream/http_client.hpp"

namespace ssegw::upstream {

// The request to send upstream for a client request: method, target, body and end-to-end
// headers (hop-by-hop ones, Host, Content-Length and Accept-Encoding removed), with the client's
// address added to X-Forwarded-For.
OutgoingRequest forwardable_request(const http::Request& request, std::string_view client_ip);

// Hop-by-hop for a proxy: the Connection family, framing, Host and Expect. `name` in lower
// case, as the request parser gives it.
bool is_hop_by_hop(std::string_view name);

// Given data that starts at an event boundary: the length of its first complete SSE event (up to
// and with the blank line that ends it), or 0 when none is complete; and the length of the
// prefix that ends with its last complete event. CR, LF and CRLF all end lines.
size_t sse_event_end(std::string_view data);
size_t complete_sse_prefix(std::string_view data);

// {"error":{"type":...,"message":...}}: the data of the error event a proxy ends a stream with.
std::string error_event_json(std::string_view type, std::string_view message);

}  // namespace ssegw::upstream
