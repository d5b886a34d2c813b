#include "gateway/base/random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <vector>

namespace ssegw::base {

bool append_random_hex(std::string& out, size_t bytes) {
  std::vector<uint8_t> buffer(bytes);
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(buffer.data() + got, bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + 2 * bytes);
  for (uint8_t b : buffer) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return true;
}

}  // namespace ssegw::base
