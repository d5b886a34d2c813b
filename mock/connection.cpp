#include "mock/connection.hpp"

#include <cstdio>
#include <utility>

namespace ssegw::mock {
namespace {

// A whole request (1 MiB body plus headers) may be pipelined behind a playing stream.
constexpr size_t kMaxPending = 1024 * 1024 + 64 * 1024;

constexpr std::string_view kFeedPrefix = "/feed/";

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Last-Event-ID as a number; 0 (start from 1) when absent or not a plain number.
uint64_t last_event_id(std::string_view value) {
  if (value.empty() || value.size() > 18) return 0;
  uint64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

// "<hex size>\r\n<bytes>\r\n": one HTTP/1.1 chunk.
std::string chunk(std::string_view bytes) {
  char size[20];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
  std::string out;
  out.reserve(static_cast<size_t>(n) + bytes.size() + 2);
  out.append(size, static_cast<size_t>(n)).append(bytes).append("\r\n");
  return out;
}

// The head of a complete response: what a HEAD request gets, and what a 304 keeps.
std::string head_only(std::string response) {
  size_t end = response.find("\r\n\r\n");
  if (end != std::string::npos) response.erase(end + 4);
  return response;
}

std::string interim_head(uint64_t status) {
  if (status == 103) return "HTTP/1.1 103 Early Hints\r\nLink: </mock.css>; rel=preload\r\n\r\n";
  if (status == 101)
    return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: mock\r\n\r\n";
  return "HTTP/1.1 " + std::to_string(status) + " Interim\r\n\r\n";
}

}  // namespace

Connection::Connection(uv_loop_t* loop, MockState& state) : Stream(loop), state_(state) {
  state_.connections.insert(this);
  ++state_.stats.gauges.connections;
  ++state_.stats.counters.connections_total;
}

uint64_t Connection::blocked_ns(uint64_t now_ns) const {
  return phase_ == Phase::kBlocked ? now_ns - blocked_since_ns_ : 0;
}

void Connection::restart_blocked_clock(uint64_t now_ns) {
  if (phase_ == Phase::kBlocked) blocked_since_ns_ = now_ns;
}

// ---- input -------------------------------------------------------------------------------

void Connection::on_data(const char* data, size_t length) {
  if (dead_) return;
  if (pending_.size() + length > kMaxPending) {
    close();
    return;
  }
  pending_.append(data, length);
  process_input();
}

void Connection::on_read_end() {
  if (streaming_) disconnect_seen_ns_ = uv_hrtime();
  close();
}

void Connection::process_input() {
  // Answering a request can end a response at once (stats, errors); the loop below then goes
  // on with the next pipelined request, so a nested call has nothing to do.
  if (in_process_) return;
  in_process_ = true;
  while (!busy_ && !dead_ && is_open() && !pending_.empty() && queued_bytes() <= kHighWater) {
    size_t used = 0;
    RequestReader::Status status = reader_.read(pending_.data(), pending_.size(), used);
    pending_.erase(0, used);
    if (status == RequestReader::Status::kError) {
      dead_ = true;
      send_raw(json_response(reader_.error_status(), /*http10=*/false, {},
                             error_json(reader_.error_message(), "invalid_request"),
                             /*keep_alive=*/false));
      shutdown_after_flush();
      break;
    }
    if (status == RequestReader::Status::kNeedMore) {
      if (reader_.headers_complete() && reader_.request().expect_continue && !continue_sent_) {
        continue_sent_ = true;
        send_raw("HTTP/1.1 100 Continue\r\n\r\n");
      }
      break;
    }
    continue_sent_ = false;
    handle(reader_.request());
    reader_.next();
  }
  in_process_ = false;
}

// ---- routing -----------------------------------------------------------------------------

void Connection::handle(const Request& request) {
  keep_alive_ = request.keep_alive;
  http10_ = request.http10;
  head_ = request.method == HTTP_HEAD;
  std::string_view path = request.path();
  bool first = !served_;
  served_ = true;
  if (starts_with(path, "/mock/")) {
    handle_mock(request);
    return;
  }
  if (first) ++state_.stats.counters.api_connections;
  state_.stats.count_request(path);

  Api api;
  bool stream = true;
  bool feed = false;
  bool post = request.method == HTTP_POST;
  if (path == "/v1/chat/completions") {
    api = Api::kChat;
    stream = json_flag(request.body, "stream", true);
  } else if (path == "/v1/responses") {
    api = Api::kResponses;
  } else if (path == "/v1/messages") {
    api = Api::kMessages;
  } else if (path == "/api/chat" || path == "/api/generate") {
    api = path == "/api/chat" ? Api::kOllamaChat : Api::kOllamaGenerate;
    stream = !json_flag(request.body, "stream", false);  // Ollama streams unless told not to
  } else if (starts_with(path, kFeedPrefix) && path.size() > kFeedPrefix.size()) {
    api = Api::kFeed;
    feed = true;
    post = false;
  } else {
    reply(json_response(404, http10_, {}, error_json("no such mock endpoint", "not_found"),
                        keep_alive_),
          0);
    return;
  }
  bool method_ok = head_ || (feed ? request.method == HTTP_GET : post);
  if (!method_ok) {
    reply(json_response(405, http10_, feed ? "Allow: GET\r\n" : "Allow: POST\r\n",
                        error_json("method not allowed", "mock"), keep_alive_),
          0);
    return;
  }

  Knobs knobs;
  std::string error;
  if (!parse_knobs(request, feed, knobs, error)) {
    reply(json_response(400, http10_, {}, error_json(error, "invalid_request"), keep_alive_), 0);
    return;
  }
  // HTTP/1.0 has no interim answers (RFC 9110 §15.2).
  if (knobs.interim != 0 && !http10_) send_raw(interim_head(knobs.interim));
  if (knobs.status != 0) {
    int status = static_cast<int>(knobs.status);
    std::string headers;
    if (status == 429) headers = "Retry-After: 1\r\n";
    if (status == 304) headers = "ETag: \"mock\"\r\n";
    std::string response =
        status == 204 ? response_head(204, http10_, keep_alive_ ? "" : "Connection: close\r\n")
                      : json_response(status, http10_, headers, error_json("mock status", "mock"),
                                      keep_alive_);
    reply(status == 304 ? head_only(std::move(response)) : std::move(response),
          knobs.head_delay_ms);
    return;
  }
  if (head_ && (feed || stream)) {  // a stream's head, and no stream
    if (http10_) keep_alive_ = false;
    reply(stream_head(api), knobs.head_delay_ms);
    return;
  }

  Usage usage;
  usage.prompt = knobs.prompt_tokens != kNever ? knobs.prompt_tokens : prompt_words(request.body);
  usage.reported = !knobs.no_usage;
  usage.include_usage = json_flag(request.body, "include_usage", true);
  if (feed) {
    std::string name(path.substr(kFeedPrefix.size()));
    uint64_t first = last_event_id(request.header("last-event-id")) + 1;
    start_stream(api, std::move(knobs), usage, std::move(name), first);
    return;
  }
  if (stream) {
    start_stream(api, std::move(knobs), usage, {}, 0);
    return;
  }
  // Non-streaming answers are complete at once; only head_delay_ms holds them back.
  std::string text;
  std::vector<std::string> tokens = token_script(knobs);
  uint64_t now = uv_hrtime();
  for (const std::string& t : tokens) text += knobs.stamp ? stamped_token(now, t) : t;
  usage.completion = tokens.size();
  std::string body =
      api == Api::kChat ? chat_completion_json(text, usage) : ollama_json(api, text, usage);
  reply(json_response(200, http10_, {}, body, keep_alive_), knobs.head_delay_ms);
}

void Connection::handle_mock(const Request& request) {
  std::string_view path = request.path();
  if (path == "/mock/stats" && request.method == HTTP_GET) {
    uint64_t now = uv_hrtime(), blocked = 0;
    for (const Connection* c : state_.connections) blocked += c->blocked_ns(now);
    reply(json_response(200, http10_, "Cache-Control: no-store\r\n", state_.stats.to_json(blocked),
                        keep_alive_),
          0);
  } else if (path == "/mock/reset" && request.method == HTTP_POST) {
    state_.stats.reset();
    uint64_t now = uv_hrtime();
    for (Connection* c : state_.connections) c->restart_blocked_clock(now);
    reply(json_response(200, http10_, {}, "{\"reset\":true}\n", keep_alive_), 0);
  } else {
    reply(json_response(404, http10_, {}, error_json("no such mock endpoint", "not_found"),
                        keep_alive_),
          0);
  }
}

void Connection::reply(std::string response, uint64_t delay_ms) {
  if (head_) response = head_only(std::move(response));
  if (delay_ms == 0) {
    send_raw(response);
    after_reply();
    return;
  }
  busy_ = true;
  delayed_ = std::move(response);
  phase_ = Phase::kHeadDelay;
  arm(delay_ms);
}

void Connection::after_reply() {
  busy_ = false;
  phase_ = Phase::kIdle;
  if (!keep_alive_) {
    dead_ = true;
    shutdown_after_flush();
    return;
  }
  process_input();
}

// ---- streams -----------------------------------------------------------------------------

void Connection::start_stream(Api api, Knobs knobs, Usage usage, std::string feed_name,
                              uint64_t first_n) {
  busy_ = streaming_ = true;
  ++state_.stats.gauges.active;
  if (api == Api::kFeed) ++state_.stats.gauges.feeds_active;
  api_ = api;
  knobs_ = std::move(knobs);
  usage_ = usage;
  feed_name_ = std::move(feed_name);
  feed_next_ = first_n;
  script_ = api == Api::kFeed ? std::vector<std::string>{} : token_script(knobs_);
  usage_.completion = script_.size();
  sent_ = 0;
  stalled_ = false;
  // HTTP/1.0 has no chunked encoding: the body ends with the connection.
  chunked_ = !http10_;
  if (http10_) keep_alive_ = false;
  last_write_ns_ = uv_hrtime();
  if (knobs_.head_delay_ms > 0) {
    phase_ = Phase::kHeadDelay;
    arm(knobs_.head_delay_ms);
    return;
  }
  send_head();
}

std::string Connection::stream_head(Api api) const {
  std::string headers = "Content-Type: ";
  headers.append(content_type(api)).append("\r\nCache-Control: no-cache\r\n");
  if (!http10_) headers += "Transfer-Encoding: chunked\r\n";
  if (!keep_alive_ && !http10_) headers += "Connection: close\r\n";
  return response_head(200, http10_, headers);
}

void Connection::send_head() {
  send_raw(stream_head(api_));
  for (const std::string& event : preamble(api_, usage_, knobs_.retry_ms)) send_chunk(event);
  phase_ = Phase::kTokens;
  next_due_ms_ = uv_now(loop());
  advance();
}

// Decides what follows the sent_-th token: a fault, the end, or the next token's timer.
void Connection::advance() {
  const Knobs& k = knobs_;
  if (sent_ == k.drop_after) {
    fail_stream(/*clean_end=*/false);
    return;
  }
  if (sent_ == k.error_after) {
    send_chunk(error_event(api_));
    fail_stream(/*clean_end=*/true);
    return;
  }
  if (sent_ == k.garbage_after) {
    send_chunk(garbage_bytes());
    fail_stream(/*clean_end=*/false);
    return;
  }
  uint64_t total = api_ == Api::kFeed ? k.tokens : script_.size();
  if (sent_ == total) {
    finish();
    return;
  }
  uint64_t delay = sent_ == 0 && k.first_token_ms != kNever ? k.first_token_ms : k.interval_ms;
  uint64_t now = uv_now(loop());
  if (sent_ == k.stall_after && !stalled_) {
    stalled_ = true;
    delay = k.stall_ms;
    next_due_ms_ = now;  // the stall starts now, whatever the schedule owed
  }
  next_due_ms_ += delay;
  arm(next_due_ms_ > now ? next_due_ms_ - now : 0);
}

void Connection::produce() {
  size_t queued = queued_bytes();
  state_.stats.note_queue(queued);
  if (queued > kHighWater) {
    phase_ = Phase::kBlocked;
    blocked_since_ns_ = uv_hrtime();
    ++state_.stats.gauges.blocked_now;
    return;  // on_drained() resumes
  }
  if (api_ == Api::kFeed)
    send_chunk(feed_event(feed_name_, feed_next_++));
  else if (knobs_.stamp)
    send_chunk(token_event(api_, stamped_token(uv_hrtime(), script_[sent_]), usage_));
  else
    send_chunk(token_event(api_, script_[sent_], usage_));
  ++sent_;
  ++state_.stats.counters.tokens_sent;
  advance();
}

void Connection::finish() {
  for (const std::string& event : finish_events(api_, usage_)) send_chunk(event);
  end_body();
  ++state_.stats.counters.completed;
  end_stream();
  after_reply();  // HTTP/1.0 streams have keep_alive_ off: the close ends their body
}

// A fault knob fired. clean_end: finish the HTTP body first (error events); otherwise the
// connection just goes once the bytes already queued are out, with no terminator.
void Connection::fail_stream(bool clean_end) {
  ++state_.stats.counters.faulted;
  end_stream();
  dead_ = true;
  if (clean_end) {
    end_body();
    shutdown_after_flush();
  } else {
    close_when_drained();
  }
}

void Connection::end_stream() {
  if (!streaming_) return;
  streaming_ = false;
  if (phase_ == Phase::kBlocked) {
    state_.stats.counters.blocked_ns += uv_hrtime() - blocked_since_ns_;
    --state_.stats.gauges.blocked_now;
  }
  phase_ = Phase::kIdle;
  --state_.stats.gauges.active;
  if (api_ == Api::kFeed) --state_.stats.gauges.feeds_active;
  if (timer_) uv_timer_stop(&timer_->timer);
  script_.clear();
  script_.shrink_to_fit();
}

void Connection::on_drained() {
  if (close_when_drained_) {
    close();
    return;
  }
  if (phase_ == Phase::kBlocked) {
    state_.stats.counters.blocked_ns += uv_hrtime() - blocked_since_ns_;
    --state_.stats.gauges.blocked_now;
    phase_ = Phase::kTokens;
    next_due_ms_ = uv_now(loop());  // the schedule resumes from here, without catching up
    arm(0);                         // the token is overdue; produce it on the next loop turn
    return;
  }
  process_input();  // pipelined requests that waited for the queue to drain
}

void Connection::on_close() {
  if (streaming_) {
    uint64_t now = disconnect_seen_ns_ ? disconnect_seen_ns_ : uv_hrtime();
    Counters& c = state_.stats.counters;
    ++c.cancelled;
    c.last_cancel_at_ns = static_cast<int64_t>(now);
    c.last_cancel_gap_ns = static_cast<int64_t>(now - last_write_ns_);
    end_stream();
  }
  if (timer_) {
    timer_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_->timer),
             [](uv_handle_t* handle) { delete static_cast<TimerBlock*>(handle->data); });
    timer_ = nullptr;
  }
  --state_.stats.gauges.connections;
  state_.connections.erase(this);
}

