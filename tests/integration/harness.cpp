#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <stdexcept>

#ifndef SSEGW_BIN
#error "SSEGW_BIN must name the ssegw binary"
#endif

namespace itest {

// $SSEGW_TEST_BIN when set, else the ssegw this binary was built with: the ThreadSanitizer run
// (make test-tsan) points these tests at its instrumented gateway instead of building them again.
const char* ssegw_bin() {
  const char* path = std::getenv("SSEGW_TEST_BIN");
  return path && *path ? path : SSEGW_BIN;
}

bool gateway_sanitized() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#else
  const char* sanitizer = std::getenv("SSEGW_TEST_SANITIZED");
  return sanitizer && *sanitizer;
#endif
}

void fail(const std::string& what) {
  throw std::runtime_error(what);
}

void fail_errno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

bool wait_until(const std::function<bool()>& done, Ms timeout, Ms interval) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);  // the polling period of a condition, not a guess
  }
}

namespace {

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Polls one descriptor; retries on EINTR. Returns poll's result (0 on timeout).
int poll_one(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno("poll");
    return n;
  }
}

int decode_status(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return std::string(s.substr(b, e - b));
}

bool no_body_status(int status) {
  return status / 100 == 1 || status == 204 || status == 304;
}

}  // namespace

uint64_t raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) fail_errno("getrlimit");
  rlim_t want = rl.rlim_max;
  if (want == RLIM_INFINITY) want = 1 << 20;
  if (rl.rlim_cur < want) {
    rl.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) fail_errno("setrlimit");
  }
  return rl.rlim_cur;
}

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

// ---------------------------------------------------------------------------------------------
// Sockets

LoopbackSocket bind_loopback(int backlog, bool nonblocking) {
  LoopbackSocket s;
  s.fd = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  if (!s.fd) fail_errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(s.fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0)
    fail_errno("bind 127.0.0.1:0");
  if (backlog >= 0 && ::listen(s.fd.get(), backlog) != 0) fail_errno("listen");
  if (::getsockname(s.fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    fail_errno("getsockname");
  s.port = ntohs(addr.sin_port);
  return s;
}

ReservedPort::ReservedPort() : socket_(bind_loopback()) {
  // Set after the bind, which had the port to itself: servers that set it too may now bind the
  // port beside this socket, as long as it does not listen; a bind without it still fails.
  int one = 1;
  if (::setsockopt(socket_.fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    fail_errno("SO_REUSEADDR");
}

Fd connect_to(uint16_t port, Ms timeout, int rcvbuf) {
  auto deadline = Clock::now() + timeout;
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) fail_errno("socket");
  if (rcvbuf > 0 && ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0)
    fail_errno("SO_RCVBUF");
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) fail_errno("connect to port " + std::to_string(port));
    if (poll_one(fd.get(), POLLOUT, deadline) == 0)
      fail("connect to port " + std::to_string(port) + ": timeout");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      errno = err;
      fail_errno("connect to port " + std::to_string(port));
    }
  }
  return fd;
}

void send_all(int fd, std::string_view data, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (poll_one(fd, POLLOUT, deadline) == 0)
        fail("send: timeout with " + std::to_string(data.size()) + " bytes unsent");
      continue;
    }
    fail_errno("send");
  }
}

ReadStatus read_some(int fd, std::string& out, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  if (poll_one(fd, POLLIN, deadline) == 0) return ReadStatus::kTimeout;
  bool got = false;
  char buf[65536];
  for (int i = 0; i < 64; ++i) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      got = true;
      continue;
    }
    if (n == 0) return got ? ReadStatus::kData : ReadStatus::kEof;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == ECONNRESET) return got ? ReadStatus::kData : ReadStatus::kEof;
    fail_errno("recv");
  }
  return got ? ReadStatus::kData : ReadStatus::kTimeout;
}

