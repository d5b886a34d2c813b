#include "gateway/server/worker.hpp"

#include <cstdio>
#include <limits>

#include "gateway/base/clock.hpp"
#include "gateway/base/log.hpp"
#include "gateway/hub/generation.hpp"
#include "gateway/hub/sse_frame.hpp"
#include "gateway/server/connection.hpp"

namespace ssegw::server {
namespace {

// How often connections are checked for timeouts and heartbeats, and history for its TTL.
constexpr uint64_t kTickMs = 250;

hub::HubOptions hub_options(const config::Config& config) {
  hub::HubOptions options;
  options.history.max_events = config.history.max_events;
  options.history.max_bytes = config.history.max_bytes;
  options.history.ttl_ms = static_cast<uint64_t>(config.history.ttl.count());
  options.max_total_bytes = config.history.max_total_bytes;
  options.max_channels = config.limits.max_channels;
  options.workers = config.workers;
  return options;
}

std::string random_instance_id() {
  std::random_device random;
  char text[17];
  snprintf(text, sizeof text, "%08x%08x", random(), random());
  return text;
}

base::NamedLimits make_upstream_limits(const config::Config& config, metrics::Metrics& metrics) {
  base::NamedLimits limits;
  for (const config::UpstreamConfig& upstream : config.upstreams) {
    auto limit = std::make_unique<base::CountingLimit>(upstream.max_concurrent);
    metrics.on_collect([&metrics, name = upstream.name, count = limit.get()] {
      metrics.upstream(name).active->Set(count->used());
    });
    limits.emplace(upstream.name, std::move(limit));
  }
  return limits;
}

}  // namespace

Shared::Shared(const config::Config& config)
    : config(config),
      client_limits(config.limits.max_connections_per_ip, config.limits.publish_rate_per_ip,
                    config.limits.publish_burst_per_ip, config.limits.max_streams_per_ip),
      upstream_limits(make_upstream_limits(config, metrics)),
      policy(config, client_limits, upstream_limits, metrics),
      retry_frame(hub::make_retry_frame(static_cast<uint64_t>(config.retry.count()))),
      heartbeat_frame(hub::make_heartbeat_frame()),
      chunked_end_frame(base::Frame::copy_of("0\r\n\r\n")),
      continue_frame(base::Frame::copy_of("HTTP/1.1 100 Continue\r\n\r\n")),
      instance_id(random_instance_id()) {}

Worker::Worker(Shared& shared, uint32_t index, int listen_fd)
    : shared_(shared),
      index_(index),
      listen_fd_(listen_fd),
      listener_(loop_, [this](uv_stream_t* server) { on_connection(server); }),
      tick_timer_(loop_, [this] { on_tick(); }),
      grace_timer_(loop_,
                   [this] {
                     for (Connection* c = connections_; c; c = c->next) c->close();
                   }),
      wake_(loop_, [this] { on_mail(); }),
      hub_(hub_options(shared.config), shared.metrics, shared.channels, shared.history_bytes) {
  for (const config::UpstreamConfig& settings : shared.config.upstreams) {
    clients_[settings.name] = std::make_unique<upstream::Client>(loop_, settings);
    shared.metrics.upstream(settings.name);  // the series exist from the start
  }
  if (shared.config.backplane.type == config::BackplaneConfig::Type::kRedis) {
    backplane::RedisBackplane::Hooks hooks;
    hooks.run_source = [this](const std::string& channel, bool run, const std::string& resume_id) {
      if (sources_) sources_->watched(channel, run, resume_id);
    };
    hooks.source_room = [this] {
      return shared_.sources.load(std::memory_order_relaxed) < shared_.config.limits.max_sources;
    };
    hooks.has_source = [this](const std::string& channel) {
      for (const config::SourceConfig& source : config().sources)
        if (config::glob_match(source.channels, channel)) return true;
      return false;
    };
    backplane_ = std::make_unique<backplane::RedisBackplane>(
        loop_, shared.config, hub_, shared.metrics, shared.backplane_links_up,
        shared.instance_id + "/" + std::to_string(index), std::move(hooks));
    // With Redis, a source runs where its lease is held, not wherever it is watched.
    hub_.set_watch([this](const std::string& channel, bool watched) {
      backplane_->watched(channel, watched);
      return true;  // the lease holder runs the source, uncapped (see SourceManager)
    });
  }
  if (!shared.config.sources.empty()) {
    sources_ = std::make_unique<upstream::SourceManager>(
        loop_, shared.config, shared.metrics, shared.sources,
        backplane_ ? std::numeric_limits<uint32_t>::max() : shared.config.limits.max_sources,
        [this](const std::string& name) -> upstream::Client& { return *clients_.at(name); },
        [this](const std::string& name) { return shared_.upstream_limits.at(name)->try_take(); },
        [this](const std::string& channel, std::string_view type, std::string_view data,
               std::string_view upstream_id) {
          if (backplane_)
            backplane_->publish_from_source(channel, type, data, upstream_id);
          else
            hub_.publish(channel, type, data, loop_.now_ms(), base::wall_clock_ms());
        });
    if (!backplane_)
      hub_.set_watch([this](const std::string& channel, bool watched) {
        return sources_->watched(channel, watched);
      });
  }
  hub_.set_forward(
      [this](uint32_t worker, const std::string& channel, const base::FrameRef& frame) {
        auto* message = new Message(Message::Kind::kForward);
        message->channel = channel;
        message->frame = frame;
        send_to(worker, message);
      });
}

Worker::~Worker() = default;

bool Worker::run() {
  int r = listener_.listen_fd(listen_fd_, 1024);
  if (r != 0) {
    base::log::error("listen failed", {{"worker", index_}, {"error", uv_strerror(r)}});
    std::exit(1);
  }
  tick_timer_.start(kTickMs, kTickMs);
  if (backplane_) backplane_->start();
  loop_.run();
  if (loop_.finish() == 0) return true;
  base::log::error("loop closed with handles open",
                   {{"worker", index_}, {"handles", loop_.open_handles()}});
  return false;
}

void Worker::post(Message* message) {
  mailbox_.push(message);
  wake_.send();
}

void Worker::send_to(uint32_t worker, Message* message) {
  message->from = index_;
  shared_.workers[worker]->post(message);
}

uint32_t Worker::owner_of(std::string_view channel) const {
  if (shared_.workers.size() == 1) return 0;
  return static_cast<uint32_t>(std::hash<std::string_view>{}(channel) % shared_.workers.size());
}

void Worker::ask_owner(uint32_t owner, Message* message, Connection* asker) {
  message->connection = asker->id();
  askers_[asker->id()] = asker;
  send_to(owner, message);
}

void Worker::expect_reply(Connection* asker) {
  askers_[asker->id()] = asker;
}

void Worker::forget_asker(uint64_t connection_id) {
  askers_.erase(connection_id);
}

void Worker::on_connection(uv_stream_t* server) {
  auto* connection = new Connection(*this, next_connection_id_++);
  connection->next = connections_;
  if (connections_) connections_->prev = connection;
  connections_ = connection;
  ++connection_count_;
  shared_.metrics.connections_active.Increment();
  uint32_t open = shared_.connections.fetch_add(1, std::memory_order_relaxed) + 1;
  if (connection->accept(server) != 0) {
    connection->close();
    return;
  }
  if (open > shared_.config.limits.max_connections || draining_) {
    connection->reject_overloaded();
    return;
  }
  if (!connection->admit_client()) return;  // over limits.max_connections_per_ip: 429
  connection->start();
}

void Worker::connection_closed(Connection* connection) {
  if (connection->prev) connection->prev->next = connection->next;
  if (connection->next) connection->next->prev = connection->prev;
  if (connections_ == connection) connections_ = connection->next;
  --connection_count_;
  shared_.metrics.connections_active.Decrement();
  shared_.connections.fetch_sub(1, std::memory_order_relaxed);
  askers_.erase(connection->id());
  check_drained();
}

std::string Worker::new_generation_channel() {
  for (;;) {
    std::optional<std::string> name = hub::make_generation_name();
    if (!name) return std::string();
    if (owner_of(*name) != index_) continue;  // 1 try in `workers` is ours
    if (backplane_) {
      backplane_->start_generation(*name);  // kept in Redis: no channel here until subscribed
      return *name;
    }
    return hub_.create_generation_channel(*name) ? *name : std::string();
  }
}

void Worker::finish_channel(const std::string& channel) {
  if (backplane_)
    backplane_->finish_generation(channel);
  else
    hub_.finish(channel);
}

base::FrameRef Worker::publish_into(const std::string& channel, std::string_view type,
                                    std::string_view data) {
  if (backplane_) {
    if (backplane_->writes_generation(channel))
      return backplane_->publish_generation(channel, type, data);
    backplane_->publish(channel, type, data, nullptr);
    return {};
  }
  uint32_t owner = owner_of(channel);
  if (owner == index_) {
    auto published = hub_.publish(channel, type, data, loop_.now_ms(), base::wall_clock_ms());
    return published ? std::move(published->frame) : base::FrameRef();
  }
  auto* message = new Message(Message::Kind::kPublish);  // connection 0: nobody awaits the reply
  message->channel = channel;
  message->type = std::string(type);
  message->data = std::string(data);
  send_to(owner, message);
  return {};
}

void Worker::on_tick() {
  uint64_t now = loop_.now_ms();
  for (auto& proxy : detached_) proxy->tick(now);
  std::erase_if(detached_, [](const auto& proxy) { return proxy->finished(); });
  for (Connection* c = connections_; c;) {
    Connection* next = c->next;  // tick() may close c; it stays linked until its close callback
    c->tick(now);
    c = next;
  }
  hub_.sweep(now);
  if (index_ == 0 && now - last_limits_sweep_ms_ >= 10000) {  // one worker sweeps for all
    last_limits_sweep_ms_ = now;
    shared_.client_limits.sweep(now);
  }
}

void Worker::on_mail() {
  while (Message* message = mailbox_.pop()) {
    handle(*message);
    delete message;
  }
}

void Worker::handle(Message& m) {
  using Kind = Message::Kind;
  auto reply = [&](Kind kind) {
    auto* answer = new Message(kind);
    answer->connection = m.connection;
    answer->channel = std::move(m.channel);
    return answer;
  };
  switch (m.kind) {
    case Kind::kPublish: {
      if (backplane_) {
        publish_via_backplane(m);
        break;
      }
      auto published =
          hub_.publish(m.channel, m.type, m.data, loop_.now_ms(), base::wall_clock_ms());
      if (m.connection == 0) break;  // a recording route: nobody awaits the answer
      Message* answer = reply(Kind::kPublishReply);
      answer->sequence = m.sequence;
      answer->ok = published.has_value();
      if (published) answer->published = *published;
      send_to(m.from, answer);
      break;
    }
    case Kind::kSubscribe: {
      if (backplane_) {
        subscribe_via_backplane(m);
        break;
      }
      auto result = hub_.subscribe_remote(m.channel, m.from, m.resume);
      Message* answer = reply(Kind::kSubscribeReply);
      answer->ok = result.answered();
      answer->too_many_sources = result.status == hub::SubscribeResult::Status::kTooManySources;
      answer->frames = std::move(result.replay.frames);
      answer->finished = result.replay.finished;
      answer->no_content = result.replay.no_content;
      send_to(m.from, answer);
      break;
    }
    case Kind::kUnsubscribe:
      hub_.unsubscribe_remote(m.channel, m.from);
      break;
    case Kind::kInfo: {
      if (backplane_) {
        info_via_backplane(m);
        break;
      }
      Message* answer = reply(Kind::kInfoReply);
      answer->info = hub_.info(answer->channel);
      send_to(m.from, answer);
      break;
    }
    case Kind::kForward:
      hub_.deliver_mirror(m.channel, m.frame);
      break;
    case Kind::kPublishReply:
    case Kind::kSubscribeReply:
    case Kind::kInfoReply:
      answer_asker(m);
      break;
    case Kind::kShutdown:
      begin_drain();
      break;
    case Kind::kStop:
      stop();
      break;
  }
}

void Worker::answer_asker(Message& m) {
  auto it = askers_.find(m.connection);
  if (it != askers_.end()) {
    Connection* asker = it->second;
    askers_.erase(it);
    asker->on_owner_reply(m);
  } else if (m.kind == Message::Kind::kSubscribeReply && m.ok && !m.finished && !m.attached &&
             m.from != index_) {
    // The subscriber left before the owner answered: give its place back.
    auto* undo = new Message(Message::Kind::kUnsubscribe);
    undo->channel = std::move(m.channel);
    send_to(m.from, undo);
  }
}

void Worker::reply_to(uint32_t worker, Message* answer) {
  if (worker != index_) {
    // A drained worker has no connection left to answer, and at stop (the backplane's final
    // close fails what is pending) its loop may be closed already: posting to it would abort.
    if (shared_.workers[worker]->drained_reported()) {
      if (answer->kind == Message::Kind::kSubscribeReply && answer->ok && !answer->finished &&
          !answer->no_content && !answer->attached)
        hub_.unsubscribe_remote(answer->channel, worker);  // give its place back
      delete answer;
      return;
    }
    send_to(worker, answer);
    return;
  }
  answer->from = index_;
  answer_asker(*answer);
  delete answer;
}

void Worker::publish_via_backplane(const Message& m) {
  backplane_->publish(m.channel, m.type, m.data,
                      [this, from = m.from, connection = m.connection, sequence = m.sequence,
                       channel = m.channel](const backplane::RedisBackplane::Publication& p) {
                        using Status = backplane::RedisBackplane::Publication::Status;
                        if (connection == 0) return;  // a recording route: nobody awaits the answer
                        auto* answer = new Message(Message::Kind::kPublishReply);
                        answer->connection = connection;
                        answer->sequence = sequence;
                        answer->channel = channel;
                        answer->ok = p.status == Status::kStored;
                        answer->backplane_down = p.status == Status::kUnavailable;
                        if (answer->ok) {
                          answer->published.id = p.id;
                          answer->published.subscribers =
                              hub_.info(channel).subscribers;  // this instance's
                        }
                        reply_to(from, answer);
                      });
}

void Worker::subscribe_via_backplane(const Message& m) {
  backplane_->subscribe(m.channel, m.resume,
                        [this, from = m.from, connection = m.connection,
                         channel = m.channel](backplane::Admission& admission) {
                          using Status = backplane::Admission::Status;
                          auto* answer = new Message(Message::Kind::kSubscribeReply);
                          answer->connection = connection;
                          answer->channel = channel;
                          answer->ok = admission.status != Status::kUnavailable;
                          answer->backplane_down = admission.status == Status::kUnavailable;
                          answer->finished = admission.status == Status::kEnded;
                          answer->no_content = admission.status == Status::kNoContent;
                          answer->frames = std::move(admission.frames);
                          if (admission.status == Status::kLive) {
                            if (from == index_) {
                              // The asker is on this worker: it joins the channel right now, at the
                              // point its replay ended, before any later event can be fanned out.
                              auto it = askers_.find(connection);
                              if (it == askers_.end() || !it->second->is_open()) {
                                delete answer;
                                return;
                              }
                              answer->attached = hub_.attach_local(channel, it->second);
                            } else {
                              answer->attached = false;
                              if (!hub_.attach_remote(channel, from)) answer->ok = false;
                            }
                            if (from == index_ && !answer->attached) answer->ok = false;
                            if (!answer->ok) answer->frames.clear();  // over limits.max_channels
                          }
                          reply_to(from, answer);
                        });
}

void Worker::info_via_backplane(const Message& m) {
  backplane_->info(m.channel, [this, from = m.from, connection = m.connection,
                               channel = m.channel](std::optional<hub::ChannelInfo> info) {
    auto* answer = new Message(Message::Kind::kInfoReply);
    answer->connection = connection;
    answer->channel = channel;
    answer->ok = info.has_value();
    answer->backplane_down = !info;
    if (info) answer->info = *info;
    reply_to(from, answer);
  });
}

void Worker::begin_drain() {
  if (draining_) return;
  draining_ = true;
  listener_.close();
  for (Connection* c = connections_; c;) {
    Connection* next = c->next;
    c->begin_shutdown();
    c = next;
  }
  grace_timer_.start(static_cast<uint64_t>(shared_.config.shutdown_grace.count()), 0);
  check_drained();
}

void Worker::check_drained() {
  if (!draining_ || drained_reported() || connection_count_ != 0) return;
  drained_reported_.store(true, std::memory_order_release);
  shared_.worker_drained();
}

void Worker::stop() {
  detached_.clear();  // cancels what still runs
  if (backplane_) backplane_->close();
  if (sources_) sources_->close();
  for (auto& [name, client] : clients_) client->close_all();
  listener_.close();
  tick_timer_.close();
  grace_timer_.close();
  wake_.close();
  loop_.close();
}

}  // namespace ssegw::server
