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
// status, interim, retry_ms, token_bytes, prompt_tokens, text, stamp. The bytes are in
// mock/dialect.cpp.
//
// The first line on stderr is {"level":"info","msg":"listening","addr":"HOST:PORT",...}, so a
// test can start the mock on port 0 and read the port back. SIGTERM or SIGINT: exit 0.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/base/log.hpp"
#include "gateway/net/handles.hpp"
#include "gateway/net/loop.hpp"
#include "mock/connection.hpp"

using namespace ssegw;

namespace {

constexpr const char* kUsage =
    "usage: ssegw-mock-llm [--listen HOST:PORT]\n"
    "\n"
    "  --listen HOST:PORT   address to serve on (default 127.0.0.1:9000; port 0 picks one)\n";

// Owns the listener, the signal handles and the shared state. It outlives the loop's run, so
// the handles' close callbacks never see freed memory (net/handles.hpp Rules).
class Server {
 public:
  explicit Server(net::Loop& loop)
      : loop_(loop), listener_(loop, [this](uv_stream_t* server) { accept(server); }) {
    for (uv_signal_t* s : {&sigterm_, &sigint_}) {
      uv_signal_init(loop.uv(), s);
      s->data = this;
    }
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    uv_signal_start(&sigint_, on_signal, SIGINT);
  }

  bool listen(const std::string& host, uint16_t port) {
    std::string error;
    int fd = net::open_listen_socket(host, port, /*reuse_port=*/false, error);
    if (fd < 0) {
      base::log::error("cannot listen", {{"error", error}});
      return false;
    }
    int r = listener_.listen_fd(fd, 1024);
    if (r != 0) {
      base::log::error("cannot listen", {{"error", uv_strerror(r)}});
      return false;
    }
    base::log::info("listening",
                    {{"addr", net::local_address(fd)}, {"pid", static_cast<int64_t>(getpid())}});
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
    loop_.close();
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
    base::log::info("stopping", {{"signal", signum}});
    static_cast<Server*>(handle->data)->stop();
  }

  net::Loop& loop_;
  net::Listener listener_;
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
      try {
        config::parse_listen(argv[++i], host, port);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "ssegw-mock-llm: %s\n", e.what());
        return 2;
      }
      continue;
    }
    std::fprintf(stderr, "ssegw-mock-llm: unknown or incomplete argument %s\n%s", arg.c_str(),
                 kUsage);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  net::Loop loop;
  Server server(loop);
  if (!server.listen(host, port)) return 1;
  loop.run();
  int left = loop.finish();
  if (left != 0) {
    base::log::error("handles left open at exit", {{"result", left}});
    return 1;
  }
  base::log::info("stopped");
  return 0;
}
