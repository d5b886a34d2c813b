#include "gateway/api/cors.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ssegw;

using api::CorsPolicy;

namespace {

const char* const kPreflightTail =
    "Access-Control-Allow-Headers: Last-Event-ID, Authorization, Content-Type, SSE-Channel, "
    "Prefer\r\n"
    "Access-Control-Max-Age: 600\r\n";

}  // namespace

TEST_CASE("api/cors: any origin") {
  CorsPolicy cors({"*"});
  CHECK(cors.allows("https://a.example"));
  CHECK(cors.allows("null"));
  CHECK_FALSE(cors.allows(""));
  CHECK(cors.response_headers("https://a.example") ==
        "Access-Control-Allow-Origin: *\r\n"
        "Access-Control-Expose-Headers: SSE-Channel\r\n");
  CHECK(cors.response_headers("").empty());
  std::string h = cors.response_headers("https://a.example");
  CHECK(h.find("Credentials") == std::string::npos);
  CHECK(h.find("Vary") == std::string::npos);
  CHECK(cors.preflight_headers("https://a.example", "GET, POST, OPTIONS") ==
        std::string("Access-Control-Allow-Origin: *\r\n"
                    "Access-Control-Expose-Headers: SSE-Channel\r\n"
                    "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n") +
            kPreflightTail);
  CHECK(cors.preflight_headers("", "GET").empty());
}

TEST_CASE("api/cors: explicit origins") {
  CorsPolicy cors({"https://a.example", "http://localhost:3000"});
  CHECK(cors.allows("https://a.example"));
  CHECK(cors.allows("http://localhost:3000"));
  CHECK(cors.response_headers("https://a.example") ==
        "Access-Control-Allow-Origin: https://a.example\r\n"
        "Access-Control-Allow-Credentials: true\r\n"
        "Vary: Origin\r\n"
        "Access-Control-Expose-Headers: SSE-Channel\r\n");
  CHECK(cors.response_headers("http://localhost:3000") ==
        "Access-Control-Allow-Origin: http://localhost:3000\r\n"
        "Access-Control-Allow-Credentials: true\r\n"
        "Vary: Origin\r\n"
        "Access-Control-Expose-Headers: SSE-Channel\r\n");
  CHECK(cors.preflight_headers("http://localhost:3000", "GET, OPTIONS") ==
        std::string("Access-Control-Allow-Origin: http://localhost:3000\r\n"
                    "Access-Control-Allow-Credentials: true\r\n"
                    "Vary: Origin\r\n"
                    "Access-Control-Expose-Headers: SSE-Channel\r\n"
                    "Access-Control-Allow-Methods: GET, OPTIONS\r\n") +
            kPreflightTail);
}

TEST_CASE("api/cors: unknown origins get nothing") {
  CorsPolicy cors({"https://a.example"});
  for (std::string_view origin :
       {"", "https://b.example", "https://a.example.evil", "http://a.example", "https://a.example/",
        "https://A.example", "https://a.example:443", "*", "null"}) {
    CAPTURE(origin);
    CHECK_FALSE(cors.allows(origin));
    CHECK(cors.response_headers(origin).empty());
    CHECK(cors.preflight_headers(origin, "GET, POST, OPTIONS").empty());
  }
}

TEST_CASE("api/cors: no origins configured") {
  CorsPolicy cors({});
  CHECK_FALSE(cors.allows("http://localhost"));
  CHECK(cors.response_headers("http://localhost").empty());
  CHECK(cors.preflight_headers("http://localhost", "GET").empty());
}

TEST_CASE("api/cors: a listed origin next to * is still echoed with credentials") {
  CorsPolicy cors({"*", "https://a.example"});
  CHECK(cors.response_headers("https://a.example") ==
        "Access-Control-Allow-Origin: https://a.example\r\n"
        "Access-Control-Allow-Credentials: true\r\n"
        "Vary: Origin\r\n"
        "Access-Control-Expose-Headers: SSE-Channel\r\n");
  CHECK(cors.response_headers("https://b.example") ==
        "Access-Control-Allow-Origin: *\r\n"
        "Access-Control-Expose-Headers: SSE-Channel\r\n");
}