// ---- output ------------------------------------------------------------------------------

void Connection::send_raw(std::string_view bytes) {
  write(bytes);
}

void Connection::send_chunk(std::string_view bytes) {
  write(chunked_ ? chunk(bytes) : std::string(bytes));
  last_write_ns_ = uv_hrtime();
}

void Connection::end_body() {
  if (chunked_) send_raw("0\r\n\r\n");
}

void Connection::close_when_drained() {
  close_when_drained_ = true;
  if (queued_bytes() == 0) close();
}

// ---- timer -------------------------------------------------------------------------------

void Connection::arm(uint64_t delay_ms) {
  if (!timer_) {
    timer_ = new TimerBlock{};
    timer_->owner = this;
    uv_timer_init(loop(), &timer_->timer);
    timer_->timer.data = timer_;
  }
  uv_timer_start(&timer_->timer, on_tick, delay_ms, 0);
}

void Connection::on_tick(uv_timer_t* timer) {
  Connection* self = static_cast<TimerBlock*>(timer->data)->owner;
  if (self && self->is_open()) self->tick();
}

void Connection::tick() {
  switch (phase_) {
    case Phase::kHeadDelay:
      if (streaming_) {
        send_head();
      } else {
        std::string response = std::move(delayed_);
        delayed_.clear();
        send_raw(response);
        after_reply();
      }
      break;
    case Phase::kTokens:
      produce();
      break;
    case Phase::kIdle:
    case Phase::kBlocked:
      break;
  }
  // Every token is its own write, as soon as its timer fires (mock/net.hpp flushes by itself
  // only after reads).
  flush();
}

}  // namespace ssegw::mock
