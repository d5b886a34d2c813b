// The gateway's Prometheus metrics (docs/operations.md#metrics), shared by all workers.
//
// prometheus-cpp counters and gauges are atomic, so workers update them without a lock. The hot
// path updates them once per publish, never once per delivery. No label carries a channel name.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "gateway/metrics/llm_metrics.hpp"

namespace ssegw::metrics {

// The series of one upstream (docs/operations.md#metrics), labelled by its configured name.
struct UpstreamMetrics {
  prometheus::Family<prometheus::Counter>* requests;  // by code: add with requests_with(code)
  prometheus::Histogram* time_to_first_byte;
  prometheus::Histogram* inter_chunk;
  prometheus::Counter* cancelled;
  prometheus::Counter* stalls;  // route clients cut by stall_timeout
  prometheus::Counter* reconnects;
  prometheus::Counter* busy;  // route requests refused at upstreams.NAME.max_concurrent
  prometheus::Gauge* active;  // requests open, set at each scrape (see on_collect)
  std::string name;
};

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The counter for one route template and status code, created on first use.
  prometheus::Counter& http_request(const char* route, int code);

  // The series of an upstream, created on first use; the reference stays valid.
  UpstreamMetrics& upstream(const std::string& name);
  // ssegw_upstream_requests_total{upstream,code}; code is a status or a failure name.
  prometheus::Counter& upstream_request(const UpstreamMetrics& upstream, const std::string& code);

  // The whole registry plus the process metrics, in the text format 0.0.4. Runs the on_collect
  // hooks first.
  std::string serialize();
  // A hook that refreshes gauges read from elsewhere (a limit's count) right before a scrape.
  // Set up before the workers start.
  void on_collect(std::function<void()> hook) { collect_hooks_.push_back(std::move(hook)); }

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& http_requests_;
  std::mutex http_requests_mutex_;
  std::map<std::pair<const char*, int>, prometheus::Counter*> http_request_cache_;
  prometheus::Family<prometheus::Counter>& upstream_requests_;
  prometheus::Family<prometheus::Histogram>& upstream_ttfb_;
  prometheus::Family<prometheus::Histogram>& upstream_inter_chunk_;
  prometheus::Family<prometheus::Counter>& upstream_cancelled_;
  prometheus::Family<prometheus::Counter>& upstream_stalls_;
  prometheus::Family<prometheus::Counter>& upstream_reconnects_;
  std::mutex upstream_mutex_;
  std::map<std::string, std::unique_ptr<UpstreamMetrics>> upstreams_;
  std::map<std::pair<std::string, std::string>, prometheus::Counter*> upstream_request_cache_;
  prometheus::Family<prometheus::Counter>& upstream_busy_;
  prometheus::Family<prometheus::Gauge>& upstream_active_;
  std::vector<std::function<void()>> collect_hooks_;

 public:
  LlmMetrics llm;
  prometheus::Gauge& connections_active;
  prometheus::Gauge& subscribers_active;
  prometheus::Gauge& channels_active;
  prometheus::Counter& events_published;
  prometheus::Counter& events_delivered;
  prometheus::Counter& delivered_bytes;
  // Events that waited for the end of their channel's window (fanout.coalesce).
  prometheus::Counter& fanout_coalesced_events;
  prometheus::Counter& replayed_events;
  prometheus::Counter& replay_gaps;
  prometheus::Counter& slow_consumer_disconnects;
  // Retained history, all workers together (history.max_total_bytes bounds it), and the events
  // dropped from it: ssegw_history_evictions_total{reason="channel_limit"|"ttl"|"total_bytes"}.
  prometheus::Gauge& history_bytes;
  prometheus::Counter& history_evicted_channel_limit;
  prometheus::Counter& history_evicted_ttl;
  prometheus::Counter& history_evicted_total_bytes;
  // Sources open at once (limits.max_sources bounds them with the in-memory hub), and subscribes
  // refused because one more could not start.
  prometheus::Gauge& sources_active;
  prometheus::Counter& sources_refused;
  // ssegw_client_limit_rejections_total{limit="connections_per_ip"|"publish_rate_per_ip"}
  prometheus::Counter& rejected_connections_per_ip;
  prometheus::Counter& rejected_publish_rate;
  prometheus::Counter& rejected_streams_per_ip;
  // ssegw_auth_refusals_total{reason="unauthorized"|"forbidden"|"forbidden_origin"}
  prometheus::Counter& refused_unauthorized;
  prometheus::Counter& refused_forbidden;
  prometheus::Counter& refused_forbidden_origin;
  // Requests answered 503 owner_timeout: the owning worker (or Redis) did not answer in time.
  prometheus::Counter& owner_timeouts;
  prometheus::Histogram& publish_fanout_seconds;
  // The Redis backplane: failed commands and lost connections, reconnects, and links up.
  prometheus::Counter& backplane_errors;
  prometheus::Counter& backplane_reconnects;
  prometheus::Gauge& backplane_links_up;
};

}  // namespace ssegw::metrics
