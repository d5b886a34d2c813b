// The handlers of the gateway's requests (docs/protocol.md): publish, subscribe, channel info, a
// proxied route, a generation's cancel, the operations endpoints, preflights and the demo page.
// Each runs only with the api::Permit the policy stage made for its request, and answers through
// its responder's Exchange (an HTTP/1.1 connection or an HTTP/2 stream): at once, or later when a
// channel's owner or Redis answers (the callbacks check that the exchange is still there).
#pragma once

#include "gateway/api/policy.hpp"
#include "gateway/http/request.hpp"

namespace ssegw::server {

class Responder;

void handle_request(Responder& responder, http::Request& request, api::Permit permit);

}  // namespace ssegw::server
