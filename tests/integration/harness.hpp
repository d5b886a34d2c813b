// Integration test harness: starts the real ssegw binary on port 0 and talks to it over plain
// POSIX sockets (no libuv, so the tests share no code with the server they check).
//
// Rules:
// - Every blocking call takes a timeout and throws std::runtime_error when it expires; doctest
//   reports the exception as a failure of the running test case.
// - Every socket and pipe is close-on-exec, and the child closes every descriptor above 2 before
//   exec: a client socket leaked into ssegw would keep connections open after the test closed them.
// - Sockets are non-blocking; all waiting is done with poll().
// - Nothing sleeps for a guessed time: a test waits for a condition (wait_until and the wait_*
//   helpers built on it), with a generous timeout that only guards against a hang. A sleep
//   stays only where the time is the point (a token that must expire, a window in which
//   something must not happen), with a comment that says so; how fast something happens is for
//   bench/, not for a test.
// - Ports: the servers tests start (ssegw, ssegw-mock-llm) pick port 0 and say which port they
//   got; any other port a test needs is held by a LoopbackSocket or ReservedPort for as long as
//   it is used, never bound, closed and then reused by number.
// - Gateway's destructor always reaps the child (SIGTERM, then SIGKILL after 10 s), and records
//   a doctest failure unless that stop exits 0 with no sanitizer report in the log.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace itest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

inline constexpr Ms kTimeout = 5s;

// Raises RLIMIT_NOFILE's soft limit to the hard limit (the child inherits it). Returns the new
// soft limit.
uint64_t raise_fd_limit();

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Throws std::runtime_error(what), with strerror(errno) appended for fail_errno.
[[noreturn]] void fail(const std::string& what);
[[noreturn]] void fail_errno(const std::string& what);

// Calls done() every `interval` until it returns true. False when timeout passes first. Every wait
// on a condition in the tests goes through here: none sleeps for a guessed time.
bool wait_until(const std::function<bool()>& done, Ms timeout = kTimeout, Ms interval = 10ms);

// ---------------------------------------------------------------------------------------------
// Sockets

// A TCP socket bound to 127.0.0.1 on a port the kernel chose, without SO_REUSEADDR: no other
// socket can bind that port while this one lives. Listening when backlog >= 0.
struct LoopbackSocket {
  Fd fd;
  uint16_t port = 0;
};
LoopbackSocket bind_loopback(int backlog = -1, bool nonblocking = false);

// A loopback port held for as long as this object lives, by a socket bound to it that never
// listens:
// - a connection to it is refused: an upstream that is down, or was never there;
// - no other bind() takes it, and the kernel never picks a port that bind() holds as the source
//   port of a connection, so a client reconnecting to it cannot connect to itself;
// - a server that sets SO_REUSEADDR before its bind (redis-server, Prometheus, libuv's
//   uv_tcp_bind, ssegw and ssegw-mock-llm) listens on it all the same.
// So a server can be started on it, killed and started again on the same port, with no moment in
// which another process could take the port (which "bind port 0, close, reuse the number" has).
class ReservedPort {
 public:
  ReservedPort();
  uint16_t port() const { return socket_.port; }

 private:
  LoopbackSocket socket_;
};

// Connects to 127.0.0.1:port. The socket is non-blocking and close-on-exec. rcvbuf > 0 sets
// SO_RCVBUF before connecting (so the advertised window stays small). Throws on failure.
Fd connect_to(uint16_t port, Ms timeout = kTimeout, int rcvbuf = 0);
// Sends every byte or throws (error or timeout).
void send_all(int fd, std::string_view data, Ms timeout = kTimeout);

enum class ReadStatus { kData, kEof, kTimeout };
// Waits up to timeout for readable data and appends what is available to out. A connection
// reset counts as kEof.
ReadStatus read_some(int fd, std::string& out, Ms timeout);
// Reads until the peer closes. Returns false when timeout passes first. Bytes go to out.
bool wait_closed(int fd, std::string& out, Ms timeout);

// ---------------------------------------------------------------------------------------------
// HTTP

// Strict incremental decoder of a chunked body: "<lower-case hex>\r\n<bytes>\r\n" ... "0\r\n\r\n".
class Dechunker {
 public:
  // Consumes from in as much as forms whole chunks (the rest stays in in). Appends decoded
  // bytes to out. Sets error() on malformed framing.
  void feed(std::string& in, std::string& out);
  bool done() const { return done_; }
  const std::string& error() const { return error_; }
  // The payload of every chunk, in order (the terminal chunk excluded).
  const std::vector<std::string>& chunks() const { return chunks_; }

