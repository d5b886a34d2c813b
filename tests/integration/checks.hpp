// doctest assertions shared by the integration tests.
#pragma once

#include <doctest/doctest.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

namespace itest {

// docs/protocol.md#errors: {"error":{"code":"<code>","message":"..."}} + "\n", sent as
// application/json with a Content-Length.
inline void check_error(const Response& r, int status, const std::string& code) {
  INFO("response: \"", printable(r.raw), "\"");
  CHECK(r.status == status);
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.has("content-length"));
  CHECK_FALSE(r.chunked);
  const std::string prefix = "{\"error\":{\"code\":\"" + code + "\",\"message\":\"";
  CHECK(r.body.rfind(prefix, 0) == 0);
  CHECK(r.body.size() > prefix.size() + 4);  // a message that says something
  CHECK(r.body.size() >= 4);
  if (r.body.size() >= 4) CHECK(r.body.substr(r.body.size() - 4) == "\"}}\n");
}

// The body of a JSON answer without its trailing newline (docs/protocol.md#conventions: one for
// information answers).
inline std::string json_body(const Response& r) {
  std::string b = r.body;
  if (!b.empty() && b.back() == '\n') b.pop_back();
  return b;
}

// Splits "GET, POST, OPTIONS" into its tokens.
inline std::set<std::string> split_list(const std::string& v) {
  std::set<std::string> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
    if (b != std::string::npos) out.insert(item.substr(b, e - b + 1));
  }
  return out;
}

inline std::string quoted_or_null(const std::string& id) {
  return id.empty() ? "null" : "\"" + id + "\"";
}

// The exact answer of GET /v1/channels/{ch} (without the trailing newline).
inline std::string info_json(const std::string& ch, long subscribers, long retained,
                             const std::string& first_id, const std::string& last_id) {
  return "{\"channel\":\"" + ch + "\",\"subscribers\":" + std::to_string(subscribers) +
         ",\"retained\":" + std::to_string(retained) + ",\"first_id\":" + quoted_or_null(first_id) +
         ",\"last_id\":" + quoted_or_null(last_id) + "}";
}

// The exact gap frame: no id line.
inline std::string gap_frame(const std::string& requested, const std::string& first_available) {
  return "event: gap\ndata: {\"last_event_id\":\"" + requested +
         "\",\"first_available\":" + quoted_or_null(first_available) + "}\n\n";
}

// Checks that got is exactly want and names the first difference.
inline void check_same_ids(const std::vector<std::string>& got,
                           const std::vector<std::string>& want, const std::string& who) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  INFO(who, ": ", got.size(), " ids received, ", want.size(), " expected, first difference at ", i,
       (i < got.size() ? " got " + got[i] : std::string(" (none received)")),
       (i < want.size() ? " want " + want[i] : std::string(" (none expected)")));
  CHECK(i == want.size());
  CHECK(got.size() == want.size());
}

}  // namespace itest
