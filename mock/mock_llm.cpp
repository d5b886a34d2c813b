// ssegw-mock-llm: a single-threaded mock of OpenAI, Anthropic and Ollama streaming APIs, plus an
// endless SSE feed, with fault knobs. It serves ssegw's tests, benchmarks and `make run`.
//
//   POST /v1/chat/completions  SSE when the body has "stream":true, else one JSON completion
//   POST /v1/responses         SSE: response.created, response.output_text.delta, .completed
//   POST /v1/messages          SSE: message_start, ping, content_block_*, message_delta/stop
//   POST /api/chat, /api/generate  NDJSON (one JSON object when the body has "stream":false)
//   GET  /feed/{name}          endless SSE ticks with ids; honours Last-Event-ID
//   GET  /mock/stats, POST /mock/reset
//   HEAD on any of them: the head the method of the endpoint would get, without its body (a
//   stream's head says chunked; a complete answer's keeps its Content-Length).
//
// Knobs (query parameter or X-Mock-<Name> header, see mock/knobs.hpp): tokens, interval_ms,
// first_token_ms, head_delay_ms, drop_after, error_after, garbage, stall_after, stall_ms,
// status, interim, retry_ms, token_bytes, prompt_tokens, no_usage, text, stamp. The bytes are in
// mock/dialect.cpp. A chat stream reports usage only when its body sets
// stream_options.include_usage, as OpenAI does.
//
// The first line on stderr is {"level":"info","msg":"listening","addr":"HOST:PORT",...}, so a
// test can start the mock on port 0 and read the port back. SIGTERM or SIGINT: exit 0.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "mock/connection.hpp"
#include "mock/json.hpp"
#include "mock/log.hpp"
#include "mock/net.hpp"

using namespace ssegw;

namespace {

constexpr const char* kUsage =
    "usage: ssegw-mock-llm [--listen HOST:PORT]\n"
    "\n"
    "  --listen HOST:PORT   address to serve on (default 127.0.0.1:9000; port 0 picks one)\n";

// HOST:PORT or [IPV6]:PORT, with the gateway's `listen:` rules; false with `error` filled in.
bool parse_listen(std::string_view text, std::string& host, uint16_t& port, std::string& error) {
  auto bad = [&](const char* why) {
    error = "invalid listen address '" + std::string(text) + "': " + why;
    return false;
  };
  std::string_view h, p;
  if (text.substr(0, 1) == "[") {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']' after the IPv6 address");
    if (text.substr(close + 1, 1) != ":") return bad("expected \"[ADDRESS]:PORT\"");
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("expected \"HOST:PORT\" (the port is missing)");
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
    if (h.find(':') != std::string_view::npos)
      return bad("IPv6 addresses need brackets, such as \"[::1]:8080\"");
  }
  if (h.empty()) return bad("the host is empty");
  if (h.find_first_of(" \t\n\v\f\r[]/") != std::string_view::npos)
    return bad("the host contains an invalid character");
  if (p.empty()) return bad("the port is missing");
  uint32_t n = 0;
  for (char c : p) {
    n = n * 10 + static_cast<uint32_t>(c - '0');
    if (c < '0' || c > '9' || n > 65535) return bad("the port must be a number from 0 to 65535");
  }
  host = std::string(h);
  port = static_cast<uint16_t>(n);
  return true;
}

std::string json_field(std::string_view name, std::string_view value) {
  std::string out = ",";
  mock::append_json(out, name);
  out += ':';
  mock::append_json(out, value);
  return out;
}

// Owns the listener, the signal handles and the shared state. It outlives the loop's run, so
// the handles' close callbacks never see freed memory.
class Server {
 public:
  explicit Server(uv_loop_t* loop)
      : loop_(loop), listener_(loop, [this](uv_stream_t* server) { accept(server); }) {
    for (uv_signal_t* s : {&sigterm_, &sigint_}) {
      uv_signal_init(loop, s);
      s->data = this;
    }
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    uv_signal_start(&sigint_, on_signal, SIGINT);
  }

  bool listen(const std::string& host, uint16_t port) {
    std::string error;
    if (!listener_.listen(host, port, error)) {
      mock::log_line("error", "cannot listen", json_field("error", error));
      return false;
    }
    mock::log_line(
        "info", "listening",
        json_field("addr", listener_.address()) + ",\"pid\":" + std::to_string(getpid()));
    return true;
  }

  void stop() {
    listener_.close();
    for (uv_signal_t* s : {&sigterm_, &sigint_})
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(s)))
        uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
    // close() removes nothing at once (that happens in the close callback), but copy anyway so
    // the walk does not depend on it.
    std::vector<mock::Connection*> open(state_.connections.begin(), state_.connections.end());
    for (mock::Connection* c : open) c->close();
  }

 private:
  void accept(uv_stream_t* server) {
    auto* connection = new mock::Connection(loop_, state_);
    if (connection->accept(server) != 0) {
      connection->close();
      return;
    }
    connection->start_reading();
  }

  static void on_signal(uv_signal_t* handle, int signum) {
    mock::log_line("info", "stopping", ",\"signal\":" + std::to_string(signum));
    static_cast<Server*>(handle->data)->stop();
  }

  uv_loop_t* loop_;
  mock::Listener listener_;
  uv_signal_t sigterm_;
  uv_signal_t sigint_;
  mock::MockState state_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  uint16_t port = 9000;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--listen" && i + 1 < argc) {
      std::string error;
      if (!parse_listen(argv[++i], host, port, error)) {
        std::fprintf(stderr, "ssegw-mock-llm: %s\n", error.c_str());
        return 2;
      }
      continue;
    }
    std::fprintf(stderr, "ssegw-mock-llm: unknown or incomplete argument %s\n%s", arg.c_str(),
                 kUsage);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  uv_loop_init(&loop);
  Server server(&loop);
  if (!server.listen(host, port)) return 1;
  uv_run(&loop, UV_RUN_DEFAULT);
  int left = uv_loop_close(&loop);
  if (left != 0) {
    mock::log_line("error", "handles left open at exit", ",\"result\":" + std::to_string(left));
    return 1;
  }
  mock::log_line("info", "stopped");
  return 0;
}
