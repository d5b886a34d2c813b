// ssegw-floor: what the kernel charges for a fan-out, with no server at all. One process writes
// an event of --size bytes to each of --connections loopback TCP sockets, --rate events per second
// per socket, --batch events per write(2) (1: one write per delivery, as a server that writes each
// event as it comes; 2 and 4: coalesced), while a child process drains the other ends. The
// writer's CPU per delivery is the floor a server's CPU per delivery is measured against
// (bench/compare.sh, issue 15): a server cannot spend less per delivery than one write of it.
//
//   ssegw-floor --connections 1000 --rate 100 --size 300 --batch 1 --duration 10
//
// --writer-cpu and --reader-cpu pin the two processes (bench/compare.sh: the writer where the
// servers run, the reader where the bench runs).
//
// Prints one JSON object: the writer's user and system CPU, deliveries, and µs per delivery.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef SSEGW_FLOOR_URING
#include <liburing.h>
#endif

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Options {
  unsigned connections = 1000;
  double rate = 100;
  unsigned size = 300;
  unsigned batch = 1;
  double duration = 10;
  bool io_uring = false;  // one io_uring submission per tick instead of a write(2) per socket
  int writer_cpu = -1;    // -1: wherever the scheduler puts it
  int reader_cpu = -1;
};

void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "ssegw-floor: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    char* end = nullptr;
    double v = std::strtod(argv[i + 1], &end);
    if (*end != '\0' || v < 0) return false;
    if (flag == "--io-uring")
      o.io_uring = v != 0;
    else if (flag == "--writer-cpu")
      o.writer_cpu = static_cast<int>(v);
    else if (flag == "--reader-cpu")
      o.reader_cpu = static_cast<int>(v);
    else if (v == 0)
      return false;
    else if (flag == "--connections")
      o.connections = static_cast<unsigned>(v);
    else if (flag == "--rate")
      o.rate = v;
    else if (flag == "--size")
      o.size = static_cast<unsigned>(v);
    else if (flag == "--batch")
      o.batch = static_cast<unsigned>(v);
    else if (flag == "--duration")
      o.duration = v;
    else
      return false;
  }
  return argc % 2 == 1 && o.batch >= 1 && o.connections >= 1 && o.size >= 1;
}

double seconds(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

// The reader: connects every socket, then reads until each one ends.
void drain(const sockaddr_in& to, unsigned connections) {
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  for (unsigned i = 0; i < connections; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0)
      die("connect");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  static char buffer[256 * 1024];
  unsigned open = connections;
  epoll_event events[256];
  while (open > 0) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      ssize_t r = read(events[i].data.fd, buffer, sizeof buffer);
      if (r <= 0) {
        close(events[i].data.fd);
        --open;
      }
    }
  }
  std::_Exit(0);
}