bool wait_closed(int fd, std::string& out, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    ReadStatus st = read_some(fd, out, Ms(remaining_ms(deadline)));
    if (st == ReadStatus::kEof) return true;
    if (st == ReadStatus::kTimeout && Clock::now() >= deadline) return false;
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

void Dechunker::feed(std::string& in, std::string& out) {
  while (!done_ && error_.empty()) {
    size_t eol = in.find("\r\n");
    if (eol == std::string::npos) {
      if (in.size() > 16) error_ = "chunk size line too long: " + printable(in.substr(0, 32));
      return;
    }
    std::string_view size_line(in.data(), eol);
    if (size_line.empty() || size_line.size() > 15 ||
        size_line.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
      error_ = "bad chunk size line: \"" + printable(size_line) + "\"";
      return;
    }
    size_t n = std::stoul(std::string(size_line), nullptr, 16);
    if (n == 0) {
      if (in.size() < eol + 4) return;
      if (in.compare(eol + 2, 2, "\r\n") != 0) {
        error_ = "terminal chunk not followed by CRLF: " + printable(in.substr(0, 32));
        return;
      }
      in.erase(0, eol + 4);
      done_ = true;
      return;
    }
    if (in.size() < eol + 2 + n + 2) return;
    if (in.compare(eol + 2 + n, 2, "\r\n") != 0) {
      error_ = "chunk data not followed by CRLF";
      return;
    }
    chunks_.emplace_back(in, eol + 2, n);
    out.append(in, eol + 2, n);
    in.erase(0, eol + 2 + n + 2);
  }
}

bool Response::has(const std::string& name) const {
  for (auto& [k, v] : header_list)
    if (k == name) return true;
  return false;
}

std::string Response::header(const std::string& name) const {
  for (auto& [k, v] : header_list)
    if (k == name) return v;
  return "";
}

Response parse_head(std::string_view head) {
  Response r;
  r.head = std::string(head);
  size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos) fail("no status line in " + printable(head));
  std::string_view status_line = head.substr(0, eol);
  size_t sp1 = status_line.find(' ');
  if (sp1 == std::string_view::npos || status_line.size() < sp1 + 4)
    fail("bad status line: " + printable(status_line));
  r.version = std::string(status_line.substr(0, sp1));
  std::string code(status_line.substr(sp1 + 1, 3));
  if (code.find_first_not_of("0123456789") != std::string::npos)
    fail("bad status code: " + printable(status_line));
  r.status = std::stoi(code);
  if (status_line.size() > sp1 + 4) {
    if (status_line[sp1 + 4] != ' ') fail("bad status line: " + printable(status_line));
    r.reason = std::string(status_line.substr(sp1 + 5));
  }
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string_view::npos) fail("unterminated header line");
    if (e == pos) break;
    std::string_view line = head.substr(pos, e - pos);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) fail("bad header line: " + printable(line));
    r.header_list.emplace_back(lower(std::string(line.substr(0, colon))),
                               trim(line.substr(colon + 1)));
    pos = e + 2;
  }
  r.chunked = lower(r.header("transfer-encoding")).find("chunked") != std::string::npos;
  return r;
}

Conn::Conn(uint16_t port, Ms timeout) : fd_(connect_to(port, timeout)) {}

Response Conn::read_response(Ms timeout) {
  auto deadline = Clock::now() + timeout;
  bool eof = false;
  for (;;) {
    size_t he = buf_.find("\r\n\r\n");
    if (he != std::string::npos) {
      size_t pos = he + 4;
      Response r = parse_head(std::string_view(buf_).substr(0, pos));
      std::optional<size_t> end;
      if (no_body_status(r.status)) {
        end = pos;
      } else if (r.chunked) {
        std::string rest = buf_.substr(pos), body;
        size_t before = rest.size();
        Dechunker d;
        d.feed(rest, body);
        if (!d.error().empty()) fail("response framing: " + d.error());
        if (d.done()) {
          end = pos + (before - rest.size());
          r.body = body;
        }
      } else if (r.has("content-length")) {
        size_t n = std::stoul(r.header("content-length"));
        if (buf_.size() - pos >= n) {
          end = pos + n;
          r.body = buf_.substr(pos, n);
        }
      } else if (eof) {
        end = buf_.size();
        r.body = buf_.substr(pos);
      }
      if (end) {
        r.raw = buf_.substr(0, *end);
        buf_.erase(0, *end);
        return r;
      }
    }
    if (eof)
      fail("connection closed before a complete response; received: \"" + printable(buf_) + "\"");
    ReadStatus st = read_some(fd_.get(), buf_, Ms(remaining_ms(deadline)));
    if (st == ReadStatus::kEof) eof = true;
    if (st == ReadStatus::kTimeout && Clock::now() >= deadline)
      fail("timeout waiting for a response; received: \"" + printable(buf_) + "\"");
  }
}

