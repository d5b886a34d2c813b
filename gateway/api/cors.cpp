#include "gateway/api/cors.hpp"

#include <algorithm>

namespace ssegw::api {

CorsPolicy::CorsPolicy(std::vector<std::string> allow_origins)
    : origins_(std::move(allow_origins)) {
  any_ = std::find(origins_.begin(), origins_.end(), "*") != origins_.end();
}

bool CorsPolicy::allows(std::string_view origin) const {
  if (origin.empty()) return false;
  return any_ || std::find(origins_.begin(), origins_.end(), origin) != origins_.end();
}

bool CorsPolicy::lists(std::string_view origin) const {
  return !origin.empty() && std::find(origins_.begin(), origins_.end(), origin) != origins_.end();
}

std::string CorsPolicy::response_headers(std::string_view origin) const {
  if (!allows(origin)) return {};
  std::string out;
  if (std::find(origins_.begin(), origins_.end(), origin) != origins_.end()) {
    // Listed explicitly: echo it and allow credentials, so that withCredentials works.
    out += "Access-Control-Allow-Origin: ";
    out.append(origin);
    out += "\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n";
  } else {
    out += "Access-Control-Allow-Origin: *\r\n";
  }
  out += "Access-Control-Expose-Headers: SSE-Channel\r\n";  // resumable answers name it
  return out;
}

std::string CorsPolicy::preflight_headers(std::string_view origin,
                                          std::string_view allow_methods) const {
  std::string out = response_headers(origin);
  if (out.empty()) return out;
  out += "Access-Control-Allow-Methods: ";
  out.append(allow_methods);
  out +=
      "\r\nAccess-Control-Allow-Headers: Last-Event-ID, Authorization, Content-Type, "
      "SSE-Channel, Prefer\r\n";
  out += "Access-Control-Max-Age: 600\r\n";
  return out;
}

}  // namespace ssegw::api
