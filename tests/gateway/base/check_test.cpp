#include "gateway/base/check.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <string>

namespace {

int two = 2;  // not a constant: the checks below are decided at run time

struct Death {
  bool aborted = false;  // killed by SIGABRT
  std::string stderr_text;
};

// Runs body in a child process with stderr on a pipe; what the child wrote and how it ended.
Death run_in_child(const std::function<void()>& body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    body();
    ::_exit(0);  // the check did not fire
  }
  ::close(fds[1]);
  Death death;
  char buffer[512];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;)
    death.stderr_text.append(buffer, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  death.aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  return death;
}

}  // namespace

TEST_CASE("base/check: a failed SSEGW_CHECK aborts with file:line and the condition") {
  // clang-format off
  const int line = __LINE__; Death death = run_in_child([] { SSEGW_CHECK(two + 2 == 5); });
  // clang-format on
  CHECK(death.aborted);
  CHECK(death.stderr_text ==
        "ssegw: check failed at " __FILE__ ":" + std::to_string(line) + ": two + 2 == 5\n");
}

TEST_CASE("base/check: SSEGW_CHECK stays on in every build type and evaluates its condition once") {
  // unit_tests is built like the gateway (Release: NDEBUG, no assert()).
  CHECK(run_in_child([] { SSEGW_CHECK(two == 3); }).aborted);
  int evaluated = 0;
  SSEGW_CHECK(++evaluated == 1);
  CHECK(evaluated == 1);
  Death passed = run_in_child([] { SSEGW_CHECK(1 + 1 == 2); });
  CHECK_FALSE(passed.aborted);
  CHECK(passed.stderr_text.empty());
}