bool Conn::wait_closed(Ms timeout) {
  return itest::wait_closed(fd_.get(), buf_, timeout);
}

std::string get_request(const std::string& path, const std::string& extra_headers) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + "\r\n";
}

std::string post_request(const std::string& path, std::string_view body,
                         const std::string& extra_headers) {
  std::string r = "POST " + path +
                  " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\n" + extra_headers + "\r\n";
  r.append(body);
  return r;
}

Response http(uint16_t port, std::string_view raw_request, Ms timeout) {
  Conn c(port, timeout);
  return c.request(raw_request, timeout);
}

Response http_get(uint16_t port, const std::string& path, Ms timeout) {
  return http(port, get_request(path), timeout);
}

// ---------------------------------------------------------------------------------------------
// Publishing

std::string extract_id(const std::string& json) {
  return json_string(json, "id").value_or("");
}

static std::string publish_path(const std::string& ch, const std::string& type) {
  return "/v1/channels/" + ch + "/events" + (type.empty() ? "" : "?event=" + type);
}

std::string publish(uint16_t port, const std::string& ch, std::string_view data,
                    const std::string& type) {
  Response r = http(port, post_request(publish_path(ch, type), data));
  if (r.status != 200)
    fail("publish to " + ch + " answered " + std::to_string(r.status) + ": " + printable(r.raw));
  std::string id = extract_id(r.body);
  if (id.empty()) fail("publish answer without id: " + printable(r.body));
  return id;
}

std::string Publisher::publish(const std::string& ch, std::string_view data,
                               const std::string& type, const std::string& extra_headers) {
  last_ = conn_.request(post_request(publish_path(ch, type), data, extra_headers));
  if (last_.status != 200)
    fail("publish to " + ch + " answered " + std::to_string(last_.status) + ": " +
         printable(last_.raw));
  std::string id = extract_id(last_.body);
  if (id.empty()) fail("publish answer without id: " + printable(last_.body));
  return id;
}

// ---------------------------------------------------------------------------------------------
// SSE

std::optional<EventId> parse_id(const std::string& id) {
  size_t dash = id.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == id.size()) return std::nullopt;
  std::string ms = id.substr(0, dash), seq = id.substr(dash + 1);
  if (ms.find_first_not_of("0123456789") != std::string::npos ||
      seq.find_first_not_of("0123456789") != std::string::npos || ms.size() > 19 || seq.size() > 19)
    return std::nullopt;
  return EventId{std::stoull(ms), std::stoull(seq)};
}

SseStream::SseStream(uint16_t port, const std::string& channel, Options opts) {
  std::string target = "/v1/channels/" + channel + "/events";
  if (!opts.query.empty()) target += "?" + opts.query;
  std::string req = "GET " + target + " " + opts.version + "\r\nHost: 127.0.0.1\r\n";
  if (opts.last_event_id) req += "Last-Event-ID: " + *opts.last_event_id + "\r\n";
  req += opts.extra_headers + "\r\n";
  start(port, req, opts.rcvbuf);
}

SseStream SseStream::raw(uint16_t port, const std::string& raw_request, int rcvbuf) {
  SseStream s;
  s.start(port, raw_request, rcvbuf);
  return s;
}

void SseStream::start(uint16_t port, const std::string& request, int rcvbuf) {
  fd_ = connect_to(port, kTimeout, rcvbuf);
  send_all(fd_.get(), request);
}

