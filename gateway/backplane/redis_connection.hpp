// One asynchronous Redis connection on a worker's loop, through hiredis's libuv adapter.
//
// Rules:
// - Everything runs on the loop's thread. The object outlives every context it creates: the
//   owner keeps it until the worker stops and calls close() before the loop finishes.
// - Every command callback runs exactly once: with its reply, or with null when the connection
//   goes before the answer came (lost, or close()). The connection keeps the callbacks of the
//   commands in flight, in the order they were sent; when its context goes, it detaches it first
//   (command() then refuses, so nothing is sent on a dying context), takes them all out, and only
//   then runs them with null, in that order. Whatever hiredis calls back with afterwards while it
//   tears the context down finds nothing left to run.
// - On a loss, lost() runs before those null callbacks, so that they see the owner already down.
// - A callback may call command() (it is refused while there is no context), close() (a no-op
//   then) and anything of the owner; not the destructor.
// - The destructor drops what is still pending without running it: the owner's members may be
//   gone by then. Call close() first to have them run.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "gateway/net/loop.hpp"

struct redisAsyncContext;
struct redisReply;

namespace ssegw::backplane {

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
  // Drops the connection without calling lost(); pending callbacks get null before it returns.
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
  // Detaches the context (freeing it unless hiredis is freeing it already), then calls lost(why)
  // when there is a why, then fails every pending callback.
  void drop(bool free_context, const std::string* why);
  void fail(const std::string& why);

  net::Loop& loop_;
  const config::BackplaneConfig& config_;
  Handlers handlers_;
  redisAsyncContext* context_ = nullptr;
  std::deque<Pending*> pending_;  // sent on context_ and unanswered, oldest first
  bool ready_ = false;
  bool closing_ = false;
};

}  // namespace ssegw::backplane
