#include "gateway/server/channels.hpp"

#include "gateway/server/worker.hpp"

namespace ssegw::server {

Channels::Channels(Worker& worker, hub::ChannelService& owner_side, hub::Hub& hub)
    : worker_(worker), owner_side_(owner_side), hub_(hub) {}

bool Channels::mine(const std::string& channel) const {
  return worker_.owner_of(channel) == worker_.index();
}

// ---- the asking side --------------------------------------------------------------------------

void Channels::publish(const std::string& channel, std::string_view type, std::string data,
                       PublishDone done) {
  if (mine(channel)) {
    owner_side_.publish(channel, type, std::move(data), std::move(done));
    return;
  }
  uint64_t id = 0;
  if (done) {
    id = next_id_++;
    publishes_.emplace(id, std::move(done));
  }
  worker_.send_to(worker_.owner_of(channel),
                  PublishRequest{id, channel, std::string(type), std::move(data)});
}

void Channels::subscribe(const std::string& channel, const hub::ResumeRequest& resume, Join join) {
  if (mine(channel)) {
    owner_side_.subscribe(channel, resume, std::move(join));
    return;
  }
  uint64_t id = next_id_++;
  joins_.emplace(id, std::move(join));
  worker_.send_to(worker_.owner_of(channel), SubscribeRequest{id, channel, resume});
}

void Channels::leave(const std::string& channel, uint32_t worker) {
  if (mine(channel))
    owner_side_.leave(channel, worker);
  else
    worker_.send_to(worker_.owner_of(channel), Leave{channel});
}

void Channels::info(const std::string& channel, InfoDone done) {
  if (mine(channel)) {
    owner_side_.info(channel, std::move(done));
    return;
  }
  uint64_t id = next_id_++;
  infos_.emplace(id, std::move(done));
  worker_.send_to(worker_.owner_of(channel), InfoRequest{id, channel});
}

base::FrameRef Channels::record(const std::string& channel, std::string_view type,
                                std::string_view data) {
  if (mine(channel)) return owner_side_.record(channel, type, data);
  // A tee into another worker's channel: nobody waits for the answer.
  worker_.send_to(worker_.owner_of(channel),
                  PublishRequest{0, channel, std::string(type), std::string(data)});
  return {};
}

template <typename Done, typename Outcome>
void Channels::answer(std::unordered_map<uint64_t, Done>& table, uint64_t id,
                      const Outcome& outcome) {
  auto it = table.find(id);
  if (it == table.end()) return;
  Done done = std::move(it->second);
  table.erase(it);
  done(outcome);
}

void Channels::on_subscribe_reply(uint32_t from, SubscribeReply& reply) {
  auto it = joins_.find(reply.id);
  if (it == joins_.end()) return;
  Join join = std::move(it->second);
  joins_.erase(it);
  bool live = reply.admission.status == hub::Admission::Status::kLive;
  hub::Member member = join(reply.admission);
  if (!live) return;
  if (member.local)
    hub_.attach_mirror(reply.channel, member.local);  // after its replay: mailbox order
  else
    worker_.send_to(from, Leave{reply.channel});  // it left meanwhile: give its place back
}

// ---- the owning side --------------------------------------------------------------------------

void Channels::on_publish(uint32_t from, PublishRequest& request) {
  PublishDone done;
  if (request.id)
    done = [this, from, id = request.id](const hub::PublishOutcome& outcome) {
      worker_.send_to(from, PublishReply{id, outcome});
    };
  owner_side_.publish(request.channel, request.type, std::move(request.data), std::move(done));
}

void Channels::on_subscribe(uint32_t from, SubscribeRequest& request) {
  owner_side_.subscribe(
      request.channel, request.resume,
      [this, from, id = request.id,
       channel = request.channel](hub::Admission& admission) -> hub::Member {
        bool live = admission.status == hub::Admission::Status::kLive;
        // A drained worker has nobody left to serve (and at stop its loop may
        // be closed already): nothing joins for it.
        if (!worker_.send_to(from, SubscribeReply{id, channel, std::move(admission)})) return {};
        if (!live) return {};
        return hub::Member{nullptr, from};
      });
}

void Channels::on_info(uint32_t from, InfoRequest& request) {
  owner_side_.info(request.channel, [this, from, id = request.id](const hub::InfoOutcome& o) {
    worker_.send_to(from, InfoReply{id, o});
  });
}

bool Channels::on_message(uint32_t from, Payload& payload) {
  if (auto* p = std::get_if<PublishRequest>(&payload)) {
    on_publish(from, *p);
  } else if (auto* r = std::get_if<PublishReply>(&payload)) {
    answer(publishes_, r->id, r->outcome);
  } else if (auto* s = std::get_if<SubscribeRequest>(&payload)) {
    on_subscribe(from, *s);
  } else if (auto* sr = std::get_if<SubscribeReply>(&payload)) {
    on_subscribe_reply(from, *sr);
  } else if (auto* l = std::get_if<Leave>(&payload)) {
    owner_side_.leave(l->channel, from);
  } else if (auto* f = std::get_if<Forward>(&payload)) {
    hub_.deliver_mirror(f->channel, f->frame);
  } else if (auto* i = std::get_if<InfoRequest>(&payload)) {
    on_info(from, *i);
  } else if (auto* ir = std::get_if<InfoReply>(&payload)) {
    answer(infos_, ir->id, ir->outcome);
  } else {
    return false;
  }
  return true;
}

}  // namespace ssegw::server
