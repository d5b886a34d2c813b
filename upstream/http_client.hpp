// The upstream HTTP/1.1 client, on the gateway's own loop (docs/protocol.md#routes).
//
// Rules:
// - One Client per upstream per worker. It owns its connections: busy ones, and idle keep-alive
//   ones in a bounded pool. A connection deletes itself in its close callback and unlinks first.
// - start() returns an Exchange (the connection serving it). The handler gets exactly one of
//   on_end() or on_failure() as its last call, unless it calls cancel() first, after which it
//   gets nothing. After the last call the Exchange pointer must not be used. Pending exchanges
//   fail on close: close_all() (shutdown) ends each with on_failure(kDisconnected), from the
//   connection's close callback.
// - An Exchange is a TcpStream (handle.hpp): it deletes itself in its close callback, after
//   unlinking from its Client. Its DNS lookup is cancelled then (and ignored from the moment the
//   connection starts closing); its connect, writes and shutdown complete as TcpStream says.
// - Timeouts (connect, first byte, idle between chunks) are deadlines checked by one 100 ms tick
//   per client instead of a timer per connection.
// - pause()/resume() stop and restart reading the upstream socket: the backpressure lever. A
//   paused exchange has no idle deadline (the silence is ours); the handler watches its own
//   client instead (RouteProxy's stall_timeout).
// - The response is read by a ResponseParser (response_parser.hpp): interim (1xx) heads are
//   dropped, a 101 is a protocol failure, HEAD, 204 and 304 answers have no body.
// - A Client is destroyed only after close_all() and the end of its loop (Loop::finish): its
//   timer is a Handle, and every Exchange has unlinked itself by then.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "gateway/http/request.hpp"
#include "gateway/net/handles.hpp"
#include "gateway/net/resolver.hpp"
#include "gateway/net/tcp_stream.hpp"
#include "upstream/response_parser.hpp"
#include "upstream/tls.hpp"

namespace ssegw::upstream {

struct OutgoingRequest {
  std::string method = "GET";
  std::string target = "/";  // path and query; the upstream's base path is put in front
  std::vector<http::Header> headers;
  std::string body;
};

enum class Failure {
  kResolve,
  kConnect,
  kConnectTimeout,
  kTls,
  kFirstByteTimeout,
  kIdleTimeout,
  kDisconnected,  // the upstream closed or reset mid-response
  kProtocol,      // not parseable as HTTP
};
const char* failure_name(Failure failure);
// The failure in words a client may read: the kind, and nothing of the upstream's address. The
// detail that on_failure() gets names host and port; it belongs in the log only.
const char* failure_message(Failure failure);

class ExchangeHandler {
 public:
  virtual void on_head(int status, const std::vector<http::Header>& headers) = 0;
  virtual void on_body(std::string_view data) = 0;
  // Every on_body() of one read from the upstream has run, and more is to come: one read's
  // chunks can be sent on together.
  virtual void on_read_done() {}
  virtual void on_end() = 0;
  virtual void on_failure(Failure failure, const std::string& detail) = 0;

 protected:
  ~ExchangeHandler() = default;
};

class Client;

class Exchange : public net::TcpStream, private ResponseParser::Handler {
 public:
  void pause();
  void resume();
  // Stops at once: closes the connection; the handler hears nothing more.
  void cancel();
  bool reused() const { return reused_; }

 private:
  friend class Client;
  enum class State : uint8_t {
    kResolving,
    kConnecting,
    kHandshaking,
    kAwaitingHead,
    kReadingBody,
    kIdle,
    kDone
  };

  Exchange(Client& client);
  void begin(OutgoingRequest request, ExchangeHandler* handler);
  // Connects to the next address. A failure to start is reported at once, or with
  // may_report false (inside start()) from the tick.
  void connect_next(bool may_report = true);
  void on_connected(int status) override;
  void send_request();
  void send_bytes(std::string_view bytes);
  void on_data(const char* data, size_t length) override;
  void on_read_end(int status) override;
  void on_close() override;
  void parse(const char* data, size_t length);
  bool on_response_head(int status, const std::vector<http::Header>& headers) override;
  bool on_response_body(std::string_view data) override;
  void check_deadlines(uint64_t now_ms);
  void fail(Failure failure, const std::string& detail);
  void finish_response();

  Client& client_;
  ExchangeHandler* handler_ = nullptr;
  OutgoingRequest request_;
  net::Resolve* resolve_ = nullptr;
  std::vector<net::ResolvedAddress> addresses_;
  size_t next_address_ = 0;
  int connect_error_ = 0;  // a connect that could not start, for the tick to report
  std::unique_ptr<TlsSession> tls_;
  ResponseParser parser_;
  bool head_request_ = false;
  bool reused_ = false;
  bool paused_ = false;
  State state_ = State::kResolving;
  uint64_t deadline_ms_ = 0;  // 0 = none
  Exchange* prev_ = nullptr;
  Exchange* next_ = nullptr;
};

class Client {
 public:
  Client(net::Loop& loop, const config::UpstreamConfig& config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends a request; the handler hears the response. Never null.
  Exchange* start(OutgoingRequest request, ExchangeHandler* handler);
  // Closes every connection and the timer (shutdown): pending exchanges fail.
  void close_all();

  const config::UpstreamConfig& config() const { return config_; }
  net::Loop& loop() { return loop_; }
  size_t open_connections() const { return connection_count_; }

 private:
  friend class Exchange;
  void link(Exchange* exchange);
  void unlink(Exchange* exchange);
  void release_to_pool(Exchange* exchange);
  void on_tick();

  net::Loop& loop_;
  config::UpstreamConfig config_;
  // The host's address when it is an IP address: such a host is never looked up (no trip
  // through libuv's thread pool, which slow DNS of other lookups may hold).
  std::optional<net::ResolvedAddress> literal_address_;
  std::shared_ptr<TlsContext> tls_context_;
  std::string tls_error_;
  net::Timer tick_;
  Exchange* connections_ = nullptr;
  size_t connection_count_ = 0;
  std::vector<Exchange*> idle_;
  bool ticking_ = false;
};

}  // namespace ssegw::upstream
