// One proxied request on a route (docs/protocol.md#routes): forwards the client's request to the
// upstream and streams the answer back chunk by chunk, without buffering.
//
// Rules:
// - Attempts (docs/protocol.md "Retry and fallback"): the request goes to the route's upstreams
//   in order, up to max_attempts. A failure that retry_on names moves on to the next attempt as
//   long as nothing reached the client: the answer is committed only when a head is passed on
//   (a 2xx, or any head on the last attempt). After the commit nothing is retried; an answer cut
//   short ends with an error event. A retry on the same upstream waits kRetryDelayMs.
// - The client connection owns the proxy and tells it when the client leaves
//   (downstream_gone()), which cancels the upstream at once, and when its unsent output shrinks
//   (downstream_progress()), which resumes reading below the low-water mark.
// - While reading is paused for the client, tick() watches the client take bytes
//   (Downstream::bytes_acked()): a client that takes none for the route's stall_timeout is cut
//   off (abort()) and treated as gone, so that a reader that stopped cannot hold an upstream
//   connection forever.
// - Failure details name the upstream's address: they go to the log. The client (and a recording
//   channel) gets only failure_message()'s words.
// - A recording proxy (resumable routes) also publishes every event into a channel. With
//   on_disconnect: continue it outlives its client: the worker adopts it and it runs on, detached,
//   until the upstream ends. A generated channel is finished when the answer ends.
// - The proxy never deletes itself; finished() says that it has nothing left to do.
// - Usage (usage_meter.hpp): 2xx SSE and NDJSON answers pass the parser once, which finds the
//   protocol's terminator (an answer that ends without it gets an error event instead of looking
//   like a clean end), the token counts and the content. Every ending, whichever it is, writes
//   one usage record (usage_record.hpp), charges the requester's budget and gives back every
//   lease, exactly once.
// - Bytes pass through unchanged, except what include_usage.hpp takes out again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "gateway/base/lease.hpp"
#include "gateway/metrics/metrics.hpp"
#include "upstream/downstream.hpp"
#include "upstream/http_client.hpp"
#include "upstream/ndjson_parser.hpp"
#include "upstream/sse_parser.hpp"
#include "upstream/usage_meter.hpp"
#include "upstream/usage_record.hpp"

namespace ssegw::upstream {

// Where a resumable answer is recorded.
struct Recording {
  enum class Mode {
    kNone,       // a plain proxy
    kGenerated,  // a channel made for this answer: the client gets its frames, with ids
    kTee,        // an existing channel: the client gets the upstream bytes, the channel a copy
  };
  Mode mode = Mode::kNone;
  std::string channel;
  // Publishes an event into the channel; returns its frame when it was published here.
  std::function<base::FrameRef(std::string_view type, std::string_view data)> publish;
  // Finishes the channel (generated mode).
  std::function<void()> finish;
};

// Where a proxy finds its upstreams: their clients on this worker and their concurrency slots.
class Upstreams {
 public:
  virtual Client& client(const std::string& name) = 0;
  // A slot of upstreams.NAME.max_concurrent, or nullopt when that upstream is at it.
  virtual std::optional<base::Lease> take_slot(const std::string& name) = 0;

 protected:
  ~Upstreams() = default;
};

// Who asked: for the usage record, the metrics and the budgets.
struct Requester {
  // A key's name, "jwt", "publish_token" or "anonymous": bounded, so it may be a metric label.
  std::string key = "anonymous";
  // The JWT subject (empty otherwise): for the usage record only, never a label.
  std::string subject;
  // Told each number of tokens as it becomes known (the prompt's when the answer reports it,
  // the completion's at the end or as estimated), so budgets are charged early. May be empty.
  std::function<void(uint64_t tokens)> charge;
};

struct ProxyOptions {
  // May be null: an answer nobody waits for (Prefer: respond-async).
  Downstream* downstream = nullptr;
  uint64_t keepalive_ms = 15000;
  Recording recording;
  Requester requester;
  bool log_usage = true;  // log.access
  // The index in route.upstreams of the first attempt's upstream: the policy stage's choice, the
  // first one with a free slot.
  uint32_t first_upstream = 0;
};

class RouteProxy final : public ExchangeHandler {
 public:
  // How long a retry on the same upstream waits (a different upstream is tried at once).
  // It doubles with each retry of the same upstream (250, 500, 1000 ms, ... up to 8 s).
  static constexpr uint64_t kRetryDelayMs = 250;
  // A 429 whose Retry-After asks for longer than this is not retried on the same upstream.
  static constexpr uint64_t kMaxRetryAfterMs = 10'000;

  RouteProxy(Upstreams& upstreams, metrics::Metrics& metrics, const config::RouteConfig& route,
             ProxyOptions options);
  ~RouteProxy();

