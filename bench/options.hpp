// ssegw-bench command line: parsed once into typed options (STYLE 4), nothing downstream looks at
// argv.
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

// fanout: subscribers and a publisher (the default). llm: streamed chat completions, each
// chunk's latency from the mock's send-time stamp (bench/llm_run.hpp).
enum class Mode { Fanout, Llm };
enum class PublishMode { Ssegw, Nchan, Pushpin };
const char* publish_mode_name(PublishMode mode);

// An http:// URL split into what a client needs. IPv4 only: the bench drives loopback servers.
struct Url {
  std::string host;        // as written, for the Host header
  uint16_t port = 80;      //
  std::string path_query;  // "/..." with {ch} still in it
  sockaddr_in addr{};      // resolved once at start-up
};

struct Options {
  Mode mode = Mode::Fanout;

  // Subscribers.
  uint32_t subscribers = 100;
  uint32_t channels = 1;
  std::string channel_prefix = "bench";
  std::string url_template = "http://127.0.0.1:8080/v1/channels/{ch}/events";
  std::string last_event_id;  // empty: no Last-Event-ID header
  double connect_rate = 2000;
  uint32_t max_pending = 512;  // connects in flight (before the response head), so SYNs fit the
                               // server's accept backlog
  uint32_t source_ips = 8;     // 127.0.0.1 .. 127.0.0.N
  uint32_t http2 = 0;          // subscribers per HTTP/2 (h2c) connection; 0: HTTP/1.1
  double connect_timeout = 10;
  double settle = 0.5;  // pause between the last connect and the first publish

  // Publisher.
  PublishMode publish_mode = PublishMode::Ssegw;
  std::string publish_url_template;  // empty: the mode's default
  uint32_t publishers = 4;
  // Requests in flight per publisher connection. More than one keeps the offered rate independent
  // of how long the server takes to answer a publish (ssegw answers after its fan-out, Nchan
  // before), and lets a server batch events that arrive together.
  uint32_t pipeline = 16;
  std::string publish_token;
  double rate = 100;
  uint32_t size = 256;
  double duration = 5;
  double drain = 2;

  // LLM streams (--mode llm). Connections are started at --connect-rate with at most
  // --max-pending awaiting their head, from --source-ips addresses; --connect-timeout bounds the
  // wait for the head.
  std::string url = "http://127.0.0.1:8080/v1/chat/completions";
  uint32_t streams = 100;
  uint32_t tokens = 200;      // X-Mock-Tokens
  uint32_t interval_ms = 20;  // X-Mock-Interval-Ms
  uint32_t concurrency = 0;   // streams open at once; 0: all of them
  double duration_limit = 0;  // seconds; 0: derived from the streams' nominal length
  Url llm_url;

  // Measurement and output.
  std::vector<pid_t> pids;
  uint32_t threads = 1;
  bool print_json = true;
  bool print_table = true;
  bool quiet = false;
  bool expect_all = false;

  Url subscribe_url;
  Url publish_url;

  // Seconds after start at which the run is cut short whatever happens.
  double hard_limit_s() const {
    return subscribers / connect_rate + connect_timeout + settle + duration + drain + 5;
  }
  uint32_t llm_concurrency() const { return concurrency == 0 ? streams : concurrency; }
  // --mode llm: seconds after start at which the run is cut short. By default every wave of
  // streams gets its nominal length (tokens x interval) plus 5 s of slack.
  double llm_limit_s() const {
    if (duration_limit > 0) return duration_limit;
    uint32_t c = llm_concurrency();
    double waves = c ? (streams + c - 1) / c : 0;
    return streams / connect_rate + connect_timeout + waves * (tokens * (interval_ms / 1e3) + 5);
  }
};

// Returns false and fills `error` on bad input; `help` is set for --help.
bool parse_options(int argc, char** argv, Options& out, std::string& error, bool& help);
void print_usage(const char* argv0);

// `tmpl` with every "{ch}" replaced by `channel`.
std::string expand_channel(const std::string& tmpl, const std::string& channel);

}  // namespace bench
