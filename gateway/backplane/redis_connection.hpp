// One asynchronous Redis connection on a worker's loop, through hiredis's libuv adapter.
//
// Rules:
// - Everything runs on the loop's thread. The object outlives every context it creates: the
//   owner keeps it until the worker stops and calls close() before the loop finishes.
// - A context that failed or was dropped may still call back while hiredis tears it down; those
//   calls are recognised by their epoch and ignored, so a reply never reaches the wrong session.
// - A command callback gets null when the connection was lost before its answer.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "gateway/net/loop.hpp"

struct redisAsyncContext;
struct redisReply;

namespace backplane {

class RedisConnection {
 public:
  using Callback = std::function<void(const redisReply* reply)>;
  struct Handlers {
    std::function<void()> ready;  // connected, authenticated and on the right database
    std::function<void(const std::string& why)> lost;       // after ready(), or a failed connect
    std::function<void(const redisReply* message)> pubsub;  // subscribe confirmations, messages
  };

  RedisConnection(net::Loop& loop, const config::BackplaneConfig& config, Handlers handlers);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Starts connecting; ready() or lost() follows.
  void connect();
  // Drops the connection without calling lost(); pending callbacks get null.
  void close();
  bool ready() const { return ready_; }

  // Sends a command. False, and no callback, when the connection is not ready. The callback may
  // be empty (fire and forget).
  bool command(std::initializer_list<std::string_view> args, Callback callback);
  bool command(const std::string_view* args, size_t count, Callback callback);
  // Pub/sub (on a connection used only for that): confirmations and messages go to pubsub().
  bool subscribe(std::string_view channel);
  bool unsubscribe(std::string_view channel);

 private:
  struct Pending;
  static void on_connect(const redisAsyncContext* context, int status);
  static void on_disconnect(const redisAsyncContext* context, int status);
  static void on_reply(redisAsyncContext* context, void* reply, void* privdata);
  static void on_pubsub(redisAsyncContext* context, void* reply, void* privdata);
  void handshake();
  void fail(const std::string& why);

  net::Loop& loop_;
  const config::BackplaneConfig& config_;
  Handlers handlers_;
  redisAsyncContext* context_ = nullptr;
  uint64_t epoch_ = 0;  // bumped for each context
  bool ready_ = false;
  bool closing_ = false;
};

}  // namespace backplane
