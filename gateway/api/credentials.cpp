#include "gateway/api/credentials.hpp"

#include <algorithm>

#include "gateway/base/ascii.hpp"

namespace ssegw::api {
namespace {

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// The first non-empty value of a cookie in a Cookie header value (RFC 6265 section 4.2.1:
// "name=value" pairs separated by ';' and optional whitespace; a value may be in quotes).
std::string_view cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != name) continue;
    std::string_view value = trim(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    if (!value.empty()) return value;
  }
  return {};
}

// The undecoded value of the first `name` parameter, for when percent-decoding fails.
std::string_view raw_query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name && eq != std::string_view::npos) return pair.substr(eq + 1);
  }
  return {};
}

}  // namespace

// "Bearer <token>" (RFC 6750 section 2.1; the scheme is case-insensitive).
std::string_view bearer_token(std::string_view authorization) {
  std::string_view v = trim(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size() || !base::iequals(v.substr(0, kScheme.size()), kScheme) ||
      !is_ows(v[kScheme.size()]))
    return {};
  return trim(v.substr(kScheme.size() + 1));
}

Credential find_credential(std::string_view authorization, std::string_view cookie_header,
                           std::string_view query) {
  using Source = Credential::Source;
  if (std::string_view token = bearer_token(authorization); !token.empty())
    return {Source::kHeader, std::string(token)};
  if (std::string_view token = cookie_value(cookie_header, kTokenCookie); !token.empty())
    return {Source::kCookie, std::string(token)};
  std::string token;
  switch (http::query_param(query, kTokenParameter, token)) {
    case http::QueryParam::kPresent:
      if (!token.empty()) return {Source::kQuery, std::move(token)};
      break;
    case http::QueryParam::kMalformed:
      return {Source::kQuery, std::string(raw_query_value(query, kTokenParameter))};
    case http::QueryParam::kAbsent:
      break;
  }
  return {};
}

std::string without_token_cookie(std::string_view header) {
  std::string out;
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    if (pair.empty() || trim(pair.substr(0, pair.find('='))) == kTokenCookie) continue;
    if (!out.empty()) out += "; ";
    out.append(pair);
  }
  return out;
}

std::string without_token_parameter(std::string_view target) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return std::string(target);
  std::string out(target.substr(0, q));
  std::string_view query = target.substr(q + 1);
  bool first = true;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.substr(0, pair.find('=')) == kTokenParameter) continue;
    out += first ? '?' : '&';
    out.append(pair);
    first = false;
  }
  return out;
}

}  // namespace ssegw::api