 private:
  bool done_ = false;
  std::string error_;
  std::vector<std::string> chunks_;
};

struct Response {
  std::string version;  // "HTTP/1.1"
  int status = 0;
  std::string reason;
  // Header names are lower-case; the list keeps wire order and duplicates.
  std::vector<std::pair<std::string, std::string>> header_list;
  std::string head;  // raw status line and headers, up to and including the blank line
  std::string body;  // de-chunked
  std::string raw;   // every byte of this response as received
  bool chunked = false;

  bool has(const std::string& name) const;
  // The value of the first header with that (lower-case) name, "" when absent.
  std::string header(const std::string& name) const;
};

// Parses a response head ("HTTP/x.y NNN reason\r\n" ... "\r\n"). Throws on malformed input.
Response parse_head(std::string_view head);

// A client connection with its own read buffer, for keep-alive and pipelining.
class Conn {
 public:
  explicit Conn(uint16_t port, Ms timeout = kTimeout);
  void send(std::string_view data, Ms timeout = kTimeout) { send_all(fd_.get(), data, timeout); }
  // Reads exactly one response (Content-Length, chunked, or until close). Throws on timeout or
  // when the connection closes before a complete response.
  Response read_response(Ms timeout = kTimeout);
  Response request(std::string_view raw, Ms timeout = kTimeout) {
    send(raw, timeout);
    return read_response(timeout);
  }
  // True when the server closes within timeout; bytes received meanwhile are appended to buffer().
  bool wait_closed(Ms timeout);
  std::string& buffer() { return buf_; }
  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }

 private:
  Fd fd_;
  std::string buf_;
};

// "GET path HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers (each ending in CRLF) + "\r\n".
std::string get_request(const std::string& path, const std::string& extra_headers = "");
// A POST with Content-Length.
std::string post_request(const std::string& path, std::string_view body,
                         const std::string& extra_headers = "");
// One request on a fresh connection; reads one response.
Response http(uint16_t port, std::string_view raw_request, Ms timeout = kTimeout);
Response http_get(uint16_t port, const std::string& path, Ms timeout = kTimeout);

// ---------------------------------------------------------------------------------------------
// Publishing

// The "id" string of a publish answer, "" when there is none.
std::string extract_id(const std::string& json);
// POST /v1/channels/{ch}/events[?event=type] on a fresh connection. Throws unless 200.
std::string publish(uint16_t port, const std::string& ch, std::string_view data,
                    const std::string& type = "");

// Publishes over one keep-alive connection.
class Publisher {
 public:
  explicit Publisher(uint16_t port) : conn_(port) {}
  // Throws unless 200; last() holds the whole answer.
  std::string publish(const std::string& ch, std::string_view data, const std::string& type = "",
                      const std::string& extra_headers = "");
  const Response& last() const { return last_; }

 private:
  Conn conn_;
  Response last_;
};

// ---------------------------------------------------------------------------------------------
// SSE

struct SseEvent {
  std::optional<std::string> id;
  std::string event;  // "" when there was no event: line
  std::string data;   // data lines joined with "\n"
  int data_lines = 0;
};

// Event ids are "<unix-ms>-<seq>".
struct EventId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  auto operator<=>(const EventId&) const = default;
};
std::optional<EventId> parse_id(const std::string& id);

// Parses a text/event-stream body as an EventSource does: lines end in CR, LF or CRLF, a blank
// line dispatches the event being assembled when it has an id, event or data field, and lines that
// start with ':' are comments.
class SseParser {
 public:
  // Parses what body holds past the bytes parsed by earlier calls (body only ever grows). With
  // at_end, no byte follows: a final CR ends its line instead of waiting for a possible LF.
  void parse(const std::string& body, bool at_end);
  // The events parsed and not yet taken, in order.
  std::deque<SseEvent>& events() { return events_; }
  int comments() const { return comments_; }
  std::optional<long> retry() const { return retry_; }

 private:
  void dispatch_line(std::string_view line);

  size_t parsed_ = 0;  // bytes of the body consumed
  SseEvent cur_;       // the event being assembled
  bool cur_has_fields_ = false;
  std::deque<SseEvent> events_;
  int comments_ = 0;
  std::optional<long> retry_;
};

// The events of a whole SSE body (an answer read straight from the mock, say), in order.
std::vector<SseEvent> parse_sse(const std::string& body);