void SseStream::on_bytes(std::string_view bytes) {
  wire_.append(bytes);
  in_.append(bytes);
  if (!head_done_) {
    size_t he = in_.find("\r\n\r\n");
    if (he == std::string::npos) return;
    head_ = parse_head(std::string_view(in_).substr(0, he + 4));
    head_done_ = true;
    chunked_ = head_.chunked;
    in_.erase(0, he + 4);
  }
  if (chunked_) {
    dechunker_.feed(in_, body_);
  } else {
    body_ += in_;
    in_.clear();
  }
  parse_events();
}

void SseParser::parse(const std::string& body, bool at_end) {
  while (parsed_ < body.size()) {
    size_t e = body.find_first_of("\r\n", parsed_);
    if (e == std::string::npos) return;
    size_t next = e + 1;
    if (body[e] == '\r') {
      if (e + 1 == body.size() && !at_end) return;  // CR LF may be split across reads
      if (e + 1 < body.size() && body[e + 1] == '\n') next = e + 2;
    }
    std::string line = body.substr(parsed_, e - parsed_);
    parsed_ = next;
    dispatch_line(line);
  }
}

void SseParser::dispatch_line(std::string_view line) {
  if (line.empty()) {
    if (cur_has_fields_) events_.push_back(std::move(cur_));
    cur_ = SseEvent{};
    cur_has_fields_ = false;
    return;
  }
  if (line[0] == ':') {
    ++comments_;
    return;
  }
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "id") {
    cur_.id = std::string(value);
    cur_has_fields_ = true;
  } else if (field == "event") {
    cur_.event = std::string(value);
    cur_has_fields_ = true;
  } else if (field == "data") {
    if (cur_.data_lines++ > 0) cur_.data += '\n';
    cur_.data.append(value);
    cur_has_fields_ = true;
  } else if (field == "retry") {
    retry_ = std::strtol(std::string(value).c_str(), nullptr, 10);
  }
}

std::vector<SseEvent> parse_sse(const std::string& body) {
  SseParser parser;
  parser.parse(body, /*at_end=*/true);
  return {std::make_move_iterator(parser.events().begin()),
          std::make_move_iterator(parser.events().end())};
}

bool SseStream::pump() {
  if (closed_ || !fd_) return false;
  char buf[65536];
  for (int i = 0; i < 16; ++i) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n > 0) {
      on_bytes(std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    closed_ = true;  // EOF or reset
    parse_events();
    return false;
  }
  return true;
}

ReadStatus SseStream::read_more(Ms timeout) {
  std::string got;
  ReadStatus st = read_some(fd_.get(), got, timeout);
  if (!got.empty()) on_bytes(got);
  if (st == ReadStatus::kEof) {
    closed_ = true;
    parse_events();
  }
  return st;
}

const Response& SseStream::wait_head(Ms timeout) {
  auto deadline = Clock::now() + timeout;
  while (!head_done_) {
    if (closed_) fail("stream closed before the response head: \"" + printable(wire_) + "\"");
    if (read_more(Ms(remaining_ms(deadline))) == ReadStatus::kTimeout && Clock::now() >= deadline)
      fail("timeout waiting for the response head: \"" + printable(wire_) + "\"");
  }
  return head_;
}

void SseStream::expect_ok(Ms timeout) {
  wait_head(timeout);
  if (head_.status != 200 || head_.header("content-type") != "text/event-stream; charset=utf-8")
    fail("subscribe answered: \"" + printable(wire_) + "\"");
}

std::optional<SseEvent> SseStream::next_event(Ms timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (!pending().empty()) {
      SseEvent e = std::move(pending().front());
      pending().pop_front();
      return e;
    }
    if (closed_) return std::nullopt;
    if (read_more(Ms(remaining_ms(deadline))) == ReadStatus::kTimeout && Clock::now() >= deadline &&
        pending().empty())
      return std::nullopt;
  }
}

SseEvent SseStream::expect_event(Ms timeout) {
  auto e = next_event(timeout);
  if (!e)
    fail(std::string(closed_ ? "stream closed" : "timeout") +
         " waiting for an event; body so far: \"" + printable(body_) + "\"");
  return *e;
}

