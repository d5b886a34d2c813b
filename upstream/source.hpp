// Sources (docs/protocol.md#sources): upstream feeds bound to channels by glob.
//
// Rules:
// - A SourceManager lives on each worker and runs the sources of the channels that worker owns,
//   so there is exactly one upstream request per watched channel in the whole process.
// - The hub says when a channel becomes watched (first subscriber anywhere) and unwatched (last
//   one gone); a source starts on the first and closes idle_close after the second.
// - limits.max_sources bounds the sources open at once in the whole process (one atomic count
//   shared by the workers' managers). A source waiting out its idle_close still counts, and is
//   reused when its channel is watched again; it stops counting when it is deleted.
// - A source that ends or fails reconnects after a full-jitter exponential backoff, or after the
//   upstream's own retry: delay, and sends Last-Event-ID with the last upstream id it saw, so the
//   channel sees neither a gap nor a duplicate.
// - Sources are deleted only from the manager's tick, never from inside their own callbacks.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "gateway/base/lease.hpp"
#include "gateway/metrics/metrics.hpp"
#include "gateway/net/handles.hpp"
#include "upstream/http_client.hpp"
#include "upstream/ndjson_parser.hpp"
#include "upstream/sse_parser.hpp"

namespace ssegw::upstream {

class SourceManager;

class Source final : public ExchangeHandler, SseParser::Sink, NdjsonParser::Sink {
 public:
  Source(SourceManager& manager, const config::SourceConfig& config, Client& client,
         std::string channel);
  ~Source();

  void connect();
  void stop();
  const std::string& channel() const { return channel_; }
  const std::string& last_upstream_id() const { return sse_.last_event_id(); }

 private:
  friend class SourceManager;

  void on_head(int status, const std::vector<http::Header>& headers) override;
  void on_body(std::string_view data) override;
  void on_end() override;
  void on_failure(Failure failure, const std::string& detail) override;
  void on_event(const SseEvent& event) override;
  void on_retry(uint64_t ms) override;
  void on_line(std::string_view line) override;
  void schedule_reconnect(const std::string& why);

  SourceManager& manager_;
  const config::SourceConfig& config_;
  Client& client_;
  metrics::UpstreamMetrics& metrics_;
  std::string channel_;
  Exchange* exchange_ = nullptr;
  base::Lease slot_;  // the upstream's concurrency slot, held while a request is open
  SseParser sse_;
  NdjsonParser ndjson_;
  bool ok_ = false;       // the current answer is a 200 we are reading
  uint32_t attempt_ = 0;  // failures since the last good answer
  uint64_t upstream_retry_ms_ = 0;
  uint64_t reconnect_at_ms_ = 0;  // 0 = not waiting
  uint64_t close_at_ms_ = 0;      // 0 = watched
  bool stopped_ = false;
};

class SourceManager {
 public:
  // upstream_id: the upstream's last event ID after this event ("" for NDJSON), so that another
  // instance taking the source over can resume the upstream where this one was.
  using Publish = std::function<void(const std::string& channel, std::string_view type,
                                     std::string_view data, std::string_view upstream_id)>;
  using ClientFor = std::function<Client&(const std::string& upstream)>;
  // A slot of the upstream's upstreams.NAME.max_concurrent, or nullopt when all are taken.
  using SlotFor = std::function<std::optional<base::Lease>(const std::string& upstream)>;

  // source_count is shared by every worker's manager; max_sources caps it (with a Redis
  // backplane the leases decide where sources run, and the caller passes no cap: UINT32_MAX).
  SourceManager(net::Loop& loop, const config::Config& config, metrics::Metrics& metrics,
                std::atomic<uint32_t>& source_count, uint32_t max_sources, ClientFor client_for,
                SlotFor slot_for, Publish publish);
  ~SourceManager();

  // From the hub's watch callback. resume_id: Last-Event-ID for a new source's first request.
  // False when the channel needs a new source and max_sources are open already (nothing
  // started); true otherwise, also for a channel that no source serves.
  bool watched(const std::string& channel, bool watched, const std::string& resume_id = "");
  void close();
  size_t active() const { return sources_.size(); }

 private:
  friend class Source;
  void tick();
  uint64_t backoff_ms(const Source& source);
  void uncount(size_t sources);

  net::Loop& loop_;
  const config::Config& config_;
  metrics::Metrics& metrics_;
  std::atomic<uint32_t>& source_count_;
  uint32_t max_sources_;
  ClientFor client_for_;
  SlotFor slot_for_;
  Publish publish_;
  net::Timer timer_;
  std::map<std::string, std::unique_ptr<Source>, std::less<>> sources_;
  std::mt19937_64 random_;
};

}  // namespace ssegw::upstream
