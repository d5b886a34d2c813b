#include "gateway/net/loop.hpp"

#include <algorithm>
#include <stdexcept>

#include "gateway/net/tcp_stream.hpp"

namespace ssegw::net {

Loop::Loop() {
  if (uv_loop_init(&loop_) != 0) throw std::runtime_error("uv_loop_init failed");
  uv_check_init(&loop_, &check_);
  check_.data = this;
  uv_check_start(&check_, on_check);
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));  // it alone does not keep the loop alive
  uv_prepare_init(&loop_, &prepare_);
  prepare_.data = this;
  uv_prepare_start(&prepare_, on_prepare);
  uv_unref(reinterpret_cast<uv_handle_t*>(&prepare_));
}

Loop::~Loop() = default;

void Loop::close() {
  for (uv_handle_t* handle :
       {reinterpret_cast<uv_handle_t*>(&check_), reinterpret_cast<uv_handle_t*>(&prepare_)}) {
    if (!uv_is_closing(handle)) uv_close(handle, on_handle_closed);
  }
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
  static_cast<Loop*>(handle->data)->flush_dirty();
}

void Loop::on_prepare(uv_prepare_t* handle) {
  static_cast<Loop*>(handle->data)->flush_dirty();
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
