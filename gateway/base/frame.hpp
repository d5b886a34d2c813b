// An immutable, reference-counted byte buffer shared by every reader (docs/architecture.md).
//
// Rules:
// - A Frame never changes after make(); any thread may read it.
// - The count is atomic because workers hand frames to each other.
// - The bytes are stored once, already wrapped as an HTTP/1.1 chunk, so that chunked() and raw()
//   are two views of the same memory: an HTTP/1.0 reader and a chunked reader share one frame.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

namespace ssegw::base {

class Frame;

// Intrusive owning pointer to a Frame. Moving is free; copying costs one atomic increment.
class FrameRef {
 public:
  FrameRef() = default;
  FrameRef(const FrameRef& other);
  FrameRef(FrameRef&& other) noexcept : frame_(std::exchange(other.frame_, nullptr)) {}
  FrameRef& operator=(FrameRef other) noexcept {
    std::swap(frame_, other.frame_);
    return *this;
  }
  ~FrameRef();

  const Frame* get() const { return frame_; }
  const Frame* operator->() const { return frame_; }
  const Frame& operator*() const { return *frame_; }
  explicit operator bool() const { return frame_ != nullptr; }

  // Takes over a frame whose count already includes this reference.
  static FrameRef adopt(Frame* frame) {
    FrameRef ref;
    ref.frame_ = frame;
    return ref;
  }
  // Gives up ownership without releasing (for queues that manage counts by hand).
  Frame* release() { return std::exchange(frame_, nullptr); }

 private:
  Frame* frame_ = nullptr;
};

class Frame {
 public:
  // Allocates a frame of `size` bytes; fill(char* dst) must write exactly `size` bytes.
  template <typename Fill>
  static FrameRef make(size_t size, Fill&& fill) {
    void* memory = std::malloc(sizeof(Frame) + kPrefixRoom + size + 2);
    if (!memory) throw std::bad_alloc();
    Frame* frame = new (memory) Frame(size);
    fill(frame->body());
    frame->body()[size] = '\r';
    frame->body()[size + 1] = '\n';
    return FrameRef::adopt(frame);
  }
  static FrameRef copy_of(std::string_view bytes) {
    return make(bytes.size(), [&](char* dst) { std::memcpy(dst, bytes.data(), bytes.size()); });
  }

  // The bytes themselves.
  std::string_view raw() const { return {body(), size_}; }
  // The same bytes framed as one HTTP/1.1 chunk: "<hex>\r\n<bytes>\r\n".
  std::string_view chunked() const { return {body() - prefix_len_, prefix_len_ + size_ + 2}; }
  size_t size() const { return size_; }

  void retain() const { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() const {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      this->~Frame();
      std::free(const_cast<Frame*>(this));
    }
  }

 private:
  static constexpr size_t kPrefixRoom = 18;  // 16 hex digits + CRLF

  explicit Frame(size_t size) : size_(size) {
    char hex[16];
    int n = 0;
    size_t v = size;
    do {
      hex[n++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v);
    prefix_len_ = static_cast<uint32_t>(n + 2);
    char* p = body() - prefix_len_;
    for (int i = n - 1; i >= 0; --i) *p++ = hex[i];
    *p++ = '\r';
    *p++ = '\n';
  }
  char* body() { return reinterpret_cast<char*>(this + 1) + kPrefixRoom; }
  const char* body() const { return reinterpret_cast<const char*>(this + 1) + kPrefixRoom; }

  mutable std::atomic<uint32_t> refs_{1};
  uint32_t prefix_len_ = 0;
  size_t size_;
};

inline FrameRef::FrameRef(const FrameRef& other) : frame_(other.frame_) {
  if (frame_) frame_->retain();
}
inline FrameRef::~FrameRef() {
  if (frame_) frame_->release();
}

}  // namespace ssegw::base
