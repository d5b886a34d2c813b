// Fuzz target: the HTTP request path, bytes in, without a socket.
//
// gateway/server/connection.cpp is tied to libuv streams, so this drives the pure layers it runs
// on every request, the way Connection::parse() and dispatch() do:
// - http::RequestParser fed the input in several splits (fuzz_support.hpp), answering pipelined
//   requests one at a time and stopping after a request that closes the connection or upgrades;
// - for each complete request: api::match_route, http::query_param ("event", "last_event_id",
//   "channel"), api::valid_channel_name / valid_event_type, base::is_valid_utf8 on the body,
//   hub::EventId::parse on Last-Event-ID, hub::make_event_frame and make_gap_frame, and
//   base::append_json_string on what a client controls; for a multi-channel stream,
//   api::parse_channel_list, hub::parse_stream_cursor / append_stream_cursor on Last-Event-ID and
//   hub::parse_frame_head on the event frame.
//
// Invariants (abort() on failure, so that gcc's replay build checks them too):
// - consumed <= length; kNeedMore consumed everything; a kComplete request consumed >= 1 byte;
// - a kComplete request never holds more header bytes than max_header_bytes, nor a body larger
//   than max_body_bytes; header names are lower case;
// - strict HTTP: a kComplete request has an origin-form target of visible ASCII without '#' (or
//   "*" for OPTIONS), is HTTP/1.0 or 1.1 and not CONNECT, has token header names and values
//   without control bytes but HTAB, and its framing is at most one Content-Length of digits or
//   one Transfer-Encoding of exactly "chunked" in HTTP/1.1, never both;
// - every split gives the same requests, and an error at the same point (its status may differ,
//   see run()); never the error of the StrictScanner and llhttp disagreeing on where a request
//   ends;
// - query_param, valid_channel_name, valid_event_type, is_valid_utf8 and EventId::parse agree
//   with the small independent implementations below;
// - append_json_string gives a JSON string with no raw control byte that is valid UTF-8 and, for
//   valid UTF-8 input, decodes back to the input;
// - a channel list holds at most max valid, distinct names; a cursor that parses is written
//   back within max_stream_cursor_length and parses again to the same positions; a frame's head
//   is its id and type, and the rest starts with its data lines;
// - an event frame is exactly "id: <id>\n" ["event: <type>\n"] ("data: <line>\n")+ "\n", with no
//   CR anywhere, its data lines give back the body with CR, LF and CRLF all as LF, and chunked()
//   is "<hex size>\r\n" raw "\r\n" around the same bytes.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/api/router.hpp"
#include "gateway/base/frame.hpp"
#include "gateway/base/json.hpp"
#include "gateway/http/request.hpp"
#include "gateway/http/request_parser.hpp"
#include "gateway/hub/event_id.hpp"
#include "gateway/hub/sse_frame.hpp"
#include "gateway/hub/stream_cursor.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace ssegw;

namespace {

using http::RequestParser;
using Status = http::RequestParser::Status;

// ---- independent reference implementations ----------------------------------------------------

bool ref_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto b0 = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (b0 < 0x80) {
      ++i;
      continue;
    } else if ((b0 & 0xE0) == 0xC0) {
      n = 2;
      cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
      n = 3;
      cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
      n = 4;
      cp = b0 & 0x07;
    } else {
      return false;
    }
    if (s.size() - i < n) return false;
    for (size_t k = 1; k < n; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded value decoding: '+' is a space, %XX a byte.
std::optional<std::string> ref_percent_decode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%') {
      if (in.size() - i < 3 || hex(in[i + 1]) < 0 || hex(in[i + 2]) < 0) return std::nullopt;
      out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

// The first "name=value" (or bare "name") pair of the query, split on '&'.
http::QueryParam ref_query_param(std::string_view query, std::string_view name,
                                 std::string& value) {
  value.clear();
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(start, end - start);
    start = end + 1;
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    auto decoded = ref_percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!decoded) return http::QueryParam::kMalformed;
    value = *decoded;
    return http::QueryParam::kPresent;
  }
  return http::QueryParam::kAbsent;
}

bool ref_name_chars(std::string_view s, size_t max, std::string_view extra) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              extra.find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool ref_valid_channel_name(std::string_view s) {
  return ref_name_chars(s, 200, "_.:@~-");
}
bool ref_valid_event_type(std::string_view s) {
  return ref_name_chars(s, 64, "_.:-");
}

