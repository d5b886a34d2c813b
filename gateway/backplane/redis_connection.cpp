#include "gateway/backplane/redis_connection.hpp"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace ssegw::backplane {

struct RedisConnection::Pending {
  RedisConnection* owner;  // null once failed: hiredis's own call back then only frees it
  Callback callback;
};

RedisConnection::RedisConnection(net::Loop& loop, const config::BackplaneConfig& config,
                                 Handlers handlers)
    : loop_(loop), config_(config), handlers_(std::move(handlers)) {}

RedisConnection::~RedisConnection() {
  closing_ = true;
  for (Pending* pending : pending_) pending->owner = nullptr;  // dropped, not run (Rules)
  pending_.clear();
  close();
}

void RedisConnection::connect() {
  if (context_) return;
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
  drop(true, nullptr);
}

void RedisConnection::fail(const std::string& why) {
  drop(true, &why);
}

void RedisConnection::drop(bool free_context, const std::string* why) {
  redisAsyncContext* context = context_;
  context_ = nullptr;
  ready_ = false;
  std::vector<Callback> failed;
  failed.reserve(pending_.size());
  for (Pending* pending : pending_) {
    pending->owner = nullptr;
    failed.push_back(std::move(pending->callback));
  }
  pending_.clear();
  if (context) {
    context->data = nullptr;                    // its disconnect callback, if any, is stale now
    if (free_context) redisAsyncFree(context);  // deferred by hiredis inside one of its callbacks
  }
  if (why && !closing_ && handlers_.lost) handlers_.lost(*why);
  for (Callback& callback : failed)
    if (callback) callback(nullptr);
}

void RedisConnection::on_connect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (!self || context != self->context_) return;
  if (status != REDIS_OK) {
    std::string why = "connect: " + std::string(context->errstr);
    self->drop(false, &why);  // hiredis frees the context after this callback
    return;
  }
  self->handshake();
}

void RedisConnection::on_disconnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (!self || context != self->context_) return;
  std::string why = status == REDIS_OK ? "closed" : context->errstr;
  self->drop(false, &why);  // hiredis frees the context after this callback
}

void RedisConnection::handshake() {
  // Null: the connection was lost or closed, and reports that itself.
  auto step_failed = [this](const redisReply* reply, const char* what) {
    if (!reply) return true;
    if (reply->type != REDIS_REPLY_ERROR) return false;
    fail(std::string(what) + ": " + std::string(reply->str, reply->len));
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
  send({"PING"}, [this, step_failed](const redisReply* reply) {
    if (step_failed(reply, "PING")) return;
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
  auto* pending = new Pending{this, std::move(callback)};
  if (redisAsyncCommandArgv(context_, on_reply, pending, static_cast<int>(count), argv.data(),
                            lengths.data()) != REDIS_OK) {
    delete pending;
    return false;
  }
  pending_.push_back(pending);
  return true;
}

void RedisConnection::on_reply(redisAsyncContext* context, void* reply, void* privdata) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
  RedisConnection* self = pending->owner;
  if (!self) return;  // failed already, when its context was dropped
  if (!reply) {
    // Only hiredis tearing down a context on its own (a read or write error, the server
    // closing) answers null to a command still ours: the connection is lost, and this command
    // fails with every other one pending.
    std::string why = context->errstr && context->errstr[0] ? context->errstr : "connection lost";
    self->drop(false, &why);
    return;
  }
  // Redis answers in order: it is the oldest.
  auto it = std::find(self->pending_.begin(), self->pending_.end(), pending.get());
  if (it != self->pending_.end()) self->pending_.erase(it);
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

}  // namespace ssegw::backplane
