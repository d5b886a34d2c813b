#include "tests/integration/redis_server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace itest {
namespace {

// Waits up to timeout for pid to exit. True once reaped.
bool reap(pid_t pid, Ms timeout) {
  return wait_until(
      [&] {
        int ws = 0;
        pid_t r = ::waitpid(pid, &ws, WNOHANG);
        return r == pid || (r < 0 && errno == ECHILD);
      },
      timeout, 2ms);
}

// A RESP array of bulk strings: what redis-cli sends.
std::string encode_command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// Reads from fd until a whole line has arrived; returns it without the CRLF.
std::string read_line(int fd, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  std::string got;
  for (;;) {
    size_t eol = got.find("\r\n");
    if (eol != std::string::npos) return got.substr(0, eol);
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    ReadStatus st = read_some(fd, got, left < 0ms ? 0ms : left);
    if (st == ReadStatus::kEof) fail("redis closed the connection; got \"" + printable(got) + "\"");
    if (st == ReadStatus::kTimeout && Clock::now() >= deadline)
      fail("no reply from redis in time; got \"" + printable(got) + "\"");
  }
}

}  // namespace

RedisServer::RedisServer() {
  if (::access(kBinary, X_OK) != 0)
    fail(std::string(kBinary) +
         " is missing: the backplane tests need a real Redis; install the Debian package "
         "redis-server (tools/bootstrap.sh does)");
  log_path_ = "/tmp/ssegw-itest-redis-XXXXXX.log";
  int fd = ::mkostemps(log_path_.data(), 4, O_CLOEXEC | O_APPEND);
  if (fd < 0) fail_errno("mkostemps");
  log_ = Fd(fd);
  start();
}

RedisServer::~RedisServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    reap(pid_, 10s);
    pid_ = -1;
  }
  log_.reset();
  if (!log_path_.empty()) ::unlink(log_path_.c_str());
}

std::string RedisServer::url(int db) const {
  return "redis://127.0.0.1:" + std::to_string(port()) + "/" + std::to_string(db);
}

void RedisServer::start() {
  // redis-server sets SO_REUSEADDR before it binds, so it listens beside port_'s socket.
  const std::string port = std::to_string(port_.port());
  std::vector<std::string> all = {
      kBinary, "--port",           port, "--bind",      "127.0.0.1", "--save", "", "--appendonly",
      "no",    "--protected-mode", "no", "--daemonize", "no"};
  pid_ = spawn_process(std::move(all), -1, log_.get(), log_.get());
  wait_ready(10s);
}

void RedisServer::wait_ready(Ms timeout) {
  std::string last;
  bool ready = wait_until(
      [&] {
        int ws = 0;
        if (::waitpid(pid_, &ws, WNOHANG) == pid_) {
          pid_ = -1;
          fail("redis-server on port " + std::to_string(port()) + " exited (status " +
               std::to_string(ws) + ") before answering PING; its log:\n" + log());
        }
        try {
          last = command({"PING"}, 1s);
        } catch (const std::exception& e) {
          last = e.what();  // not listening yet
        }
        return last == "+PONG";
      },
      timeout);
  if (!ready)
    fail("redis-server on port " + std::to_string(port()) + " did not answer PING within " +
         std::to_string(timeout.count()) + " ms (last: " + last + "); its log:\n" + log());
}

void RedisServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  if (!reap(pid_, 10s)) fail("redis-server survived SIGKILL for 10 s");
  pid_ = -1;
}

void RedisServer::restart() {
  kill();
  start();
}

// Each waits until the kernel reports the child stopped (continued), so that the test goes on
// only once Redis is really frozen (running again).
void RedisServer::freeze() {
  if (pid_ <= 0 || ::kill(pid_, SIGSTOP) != 0) fail_errno("SIGSTOP redis-server");
  int ws = 0;
  if (::waitpid(pid_, &ws, WUNTRACED) != pid_ || !WIFSTOPPED(ws)) fail("redis-server did not stop");
}

void RedisServer::thaw() {
  if (pid_ <= 0 || ::kill(pid_, SIGCONT) != 0) fail_errno("SIGCONT redis-server");
  int ws = 0;
  if (::waitpid(pid_, &ws, WCONTINUED) != pid_ || !WIFCONTINUED(ws))
    fail("redis-server did not continue");
}

std::string RedisServer::command(const std::vector<std::string>& args, Ms timeout) const {
  Fd fd = connect_to(port(), timeout);
  send_all(fd.get(), encode_command(args), timeout);
  return read_line(fd.get(), timeout);
}

std::string RedisServer::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace itest
