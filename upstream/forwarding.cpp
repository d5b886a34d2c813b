#include "upstream/forwarding.hpp"

#include <llhttp.h>

#include <algorithm>
#include <cstring>

#include "gateway/base/ascii.hpp"
#include "gateway/base/json.hpp"

namespace ssegw::upstream {
namespace {

// Headers named in the Connection header are hop-by-hop too (RFC 9110 §7.6.1).
bool named_in_connection(std::string_view connection, std::string_view name) {
  std::string list = base::to_lower(connection);
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    std::string_view token(list.data() + pos,
                           (comma == std::string::npos ? list.size() : comma) - pos);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    if (token == name) return true;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection",
                                                "keep-alive",
                                                "proxy-authenticate",
                                                "proxy-authorization",
                                                "te",
                                                "trailer",
                                                "trailers",
                                                "transfer-encoding",
                                                "upgrade",
                                                "host",
                                                "content-length",
                                                "expect",
                                                "accept-encoding"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

namespace {

// sse_event_end from `start`, a line's start, byte by byte: any mix of CR, LF and CRLF.
size_t event_end_bytewise(std::string_view data, size_t start) {
  size_t line_length = 0;
  for (size_t i = start; i < data.size(); ++i) {
    char c = data[i];
    if (c != '\r' && c != '\n') {
      ++line_length;
      continue;
    }
    if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
    if (line_length == 0) return i + 1;
    line_length = 0;
  }
  return 0;
}

}  // namespace

// Line by line with memchr while the lines end in LF alone (what every LLM API sends); a line
// with a CR goes on byte by byte.
size_t sse_event_end(std::string_view data) {
  const char* base = data.data();
  size_t start = 0;  // of the current line
  while (start < data.size()) {
    const auto* lf = static_cast<const char*>(std::memchr(base + start, '\n', data.size() - start));
    size_t end = lf ? static_cast<size_t>(lf - base) : data.size();
    if (std::memchr(base + start, '\r', end - start)) return event_end_bytewise(data, start);
    if (!lf) return 0;
    if (end == start) return end + 1;  // a blank line ends the event
    start = end + 1;
  }
  return 0;
}

size_t complete_sse_prefix(std::string_view data) {
  size_t boundary = 0;
  while (size_t end = sse_event_end(data.substr(boundary))) boundary += end;
  return boundary;
}

std::string error_event_json(std::string_view type, std::string_view message) {
  return base::json_error_object("type", type, message);
}

OutgoingRequest forwardable_request(const http::Request& request, std::string_view client_ip) {
  OutgoingRequest out;
  out.method = llhttp_method_name(static_cast<llhttp_method_t>(request.method));
  out.target = request.target;
  std::string_view connection = request.header("connection");
  std::string forwarded_for;
  for (const http::Header& h : request.headers) {
    if (is_hop_by_hop(h.name) || named_in_connection(connection, h.name)) continue;
    if (h.name == "x-forwarded-for") {
      forwarded_for = h.value;
      continue;
    }
    out.headers.push_back(h);
  }
  if (!client_ip.empty()) {
    if (!forwarded_for.empty()) forwarded_for += ", ";
    forwarded_for += client_ip;
  }
  if (!forwarded_for.empty()) out.headers.push_back({"X-Forwarded-For", forwarded_for});
  out.body = request.body;
  return out;
}

}  // namespace ssegw::upstream
