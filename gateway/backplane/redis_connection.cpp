#include "gateway/backplane/redis_connection.hpp"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <memory>
#include <vector>

namespace backplane {

struct RedisConnection::Pending {
  RedisConnection* owner;
  uint64_t epoch;
  Callback callback;
};

RedisConnection::RedisConnection(net::Loop& loop, const config::BackplaneConfig& config,
                                 Handlers handlers)
    : loop_(loop), config_(config), handlers_(std::move(handlers)) {}

RedisConnection::~RedisConnection() {
  closing_ = true;
  close();
}

void RedisConnection::connect() {
  if (context_) return;
  ++epoch_;
  redisAsyncContext* context = redisAsyncConnect(config_.host.c_str(), config_.port);
  if (!context) {
    fail("out of memory");
    return;
  }
  if (context->err) {
    std::string why = context->errstr;
    redisAsyncFree(context);
    fail(why);
    return;
  }
  context->data = this;
  if (redisLibuvAttach(context, loop_.uv()) != REDIS_OK) {
    redisAsyncFree(context);
    fail("cannot attach to the loop");
    return;
  }
  redisAsyncSetConnectCallback(context, on_connect);
  redisAsyncSetDisconnectCallback(context, on_disconnect);
  context_ = context;
}

void RedisConnection::close() {
  redisAsyncContext* context = context_;
  context_ = nullptr;
  ready_ = false;
  ++epoch_;  // whatever the teardown calls back with is stale now
  if (context) {
    context->data = nullptr;
    redisAsyncFree(context);  // deferred by hiredis when called from one of its callbacks
  }
}

void RedisConnection::fail(const std::string& why) {
  bool was_open = context_ != nullptr;
  if (was_open) close();
  ++epoch_;
  ready_ = false;
  if (!closing_ && handlers_.lost) handlers_.lost(why);
}

void RedisConnection::on_connect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (!self || context != self->context_) return;
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback.
    std::string why = context->errstr;
    self->context_ = nullptr;
    self->fail("connect: " + why);
    return;
  }
  self->handshake();
}

void RedisConnection::on_disconnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (!self || context != self->context_) return;
  std::string why = status == REDIS_OK ? "closed" : context->errstr;
  self->context_ = nullptr;  // hiredis frees it after this callback
  self->fail(why);
}

void RedisConnection::handshake() {
  auto step_failed = [this](const redisReply* reply, const char* what) {
    if (reply && reply->type != REDIS_REPLY_ERROR) return false;
    fail(std::string(what) + ": " + (reply ? std::string(reply->str, reply->len) : "lost"));
    return true;
  };
  auto send = [this](std::initializer_list<std::string_view> args, Callback callback) {
    ready_ = true;  // command() refuses otherwise; nothing else runs before ready() below
    command(args, std::move(callback));
    ready_ = false;
  };
  if (!config_.password.empty())
    send({"AUTH", config_.password},
         [step_failed](const redisReply* reply) { step_failed(reply, "AUTH"); });
  std::string db = std::to_string(config_.db);
  if (config_.db != 0)
    send({"SELECT", db}, [step_failed](const redisReply* reply) { step_failed(reply, "SELECT"); });
  uint64_t epoch = epoch_;
  send({"PING"}, [this, epoch, step_failed](const redisReply* reply) {
    if (epoch != epoch_ || step_failed(reply, "PING")) return;
    ready_ = true;
    if (handlers_.ready) handlers_.ready();
  });
}

bool RedisConnection::command(std::initializer_list<std::string_view> args, Callback callback) {
  return command(args.begin(), args.size(), std::move(callback));
}

bool RedisConnection::command(const std::string_view* args, size_t count, Callback callback) {
  if (!context_ || !ready_) return false;
  std::vector<const char*> argv(count);
  std::vector<size_t> lengths(count);
  for (size_t i = 0; i < count; ++i) {
    argv[i] = args[i].data();
    lengths[i] = args[i].size();
  }
  auto* pending = new Pending{this, epoch_, std::move(callback)};
  if (redisAsyncCommandArgv(context_, on_reply, pending, static_cast<int>(count), argv.data(),
                            lengths.data()) != REDIS_OK) {
    delete pending;
    return false;
  }
  return true;
}

void RedisConnection::on_reply(redisAsyncContext* context, void* reply, void* privdata) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
  RedisConnection* self = pending->owner;
  if (self->closing_ || pending->epoch != self->epoch_) return;
  if (pending->callback) pending->callback(static_cast<const redisReply*>(reply));
}

bool RedisConnection::subscribe(std::string_view channel) {
  if (!context_ || !ready_) return false;
  const char* argv[] = {"SUBSCRIBE", channel.data()};
  size_t lengths[] = {9, channel.size()};
  return redisAsyncCommandArgv(context_, on_pubsub, this, 2, argv, lengths) == REDIS_OK;
}

bool RedisConnection::unsubscribe(std::string_view channel) {
  if (!context_ || !ready_) return false;
  const char* argv[] = {"UNSUBSCRIBE", channel.data()};
  size_t lengths[] = {11, channel.size()};
  return redisAsyncCommandArgv(context_, on_pubsub, this, 2, argv, lengths) == REDIS_OK;
}

void RedisConnection::on_pubsub(redisAsyncContext* context, void* reply, void* privdata) {
  auto* self = static_cast<RedisConnection*>(privdata);
  if (!reply || self->closing_ || context != self->context_) return;
  if (self->handlers_.pubsub) self->handlers_.pubsub(static_cast<const redisReply*>(reply));
}

}  // namespace backplane