bool SseStream::read_until_closed(Ms timeout) {
  auto deadline = Clock::now() + timeout;
  while (!closed_) {
    if (read_more(Ms(remaining_ms(deadline))) == ReadStatus::kTimeout && Clock::now() >= deadline)
      return false;
  }
  return true;
}

bool SseStream::wait_comments(int n, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  while (comments() < n) {
    if (closed_) return false;
    if (read_more(Ms(remaining_ms(deadline))) == ReadStatus::kTimeout && Clock::now() >= deadline)
      return comments() >= n;
  }
  return true;
}

bool pump_all(const std::vector<SseStream*>& streams, const std::function<bool()>& done,
              Ms timeout) {
  auto deadline = Clock::now() + timeout;
  std::vector<pollfd> pfds(streams.size());
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    size_t n = 0;
    std::vector<size_t> index;
    index.reserve(streams.size());
    for (size_t i = 0; i < streams.size(); ++i) {
      if (streams[i]->closed() || streams[i]->fd() < 0) continue;
      pfds[n++] = pollfd{streams[i]->fd(), POLLIN, 0};
      index.push_back(i);
    }
    if (n == 0) return done();
    int r = ::poll(pfds.data(), n, std::min(remaining_ms(deadline), 100));
    if (r < 0 && errno != EINTR) fail_errno("poll");
    for (size_t k = 0; r > 0 && k < n; ++k)
      if (pfds[k].revents != 0) streams[index[k]]->pump();
  }
  return true;
}

bool pump_until_events(const std::vector<SseStream*>& streams, size_t n, Ms timeout) {
  return pump_all(
      streams,
      [&] {
        for (SseStream* s : streams)
          if (s->pending().size() < n && !s->closed()) return false;
        return true;
      },
      timeout);
}

std::string normalize_newlines(std::string_view data) {
  std::string out;
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '\r') {
      out += '\n';
      if (i + 1 < data.size() && data[i + 1] == '\n') ++i;
    } else {
      out += data[i];
    }
  }
  return out;
}

std::string chunk(std::string_view payload) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
  std::string out = size;
  out.append(payload);
  out += "\r\n";
  return out;
}

std::string sse_frame(const std::string& id, std::string_view data, const std::string& type) {
  std::string out = "id: " + id + "\n";
  if (!type.empty() && type != "message") out += "event: " + type + "\n";
  size_t start = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] != '\r' && data[i] != '\n') continue;
    out += "data: ";
    out.append(data.substr(start, i - start));
    out += "\n";
    if (data[i] == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
    start = i + 1;
  }
  out += "data: ";
  out.append(data.substr(start));
  out += "\n\n";
  return out;
}

// ---------------------------------------------------------------------------------------------
// The process

std::string write_temp_file(const std::string& text, const std::string& suffix) {
  std::string path = "/tmp/ssegw-itest-XXXXXX" + suffix;
  int fd = ::mkstemps(path.data(), static_cast<int>(suffix.size()));
  if (fd < 0) fail_errno("mkstemps");
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      fail_errno("write " + path);
    }
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  return path;
}

ListeningProcess::~ListeningProcess() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    wait_exit(10s);
  }
  join_log();
}

