#include "bench/subscriber.hpp"

#include <algorithm>
#include <iterator>

#include "bench/payload.hpp"
#include "bench/subscriber_pool.hpp"

namespace bench {

void Subscriber::init(SubscriberPool* pool, uint32_t index, uint32_t channel, uint32_t source_ip) {
  pool_ = pool;
  index_ = index;
  channel_ = channel;
  source_ip_ = static_cast<uint8_t>(source_ip);
  sse_.set_handler(&Subscriber::on_event, this);
}

void Subscriber::start(uint64_t now_ns) {
  if (state_ != State::Idle) return;
  bump(pool_->stats().started);
  if (H2Connection* connection = pool_->h2_connection(index_)) {
    connect_h2(pool_->client_loop(), *connection, pool_->path(channel_), now_ns);
    return;
  }
  // The request is shared by every subscriber of the channel and lives as long as the pool.
  connect(pool_->client_loop(), pool_->run().options.subscribe_url.addr, pool_->request(channel_),
          source_ip_, now_ns);
}

void Subscriber::check_timeout(uint64_t now_ns, uint64_t timeout_ns) {
  if (head_overdue(now_ns, timeout_ns)) fail(Failure::Timeout);
}

void Subscriber::close() {
  if (active()) {
    pool_->stats().comments += sse_.comments();
    if (state_ == State::Streaming) {
      pool_->run().channels[channel_].connected.fetch_sub(1, std::memory_order_relaxed);
    } else {
      pool_->on_resolved();
    }
  }
  close_handle();
}

void Subscriber::fail(Failure why) {
  if (!pending()) return;
  // The counter of each Failure, in the enum's order.
  static constexpr uint64_t SubscriberStats::*kCounters[] = {
      &SubscriberStats::failed_connect, &SubscriberStats::failed_timeout,
      &SubscriberStats::failed_status, &SubscriberStats::failed_closed,
      &SubscriberStats::failed_protocol};
  static_assert(std::size(kCounters) == static_cast<size_t>(Failure::Protocol) + 1);
  SubscriberStats& s = pool_->stats();
  ++(s.*kCounters[static_cast<size_t>(why)]);
  bump(s.failed);
  close();
}

void Subscriber::lose_stream() {
  if (state_ != State::Streaming) return;
  ++pool_->stats().disconnected;
  close();
}

void Subscriber::on_end(End how) {
  if (state_ == State::Streaming) {
    lose_stream();  // the server finished the stream, closed it, or broke its framing
  } else {
    fail(how == End::Protocol ? Failure::Protocol : Failure::Closed);
  }
}

void Subscriber::on_bad_status(int status) {
  pool_->stats().last_bad_status = status;
  fail(Failure::Status);
}

void Subscriber::on_streaming() {
  SubscriberPool& pool = *pool_;
  ChannelState& channel = pool.run().channels[channel_];
  // Events published before this point are not expected here; later ones carry higher seqs.
  last_seq_ = channel.seq.load(std::memory_order_relaxed);
  channel.connected.fetch_add(1, std::memory_order_relaxed);
  pool.on_resolved();
  bump(pool.stats().connected);
  pool.stats().last_connected_ns.store(loop().now_ns, std::memory_order_relaxed);
}

void Subscriber::on_event(void* context, const SseEvent& event) {
  static_cast<Subscriber*>(context)->handle_event(event);
}

void Subscriber::handle_event(const SseEvent& event) {
  SubscriberStats& s = pool_->stats();
  if (!event.type.empty() && event.type != "message") {
    ++s.other_types;
    return;
  }
  PayloadStamp stamp;
  RunState& run = pool_->run();
  if (!parse_payload(event.data_prefix, stamp) || stamp.run != run.run_id) {
    ++s.foreign;
    return;
  }
  if (event.data_bytes != std::max<size_t>(run.options.size, stamp.header_len)) ++s.size_mismatch;
  if (stamp.seq <= last_seq_) {
    ++s.out_of_order;
    return;
  }
  s.gaps += stamp.seq - last_seq_ - 1;
  last_seq_ = stamp.seq;
  uint64_t now = loop().now_ns;
  s.latency.record(now > stamp.t_ns ? now - stamp.t_ns : 0);
  bump(s.received);
}

}  // namespace bench
