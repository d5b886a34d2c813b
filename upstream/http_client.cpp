#include "upstream/http_client.hpp"

#include "gateway/base/ascii.hpp"
#include "gateway/base/check.hpp"
#include "gateway/base/frame.hpp"

namespace ssegw::upstream {
namespace {

constexpr uint64_t kTickMs = 100;
constexpr uint64_t kPoolIdleMs = 30000;  // an idle pooled connection lives this long

}  // namespace

const char* failure_name(Failure failure) {
  switch (failure) {
    case Failure::kResolve:
      return "resolve";
    case Failure::kConnect:
      return "connect";
    case Failure::kConnectTimeout:
      return "connect_timeout";
    case Failure::kTls:
      return "tls";
    case Failure::kFirstByteTimeout:
      return "first_byte_timeout";
    case Failure::kIdleTimeout:
      return "idle_timeout";
    case Failure::kDisconnected:
      return "disconnected";
    case Failure::kProtocol:
      return "protocol";
  }
  return "error";
}

const char* failure_message(Failure failure) {
  switch (failure) {
    case Failure::kResolve:
      return "the upstream could not be reached (resolve)";
    case Failure::kConnect:
      return "the upstream could not be reached (connect)";
    case Failure::kConnectTimeout:
      return "the upstream could not be reached in time (connect_timeout)";
    case Failure::kTls:
      return "the upstream could not be reached (tls)";
    case Failure::kFirstByteTimeout:
      return "the upstream did not answer in time (first_byte_timeout)";
    case Failure::kIdleTimeout:
      return "the upstream went silent (idle_timeout)";
    case Failure::kDisconnected:
      return "the upstream closed the connection (disconnected)";
    case Failure::kProtocol:
      return "the upstream sent an invalid answer (protocol)";
  }
  return "the upstream failed";
}

// ---- Client -------------------------------------------------------------------------------------

Client::Client(net::Loop& loop, const config::UpstreamConfig& config)
    : loop_(loop), config_(config), tick_(loop, [this] { on_tick(); }) {
  net::ResolvedAddress literal{};
  if (net::ip_literal(config_.host, config_.port, literal)) literal_address_ = literal;
  if (config_.tls) {
    tls_context_ = TlsContext::client(config_.tls_options.ca_file,
                                      !config_.tls_options.insecure_skip_verify, tls_error_);
  }
}

Client::~Client() {
  SSEGW_CHECK(connections_ == nullptr);  // its connections point back at it
}

Exchange* Client::start(OutgoingRequest request, ExchangeHandler* handler) {
  Exchange* exchange = nullptr;
  while (!idle_.empty() && !exchange) {
    Exchange* candidate = idle_.back();
    idle_.pop_back();
    if (candidate->is_open()) exchange = candidate;
  }
  if (exchange) {
    exchange->reused_ = true;
  } else {
    exchange = new Exchange(*this);
    link(exchange);
  }
  if (!ticking_) {
    ticking_ = true;
    tick_.start(kTickMs, kTickMs);
  }
  exchange->begin(std::move(request), handler);
  return exchange;
}

void Client::link(Exchange* exchange) {
  exchange->next_ = connections_;
  if (connections_) connections_->prev_ = exchange;
  connections_ = exchange;
  ++connection_count_;
}

void Client::unlink(Exchange* exchange) {
  if (exchange->prev_) exchange->prev_->next_ = exchange->next_;
  if (exchange->next_) exchange->next_->prev_ = exchange->prev_;
  if (connections_ == exchange) connections_ = exchange->next_;
  --connection_count_;
  std::erase(idle_, exchange);
}

void Client::release_to_pool(Exchange* exchange) {
  if (idle_.size() >= config_.max_idle_connections) {
    exchange->close();
    return;
  }
  exchange->state_ = Exchange::State::kIdle;
  exchange->deadline_ms_ = loop_.now_ms() + kPoolIdleMs;
  idle_.push_back(exchange);
}

void Client::on_tick() {
  uint64_t now = loop_.now_ms();
  for (Exchange* e = connections_; e;) {
    Exchange* next = e->next_;
    e->check_deadlines(now);
    e = next;
  }
  if (connection_count_ == 0) {
    ticking_ = false;
    tick_.stop();
  }
}

void Client::close_all() {
  // Each exchange unlinks itself in its close callback, later; its on_close() fails a pending
  // handler then.
  for (Exchange* e = connections_; e; e = e->next_) e->close();
  tick_.close();
}

// ---- Exchange -----------------------------------------------------------------------------------

Exchange::Exchange(Client& client)
    : net::TcpStream(client.loop()), client_(client), parser_(*this) {}

void Exchange::begin(OutgoingRequest request, ExchangeHandler* handler) {
  request_ = std::move(request);
  handler_ = handler;
  head_request_ = request_.method == "HEAD";
  paused_ = false;
  parser_.reset(head_request_);
  const config::UpstreamConfig& config = client_.config();
  if (state_ == State::kIdle) {  // a pooled connection: straight to the request
    send_request();
    return;
  }
  if (config.tls && !client_.tls_context_) {
    // Reported from the tick, never from inside start(): the caller is not ready to hear it.
    state_ = State::kResolving;
    deadline_ms_ = client_.loop().now_ms();
    return;
  }
  state_ = State::kResolving;
  deadline_ms_ = client_.loop().now_ms() + static_cast<uint64_t>(config.connect_timeout.count());
  if (client_.literal_address_) {
    addresses_ = {*client_.literal_address_};
    next_address_ = 0;
    connect_next(false);
    return;
  }
  resolve_ = net::Resolve::start(client_.loop(), config.host, config.port,
                                 [this](int status, std::vector<net::ResolvedAddress> addresses) {
                                   resolve_ = nullptr;
                                   if (!is_open()) return;  // closing: on_close() follows
                                   if (status != 0 || addresses.empty()) {
                                     fail(Failure::kResolve,
                                          "cannot resolve " + client_.config().host + ": " +
                                              (status ? uv_strerror(status) : "no address"));
                                     return;
                                   }
                                   addresses_ = std::move(addresses);
                                   next_address_ = 0;
                                   connect_next();
                                 });
  if (!resolve_) deadline_ms_ = client_.loop().now_ms();  // reported from the tick
}

void Exchange::connect_next(bool may_report) {
  state_ = State::kConnecting;
  const net::ResolvedAddress& a = addresses_[next_address_++];
  int r = connect(reinterpret_cast<const sockaddr*>(&a.addr));
  if (r == 0) return;
  if (may_report) {
    fail(Failure::kConnect, std::string("connect: ") + uv_strerror(r));
    return;
  }
  // Inside start(): the caller is not ready to hear it. The tick reports it.
  connect_error_ = r;
  deadline_ms_ = client_.loop().now_ms();
}

void Exchange::on_connected(int status) {
  if (status != 0) {
    // Another address of the name may work (IPv6 first, then IPv4, say) — but a socket that
    // failed to connect cannot be reused, so only the first address is tried per connection.
    fail(Failure::kConnect, "connect to " + client_.config().host + ":" +
                                std::to_string(client_.config().port) + ": " + uv_strerror(status));
    return;
  }
  start_reading();
  if (client_.config().tls) {
    state_ = State::kHandshaking;
    tls_ = std::make_unique<TlsSession>(client_.tls_context_, client_.config().host, false);
    if (!tls_->start()) {
      fail(Failure::kTls, tls_->error());
      return;
    }
    std::string out = tls_->take_ciphertext();
    if (!out.empty()) write(base::Frame::copy_of(out), false);
  }
  send_request();
}

void Exchange::send_request() {
  const config::UpstreamConfig& config = client_.config();
  std::string head;
  head.reserve(512 + request_.target.size());
  head += request_.method;
  head += ' ';
  head += config.base_path;
  head += request_.target;
  head += " HTTP/1.1\r\nHost: ";
  bool v6 = config.host.find(':') != std::string::npos;
  head += v6 ? "[" + config.host + "]" : config.host;
  if (config.port != (config.tls ? 443 : 80)) {
    // Not ":" + std::to_string(): GCC 12 warns on that (-Wrestrict, a false positive).
    head += ':';
    head += std::to_string(config.port);
  }
  head += "\r\n";
  for (const http::Header& h : request_.headers) {
    bool overridden = false;
    for (const auto& [name, value] : config.headers) overridden |= base::iequals(name, h.name);
    if (overridden) continue;
    head += h.name + ": " + h.value + "\r\n";
  }
  for (const auto& [name, value] : config.headers) head += name + ": " + value + "\r\n";
  if (!request_.body.empty() || request_.method == "POST" || request_.method == "PUT")
    head += "Content-Length: " + std::to_string(request_.body.size()) + "\r\n";
  head += "\r\n";
  head += request_.body;
  send_bytes(head);
  request_.body.clear();
  request_.body.shrink_to_fit();
  if (state_ == State::kHandshaking) return;  // deadlines move on once the handshake is done
  state_ = State::kAwaitingHead;
  deadline_ms_ = client_.loop().now_ms() + static_cast<uint64_t>(config.first_byte_timeout.count());
}

void Exchange::send_bytes(std::string_view bytes) {
  if (!tls_) {
    write(base::Frame::copy_of(bytes), false);
    return;
  }
  if (!tls_->write_plaintext(bytes)) {
    fail(Failure::kTls, tls_->error());
    return;
  }
  std::string out = tls_->take_ciphertext();
  if (!out.empty()) write(base::Frame::copy_of(out), false);
}

void Exchange::on_data(const char* data, size_t length) {
  if (state_ == State::kIdle) {
    close();  // an idle connection has nothing to say; anything here is a protocol error
    return;
  }
  if (!tls_) {
    parse(data, length);
    return;
  }
  std::string plaintext;
  bool ok = tls_->read_ciphertext(data, length, plaintext);
  std::string out = tls_->take_ciphertext();
  if (!out.empty()) write(base::Frame::copy_of(out), false);
  if (!ok) {
    fail(Failure::kTls, tls_->error());
    return;
  }
  if (state_ == State::kHandshaking && tls_->handshake_done()) {
    state_ = State::kAwaitingHead;
    deadline_ms_ = client_.loop().now_ms() +
                   static_cast<uint64_t>(client_.config().first_byte_timeout.count());
  }
  if (!plaintext.empty()) parse(plaintext.data(), plaintext.size());
}

void Exchange::parse(const char* data, size_t length) {
  if (state_ != State::kAwaitingHead && state_ != State::kReadingBody) return;
  if (state_ == State::kReadingBody)
    deadline_ms_ =
        client_.loop().now_ms() + static_cast<uint64_t>(client_.config().idle_timeout.count());
  ResponseParser::Result result = parser_.feed(data, length);
  if (!is_open() || !handler_) return;  // a callback cancelled the exchange
  switch (result.status) {
    case ResponseParser::Status::kNeedMore:
      if (state_ == State::kReadingBody) handler_->on_read_done();
      return;
    case ResponseParser::Status::kStopped:  // only a cancelled handler stops it: handled above
      return;
    case ResponseParser::Status::kComplete:
      if (result.consumed != length) {
        fail(Failure::kProtocol, "bytes after the end of the response");
        return;
      }
      finish_response();
      return;
    case ResponseParser::Status::kError:
      fail(Failure::kProtocol, "malformed response: " + parser_.error());
      return;
  }
}

bool Exchange::on_response_head(int status, const std::vector<http::Header>& headers) {
  state_ = State::kReadingBody;
  deadline_ms_ =
      client_.loop().now_ms() + static_cast<uint64_t>(client_.config().idle_timeout.count());
  if (handler_) handler_->on_head(status, headers);
  return handler_ != nullptr;
}

bool Exchange::on_response_body(std::string_view data) {
  if (handler_) handler_->on_body(data);
  return handler_ != nullptr;
}

void Exchange::finish_response() {
  ExchangeHandler* handler = handler_;
  handler_ = nullptr;
  bool keep_alive = parser_.keep_alive() && !(tls_ && tls_->closed());
  if (keep_alive && !paused_)
    client_.release_to_pool(this);
  else
    close();
  handler->on_end();
}

void Exchange::on_read_end(int status) {
  if (handler_ && state_ == State::kReadingBody) {
    // A close-delimited body ends with the connection; llhttp_finish tells which it was.
    if (parser_.finish() == ResponseParser::Status::kComplete) {
      ExchangeHandler* handler = handler_;
      handler_ = nullptr;
      close();
      handler->on_end();
      return;
    }
  }
  if (handler_) {
    fail(Failure::kDisconnected, status == UV_EOF
                                     ? "upstream closed the connection"
                                     : std::string("upstream: ") + uv_strerror(status));
    return;
  }
  close();
}

void Exchange::on_close() {
  if (resolve_) resolve_->cancel();
  client_.unlink(this);
  if (handler_) {
    ExchangeHandler* handler = handler_;
    handler_ = nullptr;
    handler->on_failure(Failure::kDisconnected, "connection closed");
  }
}

void Exchange::fail(Failure failure, const std::string& detail) {
  ExchangeHandler* handler = handler_;
  handler_ = nullptr;
  state_ = State::kDone;
  close();
  if (handler) handler->on_failure(failure, detail);
}

void Exchange::check_deadlines(uint64_t now_ms) {
  if (!is_open() || deadline_ms_ == 0 || now_ms < deadline_ms_) return;
  switch (state_) {
    case State::kResolving:
      if (client_.config().tls && !client_.tls_context_) {
        fail(Failure::kTls, client_.tls_error_);
        return;
      }
      if (!resolve_ && addresses_.empty()) {
        fail(Failure::kResolve, "cannot start resolving " + client_.config().host);
        return;
      }
      [[fallthrough]];
    case State::kConnecting:
      if (connect_error_ != 0) {
        fail(Failure::kConnect, std::string("connect: ") + uv_strerror(connect_error_));
        return;
      }
      [[fallthrough]];
    case State::kHandshaking:
      fail(Failure::kConnectTimeout, "no connection within connect_timeout");
      return;
    case State::kAwaitingHead:
      fail(Failure::kFirstByteTimeout, "no response within first_byte_timeout");
      return;
    case State::kReadingBody:
      if (paused_) return;  // our own backpressure, not a silent upstream
      fail(Failure::kIdleTimeout, "no data within idle_timeout");
      return;
    case State::kIdle:
      close();
      return;
    case State::kDone:
      return;
  }
}

void Exchange::pause() {
  if (paused_) return;
  paused_ = true;
  stop_reading();
}

void Exchange::resume() {
  if (!paused_) return;
  paused_ = false;
  deadline_ms_ =
      client_.loop().now_ms() + static_cast<uint64_t>(client_.config().idle_timeout.count());
  start_reading();
}

void Exchange::cancel() {
  handler_ = nullptr;
  close();
}

}  // namespace ssegw::upstream