void ListeningProcess::start(const std::vector<std::string>& argv, Ms start_timeout,
                             const std::string& context) {
  name_ = argv.empty() ? "process" : argv[0].substr(argv[0].rfind('/') + 1);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) fail_errno("pipe2");
  Fd write_end(p[1]);
  err_ = Fd(p[0]);
  pid_ = spawn_process(argv, -1, -1, write_end.get());
  write_end.reset();

  auto deadline = Clock::now() + start_timeout;
  std::string got;
  size_t nl;
  while ((nl = got.find('\n')) == std::string::npos) {
    if (poll_one(err_.get(), POLLIN, deadline) == 0) {
      fail(name_ + " wrote no first log line within " + std::to_string(start_timeout.count()) +
           " ms; stderr: \"" + printable(got) + "\"");
    }
    char buf[4096];
    ssize_t n = ::read(err_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno("read stderr");
    if (n == 0) {
      auto st = wait_exit(5s);
      fail(name_ + " exited (status " + (st ? std::to_string(*st) : std::string("?")) +
           ") before its first log line; " + context + "\nstderr: \"" + printable(got) + "\"");
    }
    got.append(buf, static_cast<size_t>(n));
  }
  first_line_ = got.substr(0, nl);
  {
    std::lock_guard lock(mu_);
    log_ = got;
  }
  drain_ = std::thread([this] {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(err_.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      std::lock_guard lock(mu_);
      log_.append(buf, static_cast<size_t>(n));
    }
  });

  if (first_line_.find("\"msg\":\"listening\"") == std::string::npos)
    fail("first log line of " + name_ + " is not the listening line: " + first_line_);
  static const std::string key = "\"addr\":\"";
  size_t a = first_line_.find(key);
  if (a == std::string::npos) fail("no addr in the first log line: " + first_line_);
  a += key.size();
  size_t e = first_line_.find('"', a);
  size_t colon = first_line_.rfind(':', e);
  if (e == std::string::npos || colon == std::string::npos || colon < a)
    fail("bad addr in the first log line: " + first_line_);
  long port = std::strtol(first_line_.substr(colon + 1, e - colon - 1).c_str(), nullptr, 10);
  if (port <= 0 || port > 65535) fail("bad port in the first log line: " + first_line_);
  port_ = static_cast<uint16_t>(port);
}

void ListeningProcess::join_log() {
  if (drain_.joinable()) drain_.join();
  err_.reset();
}

std::string ListeningProcess::log() const {
  std::lock_guard lock(mu_);
  return log_;
}

void ListeningProcess::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::optional<int> ListeningProcess::wait_exit(Ms timeout) {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  wait_until(
      [&] {
        int ws = 0;
        pid_t r = ::waitpid(pid_, &ws, WNOHANG);
        if (r == pid_) status_ = decode_status(ws);
        if (r < 0 && errno != EINTR) fail_errno("waitpid");
        return status_.has_value();
      },
      timeout, 2ms);
  return status_;
}

int ListeningProcess::stop_and_wait(Ms timeout) {
  if (status_) return *status_;
  if (pid_ <= 0) return -1;
  signal(SIGTERM);
  auto st = wait_exit(timeout);
  if (!st) {
    ::kill(pid_, SIGKILL);
    st = wait_exit(10s);
  }
  return st ? *st : -1;
}

Gateway::Gateway(GatewayOptions opts) {
  try {
    raise_fd_limit();
    std::string text = opts.listen_any_port ? "listen: 127.0.0.1:0\n" + opts.yaml : opts.yaml;
    config_path_ = write_temp_file(text);
    std::vector<std::string> argv = opts.command_prefix;
    argv.insert(argv.end(), {ssegw_bin(), "--config", config_path_});
    argv.insert(argv.end(), opts.args.begin(), opts.args.end());
    proc_.start(argv, opts.start_timeout, "config:\n" + text);
  } catch (...) {
    cleanup();
    throw;
  }
}

Gateway::~Gateway() {
  cleanup();
}

void Gateway::cleanup() {
  // Every test ends with a graceful stop: exit status 0 and no sanitizer report.
  if (proc_.started() && !proc_.exited()) {
    int status = proc_.stop_and_wait(10s);
    CHECK_MESSAGE(status == 0, "ssegw exited with status ", status, " on SIGTERM");
  }
  proc_.join_log();
  if (proc_.started()) {
    std::string text = log();
    bool clean = text.find("AddressSanitizer") == std::string::npos &&
                 text.find("LeakSanitizer") == std::string::npos &&
                 text.find("runtime error:") == std::string::npos;
    CHECK_MESSAGE(clean, "sanitizer report in the ssegw log:\n", text);
  }
  if (!config_path_.empty()) ::unlink(config_path_.c_str());
  config_path_.clear();
}

