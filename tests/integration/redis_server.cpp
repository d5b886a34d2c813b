#include "tests/integration/redis_server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace itest {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what);
}

[[noreturn]] void fail_errno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// Waits up to timeout for pid to exit. True once reaped.
bool reap(pid_t pid, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int ws = 0;
    pid_t r = ::waitpid(pid, &ws, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
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

// A free port below the kernel's ephemeral range (32768 and up on Linux): while a test has
// killed redis, nothing else may take its port, and a gateway reconnecting to it may not
// connect to itself, which an ephemeral port allows (the kernel could pick it as the source).
uint16_t pick_free_port() {
  std::random_device random;
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto port = static_cast<uint16_t>(20000 + random() % 12000);
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) fail_errno("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return port;
  }
  fail("no free port between 20000 and 32000");
}

RedisServer::RedisServer() {
  if (::access(kBinary, X_OK) != 0)
    fail(std::string(kBinary) +
         " is missing: the backplane tests need a real Redis; install the Debian package "
         "redis-server (tools/bootstrap.sh does)");
  log_path_ = "/tmp/ssegw-itest-redis-XXXXXX.log";
  int fd = ::mkostemps(log_path_.data(), 4, O_CLOEXEC | O_APPEND);
  if (fd < 0) fail_errno("mkostemps");
  log_ = Fd(fd);
  port_ = pick_free_port();
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
  return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
}

void RedisServer::start() {
  const std::string port = std::to_string(port_);
  std::vector<std::string> all = {
      kBinary, "--port",           port, "--bind",      "127.0.0.1", "--save", "", "--appendonly",
      "no",    "--protected-mode", "no", "--daemonize", "no"};
  pid_ = spawn_process(std::move(all), -1, log_.get(), log_.get());
  wait_ready(10s);
}

void RedisServer::wait_ready(Ms timeout) {
  auto deadline = Clock::now() + timeout;
  std::string last;
  for (;;) {
    int ws = 0;
    if (::waitpid(pid_, &ws, WNOHANG) == pid_) {
      pid_ = -1;
      fail("redis-server on port " + std::to_string(port_) + " exited (status " +
           std::to_string(ws) + ") before answering PING; its log:\n" + log());
    }
    try {
      last = command({"PING"}, 1s);
      if (last == "+PONG") return;
    } catch (const std::exception& e) {
      last = e.what();  // not listening yet
    }
    if (Clock::now() >= deadline)
      fail("redis-server on port " + std::to_string(port_) + " did not answer PING within " +
           std::to_string(timeout.count()) + " ms (last: " + last + "); its log:\n" + log());
    std::this_thread::sleep_for(10ms);
  }
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
  Fd fd = connect_to(port_, timeout);
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
