// Asking an OpenAI chat upstream for the usage of a streamed answer, without the client seeing
// the difference (docs/protocol.md "Usage").
//
// OpenAI sends no token counts for a streamed chat completion unless the request sets
// stream_options.include_usage. When a client did not, the gateway sets it on the way up; the
// upstream then adds `"usage":null` to every chunk and one chunk of its own at the end, with
// `"choices":[]` and the usage. On the way down the gateway takes both out again, so the client
// gets the bytes it would have had without the gateway, and the gateway has its counts.
//
// Rules:
// - Only a chat completions route (its path ends in /chat/completions), only a JSON object body
//   with "stream":true and without stream_options: a client that chose its stream_options gets
//   exactly what it chose.
// - The removal is textual, on whole events: `,"usage":null` (and `"usage":null,`) in an event's
//   data, and an event whose data has `"choices":[]` with a usage object. Anything else passes
//   unchanged.
#pragma once

#include <string>
#include <string_view>

namespace ssegw::upstream {

// Adds "stream_options":{"include_usage":true} to a chat completions request body that streams
// and has no stream_options. True when it did.
bool inject_include_usage(std::string_view route_path, std::string& body);

// The data of an event as the client would have had it: false when the whole event is the
// usage-only chunk (it is dropped), else true with `out` set to the data without the null usage
// (`out` is empty and the data unchanged when there was nothing to take out).
bool strip_injected_usage(std::string_view data, std::string& out);

// The same on raw SSE bytes that end at an event boundary: appends to `out` every event, minus
// what strip_injected_usage() takes out. CR, LF and CRLF line ends are kept as they were.
void strip_injected_usage_events(std::string_view events, std::string& out);

}  // namespace ssegw::upstream
