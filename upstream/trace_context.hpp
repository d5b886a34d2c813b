// W3C Trace Context (https://www.w3.org/TR/trace-context/): the traceparent header that lets an
// answer be followed from the browser to the model server.
//
// A valid traceparent from the client passes to the upstream unchanged; an invalid one is
// replaced and a missing one created (version 00, a random trace id and parent id, sampled), so
// that every proxied request carries one and its usage record names it.
#pragma once

#include <string>
#include <string_view>

namespace ssegw::upstream {

// "00-<32 hex>-<16 hex>-<2 hex>" with neither id all zeros (version 00's exact form; a later
// version's longer form is accepted by its first 55 characters, as the spec asks).
bool valid_traceparent(std::string_view value);

// A new traceparent, or "" when the kernel's random source fails.
std::string new_traceparent();

}  // namespace ssegw::upstream