std::optional<uint64_t> ref_u64(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    auto d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::optional<hub::EventId> ref_event_id(std::string_view text) {
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view a = text.substr(0, dash), b = text.substr(dash + 1);
  if (a.size() > 20 || b.size() > 20) return std::nullopt;  // the documented bound
  auto ms = ref_u64(a), seq = ref_u64(b);
  if (!ms || !seq) return std::nullopt;
  return hub::EventId{*ms, *seq};
}

// Decodes what append_json_string wrote; nullopt when it is not one well-formed JSON string.
std::optional<std::string> decode_json_string(std::string_view s) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return std::nullopt;
  std::string out;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F || c == '"') return std::nullopt;
    if (c != '\\') {
      out += static_cast<char>(c);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    char e = s[++i];
    switch (e) {
      case '"':
      case '\\':
      case '/':
        out += e;
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'u': {
        if (s.size() - 1 - (i + 1) < 4) return std::nullopt;
        uint32_t cp = 0;
        for (int k = 0; k < 4; ++k) {
          int d = hex(s[++i]);
          if (d < 0) return std::nullopt;
          cp = cp * 16 + static_cast<uint32_t>(d);
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) return std::nullopt;  // never written unpaired
        if (cp < 0x80) {
          out += static_cast<char>(cp);
        } else if (cp < 0x800) {
          out += static_cast<char>(0xC0 | (cp >> 6));
          out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
          out += static_cast<char>(0xE0 | (cp >> 12));
          out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
          out += static_cast<char>(0x80 | (cp & 0x3F));
        }
        break;
      }
      default:
        return std::nullopt;
    }
  }
  return out;
}

// tchar of RFC 9110 5.6.2.
bool ref_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// What strict HTTP lets through to a complete request (RequestParser's Rules). The target is
// copied into a proxied route's upstream request line, and the framing headers decide where the
// next request starts.
void check_strict(const http::Request& r) {
  FUZZ_CHECK(r.version_major == 1 && r.version_minor <= 1);
  FUZZ_CHECK(r.method != HTTP_CONNECT);
  if (r.target == "*") {
    FUZZ_CHECK(r.method == HTTP_OPTIONS);
  } else {
    FUZZ_CHECK(!r.target.empty() && r.target[0] == '/');
  }
  for (unsigned char c : r.target) FUZZ_CHECK(c > 0x20 && c < 0x7F && c != '#');
  size_t transfer_encodings = 0, content_lengths = 0;
  for (const http::Header& h : r.headers) {
    FUZZ_CHECK(!h.name.empty());
    for (char c : h.name) FUZZ_CHECK(ref_tchar(static_cast<unsigned char>(c)));
    for (unsigned char c : h.value) FUZZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7F));
    if (h.name == "transfer-encoding") {
      ++transfer_encodings;
      FUZZ_CHECK(h.value == "chunked");
    } else if (h.name == "content-length") {
      ++content_lengths;
      FUZZ_CHECK(!h.value.empty() && ref_u64(h.value).has_value());
    }
  }
  FUZZ_CHECK(transfer_encodings <= 1 && content_lengths <= 1);
  FUZZ_CHECK(transfer_encodings == 0 || (content_lengths == 0 && !r.http10()));
}

// ---- checks on the pure layers ----------------------------------------------------------------

void check_json_string(std::string_view text) {
  std::string out = "x";  // appends, never replaces
  base::append_json_string(out, text);
  FUZZ_CHECK(out[0] == 'x');
  std::string_view json = std::string_view(out).substr(1);
  FUZZ_CHECK(ref_valid_utf8(json));
  auto decoded = decode_json_string(json);
  FUZZ_CHECK(decoded.has_value());
  FUZZ_CHECK(ref_valid_utf8(*decoded));
  if (ref_valid_utf8(text)) FUZZ_CHECK(*decoded == text);
}