// One subscriber connection: GET /v1/channels/{ch}/events. The constructor connects and sends the
// request without waiting; wait_head() and next_event() read as needed.
class SseStream {
 public:
  struct Options {
    // {}: without a default member initializer, GCC 12 warns (-Wmissing-field-initializers) on
    // every designated initializer that leaves the member out (GCC bug 96868).
    std::optional<std::string> last_event_id{};  // sent as the Last-Event-ID header
    std::string query{};                         // appended after "?" when not empty
    std::string extra_headers{};                 // each ending in CRLF
    std::string version = "HTTP/1.1";
    int rcvbuf = 0;
  };
  SseStream(uint16_t port, const std::string& channel, Options opts);
  SseStream(uint16_t port, const std::string& channel) : SseStream(port, channel, Options{}) {}
  // Sends raw_request as is.
  static SseStream raw(uint16_t port, const std::string& raw_request, int rcvbuf = 0);

  SseStream(SseStream&&) = default;
  SseStream& operator=(SseStream&&) = default;

  // Waits for the response head. Throws on timeout.
  const Response& wait_head(Ms timeout = kTimeout);
  // Waits for the head and checks "200" and the event-stream content type. Throws otherwise.
  void expect_ok(Ms timeout = kTimeout);
  // The next parsed event, or nullopt when timeout passes or the stream ends first.
  std::optional<SseEvent> next_event(Ms timeout = kTimeout);
  // Like next_event, but throws when there is none.
  SseEvent expect_event(Ms timeout = kTimeout);
  // Reads until the server closes the connection. False when timeout passes first.
  bool read_until_closed(Ms timeout = kTimeout);
  // Waits until comments() reaches n. False on timeout.
  bool wait_comments(int n, Ms timeout);

  // Reads whatever the socket holds without blocking. False once the peer has closed.
  bool pump();
  // Takes the parsed events not yet returned by next_event().
  std::deque<SseEvent>& pending() { return parser_.events(); }

  bool head_received() const { return head_done_; }
  const Response& head() const { return head_; }
  const std::string& wire() const { return wire_; }  // every byte received, head included
  const std::string& body() const { return body_; }  // the de-chunked body
  const std::vector<std::string>& chunks() const { return dechunker_.chunks(); }
  bool finished() const { return dechunker_.done(); }  // the terminal chunk arrived
  bool closed() const { return closed_; }
  const std::string& framing_error() const { return dechunker_.error(); }
  int comments() const { return parser_.comments(); }
  std::optional<long> retry() const { return parser_.retry(); }
  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }

 private:
  SseStream() = default;
  void start(uint16_t port, const std::string& request, int rcvbuf);
  void on_bytes(std::string_view bytes);
  void parse_events() { parser_.parse(body_, closed_); }
  // Reads what arrives within timeout (a kTimeout result consumes nothing); marks the end of the
  // stream on EOF. Returns read_some's status.
  ReadStatus read_more(Ms timeout);

  Fd fd_;
  std::string wire_;
  std::string in_;  // received, not yet consumed by the head parser or the dechunker
  bool head_done_ = false;
  Response head_;
  bool chunked_ = false;
  Dechunker dechunker_;
  std::string body_;
  bool closed_ = false;
  SseParser parser_;
};

// Reads until the terminal chunk (a stream the gateway ends; the connection may stay open) and
// returns every event not yet taken with next_event(), in order. Throws on timeout or close.
std::vector<SseEvent> read_until_finished(SseStream& s, Ms timeout = kTimeout);

// Calls pump() on every stream whose socket is readable, until done() is true. False on timeout.
bool pump_all(const std::vector<SseStream*>& streams, const std::function<bool()>& done,
              Ms timeout);
// pump_all until every stream holds n pending events or has closed (the caller then checks
// which). False on timeout.
bool pump_until_events(const std::vector<SseStream*>& streams, size_t n, Ms timeout);

// The exact subscribe response heads of docs/protocol.md#subscribe (without CORS headers).
inline const std::string kHead11 =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Cache-Control: no-cache, no-transform\r\n"
    "X-Accel-Buffering: no\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n";
inline const std::string kHead10 =
    "HTTP/1.0 200 OK\r\n"
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Cache-Control: no-cache, no-transform\r\n"
    "X-Accel-Buffering: no\r\n"
    "Connection: close\r\n"
    "\r\n";

