#include "gateway/http/strict_scanner.hpp"

#include <algorithm>
#include <cassert>
#include <string_view>

#include "gateway/base/ascii.hpp"

namespace ssegw::http {

namespace {

// tchar of RFC 9110 5.6.2.
bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// VCHAR of RFC 5234: what a request line may hold besides its two SPs.
bool is_vchar(unsigned char c) {
  return c >= 0x21 && c <= 0x7E;
}

// A byte of a field value (RFC 9110 5.5: field-vchar, obs-text, SP, HTAB) or of a chunk
// extension (tokens and quoted strings, whose syntax llhttp checks): no control byte but HTAB.
bool is_field_byte(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7F);
}

constexpr const char* kBareCr = "CR not followed by LF";
constexpr const char* kBareLf = "LF without CR before it (lines end in CRLF)";
constexpr const char* kRequestLineShape =
    "the request line must be method, target and version separated by single spaces";
constexpr const char* kTargetByte =
    "the request target may hold only visible ASCII (no control byte, space, tab, DEL or byte "
    ">= 0x80)";
constexpr const char* kRequestLineByte =
    "control byte, tab, DEL or byte >= 0x80 in the request line";
constexpr const char* kObsFold = "header line starting with whitespace (obs-fold)";
constexpr const char* kNameByte = "header name is not a token";
constexpr const char* kSpaceBeforeColon = "whitespace between a header name and its colon";
constexpr const char* kNoColon = "header line without a colon";
constexpr const char* kValueByte = "control byte (NUL, DEL or another) in a header value";
constexpr const char* kTrailerField =
    "Content-Length, Transfer-Encoding, Connection or Upgrade in the trailer section";
constexpr const char* kChunkSizeStart = "chunk size is not a hex number";
constexpr const char* kChunkSizeLong = "chunk size longer than 16 hex digits";
constexpr const char* kChunkSizeByte = "invalid byte after a chunk size";
constexpr const char* kExtensionByte = "control byte in a chunk extension";
constexpr const char* kChunkDataEnd = "chunk data not followed by CRLF";

}  // namespace

void StrictScanner::reset() {
  *this = StrictScanner();
}

size_t StrictScanner::fail(size_t used, const char* why) {
  state_ = State::kFailed;
  error_ = why;
  return used;
}

// llhttp acts on these in a trailer section as it does in the head (framing, keep-alive,
// upgrade), after the request has been judged on its head.
bool StrictScanner::forbidden_trailer() const {
  if (name_length_ > sizeof name_) return false;
  std::string_view name(name_, name_length_);
  return name == "content-length" || name == "transfer-encoding" || name == "connection" ||
         name == "upgrade";
}

void StrictScanner::begin_body(Body body, uint64_t content_length) {
  assert(state_ == State::kHeadDone);
  switch (body) {
    case Body::kNone:
      state_ = State::kDone;
      break;
    case Body::kLength:
      remaining_ = content_length;
      state_ = content_length == 0 ? State::kDone : State::kLengthBody;
      break;
    case Body::kChunked:
      state_ = State::kChunkSizeStart;
      break;
  }
}

