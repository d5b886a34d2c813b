// The HTTP/2 side of a Session: which protocol a connection speaks, and the hand-over of its
// bytes to the H2Session once it is HTTP/2.
#include <algorithm>

#include "gateway/http/session.hpp"

namespace ssegw::http {

// RFC 9113 3.3: a client that knows the server speaks HTTP/2 starts with the preface. Its first
// 24 bytes can never begin an HTTP/1.1 request the gateway would serve ("PRI" is no method of
// its routes), so the first byte that differs from the preface decides for HTTP/1.1. The bytes
// held meanwhile wait in pending_input_ (24 at most).
void Session::sniff(const char* data, size_t length) {
  static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  size_t have = pending_input_.size();
  size_t compare = std::min(length, kPreface.size() - have);
  if (std::string_view(data, compare) != kPreface.substr(have, compare)) {
    h2_handler_ = nullptr;
    if (have == 0) {
      on_data(data, length);
      return;
    }
    pending_input_.append(data, length);
    process_pending();
    return;
  }
  if (have + length < kPreface.size()) {
    pending_input_.append(data, length);
    return;
  }
  std::string first = std::move(pending_input_);
  pending_input_.clear();
  first.append(data, length);
  start_http2(first);
}

void Session::start_http2(std::string_view first_bytes) {
  H2Session::Handler* handler = h2_handler_;
  h2_handler_ = nullptr;
  served_any_ = true;  // HTTP/1.1's timeouts no longer apply
  h2_ = std::make_unique<H2Session>(*this, limits_.http2, *handler, id_);
  if (!h2_->start()) {
    close();
    return;
  }
  if (!first_bytes.empty()) h2_->on_data(first_bytes.data(), first_bytes.size());
}

void Session::before_flush() {
  if (h2_) h2_->send();
}

}  // namespace ssegw::http
