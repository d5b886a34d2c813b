// The bench's event payload: "t=<publish ns> s=<seq> r=<run> " then 'x' up to the requested size.
//
// t is uv_hrtime() (CLOCK_MONOTONIC) when the publish request is written, so a receiver in the same
// process gets the latency as now - t. s counts per channel from 1, so a receiver sees gaps,
// duplicates and reordering. r tells this run's events from those a server replays from an earlier
// run (Last-Event-ID, history).
#pragma once

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace bench {

struct PayloadStamp {
  uint64_t t_ns = 0;
  uint64_t seq = 0;
  uint32_t run = 0;
  size_t header_len = 0;  // bytes of the stamp, its trailing space included (parse only)
};

// Appends the payload to `out`: the stamp, then padding to `size` bytes when the stamp is shorter.
inline void append_payload(std::string& out, const PayloadStamp& stamp, size_t size) {
  char head[80];
  int n = std::snprintf(head, sizeof head, "t=%llu s=%llu r=%08x ",
                        static_cast<unsigned long long>(stamp.t_ns),
                        static_cast<unsigned long long>(stamp.seq), stamp.run);
  out.append(head, static_cast<size_t>(n));
  if (size > static_cast<size_t>(n)) out.append(size - static_cast<size_t>(n), 'x');
}

// The stamp at the start of `data`; false when it is not a bench payload.
inline bool parse_payload(std::string_view data, PayloadStamp& stamp) {
  const char* p = data.data();
  const char* end = p + data.size();
  auto field = [&](std::string_view key, auto& out, int base) {
    if (static_cast<size_t>(end - p) < key.size() || std::string_view(p, key.size()) != key) {
      return false;
    }
    p += key.size();
    auto [next, ec] = std::from_chars(p, end, out, base);
    // The stamp always ends in a space, also when the payload has no padding.
    if (ec != std::errc() || next == end || *next != ' ') return false;
    p = next + 1;
    return true;
  };
  if (!field("t=", stamp.t_ns, 10) || !field("s=", stamp.seq, 10) || !field("r=", stamp.run, 16)) {
    return false;
  }
  stamp.header_len = static_cast<size_t>(p - data.data());
  return true;
}

}  // namespace bench
