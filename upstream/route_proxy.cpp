#include "upstream/route_proxy.hpp"

#include <uv.h>

#include <algorithm>

#include "gateway/base/ascii.hpp"
#include "gateway/base/json.hpp"
#include "gateway/base/log.hpp"
#include "gateway/http/response.hpp"

namespace ssegw::upstream {
namespace {

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection",
                                                "keep-alive",
                                                "proxy-authenticate",
                                                "proxy-authorization",
                                                "te",
                                                "trailer",
                                                "trailers",
                                                "transfer-encoding",
                                                "upgrade",
                                                "host",
                                                "content-length",
                                                "expect",
                                                "accept-encoding"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

// Headers named in the Connection header are hop-by-hop too (RFC 9110 §7.6.1).
bool named_in_connection(std::string_view connection, std::string_view name) {
  std::string list = base::to_lower(connection);
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    std::string_view token(list.data() + pos,
                           (comma == std::string::npos ? list.size() : comma) - pos);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    if (token == name) return true;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return false;
}

// The head of an event stream the gateway writes itself (a generated channel's frames, or an
// answer cancelled before the upstream's head came).
constexpr const char* kSseHead =
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Cache-Control: no-cache, no-transform\r\n"
    "X-Accel-Buffering: no\r\n";

// Bigger incomplete events are passed on anyway: the parsers refuse them beyond this.
constexpr size_t kMaxHeldBytes = 1 << 20;

// The length of the prefix of data that ends with a complete SSE event (a blank line), given
// that data starts at an event boundary. CR, LF and CRLF all end lines.
size_t complete_sse_prefix(std::string_view data) {
  size_t boundary = 0;
  size_t line_length = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    char c = data[i];
    if (c != '\r' && c != '\n') {
      ++line_length;
      continue;
    }
    if (c == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
    if (line_length == 0) boundary = i + 1;
    line_length = 0;
  }
  return boundary;
}

std::string error_event(const std::string& type, const std::string& message) {
  std::string data = "{\"error\":{\"type\":";
  base::append_json_string(data, type);
  data += ",\"message\":";
  base::append_json_string(data, message);
  data += "}}";
  return data;
}

}  // namespace

OutgoingRequest forwardable_request(const http::Request& request, std::string_view client_ip) {
  OutgoingRequest out;
  out.method = llhttp_method_name(static_cast<llhttp_method_t>(request.method));
  out.target = request.target;
  std::string_view connection = request.header("connection");
  std::string forwarded_for;
  for (const http::Header& h : request.headers) {
    if (is_hop_by_hop(h.name) || named_in_connection(connection, h.name)) continue;
    if (h.name == "x-forwarded-for") {
      forwarded_for = h.value;
      continue;
    }
    out.headers.push_back(h);
  }
  if (!client_ip.empty()) {
    if (!forwarded_for.empty()) forwarded_for += ", ";
    forwarded_for += client_ip;
  }
  if (!forwarded_for.empty()) out.headers.push_back({"X-Forwarded-For", forwarded_for});
  out.body = request.body;
  return out;
}

std::optional<uint64_t> find_json_number(std::string_view json, std::string_view key) {
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on "\"" + std::string.
  std::string quoted;
  quoted.reserve(key.size() + 2);
  quoted += '"';
  quoted += key;
  quoted += '"';
  size_t pos = json.rfind(quoted);  // the last one: usage comes at the end
  if (pos == std::string_view::npos) return std::nullopt;
  pos += quoted.size();
  while (pos < json.size() && (json[pos] == ' ' || json[pos] == ':')) ++pos;
  uint64_t value = 0;
  size_t digits = 0;
  while (pos < json.size() && std::isdigit(static_cast<unsigned char>(json[pos])) && digits < 18) {
    value = value * 10 + static_cast<uint64_t>(json[pos++] - '0');
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  return value;
}

// Sees the events of the answer: its terminator and its usage.
class RouteProxy::Watcher : public SseParser::Sink, public NdjsonParser::Sink {
 public:
  explicit Watcher(RouteProxy& proxy) : proxy_(proxy) {}

  void on_event(const SseEvent& event) override {
    std::string_view type = event.effective_type();
    if (event.data == "[DONE]" || type == "message_stop" || type == "response.completed")
      proxy_.terminated_ = true;
    note_usage(event.data);
    proxy_.record(event.type, event.data);
  }
  void on_line(std::string_view line) override {
    if (ndjson_done(line)) proxy_.terminated_ = true;
    note_usage(line);
    proxy_.record("", line);
  }

 private:
  void note_usage(std::string_view json) {
    if (json.find("usage") == std::string_view::npos &&
        json.find("eval_count") == std::string_view::npos)
      return;
    auto keep_max = [&](uint64_t& slot, std::string_view key) {
      if (auto n = find_json_number(json, key)) slot = std::max(slot, *n);
    };
    keep_max(proxy_.prompt_tokens_, "prompt_tokens");
    keep_max(proxy_.prompt_tokens_, "input_tokens");
    keep_max(proxy_.prompt_tokens_, "prompt_eval_count");
    keep_max(proxy_.completion_tokens_, "completion_tokens");
    keep_max(proxy_.completion_tokens_, "output_tokens");
    keep_max(proxy_.completion_tokens_, "eval_count");
  }

  RouteProxy& proxy_;
};

RouteProxy::RouteProxy(Upstreams& upstreams, metrics::Metrics& metrics,
                       const config::RouteConfig& route, ProxyOptions options)
    : upstreams_(upstreams),
      client_(upstreams.client(route.upstream)),
      metrics_(metrics),
      upstream_metrics_(metrics.upstream(route.upstream)),
      route_(route),
      downstream_(options.downstream),
      connection_id_(options.downstream ? options.downstream->connection_id() : 0),
      recording_(std::move(options.recording)),
      requester_(std::move(options.requester)),
      keepalive_ms_(options.keepalive_ms),
      watcher_(std::make_unique<Watcher>(*this)) {}

RouteProxy::~RouteProxy() {
  if (exchange_) exchange_->cancel();
}

void RouteProxy::start(OutgoingRequest request, base::Lease upstream_slot) {
  upstream_slot_ = std::move(upstream_slot);
  head_request_ = request.method == "HEAD";
  sent_at_ns_ = uv_hrtime();
  last_output_ms_ = client_.loop().now_ms();
  exchange_ = client_.start(std::move(request), this);
}

void RouteProxy::on_head(int status, const std::vector<http::Header>& headers) {
  metrics_.upstream_request(upstream_metrics_, std::to_string(status)).Increment();
  success_ = status >= 200 && status < 300;
  has_body_ = response_has_body(head_request_, status);
  // A body is re-framed, so its length goes; but the Content-Length of an answer to HEAD or of
  // a 304 describes the representation and stays. A 204 has none to describe.
  bool keep_length = !has_body_ && status != 204;
  std::string lines;
  for (const http::Header& h : headers) {
    if (h.name == "content-length" && keep_length) {
      lines += h.name + ": " + h.value + "\r\n";
      continue;
    }
    if (is_hop_by_hop(h.name) && h.name != "accept-encoding") continue;
    if (h.name == "content-type") {
      std::string type = base::to_lower(h.value);
      if (type.starts_with("text/event-stream"))
        kind_ = Kind::kSse;
      else if (type.starts_with("application/x-ndjson") || type.starts_with("application/ndjson"))
        kind_ = Kind::kNdjson;
    }
    lines += h.name + ": " + h.value + "\r\n";
  }
  if (kind_ == Kind::kSse) lines += "X-Accel-Buffering: no\r\n";
  if (!has_body_) kind_ = Kind::kOther;  // no stream to watch, record or find truncated
  head_sent_ = true;
  if (recording_.mode != Recording::Mode::kNone && (!success_ || kind_ == Kind::kOther)) {
    finish_recording();  // nothing to record: an error or a plain answer passes through
    recording_.mode = Recording::Mode::kNone;
  }
  if (!downstream_) return;
  if (recording_.mode == Recording::Mode::kGenerated) {
    // The client reads the channel's own frames: SSE with the gateway's ids, whatever the
    // upstream spoke (NDJSON lines become events).
    downstream_->start_response(200, std::string(kSseHead) + channel_header(), true);
    return;
  }
  if (recording_.mode == Recording::Mode::kTee) lines += channel_header();
  downstream_->start_response(status, std::move(lines), has_body_);
}

void RouteProxy::on_body(std::string_view data) {
  uint64_t now = uv_hrtime();
  if (last_chunk_ns_ == 0)
    upstream_metrics_.time_to_first_byte->Observe(static_cast<double>(now - sent_at_ns_) / 1e9);
  else
    upstream_metrics_.inter_chunk->Observe(static_cast<double>(now - last_chunk_ns_) / 1e9);
  last_chunk_ns_ = now;
  if (success_ && kind_ == Kind::kSse) sse_.feed(data, *watcher_);
  if (success_ && kind_ == Kind::kNdjson) ndjson_.feed(data, *watcher_);
  if (recording_.mode != Recording::Mode::kGenerated) {
    if (success_ && kind_ != Kind::kOther)
      forward_complete(data);
    else
      forward(data);
  }
  if (downstream_ && !paused_ && downstream_->unsent_bytes() > route_.high_water_bytes) {
    paused_ = true;
    last_progress_ms_ = client_.loop().now_ms();
    acked_mark_ = downstream_->bytes_acked();
    exchange_->pause();
  }
}

std::string RouteProxy::channel_header() const {
  std::string line = "SSE-Channel: ";
  line += recording_.channel;
  line += "\r\n";
  return line;
}

void RouteProxy::record(std::string_view type, std::string_view data) {
  if (recording_.mode == Recording::Mode::kNone) return;
  base::FrameRef frame = recording_.publish(type, data);
  if (recording_.mode == Recording::Mode::kGenerated && frame && downstream_) {
    downstream_->send_frame(frame);
    last_output_ms_ = client_.loop().now_ms();
  }
}

void RouteProxy::finish_recording() {
  if (recording_.mode == Recording::Mode::kGenerated && recording_.finish) recording_.finish();
  recording_.finish = nullptr;
}

bool RouteProxy::continues_without_client() const {
  return !finished_ && recording_.mode != Recording::Mode::kNone &&
         route_.on_disconnect == config::DisconnectPolicy::kContinue;
}

void RouteProxy::forward(std::string_view bytes) {
  if (bytes.empty() || !downstream_) return;
  downstream_->send(bytes);
  last_output_ms_ = client_.loop().now_ms();
}

void RouteProxy::forward_complete(std::string_view data) {
  auto complete = [this](std::string_view d) {
    if (kind_ == Kind::kSse) return complete_sse_prefix(d);
    size_t newline = d.rfind('\n');
    return newline == std::string_view::npos ? size_t{0} : newline + 1;
  };
  if (held_.empty()) {  // the usual case: no copy unless an event is split
    size_t cut = complete(data);
    forward(data.substr(0, cut));
    held_.assign(data.substr(cut));
  } else {
    held_.append(data);
    size_t cut = held_.size() > kMaxHeldBytes ? held_.size() : complete(held_);
    forward(std::string_view(held_).substr(0, cut));
    held_.erase(0, cut);
  }
}

void RouteProxy::downstream_progress() {
  if (paused_ && exchange_ && downstream_ &&
      downstream_->unsent_bytes() <= route_.low_water_bytes) {
    paused_ = false;
    exchange_->resume();
  }
}

void RouteProxy::downstream_gone() {
  downstream_ = nullptr;
  if (continues_without_client()) {
    if (paused_ && exchange_) {  // nobody to wait for any more
      paused_ = false;
      exchange_->resume();
    }
    return;
  }
  if (!exchange_) return;
  exchange_->cancel();
  exchange_ = nullptr;
  upstream_metrics_.cancelled->Increment();
  if (!head_sent_) metrics_.upstream_request(upstream_metrics_, "cancelled").Increment();
  record("error", error_event("cancelled", "the client disconnected"));
  finish_recording();
  account_tokens();
  done();
}

bool RouteProxy::cancel() {
  if (finished_) return false;
  if (exchange_) {
    exchange_->cancel();
    exchange_ = nullptr;
    upstream_metrics_.cancelled->Increment();
    if (!head_sent_) metrics_.upstream_request(upstream_metrics_, "cancelled").Increment();
  }
  if (downstream_ && !head_sent_) {
    // Nothing of the answer went out yet: the client gets an event stream that carries the error.
    head_sent_ = true;
    kind_ = Kind::kSse;
    std::string lines = kSseHead;
    if (recording_.mode != Recording::Mode::kNone) lines += channel_header();
    downstream_->start_response(200, std::move(lines), true);
  }
  std::string error = error_event("cancelled", "the generation was cancelled");
  record("error", error);  // in generated mode this is also what the client gets
  if (recording_.mode != Recording::Mode::kGenerated) {
    held_.clear();
    if (kind_ == Kind::kSse)
      forward("event: error\ndata: " + error + "\n\n");
    else if (kind_ == Kind::kNdjson)
      forward(error + "\n");
  }
  account_tokens();
  finish_recording();
  if (downstream_) {
    if (kind_ == Kind::kOther)
      downstream_->abort();  // a plain body cut short must not look complete
    else
      downstream_->finish();
  }
  done();
  return true;
}

void RouteProxy::tick(uint64_t now_ms) {
  if (finished_ || !downstream_) return;
  if (paused_) {
    uint64_t acked = downstream_->bytes_acked();
    if (acked != acked_mark_) {
      acked_mark_ = acked;
      last_progress_ms_ = now_ms;
    } else if (now_ms - last_progress_ms_ >= static_cast<uint64_t>(route_.stall_timeout.count())) {
      stall(now_ms);
      return;
    }
  }
  if (!head_sent_ || !success_) return;
  if (kind_ != Kind::kSse && recording_.mode != Recording::Mode::kGenerated) return;
  if (now_ms - last_output_ms_ < keepalive_ms_) return;
  // Only between events: nothing of an event is out while its end is held back, so a comment
  // line can never split one.
  if (held_.empty()) forward(":\n\n");
  last_output_ms_ = now_ms;
}

void RouteProxy::on_end() {
  exchange_ = nullptr;
  bool streaming = success_ && kind_ != Kind::kOther;
  if (streaming && !terminated_) {
    end_truncated("upstream_disconnected", "the upstream ended the stream before its end marker");
    return;
  }
  forward(held_);  // a complete answer's trailing bytes, if any, pass through unchanged
  held_.clear();
  account_tokens();
  finish_recording();
  if (downstream_) downstream_->finish();
  done();
}

void RouteProxy::on_failure(Failure failure, const std::string& detail) {
  exchange_ = nullptr;
  // The detail names the upstream's host and port: for the operator, never for the client.
  base::log::warn("upstream request failed", {{"conn", connection_id_},
                                              {"route", route_.path},
                                              {"upstream", client_.config().name},
                                              {"failure", failure_name(failure)},
                                              {"detail", detail}});
  if (!head_sent_) {
    metrics_.upstream_request(upstream_metrics_, failure_name(failure)).Increment();
    bool timeout = failure == Failure::kConnectTimeout || failure == Failure::kFirstByteTimeout;
    const char* code = timeout ? "upstream_timeout" : "upstream_unavailable";
    const std::string body = http::json_error(code, failure_message(failure));
    record("error", error_event(code, failure_message(failure)));
    finish_recording();
    if (downstream_) {
      // An answer to HEAD has no body, not even an error's.
      downstream_->start_response(timeout ? 504 : 502, "Content-Type: application/json\r\n",
                                  !head_request_);
      if (!head_request_) downstream_->send(body);
      downstream_->finish();
    }
    done();
    return;
  }
  if (success_ && kind_ != Kind::kOther) {
    if (!terminated_) {
      end_truncated("upstream_disconnected", failure_message(failure));
      return;
    }
    on_end();  // the answer was complete before the connection failed
    return;
  }
  account_tokens();
  finish_recording();
  if (downstream_) downstream_->abort();  // a plain body cut short must not look complete
  done();
}

void RouteProxy::end_truncated(const std::string& type, const std::string& message) {
  std::string error = error_event(type, message);
  record("error", error);  // in generated mode this is also what the client gets
  if (recording_.mode != Recording::Mode::kGenerated) {
    held_.clear();  // half an event or line: useless to the client
    if (kind_ == Kind::kSse)
      forward("event: error\ndata: " + error + "\n\n");
    else
      forward(error + "\n");
  }
  account_tokens();
  finish_recording();
  if (downstream_) downstream_->finish();
  done();
}

void RouteProxy::account_tokens() {
  // The budget's charge (until usage accounting charges the prompt as soon as it is reported).
  if (requester_.charge && prompt_tokens_ + completion_tokens_ > 0)
    requester_.charge(prompt_tokens_ + completion_tokens_);
  if (prompt_tokens_)
    upstream_metrics_.prompt_tokens->Increment(static_cast<double>(prompt_tokens_));
  if (completion_tokens_)
    upstream_metrics_.completion_tokens->Increment(static_cast<double>(completion_tokens_));
  prompt_tokens_ = completion_tokens_ = 0;
}

// The client took nothing for stall_timeout while the upstream waited for it: it goes as if it
// had left (the upstream request is cancelled, or with on_disconnect: continue runs on detached),
// and its connection is dropped, so that the truncation shows.
void RouteProxy::stall(uint64_t now_ms) {
  upstream_metrics_.stalls->Increment();
  base::log::warn("client stalled: disconnected",
                  {{"conn", connection_id_},
                   {"route", route_.path},
                   {"upstream", client_.config().name},
                   {"unsent_bytes", static_cast<uint64_t>(downstream_->unsent_bytes())},
                   {"stalled_ms", now_ms - last_progress_ms_}});
  Downstream* downstream = downstream_;
  downstream_gone();
  downstream->abort();
}

void RouteProxy::done() {
  finished_ = true;
  leases_.clear();
  upstream_slot_ = {};
}

}  // namespace ssegw::upstream