// CR, LF and CRLF each become one LF.
std::string normalise_line_ends(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

void check_chunk_views(const base::FrameRef& frame) {
  FUZZ_CHECK(frame);
  std::string_view raw = frame->raw(), chunked = frame->chunked();
  FUZZ_CHECK(raw.size() == frame->size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string prefix;
  size_t v = raw.size();
  do {
    prefix.insert(prefix.begin(), kHex[v & 15]);
    v >>= 4;
  } while (v);
  prefix += "\r\n";
  FUZZ_CHECK(chunked.size() == prefix.size() + raw.size() + 2);
  FUZZ_CHECK(chunked.substr(0, prefix.size()) == prefix);
  FUZZ_CHECK(chunked.data() + prefix.size() == raw.data());  // one copy of the bytes
  FUZZ_CHECK(chunked.substr(chunked.size() - 2) == "\r\n");
}

// Splits a frame's raw bytes into its LF-terminated lines; the frame must end with LF.
std::vector<std::string_view> frame_lines(std::string_view raw) {
  FUZZ_CHECK(!raw.empty() && raw.back() == '\n');
  FUZZ_CHECK(raw.find('\r') == std::string_view::npos);  // no bare CR, and no CR at all
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < raw.size();) {
    size_t lf = raw.find('\n', start);
    lines.push_back(raw.substr(start, lf - start));
    start = lf + 1;
  }
  return lines;
}

// Checks the exact shape of an event frame; returns its data lines joined with LF.
std::string check_event_frame(const base::FrameRef& frame, const hub::EventId* id,
                              std::string_view type) {
  check_chunk_views(frame);
  std::vector<std::string_view> lines = frame_lines(frame->raw());
  size_t i = 0;
  if (id) {
    FUZZ_CHECK(i < lines.size() && lines[i] == "id: " + id->str());
    ++i;
  }
  if (!type.empty() && type != "message") {
    FUZZ_CHECK(i < lines.size() && lines[i] == "event: " + std::string(type));
    ++i;
  }
  FUZZ_CHECK(lines.size() >= i + 2);  // at least one data line, then the blank line
  FUZZ_CHECK(lines.back().empty());
  std::string data;
  for (size_t n = 0; i + 1 < lines.size(); ++i, ++n) {
    FUZZ_CHECK(lines[i].starts_with("data: "));
    if (n) data += '\n';
    data += lines[i].substr(6);
  }
  for (std::string_view l : lines)  // the brief's wording, implied by the above
    FUZZ_CHECK(l.empty() || l.starts_with("id: ") || l.starts_with("event: ") ||
               l.starts_with("data: "));
  return data;
}

void check_request(const http::Request& r, uint64_t salt) {
  // Routing, the way Connection::dispatch() does it.
  std::string_view path = r.path();
  FUZZ_CHECK(path.size() <= r.target.size());
  api::RouteMatch match = api::match_route(path);
  FUZZ_CHECK(api::route_label(match.route) != nullptr);
  FUZZ_CHECK(api::allowed_methods(match.route) != nullptr);
  bool channel_route =
      match.route == api::Route::kChannelEvents || match.route == api::Route::kChannelInfo;
  if (!channel_route) {
    FUZZ_CHECK(!match.invalid_name && match.channel.empty());
  } else if (match.invalid_name) {
    FUZZ_CHECK(match.channel.empty());
  } else {
    FUZZ_CHECK(api::valid_channel_name(match.channel));
    FUZZ_CHECK(match.channel.find('/') == std::string::npos);
    std::string_view rest = path.substr(13);  // after "/v1/channels/"
    std::string_view segment = rest.substr(0, rest.find('/'));
    auto decoded = ref_percent_decode(segment);
    FUZZ_CHECK(decoded && *decoded == match.channel);
  }
  FUZZ_CHECK(api::valid_channel_name(match.channel) == ref_valid_channel_name(match.channel));

  // Query parameters, each against the reference.
  std::string type, last_event_id_param, channel_param;
  struct {
    const char* name;
    std::string* value;
  } params[] = {
      {"event", &type}, {"last_event_id", &last_event_id_param}, {"channel", &channel_param}};
  for (auto& p : params) {
    std::string want;
    http::QueryParam got = http::query_param(r.query(), p.name, *p.value);
    FUZZ_CHECK(got == ref_query_param(r.query(), p.name, want));
    FUZZ_CHECK(*p.value == want);
  }
  FUZZ_CHECK(api::valid_event_type(type) == ref_valid_event_type(type));
  FUZZ_CHECK(api::valid_channel_name(channel_param) == ref_valid_channel_name(channel_param));
  std::string decoded;
  bool ok = http::percent_decode(r.query(), decoded);
  auto ref = ref_percent_decode(r.query());
  FUZZ_CHECK(ok == ref.has_value());
  if (ok) FUZZ_CHECK(decoded == *ref);

  // The body as a publish: UTF-8 check, then serialised once into a frame.
  bool utf8 = base::is_valid_utf8(r.body);
  FUZZ_CHECK(utf8 == ref_valid_utf8(r.body));

  std::string_view last_event_id = r.header("last-event-id");
  std::optional<hub::EventId> parsed = hub::EventId::parse(last_event_id);
  std::optional<hub::EventId> want_id = ref_event_id(last_event_id);
  FUZZ_CHECK(parsed == want_id);
  hub::EventId id = parsed.value_or(hub::EventId{salt, r.body.size()});
  std::string id_text = id.str();
  FUZZ_CHECK(id_text.size() <= hub::EventId::kMaxLength);
  FUZZ_CHECK(hub::EventId::parse(id_text) == id);  // str() and parse() round-trip

  // The hub only sees validated types; an invalid one is answered 400 before it gets there.
  std::string_view frame_type = api::valid_event_type(type) ? std::string_view(type) : "";
  base::FrameRef frame = hub::make_event_frame(id, frame_type, r.body);
  FUZZ_CHECK(check_event_frame(frame, &id, frame_type) == normalise_line_ends(r.body));
  base::FrameRef unnumbered = hub::make_unnumbered_event_frame(frame_type, r.body);
  FUZZ_CHECK(check_event_frame(unnumbered, nullptr, frame_type) == normalise_line_ends(r.body));

  // The gap notice quotes the client's Last-Event-ID (cut to 256 bytes, as the connection does).
  std::string requested(last_event_id.substr(0, 256));
  base::FrameRef gap = hub::make_gap_frame(requested, parsed);
  std::string gap_data = check_event_frame(gap, nullptr, "gap");
  FUZZ_CHECK(gap_data.find('\n') == std::string::npos);  // one JSON line

  // A multi-channel stream's frame is its own prefix and the rest after the frame's head.
  hub::FrameHead head = hub::parse_frame_head(frame->raw());
  FUZZ_CHECK(head.id == id_text);
  FUZZ_CHECK(head.type == (frame_type == "message" ? "" : frame_type));
  FUZZ_CHECK(frame->raw().substr(head.rest).starts_with("data: "));

  // A multi-channel stream's channel list: what parse_channel_list gives is bounded, valid and
  // distinct, whatever the query.
  for (size_t max : {size_t{1}, size_t{3}, size_t{64}}) {
    api::ChannelList list = api::parse_channel_list(r.query(), max);
    FUZZ_CHECK(list.names.size() <= max);
    FUZZ_CHECK(list.error != api::ChannelList::Error::kNone || !list.names.empty());
    for (size_t i = 0; i < list.names.size(); ++i) {
      FUZZ_CHECK(ref_valid_channel_name(list.names[i]));
      for (size_t j = 0; j < i; ++j) FUZZ_CHECK(list.names[i] != list.names[j]);
    }
    if (list.error == api::ChannelList::Error::kDuplicate)
      FUZZ_CHECK(std::find(list.names.begin(), list.names.end(), list.bad) != list.names.end());
  }
  // Its cursor: a Last-Event-ID that parses gives back, once written again, the same positions,
  // within the documented length.
  for (size_t count : {size_t{1}, size_t{2}, size_t{3}, size_t{64}}) {
    std::optional<std::vector<hub::EventId>> positions =
        hub::parse_stream_cursor(last_event_id, count);
    if (!positions) continue;
    FUZZ_CHECK(positions->size() == count);
    std::string text;
    hub::append_stream_cursor(text, positions->data(), count);
    FUZZ_CHECK(text.size() <= hub::max_stream_cursor_length(count));
    FUZZ_CHECK(hub::parse_stream_cursor(text, count) == positions);
  }

  // What a client controls, quoted into JSON answers and logs.
  check_json_string(r.body);
  check_json_string(r.target);
  check_json_string(match.channel);
  check_json_string(channel_param);
  for (const http::Header& h : r.headers) check_json_string(h.value);
}

// ---- the parse loop ---------------------------------------------------------------------------

size_t header_bytes(const http::Request& r) {
  size_t n = r.target.size();
  for (const http::Header& h : r.headers) n += h.name.size() + h.value.size() + 4;
  return n;
}

void describe(std::string& log, const http::Request& r, bool upgrade) {
  log += "request method=" + std::to_string(r.method) +
         " version=" + std::to_string(r.version_major) + "." + std::to_string(r.version_minor);
  log += r.keep_alive ? " keep-alive" : " close";
  if (r.expect_continue) log += " expect-continue";
  if (upgrade) log += " upgrade";
  log += " target=";
  fuzz::append_field(log, r.target);
  for (const http::Header& h : r.headers) {
    log += "\n  ";
    fuzz::append_field(log, h.name);
    log += '=';
    fuzz::append_field(log, h.value);
  }
  log += "\n  body=";
  fuzz::append_field(log, r.body);
  log += '\n';
}

// Feeds the input along `plan` as Connection::parse() does; returns a log of what happened.
std::string run(std::string_view input, const fuzz::Plan& plan, const http::ParserLimits& limits,
                bool check_requests) {
  RequestParser parser(limits);
  std::string log;
  bool stopped = false;
  size_t requests = 0;
  fuzz::feed_plan(input, plan, [&](std::string_view piece) {
    size_t used = 0;
    while (!stopped && used < piece.size()) {
      const size_t length = piece.size() - used;
      RequestParser::Result result = parser.feed(piece.data() + used, length);
      FUZZ_CHECK(result.consumed <= length);
      used += result.consumed;
      if (result.status == Status::kError) {
        const http::ParseError& e = parser.error();
        FUZZ_CHECK(e.status == 400 || e.status == 413 || e.status == 431);
        // RequestParser refuses a request whose end its StrictScanner and llhttp put at
        // different bytes; that must never happen: the scanner refuses first.
        FUZZ_CHECK(e.message.find("disagree on where it ends") == std::string::npos);
        // Only the fact of the error is compared across splits, not its status: a request that
        // is both malformed and over a limit may get either answer, depending on where a piece
        // ends (llhttp hands a span to the callback that counts it at the end of each piece,
        // and at once only when the span ends, after the malformed byte it would report first).
        log += "error\n";
        stopped = true;
        break;
      }
      if (result.status == Status::kNeedMore) {
        FUZZ_CHECK(result.consumed == length);
        break;
      }
      FUZZ_CHECK(result.consumed >= 1);
      const http::Request& r = parser.request();
      FUZZ_CHECK(parser.headers_complete());
      FUZZ_CHECK(header_bytes(r) <= limits.max_header_bytes);
      FUZZ_CHECK(r.body.size() <= limits.max_body_bytes);
      for (const http::Header& h : r.headers)
        for (char c : h.name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
      check_strict(r);
      describe(log, r, parser.upgrade());
      if (check_requests) check_request(r, fuzz::prefix_seed(input) ^ requests);
      ++requests;
      // Connection::dispatch(): nothing after a closing or upgrading request is parsed.
      if (!r.keep_alive || parser.upgrade()) {
        log += "closed\n";
        stopped = true;
        break;
      }
      parser.next();
      FUZZ_CHECK(!parser.in_progress() && !parser.headers_complete());
    }
  });
  if (!stopped) {
    log += parser.in_progress() ? "incomplete" : "idle";
    if (parser.headers_complete()) log += " headers-complete";
    log += '\n';
  }
  FUZZ_CHECK(requests <= input.size());
  return log;
}

void check_splits(std::string_view input, const http::ParserLimits& limits, bool check_requests,
                  size_t bytewise_limit) {
  const auto plans = fuzz::split_plans(input, bytewise_limit);
  const std::string expected = run(input, plans[0], limits, check_requests);
  if (fuzz::debug()) std::fprintf(stderr, "%s\n", expected.c_str());
  for (size_t i = 1; i < plans.size(); ++i) {
    std::string got = run(input, plans[i], limits, false);
    if (got != expected) {
      fuzz::report_mismatch("HTTP parses", expected, got);
      FUZZ_CHECK(got == expected);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  check_splits(input, http::ParserLimits{}, /*check_requests=*/true, 1024);  // config defaults
  // Small limits from the last two bytes, to reach 431 and 413 with small inputs.
  if (size >= 2) {
    http::ParserLimits small;
    small.max_header_bytes = 8 + static_cast<unsigned char>(input[size - 1]) * 2;
    small.max_body_bytes = static_cast<unsigned char>(input[size - 2]) % 64;
    check_splits(input, small, /*check_requests=*/false, 256);
  }
  return 0;
}
