#include "gateway/net/loop.hpp"

#include <algorithm>
#include <stdexcept>
#include <type_traits>

#include "gateway/net/tcp_stream.hpp"

namespace ssegw::net {

Loop::UvLoop::UvLoop() {
  if (uv_loop_init(&loop) != 0) throw std::runtime_error("uv_loop_init failed");
}

template <typename UvHook>
Loop::FlushHook<UvHook>::FlushHook(Loop& loop) : loop_(loop) {
  if constexpr (std::is_same_v<UvHook, uv_check_t>) {
    this->opened(uv_check_init(loop.uv(), this->uv()), "uv_check_init");
    uv_check_start(this->uv(), on_run);
  } else {
    this->opened(uv_prepare_init(loop.uv(), this->uv()), "uv_prepare_init");
    uv_prepare_start(this->uv(), on_run);
  }
  uv_unref(this->uv_handle());
}

template <typename UvHook>
void Loop::FlushHook<UvHook>::on_run(UvHook* handle) {
  FlushHook::owner(handle)->loop_.flush_dirty();
}

Loop::Loop() : check_(*this), prepare_(*this) {}

Loop::~Loop() = default;

void Loop::close() {
  check_.close();
  prepare_.close();
}

int Loop::finish() {
  uv_run(uv(), UV_RUN_DEFAULT);
  return uv_loop_close(uv());
}

std::string Loop::open_handles() {
  std::string out;
  uv_walk(
      uv(),
      [](uv_handle_t* handle, void* arg) {
        auto& out = *static_cast<std::string*>(arg);
        if (!out.empty()) out += ", ";
        out += uv_handle_type_name(uv_handle_get_type(handle));
        if (uv_is_closing(handle)) out += " (closing)";
      },
      &out);
  if (unsigned requests = uv()->active_reqs.count) {
    if (!out.empty()) out += ", ";
    out += std::to_string(requests) + (requests == 1 ? " request" : " requests") + " in flight";
  }
  return out;
}

void Loop::forget(TcpStream* stream) {
  for (auto* list : {&dirty_, &flushing_, &batched_, &unbatched_}) {
    auto it = std::find(list->begin(), list->end(), stream);
    if (it != list->end()) *it = nullptr;
  }
}

bool Loop::use_send_batch() {
  if (!send_batch_) send_batch_ = SendBatch::create();
  return send_batch_ != nullptr;
}

void Loop::flush_dirty() {
  Loop* self = this;
  // Flushing can queue more frames (a drained response lets the next pipelined request run), and
  // so can the end-of-turn hook (a coalesced batch), so go on until neither has more to do,
  // swapping lists to keep the one being walked stable. The hook goes first, so that its frames
  // leave in this pass.
  for (;;) {
    self->run_end_of_turn();
    if (self->dirty_.empty()) break;
    self->flushing_.swap(self->dirty_);
    if (self->send_batch_ && self->flushing_.size() >= 2) {
      self->flush_batched();
      continue;
    }
    for (size_t i = 0; i < self->flushing_.size(); ++i) {
      TcpStream* stream = self->flushing_[i];
      if (!stream) continue;
      stream->dirty_ = false;
      stream->flush();
    }
    self->flushing_.clear();
  }
}

// First every batchable stream's bytes go into the batch, and nothing else runs: no callback can
// close a stream whose queue the batch points into. Then each stream hears what its send took,
// and the others flush as usual; a stream closed by a callback meanwhile is forgotten (null).
void Loop::flush_batched() {
  SendBatch& batch = *send_batch_;
  batch.clear();
  batched_.clear();
  unbatched_.clear();
  // Each stream's last bytes first (HTTP/2 serialises here); that may close or open connections,
  // so no socket is looked at before every stream has had its turn.
  for (TcpStream* stream : flushing_) {
    if (!stream) continue;
    stream->dirty_ = false;
    if (stream->is_open()) stream->before_flush();
  }
  for (TcpStream* stream : flushing_) {
    if (!stream) continue;
    if (stream->add_to(batch))
      batched_.push_back(stream);
    else
      unbatched_.push_back(stream);
  }
  flushing_.clear();
  if (batch.size() > 0) batch.run();
  // From here on callbacks run, and may close streams: a closed stream's handle closes, but its
  // close callback (which frees its queue) cannot run inside this pass, and sent() checks
  // is_open(); forget() nulls it in these lists when it closes.
  for (size_t i = 0; i < batched_.size(); ++i)
    if (TcpStream* stream = batched_[i]) stream->sent(batch.results()[i]);
  batched_.clear();
  for (size_t i = 0; i < unbatched_.size(); ++i)
    if (TcpStream* stream = unbatched_[i]) stream->flush();
  unbatched_.clear();
  if (send_batch_->broken()) send_batch_.reset();  // from now on, libuv writes everything
}

}  // namespace ssegw::net
