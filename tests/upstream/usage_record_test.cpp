#include "upstream/usage_record.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ssegw;

TEST_CASE("upstream/usage_record: the model comes from the body, at most 64 bytes") {
  CHECK(upstream::request_model(R"({"model":"gpt-4o-mini","stream":true})") == "gpt-4o-mini");
  CHECK(upstream::request_model(R"({"stream":true})").empty());
  CHECK(upstream::request_model("not json").empty());
  std::string long_model(100, 'm');
  CHECK(upstream::request_model("{\"model\":\"" + long_model + "\"}") == std::string(64, 'm'));
}

TEST_CASE("upstream/usage_record: outcome names") {
  CHECK(std::string(upstream::outcome_name(upstream::Outcome::kCompleted)) == "completed");
  CHECK(std::string(upstream::outcome_name(upstream::Outcome::kCancelled)) == "cancelled");
  CHECK(std::string(upstream::outcome_name(upstream::Outcome::kTruncated)) == "truncated");
  CHECK(std::string(upstream::outcome_name(upstream::Outcome::kUpstreamError)) == "upstream_error");
  CHECK(std::string(upstream::outcome_name(upstream::Outcome::kRejected)) == "rejected");
}