  // upstream_slot: the first upstream's slot, taken by the policy stage.
  void start(OutgoingRequest request, base::Lease upstream_slot);
  // Keeps a lease (a concurrency slot) until the answer ends, whichever way it ends.
  void hold(base::Lease lease) { leases_.push_back(std::move(lease)); }
  void downstream_progress();
  void downstream_gone();
  // With on_disconnect: continue, a recording proxy goes on without its client.
  bool continues_without_client() const;
  // Starts a delayed retry when its time has come, sends a keep-alive comment when an SSE answer
  // has been silent for keepalive_ms, and cuts a client stalled for the route's stall_timeout.
  void tick(uint64_t now_ms);
  bool finished() const { return finished_; }
  // Stops the answer (the cancel API): the upstream request is cancelled, the client and the
  // recording channel get an error event of type "cancelled", and the answer ends. False when it
  // had ended already.
  bool cancel();
  // The channel a resumable answer records into ("" for a plain proxy).
  const std::string& channel() const { return recording_.channel; }
  const Requester& requester() const { return requester_; }

 private:
  static double seconds_between(uint64_t from_ns, uint64_t to_ns) {
    return static_cast<double>(to_ns - from_ns) / 1e9;
  }

  enum class Kind { kSse, kNdjson, kJson, kOther };
  class Watcher;

  void begin_attempt();
  // min_delay_ms: a 429's Retry-After, for a retry of the same upstream.
  bool retry(const char* reason, uint64_t min_delay_ms = 0);
  const std::string& upstream_of(uint32_t attempt) const;
  void stop_exchange();
  void on_head(int status, const std::vector<http::Header>& headers) override;
  void on_body(std::string_view data) override;
  void on_read_done() override;
  void on_end() override;
  void on_failure(Failure failure, const std::string& detail) override;

  void start_response(int status, std::string lines, bool has_body);
  void forward(std::string_view bytes);
  void forward_complete(std::string_view data);
  void record(std::string_view type, std::string_view data);
  std::string channel_header() const;
  void noticed_content();
  void end_with_error_event(const std::string& type, const std::string& message, Outcome outcome);
  void finish_recording();
  void stall(uint64_t now_ms);
  void charge(uint64_t tokens);
  void finish(Outcome outcome);

  Upstreams& upstreams_;
  metrics::Metrics& metrics_;
  const config::RouteConfig& route_;
  Downstream* downstream_;
  uint64_t connection_id_;  // of the client that asked, for log lines; 0 without one
  Recording recording_;
  Requester requester_;
  uint64_t keepalive_ms_;
  bool log_usage_;
  OutgoingRequest request_;  // kept for the next attempt
  // The attempt in progress: which, to which upstream, with its slot.
  uint32_t attempt_ = 0;
  uint32_t first_upstream_ = 0;
  uint32_t same_upstream_retries_ = 0;
  uint64_t attempt_serial_ = 0;  // begin_attempt()'s, to tell a failure reported inside start()
  bool attempt_failed_ = false;
  Client* client_ = nullptr;
  metrics::UpstreamMetrics* upstream_metrics_ = nullptr;
  base::Lease upstream_slot_;
  uint64_t retry_at_ms_ = 0;  // a retry waits for this time (0: none waits)
  Exchange* exchange_ = nullptr;
  Kind kind_ = Kind::kOther;
  int status_ = 0;              // what the client got
  bool success_ = false;        // 2xx
  bool head_received_ = false;  // a head that commits the answer (not one that was retried)
  // The request may have reached an upstream that bills for it, though no 2xx head came.
  bool maybe_billed_ = false;
  bool head_sent_ = false;
  bool terminated_ = false;  // the protocol's end marker was seen
  bool finished_ = false;
  bool paused_ = false;
  bool head_request_ = false;
  bool has_body_ = true;      // false for an answer to HEAD, a 204 or a 304
  bool strip_usage_ = false;  // include_usage was added: take its traces out again
  // The bytes after the last complete SSE event (or NDJSON line) of a streaming answer: held
  // back, so that a stream cut short never hands the client half an event. A client cannot use
  // half an event anyway, so holding it adds no delay that matters.
  std::string held_;
  std::string scratch_;      // reused for what include_usage takes out
  std::string json_answer_;  // a non-streamed JSON answer, for its usage (up to 1 MiB)
  uint64_t json_bytes_ = 0;
  uint64_t started_ns_ = 0;  // when the request arrived, for TTFT and duration
  uint64_t sent_at_ns_ = 0;  // when this attempt was sent, for TTFB
  uint64_t first_token_ns_ = 0;
  uint64_t last_chunk_ns_ = 0;
  uint64_t last_output_ms_ = 0;
  // While paused: when the client last acknowledged bytes (or the pause began), and how many it
  // had acknowledged then.
  uint64_t last_progress_ms_ = 0;
  uint64_t acked_mark_ = 0;
  UsageRecord usage_;
  UsageMeter meter_;
  uint64_t charged_prompt_ = 0;
  uint64_t prompt_estimate_ = 0;  // from the request body, for an answer that reports none
  SseParser sse_;
  NdjsonParser ndjson_;
  std::unique_ptr<Watcher> watcher_;
  std::vector<base::Lease> leases_;
};

}  // namespace ssegw::upstream
