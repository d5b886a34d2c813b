// The handlers of the gateway's requests (docs/protocol.md): publish, subscribe, channel info, a
// proxied route, a generation's cancel, the operations endpoints, preflights and the demo page.
// Each runs only with the api::Permit the policy stage made for its request, and answers through
// the connection's Exchange: at once, or later when a channel's owner or Redis answers (the
// callbacks check that the connection is still there).
#pragma once

#include "gateway/api/policy.hpp"
#include "gateway/http/request.hpp"

namespace ssegw::server {

class Connection;

void handle_request(Connection& connection, http::Request& request, api::Permit permit);

}  // namespace ssegw::server