std::string mock_llm_bin() {
  std::string path = ssegw_bin();
  size_t at = path.rfind("ssegw");
  if (at == std::string::npos) fail("the ssegw binary's path does not end in ssegw: " + path);
  path.replace(at, 5, "ssegw-mock-llm");
  return path;
}

MockLlm::MockLlm() {
  proc_.start({mock_llm_bin(), "--listen", "127.0.0.1:0"}, 10s);
}

MockLlm::MockLlm(uint16_t port) {
  proc_.start({mock_llm_bin(), "--listen", "127.0.0.1:" + std::to_string(port)}, 10s);
}

void MockLlm::kill() {
  proc_.signal(SIGKILL);
  if (!proc_.wait_exit(10s)) fail("ssegw-mock-llm survived SIGKILL for 10 s");
}

MockLlm::~MockLlm() {
  if (proc_.started() && !proc_.exited()) {
    int status = proc_.stop_and_wait(10s);
    CHECK_MESSAGE(status == 0, "ssegw-mock-llm exited with status ", status, " on SIGTERM; log:\n",
                  proc_.log());
  }
  proc_.join_log();
}

std::string MockLlm::url() const {
  return "http://127.0.0.1:" + std::to_string(port());
}

std::string MockLlm::stats() const {
  Response r = http_get(port(), "/mock/stats");
  if (r.status != 200) fail("GET /mock/stats answered " + printable(r.raw));
  return r.body;
}

long MockLlm::stat(const std::string& key) const {
  std::string body = stats();
  auto v = json_number(body, key);
  if (!v) fail("no \"" + key + "\" in the mock's stats: " + printable(body));
  return *v;
}

long MockLlm::wait_stat(const std::string& key, long value, Ms timeout) const {
  long v = 0;
  wait_until([&] { return (v = stat(key)) == value; }, timeout);
  return v;
}

long MockLlm::wait_stat_at_least(const std::string& key, long value, Ms timeout) const {
  long v = 0;
  wait_until([&] { return (v = stat(key)) >= value; }, timeout);
  return v;
}

void MockLlm::reset() {
  Response r = http(port(), post_request("/mock/reset", ""));
  if (r.status != 200) fail("POST /mock/reset answered " + printable(r.raw));
}

uint64_t monotonic_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000;
}

ProcessResult run_ssegw(const std::vector<std::string>& args, Ms timeout) {
  std::vector<std::string> all;
  all.emplace_back(ssegw_bin());
  all.insert(all.end(), args.begin(), args.end());
  return run_process(all, "", timeout);
}

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input,
                          Ms timeout) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) fail_errno("pipe2");
  Fd read_end(p[0]), write_end(p[1]);
  std::string input_path;
  Fd in;
  if (!input.empty()) {
    input_path = write_temp_file(input, ".txt");
    in = Fd(::open(input_path.c_str(), O_RDONLY | O_CLOEXEC));
    ::unlink(input_path.c_str());
    if (!in) fail_errno("open " + input_path);
  }
  pid_t pid = spawn_process(argv, in.get(), write_end.get(), write_end.get());
  write_end.reset();
  in.reset();
  ProcessResult result;
  auto deadline = Clock::now() + timeout;
  bool killed = false;
  for (;;) {
    if (poll_one(read_end.get(), POLLIN, deadline) == 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    char buf[4096];
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<size_t>(n));
  }
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  result.status = decode_status(ws);
  if (killed) result.output += "\n[killed after timeout]";
  return result;
}

// ---------------------------------------------------------------------------------------------
// Misc

std::optional<double> metric_value(const std::string& text, const std::string& series) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t e = text.find('\n', pos);
    if (e == std::string::npos) e = text.size();
    std::string_view line(text.data() + pos, e - pos);
    pos = e + 1;
    if (line.empty() || line[0] == '#' || line.substr(0, series.size()) != series) continue;
    if (series.back() != '{' && (line.size() <= series.size() ||
                                 (line[series.size()] != ' ' && line[series.size()] != '{')))
      continue;
    size_t sp = line.rfind(' ');
    if (sp == std::string_view::npos) continue;
    return std::strtod(std::string(line.substr(sp + 1)).c_str(), nullptr);
  }
  return std::nullopt;
}

