#include "gateway/http/request.hpp"

#include "gateway/base/ascii.hpp"

namespace ssegw::http {

std::string_view Request::header(std::string_view name) const {
  for (const Header& h : headers)
    if (h.name == name) return h.value;
  return {};
}

bool Request::has_header(std::string_view name) const {
  for (const Header& h : headers)
    if (h.name == name) return true;
  return false;
}

std::string_view Request::path() const {
  std::string_view t(target);
  return t.substr(0, t.find('?'));
}

std::string_view Request::query() const {
  std::string_view t(target);
  size_t q = t.find('?');
  return q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
}

void Request::clear() {
  method = 0;
  version_major = version_minor = 1;
  keep_alive = true;
  expect_continue = false;
  target.clear();
  headers.clear();
  body.clear();
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = base::hex_digit(in[i + 1]), lo = base::hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return true;
}

QueryParam query_param(std::string_view query, std::string_view name, std::string& value) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (key != name) continue;
    std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (percent_decode(raw, value)) return QueryParam::kPresent;
    value.clear();
    return QueryParam::kMalformed;
  }
  value.clear();
  return QueryParam::kAbsent;
}

}  // namespace ssegw::http