// Expected chunk on the wire for payload.
std::string chunk(std::string_view payload);
// The SSE frame that ssegw must write for an event.
std::string sse_frame(const std::string& id, std::string_view data, const std::string& type = "");
// What an SSE client reconstructs from a payload: CR and CRLF become LF.
std::string normalize_newlines(std::string_view data);

// ---------------------------------------------------------------------------------------------
// The process

struct GatewayOptions {
  // {}: see SseStream::Options.
  std::string yaml{};               // extra YAML, appended after "listen: 127.0.0.1:0"
  std::vector<std::string> args{};  // extra command-line arguments
  bool listen_any_port = true;      // write "listen: 127.0.0.1:0" first
  Ms start_timeout = 10s;
  // Runs the gateway through this command, which gets SSEGW_BIN and its arguments as its own
  // trailing arguments, e.g. {"/bin/sh", "-c", "ulimit -n 64; exec \"$0\" \"$@\""}. It must
  // exec the gateway (same pid), so that signals and /proc/PID reach ssegw itself.
  std::vector<std::string> command_prefix{};
};

// A child process whose first stderr line is the JSON "listening" log line that ssegw and
// ssegw-mock-llm both write ({"level":"info","msg":"listening","addr":"127.0.0.1:PORT",...}), so
// that it can be started on port 0. Stderr is collected by a thread; the destructor kills the
// child (SIGKILL) when it still runs and reaps it.
class ListeningProcess {
 public:
  ListeningProcess() = default;
  ~ListeningProcess();
  ListeningProcess(const ListeningProcess&) = delete;
  ListeningProcess& operator=(const ListeningProcess&) = delete;

  // Runs argv (argv[0] is a path) and waits for the listening line. Throws on failure (the
  // child, when started, is left to stop_and_wait() or the destructor). context goes into the
  // failure messages (a config, say).
  void start(const std::vector<std::string>& argv, Ms start_timeout,
             const std::string& context = "");

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }
  bool exited() const { return status_.has_value(); }
  const std::string& first_line() const { return first_line_; }
  // Everything read from stderr so far, first line included.
  std::string log() const;
  void signal(int sig);
  // The exit status (128 + signal when killed by one), or nullopt when still running at timeout.
  std::optional<int> wait_exit(Ms timeout);
  // SIGTERM, then waits; SIGKILL after timeout. Returns the exit status.
  int stop_and_wait(Ms timeout = 10s);
  // Waits for the stderr thread (after the child has exited) and closes the pipe.
  void join_log();

 private:
  std::string name_;
  pid_t pid_ = -1;
  std::optional<int> status_;
  uint16_t port_ = 0;
  std::string first_line_;
  Fd err_;
  std::thread drain_;
  mutable std::mutex mu_;
  std::string log_;
};

// Runs ssegw with a temporary config and reads the port from its first log line.
class Gateway {
 public:
  explicit Gateway(const std::string& yaml = "") : Gateway(GatewayOptions{.yaml = yaml}) {}
  explicit Gateway(GatewayOptions opts);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  uint16_t port() const { return proc_.port(); }
  pid_t pid() const { return proc_.pid(); }
  const std::string& first_line() const { return proc_.first_line(); }
  const std::string& config_path() const { return config_path_; }
  // Everything read from stderr so far, first line included.
  std::string log() const { return proc_.log(); }

  void signal(int sig) { proc_.signal(sig); }
  // The exit status (128 + signal when killed by one), or nullopt when still running at timeout.
  std::optional<int> wait_exit(Ms timeout) { return proc_.wait_exit(timeout); }
  // SIGTERM, then waits; SIGKILL after timeout. Returns the exit status.
  int stop_and_wait(Ms timeout = 10s) { return proc_.stop_and_wait(timeout); }

 private:
  void cleanup();

  std::string config_path_;
  ListeningProcess proc_;
};

// fork + exec argv[0] (a path) with stdin from in_fd (< 0: /dev/null), stdout to out_fd (< 0:
// the test's), stderr to err_fd, every other descriptor closed and signals at their defaults.
// Returns the child's pid. Throws when fork fails.
pid_t spawn_process(std::vector<std::string> argv, int in_fd, int out_fd, int err_fd);

// The ssegw under test: $SSEGW_TEST_BIN when set, else SSEGW_BIN (the one built with the tests).
const char* ssegw_bin();
// Whether ssegw_bin() is built with a sanitizer: this binary is, or $SSEGW_TEST_SANITIZED is set
// (make test-sanitize and test-tsan point build/'s tests at their gateway). There freed memory
// waits in the sanitizer's quarantine, so RSS says nothing about leaks.
bool gateway_sanitized();
// The path of ssegw-mock-llm: ssegw_bin() with its final "ssegw" replaced.
std::string mock_llm_bin();

