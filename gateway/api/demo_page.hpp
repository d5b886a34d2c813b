// The demo chat page at GET / (docs/protocol.md, demo.enabled): a ChatGPT-style box that opens an
// EventSource on its conversation channel and POSTs each prompt with Prefer: respond-async.
#pragma once

#include <string_view>

namespace ssegw::api {

std::string_view demo_page_html();

}  // namespace ssegw::api
