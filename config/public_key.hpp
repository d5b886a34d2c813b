// The public key of auth.jwt for RS256 and ES256, checked once at load time. Internal to
// config/: the loader calls it, and the verifier (gateway/api/jwt.hpp) only sees the result.
#pragma once

#include <string>

#include "config/config.hpp"

namespace ssegw::config {

// Reads the public key for RS256 or ES256 from a PEM file, checks that it suits the algorithm,
// and returns it re-encoded as PEM, so that the verifier later parses exactly what was checked.
// Throws Error with a message that does not repeat the key path's YAML position.
std::string load_public_key(const std::string& path, JwtAlg alg);

}  // namespace ssegw::config
