#include "gateway/metrics/metrics.hpp"

#include <prometheus/text_serializer.h>

#include "gateway/metrics/process_collector.hpp"

namespace ssegw::metrics {
namespace {

prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

// The registry merges a family registered again under the same name and help.
prometheus::Family<prometheus::Counter>& limit_rejections(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("ssegw_client_limit_rejections_total")
      .Help("Requests answered 429 by a per-client-address limit")
      .Register(r);
}

prometheus::Family<prometheus::Counter>& auth_refusals(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("ssegw_auth_refusals_total")
      .Help("Requests answered 401 or 403 by the policy stage, by reason")
      .Register(r);
}

prometheus::Family<prometheus::Counter>& history_evictions(prometheus::Registry& r) {
  return prometheus::BuildCounter()
      .Name("ssegw_history_evictions_total")
      .Help("Retained events dropped, by the limit that dropped them")
      .Register(r);
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      http_requests_(prometheus::BuildCounter()
                         .Name("ssegw_http_requests_total")
                         .Help("HTTP requests by route template and status code")
                         .Register(*registry_)),
      upstream_requests_(prometheus::BuildCounter()
                             .Name("ssegw_upstream_requests_total")
                             .Help("Upstream requests by upstream and status code or failure")
                             .Register(*registry_)),
      upstream_ttfb_(prometheus::BuildHistogram()
                         .Name("ssegw_upstream_time_to_first_byte_seconds")
                         .Help("From upstream request sent to the first response body byte")
                         .Register(*registry_)),
      upstream_inter_chunk_(prometheus::BuildHistogram()
                                .Name("ssegw_upstream_inter_chunk_seconds")
                                .Help("Time between two body reads of a streaming response")
                                .Register(*registry_)),
      upstream_cancelled_(prometheus::BuildCounter()
                              .Name("ssegw_upstream_cancelled_total")
                              .Help("Upstream requests cancelled because the client left")
                              .Register(*registry_)),
      upstream_stalls_(prometheus::BuildCounter()
                           .Name("ssegw_upstream_stalls_total")
                           .Help("Route clients cut off after stall_timeout without reading "
                                 "while their upstream was paused for them")
                           .Register(*registry_)),
      upstream_reconnects_(prometheus::BuildCounter()
                               .Name("ssegw_upstream_reconnects_total")
                               .Help("Source reconnects after an upstream stream ended or failed")
                               .Register(*registry_)),
      upstream_busy_(prometheus::BuildCounter()
                         .Name("ssegw_upstream_busy_total")
                         .Help("Requests held back at upstreams.NAME.max_concurrent: routes "
                               "answered 503, sources waiting")
                         .Register(*registry_)),
      upstream_active_(prometheus::BuildGauge()
                           .Name("ssegw_upstream_requests_active")
                           .Help("Requests open to each upstream, routes and sources together")
                           .Register(*registry_)),
      llm(*registry_),
      connections_active(gauge(*registry_, "ssegw_connections_active", "Open client connections")),
      subscribers_active(gauge(*registry_, "ssegw_subscribers_active", "Live SSE subscribers")),
      channels_active(gauge(*registry_, "ssegw_channels_active", "Channels held in memory")),
      events_published(
          counter(*registry_, "ssegw_events_published_total", "Events accepted for publishing")),
      events_delivered(counter(*registry_, "ssegw_events_delivered_total",
                               "Events queued to a subscriber socket, replays included")),
      delivered_bytes(counter(*registry_, "ssegw_delivered_bytes_total",
                              "SSE bytes queued to subscriber sockets")),
      fanout_coalesced_events(
          counter(*registry_, "ssegw_fanout_coalesced_events_total",
                  "Events that waited for the end of their channel's fanout.coalesce window")),
      replayed_events(counter(*registry_, "ssegw_replayed_events_total",
                              "Events sent from history to resuming subscribers")),
      replay_gaps(counter(*registry_, "ssegw_replay_gaps_total",
                          "gap events sent for unknown or too old Last-Event-IDs")),
      slow_consumer_disconnects(
          counter(*registry_, "ssegw_slow_consumer_disconnects_total",
                  "Subscribers disconnected for passing slow_consumer.max_queued_bytes")),
      history_bytes(gauge(*registry_, "ssegw_history_bytes",
                          "Serialised bytes of the events retained for replay, all channels")),
      history_evicted_channel_limit(
          history_evictions(*registry_).Add({{"reason", "channel_limit"}})),
      history_evicted_ttl(history_evictions(*registry_).Add({{"reason", "ttl"}})),
      history_evicted_total_bytes(history_evictions(*registry_).Add({{"reason", "total_bytes"}})),
      sources_active(gauge(*registry_, "ssegw_sources_active", "Upstream sources open")),
      sources_refused(counter(*registry_, "ssegw_sources_refused_total",
                              "Subscribes answered 503 too_many_sources (limits.max_sources)")),
      rejected_connections_per_ip(
          limit_rejections(*registry_).Add({{"limit", "connections_per_ip"}})),
      rejected_publish_rate(limit_rejections(*registry_).Add({{"limit", "publish_rate_per_ip"}})),
      rejected_streams_per_ip(limit_rejections(*registry_).Add({{"limit", "streams_per_ip"}})),
      refused_unauthorized(auth_refusals(*registry_).Add({{"reason", "unauthorized"}})),
      refused_forbidden(auth_refusals(*registry_).Add({{"reason", "forbidden"}})),
      refused_forbidden_origin(auth_refusals(*registry_).Add({{"reason", "forbidden_origin"}})),
      owner_timeouts(counter(*registry_, "ssegw_owner_timeouts_total",
                             "Requests answered 503 because the channel's owner did not answer "
                             "within limits.owner_timeout")),
      publish_fanout_seconds(
          prometheus::BuildHistogram()
              .Name("ssegw_publish_fanout_seconds")
              .Help("From publish accepted to the last local subscriber's write queued")
              .Register(*registry_)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.00001, 0.00005, 0.0001, 0.00025,
                                                               0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                               0.025, 0.05, 0.1, 0.5, 1})),
      backplane_errors(counter(*registry_, "ssegw_backplane_errors_total",
                               "Redis backplane commands that failed and connections lost")),
      backplane_reconnects(counter(*registry_, "ssegw_backplane_reconnects_total",
                                   "Redis backplane connections re-established after a loss")),
      backplane_links_up(gauge(*registry_, "ssegw_backplane_links_up",
                               "Workers connected to the Redis backplane")) {}

prometheus::Counter& Metrics::http_request(const char* route, int code) {
  std::lock_guard lock(http_requests_mutex_);
  auto& slot = http_request_cache_[{route, code}];
  if (!slot) slot = &http_requests_.Add({{"route", route}, {"code", std::to_string(code)}});
  return *slot;
}

UpstreamMetrics& Metrics::upstream(const std::string& name) {
  std::lock_guard lock(upstream_mutex_);
  auto& slot = upstreams_[name];
  if (slot) return *slot;
  static const prometheus::Histogram::BucketBoundaries kLatency{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  slot = std::make_unique<UpstreamMetrics>();
  slot->name = name;
  slot->requests = &upstream_requests_;
  slot->time_to_first_byte = &upstream_ttfb_.Add({{"upstream", name}}, kLatency);
  slot->inter_chunk = &upstream_inter_chunk_.Add({{"upstream", name}}, kLatency);
  slot->cancelled = &upstream_cancelled_.Add({{"upstream", name}});
  slot->stalls = &upstream_stalls_.Add({{"upstream", name}});
  slot->reconnects = &upstream_reconnects_.Add({{"upstream", name}});
  slot->busy = &upstream_busy_.Add({{"upstream", name}});
  slot->active = &upstream_active_.Add({{"upstream", name}});
  return *slot;
}

prometheus::Counter& Metrics::upstream_request(const UpstreamMetrics& upstream,
                                               const std::string& code) {
  std::lock_guard lock(upstream_mutex_);
  auto& slot = upstream_request_cache_[{upstream.name, code}];
  if (!slot) slot = &upstream_requests_.Add({{"upstream", upstream.name}, {"code", code}});
  return *slot;
}

std::string Metrics::serialize() {
  for (const auto& hook : collect_hooks_) hook();
  auto families = registry_->Collect();
  append_process_metrics(families);
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace ssegw::metrics
