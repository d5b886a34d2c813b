#include "gateway/server/gateway.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <thread>
#include <vector>

#include "gateway/base/log.hpp"
#include "gateway/net/handles.hpp"
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
      : shared_(shared), drained_(loop_, [this] { on_worker_drained(); }) {
    uv_signal_init(loop_.uv(), &sigterm_);
    uv_signal_init(loop_.uv(), &sigint_);
    sigterm_.data = sigint_.data = this;
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    uv_signal_start(&sigint_, on_signal, SIGINT);
    shared_.worker_drained = [this] { drained_.send(); };
  }

  void run() {
    loop_.run();
    loop_.finish();
  }

 private:
  static void on_signal(uv_signal_t* handle, int signum) {
    auto* self = static_cast<Supervisor*>(handle->data);
    if (self->shutting_down_) {
      base::log::warn("second signal: exiting at once", {{"signal", signum}});
      std::_Exit(1);
    }
    self->shutting_down_ = true;
    base::log::info("draining", {{"signal", signum}});
    for (auto& worker : self->shared_.workers)
      worker->post(std::make_unique<Message>(0, Shutdown{}));
  }

  void on_worker_drained() {
    for (auto& worker : shared_.workers)
      if (!worker->drained_reported()) return;
    for (auto& worker : shared_.workers) worker->post(std::make_unique<Message>(0, Stop{}));
    uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
    drained_.close();
    loop_.close();
  }

  Shared& shared_;
  net::Loop loop_;
  net::Async drained_;
  uv_signal_t sigterm_;
  uv_signal_t sigint_;
  bool shutting_down_ = false;
};

}  // namespace

int run_gateway(const config::Config& config) {
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();

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
  for (uint32_t i = 0; i < config.workers; ++i)
    shared.workers.push_back(std::make_unique<Worker>(shared, i, fds[i]));
  Supervisor supervisor(shared);

  base::log::info("listening", {{"addr", net::local_address(fds[0])},
                                {"workers", config.workers},
                                {"pid", static_cast<int64_t>(getpid())}});

  std::vector<std::thread> threads;
  for (auto& worker : shared.workers) threads.emplace_back([&worker] { worker->run(); });
  supervisor.run();
  for (auto& thread : threads) thread.join();
  base::log::info("stopped");
  return 0;
}

}  // namespace ssegw::server
