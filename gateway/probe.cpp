// Blocking POSIX sockets on purpose: the probe runs as its own short-lived process, outside any
// event loop, and must stay small enough to trust as a health signal.
#include "gateway/probe.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kDeadline{2000};
constexpr size_t kMaxHead = 16 * 1024;

struct Url {
  std::string host;  // without brackets
  std::string port = "80";
  std::string path = "/";
  std::string authority;  // for the Host header, as written
};

// Fills url from http://HOST[:PORT][/PATH]; false with why set when the text is not that.
bool parse_url(const std::string& text, Url& url, std::string& why) {
  const std::string scheme = "http://";
  if (text.compare(0, scheme.size(), scheme) != 0) {
    why = "only http://HOST:PORT/PATH is supported";
    return false;
  }
  std::string rest = text.substr(scheme.size());
  size_t slash = rest.find('/');
  url.authority = rest.substr(0, slash);
  if (slash != std::string::npos) url.path = rest.substr(slash);
  if (url.path.find('#') != std::string::npos || url.authority.find('@') != std::string::npos) {
    why = "fragments and user info are not supported";
    return false;
  }
  for (char c : url.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      why = "the path holds a space or a control character";
      return false;
    }
  }
  std::string port;
  if (!url.authority.empty() && url.authority[0] == '[') {
    size_t close = url.authority.find(']');
    if (close == std::string::npos) {
      why = "unterminated [IPv6] address";
      return false;
    }
    url.host = url.authority.substr(1, close - 1);
    std::string after = url.authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        why = "junk after ]";
        return false;
      }
      port = after.substr(1);
    } else {
      port = "80";
    }
  } else {
    size_t colon = url.authority.rfind(':');
    url.host = url.authority.substr(0, colon);
    port = colon == std::string::npos ? "80" : url.authority.substr(colon + 1);
  }
  if (url.host.empty()) {
    why = "no host";
    return false;
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) < 1 ||
      std::stoi(port) > 65535) {
    why = "the port is not a number from 1 to 65535";
    return false;
  }
  url.port = port;
  return true;
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for events on fd until the deadline. False on timeout or poll error (why set).
bool wait_for(int fd, short events, Clock::time_point deadline, std::string& why) {
  for (;;) {
    int left = remaining_ms(deadline);
    if (left == 0) {
      why = "timed out after 2s";
      return false;
    }
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, left);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) {
      why = std::string("poll: ") + std::strerror(errno);
      return false;
    }
  }
}

// A connected non-blocking socket, or -1 with why set.
int connect_any(const addrinfo* list, Clock::time_point deadline, std::string& why) {
  for (const addrinfo* ai = list; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      why = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (r < 0 && errno == EINPROGRESS) {
      if (!wait_for(fd, POLLOUT, deadline, why)) {
        close(fd);
        return -1;  // the deadline covers every address
      }
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      r = err == 0 ? 0 : -1;
      errno = err;
    }
    if (r == 0) return fd;
    why = std::string("connect: ") + std::strerror(errno);
    close(fd);
  }
  return -1;
}

// Sends the request and reads up to the end of the response head. The status code, or -1 with
// why set.
int exchange(int fd, const Url& url, Clock::time_point deadline, std::string& why) {
  const std::string request = "GET " + url.path + " HTTP/1.1\r\nHost: " + url.authority +
                              "\r\nUser-Agent: ssegw-probe\r\nAccept: */*\r\n"
                              "Connection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, deadline, why)) return -1;
    } else {
      why = std::string("send: ") + std::strerror(errno);
      return -1;
    }
  }

  std::string head;
  char buf[4096];
  while (head.find("\r\n") == std::string::npos) {
    if (head.size() > kMaxHead) {
      why = "no status line in the first 16 KiB";
      return -1;
    }
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      head.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      why = head.empty() ? "the server closed the connection without answering"
                         : "the server closed the connection inside the status line";
      return -1;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait_for(fd, POLLIN, deadline, why)) return -1;
    } else {
      why = std::string("recv: ") + std::strerror(errno);
      return -1;
    }
  }
  // "HTTP/1.x SSS reason"
  const std::string line = head.substr(0, head.find("\r\n"));
  auto digit = [&](size_t i) { return line[i] >= '0' && line[i] <= '9'; };
  if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 || !digit(7) || line[8] != ' ' ||
      !digit(9) || !digit(10) || !digit(11) || (line.size() > 12 && line[12] != ' ')) {
    why = "malformed status line \"" + line.substr(0, 80) + "\"";
    return -1;
  }
  return std::stoi(line.substr(9, 3));
}

int fail(const std::string& url, const std::string& why) {
  std::fprintf(stderr, "ssegw: probe %s: %s\n", url.c_str(), why.c_str());
  return 1;
}

}  // namespace

int run_probe(const std::string& text) {
  const Clock::time_point deadline = Clock::now() + kDeadline;
  Url url;
  std::string why;
  if (!parse_url(text, url, why)) return fail(text, why);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  int rc = getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &list);
  if (rc != 0) return fail(text, std::string("resolve ") + url.host + ": " + gai_strerror(rc));
  int fd = connect_any(list, deadline, why);
  freeaddrinfo(list);
  if (fd < 0) return fail(text, why);

  int status = exchange(fd, url, deadline, why);
  close(fd);
  if (status < 0) return fail(text, why);
  if (status < 200 || status > 299) return fail(text, "HTTP " + std::to_string(status));
  return 0;
}