#ifdef SSEGW_FLOOR_URING
// One tick's sends as one submission: what a loop that hands a fan-out's writes to io_uring at
// the end of its turn would pay. Plain submission (no SQPOLL thread): every CPU cycle is this
// process's.
class UringSender {
 public:
  explicit UringSender(unsigned entries) {
    if (io_uring_queue_init(entries, &ring_, 0) != 0) die("io_uring_queue_init");
    entries_ = entries;
  }
  ~UringSender() { io_uring_queue_exit(&ring_); }
  // Sends payload on every fd; returns how many sends came back short or failed.
  uint64_t send_all(const std::vector<int>& fds, const std::string& payload) {
    uint64_t short_sends = 0;
    size_t next = 0;
    while (next < fds.size()) {
      unsigned batch = 0;
      for (; next < fds.size() && batch < entries_; ++next, ++batch) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_send(sqe, fds[next], payload.data(), payload.size(), MSG_DONTWAIT);
      }
      io_uring_submit_and_wait(&ring_, batch);
      io_uring_cqe* cqe;
      for (unsigned seen = 0; seen < batch; ++seen) {
        if (io_uring_wait_cqe(&ring_, &cqe) != 0) die("io_uring_wait_cqe");
        if (cqe->res != static_cast<int>(payload.size())) ++short_sends;
        io_uring_cqe_seen(&ring_, cqe);
      }
    }
    return short_sends;
  }

 private:
  io_uring ring_;
  unsigned entries_;
};
#endif

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr,
                 "usage: ssegw-floor [--connections N (1000)] [--rate EVENTS_PER_S (100)]\n"
                 "                   [--size BYTES (300)] [--batch EVENTS_PER_WRITE (1)]\n"
                 "                   [--duration S (10)] [--writer-cpu N] [--reader-cpu N]\n"
                 "                   [--io-uring 0|1 (0)]\n");
    return 2;
  }
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 4096) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    die("listen");
  pid_t reader = fork();
  if (reader < 0) die("fork");
  if (reader == 0) {
    pin(o.reader_cpu);
    drain(addr, o.connections);
  }
  pin(o.writer_cpu);

  std::vector<int> fds;
  for (unsigned i = 0; i < o.connections; ++i) {
    int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) die("accept");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    fds.push_back(fd);
  }
  // What a server writes: SSE events, here as plain bytes; `batch` of them per write.
  std::string event(o.size, 'x');
  event[o.size - 1] = '\n';
  std::string payload;
  for (unsigned i = 0; i < o.batch; ++i) payload += event;

#ifdef SSEGW_FLOOR_URING
  std::unique_ptr<UringSender> uring;
  if (o.io_uring) uring = std::make_unique<UringSender>(1024);
#else
  if (o.io_uring) {
    std::fprintf(stderr, "ssegw-floor: built without liburing (liburing-dev)\n");
    return 2;
  }
#endif
  uint64_t writes = 0, short_writes = 0;
  uint64_t period_ns = static_cast<uint64_t>(1e9 * o.batch / o.rate);
  uint64_t ticks = static_cast<uint64_t>(o.duration * o.rate / o.batch);
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (uint64_t t = 0; t < ticks; ++t) {
#ifdef SSEGW_FLOOR_URING
    if (uring) {
      short_writes += uring->send_all(fds, payload);
      writes += fds.size();
    } else
#endif
      for (int fd : fds) {
        ssize_t w = write(fd, payload.data(), payload.size());
        ++writes;
        if (w != static_cast<ssize_t>(payload.size())) ++short_writes;
      }
    next.tv_nsec += static_cast<long>(period_ns % 1000000000);
    next.tv_sec += static_cast<time_t>(period_ns / 1000000000);
    if (next.tv_nsec >= 1000000000) {
      next.tv_nsec -= 1000000000;
      ++next.tv_sec;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
  }
  getrusage(RUSAGE_SELF, &after);
  for (int fd : fds) close(fd);
  waitpid(reader, nullptr, 0);

  double user = seconds(after.ru_utime) - seconds(before.ru_utime);
  double sys = seconds(after.ru_stime) - seconds(before.ru_stime);
  uint64_t deliveries = writes * o.batch;
  std::printf(
      "{\"tool\":\"ssegw-floor\",\"io_uring\":%s,\"connections\":%u,\"rate\":%g,\"size\":%u,"
      "\"batch\":%u,"
      "\"duration_s\":%g,\"writes\":%" PRIu64 ",\"short_writes\":%" PRIu64
      ",\"deliveries\":%" PRIu64
      ",\"cpu_user_s\":%.4f,\"cpu_sys_s\":%.4f,\"us_per_delivery\":%.4f}\n",
      o.io_uring ? "true" : "false", o.connections, o.rate, o.size, o.batch, o.duration, writes,
      short_writes, deliveries, user, sys,
      deliveries ? (user + sys) * 1e6 / static_cast<double>(deliveries) : 0.0);
  return short_writes == 0 ? 0 : 1;
}
