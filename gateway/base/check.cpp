#include "gateway/base/check.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace ssegw::base {

void check_failed(const char* file, int line, const char* condition) noexcept {
  // One write(2), like the JSON log lines, so that it does not interleave with another worker's;
  // no allocation, since the heap may be what broke.
  char text[1024];
  int n =
      std::snprintf(text, sizeof text, "ssegw: check failed at %s:%d: %s\n", file, line, condition);
  if (n > 0) {
    size_t length = static_cast<size_t>(n);
    if (length >= sizeof text) {  // truncated: still one whole line
      length = sizeof text - 1;
      text[length - 1] = '\n';
    }
    ssize_t ignored = ::write(STDERR_FILENO, text, length);
    (void)ignored;
  }
  std::abort();
}

}  // namespace ssegw::base
