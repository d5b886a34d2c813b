// A throwaway redis-server for the backplane tests: one per test, on a loopback port of its own,
// without persistence, so that a restart comes back empty on purpose (the gateway must cope with
// a Redis that lost everything).
//
// The port is a ReservedPort, held from before the first start to the destructor: while a test has
// killed Redis, nothing else can take the port, and a gateway reconnecting to it cannot connect to
// itself (the kernel picks no port that bind() holds as a connection's source port; with a port
// that was merely free, it could, and the gateway would then talk to its own socket).
//
// Same rules as harness.hpp: every descriptor is close-on-exec, the child closes every descriptor
// above 2 before exec, every wait is bounded, and the destructor kills and reaps the child.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

namespace itest {

class RedisServer {
 public:
  // The Debian package redis-server (tools/bootstrap.sh installs it).
  static constexpr const char* kBinary = "/usr/bin/redis-server";

  // Starts redis-server on a free port and waits until it answers PING. Throws (the test fails,
  // it is not skipped) when the binary is missing or the server does not come up.
  RedisServer();
  // Kills (SIGKILL) and reaps the server if it still runs.
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_.port(); }
  // "redis://127.0.0.1:PORT/db", for backplane.url.
  std::string url(int db = 0) const;
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // SIGKILL, then reaps it: a Redis that crashes. Its data is gone (no persistence).
  void kill();
  // Starts it again on the same port (killing it first if it still runs) and waits for PING.
  void restart();
  // SIGSTOP: a Redis that stops answering and keeps its connections open (a hung host, a stall
  // the kernel does not see); thaw() sends SIGCONT. The destructor kills a frozen one as well.
  void freeze();
  void thaw();

  // Sends one command on a fresh connection and returns the first line of the reply without its
  // CRLF: "+PONG", ":1", "$-1", "*3", "-ERR ...". Throws on timeout or a closed connection.
  std::string command(const std::vector<std::string>& args, Ms timeout = kTimeout) const;
  // What redis-server wrote to stdout and stderr so far (every start appends to it).
  std::string log() const;

 private:
  void start();
  void wait_ready(Ms timeout);

  ReservedPort port_;
  pid_t pid_ = -1;
  std::string log_path_;
  Fd log_;  // the child's stdout and stderr, O_APPEND
};

}  // namespace itest