std::optional<double> read_metric(uint16_t port, const std::string& series) {
  Response r = http_get(port, "/metrics");
  if (r.status != 200) fail("/metrics answered " + std::to_string(r.status));
  return metric_value(r.body, series);
}

std::optional<double> wait_metric_until(uint16_t port, const std::string& series,
                                        const std::function<bool(double)>& pred, Ms timeout) {
  std::optional<double> v;
  wait_until([&] { return (v = read_metric(port, series)) && pred(*v); }, timeout, 20ms);
  return v;
}

std::optional<double> wait_metric(uint16_t port, const std::string& series, double value,
                                  Ms timeout) {
  return wait_metric_until(
      port, series, [&](double v) { return v == value; }, timeout);
}

std::optional<double> wait_metric_at_least(uint16_t port, const std::string& series, double value,
                                           Ms timeout) {
  return wait_metric_until(
      port, series, [&](double v) { return v >= value; }, timeout);
}

std::string wait_log_line(const Gateway& gw, const std::vector<std::string>& parts, Ms timeout) {
  std::string found;
  wait_until(
      [&] {
        std::string log = gw.log();
        size_t pos = 0;
        for (size_t eol; (eol = log.find('\n', pos)) != std::string::npos; pos = eol + 1) {
          std::string_view line(log.data() + pos, eol - pos);
          bool all = true;
          for (const std::string& p : parts) all = all && line.find(p) != std::string_view::npos;
          if (all) {
            found = line;
            return true;
          }
        }
        return false;
      },
      timeout);
  return found;
}

long wait_subscribers(uint16_t port, const std::string& ch, long n, Ms timeout) {
  long got = -1;
  wait_until(
      [&] {
        Response r = http_get(port, "/v1/channels/" + ch);
        got = json_number(r.body, "subscribers").value_or(-1);
        return got == n;
      },
      timeout);
  return got;
}

std::optional<std::string> json_string(const std::string& json, const std::string& key) {
  std::string k = "\"" + key + "\":\"";
  size_t p = json.find(k);
  if (p == std::string::npos) return std::nullopt;
  p += k.size();
  size_t e = json.find('"', p);
  if (e == std::string::npos) return std::nullopt;
  return json.substr(p, e - p);
}

std::optional<long> json_number(const std::string& json, const std::string& key) {
  std::string k = "\"" + key + "\":";
  size_t p = json.find(k);
  if (p == std::string::npos) return std::nullopt;
  p += k.size();
  size_t e = p;
  if (e < json.size() && json[e] == '-') ++e;
  while (e < json.size() && json[e] >= '0' && json[e] <= '9') ++e;
  if (e == p) return std::nullopt;
  return std::strtol(json.substr(p, e - p).c_str(), nullptr, 10);
}

std::string lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string printable(std::string_view s) {
  std::string out;
  size_t limit = 4000;
  for (size_t i = 0; i < s.size() && i < limit; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c >= 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > limit) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

pid_t spawn_process(std::vector<std::string> all, int in_fd, int out_fd, int err_fd) {
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) fail_errno("fork");
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    if (in_fd < 0) in_fd = ::open("/dev/null", O_RDONLY);
    if (in_fd >= 0) ::dup2(in_fd, 0);
    if (out_fd >= 0) ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

std::vector<SseEvent> read_until_finished(SseStream& s, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  std::vector<SseEvent> events;
  while (!s.finished()) {
    if (s.closed() || Clock::now() >= deadline) {
      const std::string& b = s.body();
      throw std::runtime_error(std::string(s.closed() ? "closed before the terminal chunk"
                                                      : "no terminal chunk in time") +
                               " after " + std::to_string(b.size()) + " body bytes, ending: \"" +
                               printable(b.substr(b.size() - std::min<size_t>(b.size(), 600))) +
                               "\"");
    }
    if (auto e = s.next_event(50ms)) events.push_back(std::move(*e));
  }
  while (auto e = s.next_event(0ms)) events.push_back(std::move(*e));
  return events;
}

}  // namespace itest
