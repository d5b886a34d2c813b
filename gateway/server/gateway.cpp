#include "gateway/server/gateway.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>
#include <vector>

#include "gateway/base/log.hpp"
#include "gateway/net/handles.hpp"
#include "gateway/net/tls_context.hpp"
#include "gateway/server/tls_setup.hpp"
#include "gateway/server/worker.hpp"

namespace ssegw::server {
namespace {

// Thousands of subscribers need thousands of descriptors: take the hard limit.
void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// The main thread's loop: signals in, "a worker drained" in, kStop out.
class Supervisor {
 public:
  explicit Supervisor(Shared& shared)
      : shared_(shared),
        drained_(loop_, [this] { on_worker_drained(); }),
        sigterm_(loop_, [this](int signum) { on_signal(signum); }),
        sigint_(loop_, [this](int signum) { on_signal(signum); }),
        sighup_(loop_, [this](int) { reload_tls(shared_); }) {
    sigterm_.start(SIGTERM);
    sigint_.start(SIGINT);
    // Only with TLS: without it, SIGHUP keeps its default action (the process ends), as before.
    if (shared_.config.tls.enabled()) sighup_.start(SIGHUP);
    shared_.worker_drained = [this] { drained_.send(); };
  }

  // False when the loop ended with a handle still open (logged).
  bool run() {
    loop_.run();
    if (loop_.finish() == 0) return true;
    base::log::error("loop closed with handles open",
                     {{"thread", "supervisor"}, {"handles", loop_.open_handles()}});
    return false;
  }

 private:
  void on_signal(int signum) {
    if (shutting_down_) {
      base::log::warn("second signal: exiting at once", {{"signal", signum}});
      std::_Exit(1);
    }
    shutting_down_ = true;
    base::log::info("draining", {{"signal", signum}});
    for (auto& worker : shared_.workers) worker->post(std::make_unique<Message>(0, Shutdown{}));
  }

  void on_worker_drained() {
    for (auto& worker : shared_.workers)
      if (!worker->drained_reported()) return;
    for (auto& worker : shared_.workers) worker->post(std::make_unique<Message>(0, Stop{}));
    sigterm_.close();
    sigint_.close();
    sighup_.close();
    drained_.close();
    loop_.close();
  }

  Shared& shared_;
  net::Loop loop_;
  net::Async drained_;
  net::Signal sigterm_;
  net::Signal sigint_;
  net::Signal sighup_;  // reloads the TLS certificate and key
  bool shutting_down_ = false;
};

}  // namespace

int run_gateway(const config::Config& config) {
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();

  std::shared_ptr<const net::TlsContext> tls;
  if (config.tls.enabled()) {
    std::string error;
    tls = load_tls(config, error);
    if (!tls) {  // worded and reported like the configuration's other errors (main.cpp)
      std::fprintf(stderr, "ssegw: %s\n", error.c_str());
      return 2;
    }
  }

  // Every worker binds the same address with SO_REUSEPORT; with port 0 the first one picks it.
  std::vector<int> fds;
  uint16_t port = config.listen_port;
  bool reuse_port = config.workers > 1;
  if (reuse_port && port != 0) {
    // SO_REUSEPORT would let us share the port with another process that holds it the same
    // way (an old ssegw still running): bind once without it first, so that fails loudly.
    std::string error;
    int probe = net::open_listen_socket(config.listen_host, port, false, error);
    if (probe < 0) {
      base::log::error("cannot listen", {{"error", error}});
      return 1;
    }
    ::close(probe);
  }
  for (uint32_t i = 0; i < config.workers; ++i) {
    std::string error;
    int fd = net::open_listen_socket(config.listen_host, port, reuse_port, error);
    if (fd < 0) {
      base::log::error("cannot listen", {{"error", error}});
      return 1;
    }
    if (i == 0) net::local_address(fd, &port);
    fds.push_back(fd);
  }

  Shared shared(config);
  if (tls) serve_tls(shared, std::move(tls));
  for (uint32_t i = 0; i < config.workers; ++i)
    shared.workers.push_back(std::make_unique<Worker>(shared, i, fds[i]));
  Supervisor supervisor(shared);

  base::log::info("listening", {{"addr", net::local_address(fds[0])},
                                {"workers", config.workers},
                                {"pid", static_cast<int64_t>(getpid())}});

  // A loop that ends with a handle open is a leak (net/handle.hpp): the exit status says so, and
  // the tests, which expect 0 after SIGTERM, fail.
  std::atomic<bool> loops_closed{true};
  std::vector<std::thread> threads;
  for (auto& worker : shared.workers)
    threads.emplace_back([&worker, &loops_closed] {
      if (!worker->run()) loops_closed = false;
    });
  if (!supervisor.run()) loops_closed = false;
  for (auto& thread : threads) thread.join();
  if (!loops_closed) {
    base::log::error("stopped with handles open");
    return 1;
  }
  base::log::info("stopped");
  return 0;
}

}  // namespace ssegw::server
