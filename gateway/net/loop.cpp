#include "gateway/net/loop.hpp"

#include <algorithm>
#include <stdexcept>

#include "gateway/net/tcp_stream.hpp"

namespace net {

Loop::Loop() {
  if (uv_loop_init(&loop_) != 0) throw std::runtime_error("uv_loop_init failed");
  uv_check_init(&loop_, &check_);
  check_.data = this;
  uv_check_start(&check_, on_check);
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));  // it alone does not keep the loop alive
}

Loop::~Loop() = default;

void Loop::close() {
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&check_)))
    uv_close(reinterpret_cast<uv_handle_t*>(&check_), on_check_closed);
}

int Loop::finish() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  return uv_loop_close(&loop_);
}

void Loop::forget(TcpStream* stream) {
  auto it = std::find(dirty_.begin(), dirty_.end(), stream);
  if (it != dirty_.end()) *it = nullptr;
  it = std::find(flushing_.begin(), flushing_.end(), stream);
  if (it != flushing_.end()) *it = nullptr;
}

void Loop::on_check(uv_check_t* handle) {
  Loop* self = static_cast<Loop*>(handle->data);
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

}  // namespace net
