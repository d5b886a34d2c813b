// The gateway's Prometheus metrics (DESIGN §6), shared by all workers.
//
// prometheus-cpp counters and gauges are atomic, so workers update them without a lock. The hot
// path updates them once per publish, never once per delivery. No label carries a channel name.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace metrics {

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The counter for one route template and status code, created on first use.
  prometheus::Counter& http_request(const char* route, int code);

  // The whole registry plus the process metrics, in the text format 0.0.4.
  std::string serialize() const;

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& http_requests_;
  std::mutex http_requests_mutex_;
  std::map<std::pair<const char*, int>, prometheus::Counter*> http_request_cache_;

 public:
  prometheus::Gauge& connections_active;
  prometheus::Gauge& subscribers_active;
  prometheus::Gauge& channels_active;
  prometheus::Counter& events_published;
  prometheus::Counter& events_delivered;
  prometheus::Counter& delivered_bytes;
  prometheus::Counter& replayed_events;
  prometheus::Counter& replay_gaps;
  prometheus::Counter& slow_consumer_disconnects;
  prometheus::Histogram& publish_fanout_seconds;
};

}  // namespace metrics