// Runs ssegw-mock-llm on 127.0.0.1:0 (mock/*.hpp describe its endpoints and knobs). The
// destructor stops it with SIGTERM and records a doctest failure unless it exits 0.
class MockLlm {
 public:
  MockLlm();
  // Listens on 127.0.0.1:port: a ReservedPort, so that a restarted mock comes back at the address
  // an upstream config names, and nothing else can take it meanwhile.
  explicit MockLlm(uint16_t port);
  ~MockLlm();
  MockLlm(const MockLlm&) = delete;
  MockLlm& operator=(const MockLlm&) = delete;

  uint16_t port() const { return proc_.port(); }
  pid_t pid() const { return proc_.pid(); }
  // "http://127.0.0.1:PORT", for an upstream url.
  std::string url() const;
  std::string log() const { return proc_.log(); }
  // The body of GET /mock/stats. Throws unless 200.
  std::string stats() const;
  // One number of stats() ("completed", "feeds_active", or a by_path key like "/feed/a").
  // Throws when absent.
  long stat(const std::string& key) const;
  // Polls stat(key) until it equals value. Returns the last value seen.
  long wait_stat(const std::string& key, long value, Ms timeout = kTimeout) const;
  // Polls stat(key) until it is at least value. Returns the last value seen.
  long wait_stat_at_least(const std::string& key, long value, Ms timeout = kTimeout) const;
  // POST /mock/reset: zeroes the counters (gauges stay).
  void reset();
  // SIGKILL, then reaps it: an upstream that dies. The destructor then checks nothing.
  void kill();

 private:
  ListeningProcess proc_;
};

// clock_gettime(CLOCK_MONOTONIC) in milliseconds: the clock of the mock's *_at_ms stats.
uint64_t monotonic_ms();

struct ProcessResult {
  int status = -1;     // exit status, 128 + signal when killed by one
  std::string output;  // stdout and stderr together
};
// Runs ssegw_bin() with args and waits for it (SIGKILL after timeout).
ProcessResult run_ssegw(const std::vector<std::string>& args, Ms timeout = 10s);
// Runs argv (argv[0] is a path) with input on stdin and waits for it (SIGKILL after timeout).
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = "",
                          Ms timeout = 10s);
// Writes text to a new temporary file and returns its path. suffix like ".yaml".
std::string write_temp_file(const std::string& text, const std::string& suffix = ".yaml");

// ---------------------------------------------------------------------------------------------
// Misc

// The value of the first sample line of /metrics text whose name-and-labels part starts with
// series (e.g. "ssegw_subscribers_active" or "ssegw_http_requests_total{"). nullopt if absent.
std::optional<double> metric_value(const std::string& text, const std::string& series);
// GET /metrics and metric_value; nullopt when the sample is absent.
std::optional<double> read_metric(uint16_t port, const std::string& series);
// Polls the metric until pred holds. Returns the last value seen (nullopt when absent).
std::optional<double> wait_metric_until(uint16_t port, const std::string& series,
                                        const std::function<bool(double)>& pred,
                                        Ms timeout = kTimeout);
// Polls the metric until it equals value. Returns the last value seen.
std::optional<double> wait_metric(uint16_t port, const std::string& series, double value,
                                  Ms timeout = kTimeout);
// Polls the metric until it is at least value (a counter that may jump past it). Returns the last
// value seen.
std::optional<double> wait_metric_at_least(uint16_t port, const std::string& series, double value,
                                           Ms timeout = kTimeout);
// Polls the gateway's log until a whole line of it contains every one of parts; returns that
// line, or "" on timeout.
std::string wait_log_line(const Gateway& gw, const std::vector<std::string>& parts,
                          Ms timeout = kTimeout);
// Polls GET /v1/channels/{ch} until "subscribers" equals n. Returns the last count seen.
long wait_subscribers(uint16_t port, const std::string& ch, long n, Ms timeout = kTimeout);
// The string value of "key":"..." in a JSON text (no escapes expected), nullopt when absent.
std::optional<std::string> json_string(const std::string& json, const std::string& key);
// A number field ("key":123) of a flat JSON object, nullopt when absent.
std::optional<long> json_number(const std::string& json, const std::string& key);
// Lower-cases ASCII.
std::string lower(std::string s);
// Shows control characters as escapes, for failure messages.
std::string printable(std::string_view s);

}  // namespace itest
