#include "mock/stats.hpp"

#include "mock/json.hpp"

namespace ssegw::mock {
namespace {

void field(std::string& out, const char* name, uint64_t value) {
  out += '"';
  out += name;
  out += "\":";
  out += std::to_string(value);
  out += ',';
}

void signed_field(std::string& out, const char* name, int64_t value) {
  out += '"';
  out += name;
  out += "\":";
  out += std::to_string(value);
  out += ',';
}

}  // namespace

void Stats::count_request(std::string_view path) {
  ++counters.requests;
  auto it = counters.by_path.find(path);
  if (it != counters.by_path.end()) {
    ++it->second;
  } else if (counters.by_path.size() < kMaxPaths) {
    counters.by_path.emplace(std::string(path), 1);
  } else {
    ++counters.by_path["(other)"];
  }
}

std::string Stats::to_json(uint64_t blocked_ns_now) const {
  const Counters& c = counters;
  std::string out = "{";
  field(out, "requests", c.requests);
  field(out, "active", gauges.active);
  field(out, "completed", c.completed);
  field(out, "cancelled", c.cancelled);
  field(out, "faulted", c.faulted);
  field(out, "connections", gauges.connections);
  field(out, "connections_total", c.connections_total);
  field(out, "api_connections", c.api_connections);
  field(out, "feeds_active", gauges.feeds_active);
  field(out, "tokens_sent", c.tokens_sent);
  signed_field(out, "last_cancel_ms",
               c.last_cancel_gap_ns < 0 ? -1 : c.last_cancel_gap_ns / 1'000'000);
  signed_field(out, "last_cancel_at_ms",
               c.last_cancel_at_ns < 0 ? -1 : c.last_cancel_at_ns / 1'000'000);
  field(out, "max_send_queue_bytes", c.max_send_queue_bytes);
  field(out, "blocked_ms", (c.blocked_ns + blocked_ns_now) / 1'000'000);
  field(out, "blocked_now", gauges.blocked_now);
  out += "\"by_path\":{";
  bool first = true;
  for (const auto& [path, n] : c.by_path) {
    if (!first) out += ',';
    first = false;
    append_json(out, path);
    out += ':';
    out += std::to_string(n);
  }
  out += "}}\n";
  return out;
}

}  // namespace ssegw::mock
