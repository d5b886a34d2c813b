#include "gateway/http/response.hpp"

#include "gateway/base/json.hpp"

namespace ssegw::http {

const char* reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 409:
      return "Conflict";
    case 408:
      return "Request Timeout";
    case 410:
      return "Gone";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

ResponseBuilder::ResponseBuilder(int status, bool http10) : http10_(http10) {
  out_.reserve(256);
  out_ += http10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out_ += std::to_string(status);
  out_ += ' ';
  out_ += reason_phrase(status);
  out_ += "\r\n";
}

ResponseBuilder& ResponseBuilder::header(std::string_view name, std::string_view value) {
  out_.append(name);
  out_ += ": ";
  out_.append(value);
  out_ += "\r\n";
  return *this;
}

ResponseBuilder& ResponseBuilder::raw_headers(std::string_view lines) {
  out_.append(lines);
  return *this;
}

std::string ResponseBuilder::with_body(std::string_view content_type, std::string_view body,
                                       bool keep_alive) {
  if (!content_type.empty()) header("Content-Type", content_type);
  header("Content-Length", std::to_string(body.size()));
  if (!keep_alive)
    header("Connection", "close");
  else if (http10_)
    header("Connection", "keep-alive");
  out_ += "\r\n";
  out_.append(body);
  return std::move(out_);
}

std::string ResponseBuilder::without_body(bool keep_alive) {
  if (!keep_alive) header("Connection", "close");
  out_ += "\r\n";
  return std::move(out_);
}

std::string ResponseBuilder::head() {
  out_ += "\r\n";
  return std::move(out_);
}

std::string json_error(std::string_view code, std::string_view message) {
  return base::json_error_object("code", code, message) + "\n";
}

}  // namespace ssegw::http
