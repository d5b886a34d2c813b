// HTTP/2 clients for the integration tests, over plain POSIX sockets like the rest of the harness:
// - H2Client: nghttp2's client session, for many streams on one connection, resets and per-stream
//   flow control (a stream whose window the test never opens);
// - raw frames (h2_frame, h2_headers_block, read_frames), for the conformance and flood cases
//   that a well-behaved client library refuses to send.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/integration/harness.hpp"

struct nghttp2_session;

namespace itest {

using HeaderPairs = std::vector<std::pair<std::string, std::string>>;

class H2Client {
 public:
  struct Options {
    // The client's SETTINGS_INITIAL_WINDOW_SIZE: how much each stream may receive before the
    // client opens its window again.
    uint32_t initial_window_size = 65535;
    // Streams whose received bytes the client never acknowledges (no WINDOW_UPDATE): a stream
    // that never reads. The connection's window is still opened for them.
    std::set<int32_t> stalled{};
  };
  struct Stream {
    int status = 0;
    HeaderPairs headers;
    std::string body;
    bool closed = false;
    uint32_t error_code = 0;  // RST_STREAM's, when the server reset it
    bool reset = false;
    SseParser sse;
    size_t events() {
      sse.parse(body, false);
      return sse.events().size();
    }
  };

  H2Client(uint16_t port, Options options);
  explicit H2Client(uint16_t port) : H2Client(port, Options{}) {}
  ~H2Client();
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  // A request; returns its stream id. host goes in :authority.
  int32_t submit(const std::string& method, const std::string& path,
                 const HeaderPairs& headers = {}, const std::string& body = "");
  int32_t get(const std::string& path, const HeaderPairs& headers = {}) {
    return submit("GET", path, headers);
  }
  void reset(int32_t stream_id, uint32_t error_code = 8 /* CANCEL */);
  void stall(int32_t stream_id) { options_.stalled.insert(stream_id); }

  // Sends what is due and reads what comes, until done() or timeout. False on timeout.
  bool pump_until(const std::function<bool()>& done, Ms timeout = kTimeout);
  // Until the stream has closed.
  Stream& finish(int32_t stream_id, Ms timeout = kTimeout);
  Stream& stream(int32_t stream_id) { return streams_[stream_id]; }

  bool goaway() const { return goaway_; }
  uint32_t goaway_error() const { return goaway_error_; }
  bool eof() const { return eof_; }
  int fd() const { return fd_.get(); }

 private:
  struct Callbacks;
  void flush();

  Fd fd_;
  Options options_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Stream> streams_;
  std::map<int32_t, std::string> bodies_;  // request bodies being sent
  std::string out_;
  bool goaway_ = false;
  uint32_t goaway_error_ = 0;
  bool eof_ = false;
};

// ---- raw frames -------------------------------------------------------------------------------

inline constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct H2Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream = 0;
  std::string payload;
  // GOAWAY's and RST_STREAM's error code.
  uint32_t error_code() const;
};

enum H2Type : uint8_t {
  kData = 0,
  kHeaders = 1,
  kPriority = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoaway = 7,
  kWindowUpdate = 8,
  kContinuation = 9,
};

std::string h2_frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload);
// A HPACK header block of literal fields without indexing or Huffman coding (names and values
// under 127 bytes), sent as given: upper-case names included.
std::string h2_headers_block(const HeaderPairs& fields);
// The preface and an empty SETTINGS frame.
std::string h2_client_start();
// GET path with :authority 127.0.0.1, END_STREAM.
std::string h2_get(uint32_t stream, const std::string& path, const HeaderPairs& extra = {});

// Reads frames from fd into frames until done(frames) or the server closes (eof set) or timeout.
// False on timeout.
bool read_frames(int fd, std::string& buffer, std::vector<H2Frame>& frames, bool& eof,
                 const std::function<bool(const std::vector<H2Frame>&)>& done,
                 Ms timeout = kTimeout);
// The first frame of this type (and stream, unless any_stream), or nullptr.
const H2Frame* find_frame(const std::vector<H2Frame>& frames, uint8_t type, int64_t stream = -1);

// VmRSS of the process, in KiB.
inline long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// One raw HTTP/2 connection: the preface and SETTINGS sent, frames read as they come.
struct RawH2 {
  explicit RawH2(uint16_t port, bool start = true) : fd(connect_to(port)) {
    if (start) send(h2_client_start());
  }
  void send(std::string_view bytes) { send_all(fd.get(), bytes); }
  bool until(const std::function<bool(const std::vector<H2Frame>&)>& done, Ms timeout = kTimeout) {
    return read_frames(fd.get(), buffer, frames, eof, done, timeout);
  }
  // Waits for the server's GOAWAY and the close after it; returns the GOAWAY's error code.
  uint32_t goaway_and_close() {
    REQUIRE(until([&](const auto&) { return eof; }));
    const H2Frame* g = find_frame(frames, kGoaway);
    REQUIRE(g != nullptr);
    return g->error_code();
  }
  const H2Frame* rst(uint32_t stream) { return find_frame(frames, kRstStream, stream); }
  // The :status of the stream's answer (a HEADERS frame the test decodes no further): the
  // answers here are all JSON errors, whose body is checked instead.
  std::string body(uint32_t stream) {
    std::string out;
    for (const H2Frame& f : frames)
      if (f.type == kData && f.stream == stream) out += f.payload;
    return out;
  }
  bool ended(uint32_t stream) {
    for (const H2Frame& f : frames)
      if (f.stream == stream && (f.flags & 0x1) && (f.type == kData || f.type == kHeaders))
        return true;
    return false;
  }

  Fd fd;
  std::string buffer;
  std::vector<H2Frame> frames;
  bool eof = false;
};

}  // namespace itest