size_t StrictScanner::scan(const char* data, size_t length) {
  size_t i = 0;
  while (i < length) {
    const auto c = static_cast<unsigned char>(data[i]);
    switch (state_) {
      // ---- request line ----
      case State::kBeforeRequestLine:
        if (c == '\r') {
          empty_line_bytes_ += 2;
          state_ = State::kEmptyLineLf;
          break;
        }
        if (c == '\n') return fail(i, kBareLf);
        if (c == ' ' || c == '\t') return fail(i, "whitespace before the request line");
        state_ = State::kRequestLine;
        continue;  // the first byte of the method
      case State::kEmptyLineLf:
        if (c != '\n') return fail(i, kBareCr);
        state_ = State::kBeforeRequestLine;
        break;
      case State::kRequestLine:
        if (c == ' ') {
          if (after_space_ || ++spaces_ > 2) return fail(i, kRequestLineShape);
          after_space_ = true;
          break;
        }
        if (c == '\r') {
          if (spaces_ != 2 || after_space_) return fail(i, kRequestLineShape);
          state_ = State::kRequestLineLf;
          break;
        }
        if (c == '\n') return fail(i, kBareLf);
        if (!is_vchar(c)) return fail(i, spaces_ == 1 ? kTargetByte : kRequestLineByte);
        after_space_ = false;
        break;
      case State::kRequestLineLf:
        if (c != '\n') return fail(i, kBareCr);
        state_ = State::kFieldStart;
        break;

      // ---- header and trailer sections ----
      case State::kFieldStart:
        if (c == '\r') {
          state_ = State::kSectionEndLf;
          break;
        }
        if (c == '\n') return fail(i, kBareLf);
        // RFC 9112 2.2 and 5.2: whitespace after the start line, and obs-fold, are refused.
        if (c == ' ' || c == '\t') return fail(i, kObsFold);
        if (!is_tchar(c)) return fail(i, kNameByte);
        name_length_ = 0;
        state_ = State::kFieldName;
        continue;
      case State::kFieldName:
        if (is_tchar(c)) {
          if (name_length_ < sizeof name_)
            name_[name_length_] = base::to_lower(static_cast<char>(c));
          if (name_length_ <= sizeof name_) ++name_length_;
          break;
        }
        if (c == ':') {
          if (trailers_ && forbidden_trailer()) return fail(i, kTrailerField);
          state_ = State::kFieldValue;
          break;
        }
        if (c == ' ' || c == '\t') return fail(i, kSpaceBeforeColon);
        if (c == '\r' || c == '\n') return fail(i, kNoColon);
        return fail(i, kNameByte);
      case State::kFieldValue:
        if (c == '\r') {
          state_ = State::kFieldLf;
          break;
        }
        if (c == '\n') return fail(i, kBareLf);
        if (!is_field_byte(c)) return fail(i, kValueByte);
        break;
      case State::kFieldLf:
        if (c != '\n') return fail(i, kBareCr);
        state_ = State::kFieldStart;
        break;
      case State::kSectionEndLf:
        if (c != '\n') return fail(i, kBareCr);
        state_ = trailers_ ? State::kDone : State::kHeadDone;
        return i + 1;

      // ---- bodies ----
      case State::kLengthBody: {
        uint64_t n = std::min<uint64_t>(remaining_, length - i);
        i += static_cast<size_t>(n);
        remaining_ -= n;
        if (remaining_ > 0) return i;
        state_ = State::kDone;
        return i;
      }
      case State::kChunkSizeStart: {
        int d = base::hex_digit(data[i]);
        if (d < 0) return fail(i, kChunkSizeStart);
        chunk_size_ = static_cast<uint64_t>(d);
        chunk_digits_ = 1;
        state_ = State::kChunkSize;
        break;
      }
      case State::kChunkSize: {
        int d = base::hex_digit(data[i]);
        if (d >= 0) {
          if (++chunk_digits_ > kMaxChunkSizeDigits) return fail(i, kChunkSizeLong);
          chunk_size_ = chunk_size_ * 16 + static_cast<uint64_t>(d);
          break;
        }
        if (c == ';') {
          ++extension_bytes_;
          state_ = State::kChunkExtension;
          break;
        }
        if (c == '\r') {
          state_ = State::kChunkSizeLf;
          break;
        }
        return fail(i, c == '\n' ? kBareLf : kChunkSizeByte);
      }
      case State::kChunkExtension:
        if (c == '\r') {
          state_ = State::kChunkSizeLf;
          break;
        }
        if (c == '\n') return fail(i, kBareLf);
        if (!is_field_byte(c)) return fail(i, kExtensionByte);
        ++extension_bytes_;
        break;
      case State::kChunkSizeLf:
        if (c != '\n') return fail(i, kBareCr);
        if (chunk_size_ == 0) {
          trailers_ = true;
          state_ = State::kFieldStart;
        } else {
          remaining_ = chunk_size_;
          state_ = State::kChunkData;
        }
        break;
      case State::kChunkData: {
        uint64_t n = std::min<uint64_t>(remaining_, length - i);
        i += static_cast<size_t>(n);
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kChunkDataCr;
        continue;
      }
      case State::kChunkDataCr:
        if (c != '\r') return fail(i, kChunkDataEnd);
        state_ = State::kChunkDataLf;
        break;
      case State::kChunkDataLf:
        if (c != '\n') return fail(i, kChunkDataEnd);
        state_ = State::kChunkSizeStart;
        break;

      case State::kHeadDone:
      case State::kDone:
      case State::kFailed:
        return i;
    }
    ++i;
  }
  return i;
}

}  // namespace ssegw::http
