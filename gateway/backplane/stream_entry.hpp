// The Redis backplane's codec: what its replies and stream entries mean, without a connection.
// Pure functions of hiredis replies, so that they are tested on replies read from RESP bytes
// (tests/gateway/backplane/stream_entry_test.cpp).
//
// A stream entry, as XRANGE and XREVRANGE return it, is [id, [field, value, ...]]. The fields
// the backplane writes (redis_backplane.cpp, the publish script): data, event (absent for
// "message"), n (the size it counts for), uid (a source's upstream id), end (a generation's end
// marker, whose value is the last event's id).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "gateway/hub/event_id.hpp"

struct redisReply;

namespace ssegw::backplane {

// The bytes of a string, status or error reply; empty for any other reply, and for null.
std::string_view text(const redisReply* reply);

// Null (no answer: the connection went) or an error reply.
bool is_error(const redisReply* reply);

// What an event counts for in history.max_bytes, less its id line, which the script adds once
// Redis has numbered it: the memory hub counts whole serialised frames.
std::string unnumbered_size(std::string_view type, std::string_view data);

// A stream entry from XRANGE: [id, [field, value, ...]]. False when it is not one (the outputs
// are then untouched). Fields it does not hold leave their output as it was; the views point
// into the reply.
bool parse_entry(const redisReply* reply, hub::EventId& id, std::string_view& data,
                 std::string_view& type, std::optional<hub::EventId>& end);

}  // namespace ssegw::backplane
