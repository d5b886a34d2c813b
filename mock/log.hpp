// The mock's log: one JSON object per line on stderr, written with one write(2).
//
// {"level":"info","msg":"listening","addr":"127.0.0.1:PORT","pid":N,"ts":MS} is its first line:
// the tests and tests/node/lib.mjs read the port from "addr", so keep that shape.
#pragma once

#include <string_view>

namespace ssegw::mock {

// `fields`: JSON members to put after "msg", each starting with a comma (`,"pid":42`).
void log_line(std::string_view level, std::string_view msg, std::string_view fields = {});

}  // namespace ssegw::mock
