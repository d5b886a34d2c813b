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
  auto it = std::find(dirty_.begin(), dirty_.end(), stream);
  if (it != dirty_.end()) *it = nullptr;
  it = std::find(flushing_.begin(), flushing_.end(), stream);
  if (it != flushing_.end()) *it = nullptr;
}

void Loop::flush_dirty() {
  Loop* self = this;
  // Flushing can queue more frames (a drained response lets the next pipelined request run), so
  // flush until nothing new became dirty, swapping lists to keep the one being walked stable.
  while (!self->dirty_.empty()) {
    self->flushing_.swap(self->dirty_);
    for (size_t i = 0; i < self->flushing_.size(); ++i) {
      TcpStream* stream = self->flushing_[i];
      if (!stream) continue;
      stream->dirty_ = false;
      stream->flush();
    }
    self->flushing_.clear();
  }
}

}  // namespace ssegw::net
