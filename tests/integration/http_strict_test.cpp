// Strict HTTP against the real binary: a request smuggling attempt gets exactly one 400 with its
// JSON error, the connection closes with nothing after it, and nothing smuggled is published or
// proxied.
#include <string>
#include <vector>

#include "tests/integration/checks.hpp"
#include "tests/integration/harness.hpp"

using namespace itest;

namespace {

// Every byte the gateway sends for a refused request: one 400, then it closes. json_message is
// the message as it appears inside the JSON string.
std::string refusal(const std::string& json_message) {
  std::string body =
      "{\"error\":{\"code\":\"bad_request\",\"message\":\"" + json_message + "\"}}\n";
  return "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

struct Attempt {
  std::string name;
  std::string bytes;
  std::string json_message;
};

// Sends the attempt in one write and reads until the gateway closes.
void check_refused(uint16_t port, const Attempt& a) {
  CAPTURE(a.name);
  INFO("request: \"", printable(a.bytes), "\"");
  Conn c(port);
  c.send(a.bytes);
  REQUIRE(c.wait_closed(kTimeout));
  INFO("received: \"", printable(c.buffer()), "\"");
  CHECK(c.buffer() == refusal(a.json_message));
}

const std::string kPost = "POST /v1/channels/a/events HTTP/1.1\r\nHost: x\r\n";
// A publish that must never happen.
const std::string kSmuggledPublish =
    "POST /v1/channels/smuggled/events HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nsmuggle";

std::vector<Attempt> smuggling_attempts() {
  return {
      // Finding 6, byte for byte: llhttp's loose mode skipped "ZZ0\r\n" as the CRLF after the
      // chunk, took "\r\n" for the last chunk, and answered the GET as a second request.
      {"chunk data not followed by CRLF (finding 6)",
       kPost + "Transfer-Encoding: chunked\r\n\r\n1\r\nAZZ0\r\n\r\n"
               "GET /v1/channels/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
       "malformed HTTP request: chunk data not followed by CRLF"},
      {"chunk data not followed by CRLF, smuggling a publish",
       kPost + "Transfer-Encoding: chunked\r\n\r\n1\r\nAZZ0\r\n\r\n" + kSmuggledPublish,
       "malformed HTTP request: chunk data not followed by CRLF"},
      // TE.CL: a front end reading Content-Length forwards the chunked body as one request.
      {"TE.CL",
       kPost + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" +
           "5c\r\nPOST /v1/channels/smuggled/events HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n"
           "\r\nsmuggle\r\n0\r\n\r\n",
       "malformed HTTP request: Content-Length can't be present with Transfer-Encoding"},
      // CL.TE: a front end reading Content-Length includes the smuggled prefix in the body.
      {"CL.TE",
       kPost + "Content-Length: 94\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
           kSmuggledPublish,
       "malformed HTTP request: Content-Length can't be present with Transfer-Encoding"},
      // TE.TE: an obfuscated Transfer-Encoding that another parser might ignore.
      {"TE.TE xchunked", kPost + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + kSmuggledPublish,
       "Transfer-Encoding must be exactly \\\"chunked\\\""},
      {"TE.TE two headers",
       kPost + "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
           kSmuggledPublish,
       "more than one Transfer-Encoding header"},
      // obs-fold: a front end that does not unfold sees X-A and a Content-Length only.
      {"obs-fold",
       kPost + "X-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" +
           kSmuggledPublish,
       "malformed HTTP request: header line starting with whitespace (obs-fold)"},
      {"space before the colon",
       kPost + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" +
           kSmuggledPublish,
       "malformed HTTP request: whitespace between a header name and its colon"},
      {"the last chunk ending in a bare LF",
       kPost + "Transfer-Encoding: chunked\r\n\r\n0\r\n\n" + kSmuggledPublish,
       "malformed HTTP request: LF without CR before it (lines end in CRLF)"},
  };
}

}  // namespace

TEST_CASE("http_strict: each smuggling attempt gets one 400, a close, and publishes nothing") {
  Gateway gw;
  const uint16_t port = gw.port();
  SseStream a(port, "a");
  SseStream smuggled(port, "smuggled");
  a.expect_ok();
  smuggled.expect_ok();
  REQUIRE(wait_subscribers(port, "a", 1) == 1);
  REQUIRE(wait_subscribers(port, "smuggled", 1) == 1);

  for (const Attempt& attempt : smuggling_attempts()) check_refused(port, attempt);

  // Events of a channel arrive in order: a subscriber whose next event is this marker got
  // nothing before it, and the history holds the marker alone.
  std::string id_a = publish(port, "a", "marker a");
  std::string id_smuggled = publish(port, "smuggled", "marker smuggled");
  SseEvent ea = a.expect_event();
  CHECK(ea.id == id_a);
  CHECK(ea.data == "marker a");
  SseEvent es = smuggled.expect_event();
  CHECK(es.id == id_smuggled);
  CHECK(es.data == "marker smuggled");
  CHECK(json_body(http_get(port, "/v1/channels/a")) == info_json("a", 1, 1, id_a, id_a));
  CHECK(json_body(http_get(port, "/v1/channels/smuggled")) ==
        info_json("smuggled", 1, 1, id_smuggled, id_smuggled));
}

TEST_CASE("http_strict: a target that is not visible ASCII never reaches the upstream") {
  MockLlm mock;
  Gateway gw("upstreams:\n  llm: {url: \"" + mock.url() +
             "\"}\nroutes:\n  - {path: /v1/chat/completions, upstream: llm}\n");
  const std::string target_message =
      "malformed HTTP request: the request target may hold only visible ASCII (no control byte, "
      "space, tab, DEL or byte >= 0x80)";
  const std::string tail = " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
  const std::vector<Attempt> attempts = {
      {"a byte >= 0x80", "POST /v1/chat/completions?q=caf\xc3\xa9" + tail, target_message},
      {"a tab", "POST /v1/chat/completions?q=a\tb" + tail, target_message},
      {"a form feed", "POST /v1/chat/completions?q=a\x0c" + tail, target_message},
      {"DEL", "POST /v1/chat/completions?q=\x7f" + tail, target_message},
      {"absolute-form", "POST http://evil.example/v1/chat/completions" + tail,
       "the request target must be a path starting with '/' (absolute-form and authority-form "
       "are not accepted)"},
  };
  for (const Attempt& attempt : attempts) check_refused(gw.port(), attempt);
  CHECK(mock.stat("requests") == 0);

  // The route itself works: the refusals above were the requests', not the route's.
  Response r =
      http(gw.port(),
           post_request("/v1/chat/completions?tokens=1",
                        "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                        "Content-Type: application/json\r\n"));
  CHECK(r.status == 200);
  CHECK(mock.stat("requests") == 1);
}

TEST_CASE("http_strict: valid requests around the edges still pass") {
  Gateway gw;
  Conn c(gw.port());
  // A tab inside a value, an empty line first, and a chunked publish with an extension and a
  // trailer, pipelined in one write.
  c.send(
      "\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n\r\n"
      "POST /v1/channels/edge/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n");
  CHECK(c.read_response().status == 200);
  Response published = c.read_response();
  CHECK(published.status == 200);
  std::string id = extract_id(published.body);
  REQUIRE_FALSE(id.empty());
  CHECK(json_body(http_get(gw.port(), "/v1/channels/edge")) == info_json("edge", 0, 1, id, id));
  CHECK(c.request(get_request("/healthz")).status == 200);  // the connection stays open
}
