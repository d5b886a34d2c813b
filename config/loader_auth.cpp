// The Loader's reader for auth: publish tokens, named keys (auth.keys) and JWT (auth.jwt).

#include <algorithm>
#include <cctype>
#include <optional>

#include "config/loader.hpp"
#include "config/public_key.hpp"
#include "config/text.hpp"

namespace ssegw::config {

namespace {

constexpr size_t kMinKeyTokenBytes = 16;
constexpr size_t kMinHmacSecretBytes = 32;  // RFC 7518 section 3.2: no shorter than the hash
// Lua (the Redis budgets' scripts) counts in doubles: keep every sum exact.
constexpr uint64_t kMaxTokensPerMinute =
    1'000'000'000'000'000 / 1000;  // 10^15, docs/configuration.md

}  // namespace

void Loader::auth(const Field& f, AuthConfig& a) {
  std::optional<Field> anonymous;
  std::optional<Field> publish_tokens;
  read_map(f.value, f.path,
           {
               {"publish_tokens",
                [&](const Field& g) {
                  a.publish_tokens = string_list(g);
                  publish_tokens = g;
                }},
               {"keys", [&](const Field& g) { keys(g, a.keys); }},
               {"jwt", [&](const Field& g) { a.jwt = jwt(g); }},
               {"anonymous_subscribe", [&](const Field& g) { anonymous = g; }},
           });
  a.anonymous_subscribe = anonymous ? boolean(*anonymous) : !a.guards_routes();
  if (!a.anonymous_subscribe && !a.guards_routes()) {
    fail(anonymous->mark(), anonymous->path +
                                ": false needs auth.jwt or auth.keys (without them no "
                                "subscriber could ever be let in)");
  }
  if (publish_tokens) {
    for (const KeyConfig& key : a.keys)
      for (const std::string& token : a.publish_tokens)
        if (token == key.token)
          fail(publish_tokens->mark(), publish_tokens->path +
                                           ": a publish token is also the "
                                           "token of key " +
                                           quoted(key.name));
  }
}

// The three budget keys of an auth.keys entry and of auth.jwt.subject_limits; absent means
// unlimited, so 0 is refused rather than read as "none allowed".
Loader::Handlers Loader::budget_limits(BudgetLimits& b) {
  return {
      {"tokens_per_minute",
       [&](const Field& g) { b.tokens_per_minute = count(g, kMaxTokensPerMinute); }},
      {"requests_per_minute", [&](const Field& g) { b.requests_per_minute = count32(g); }},
      {"max_concurrent", [&](const Field& g) { b.max_concurrent = count32(g); }},
  };
}

void Loader::keys(const Field& f, std::vector<KeyConfig>& out) {
  each_item(f, [&](const Field& item) {
    KeyConfig k;
    bool has_name = false, has_token = false;
    Handlers handlers = budget_limits(k.limits);
    handlers.insert(
        handlers.end(),
        {
            {"name",
             [&](const Field& g) {
               k.name = nonempty(g, "a key name");
               bool plain =
                   k.name.size() <= 64 && std::all_of(k.name.begin(), k.name.end(), [](char c) {
                     return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                            c == '-';
                   });
               if (!plain)
                 fail(g.mark(),
                      g.path + ": 1 to 64 characters of [A-Za-z0-9_.-], got " + quoted(k.name));
               if (k.name == "anonymous" || k.name == "jwt")
                 fail(g.mark(), g.path + ": " + quoted(k.name) +
                                    " is reserved (it names requests without a key)");
               for (const KeyConfig& other : out)
                 if (other.name == k.name)
                   fail(g.mark(), g.path + ": duplicate key name " + quoted(k.name));
               has_name = true;
             }},
            {"token",
             [&](const Field& g) {
               k.token = scalar(g, "a token of at least 16 bytes");
               if (k.token.empty())
                 fail(g.mark(), g.path + ": empty string (is the environment variable set?)");
               if (k.token.size() < kMinKeyTokenBytes)
                 fail(g.mark(),
                      g.path + ": refusing a short token: " + std::to_string(k.token.size()) +
                          " bytes, at least " + std::to_string(kMinKeyTokenBytes) + " are needed");
               for (const KeyConfig& other : out)
                 if (other.token == k.token)
                   fail(g.mark(), g.path + ": the same token as key " + quoted(other.name));
               has_token = true;
             }},
            {"routes", [&](const Field& g) { k.routes = string_list(g); }},
            {"publish", [&](const Field& g) { k.publish = string_list(g); }},
            {"subscribe", [&](const Field& g) { k.subscribe = string_list(g); }},
        });
    read_map(item.value, item.path, handlers);
    if (!has_name || !has_token) fail(item.mark(), item.path + ": needs name and token");
    out.push_back(std::move(k));
  });
}

JwtConfig Loader::jwt(const Field& f) {
  std::optional<Field> alg, secret, key_file;
  BudgetLimits subject_limits;
  uint32_t max_subjects = JwtConfig{}.max_subjects;
  read_map(f.value, f.path,
           {
               {"alg", [&](const Field& g) { alg = g; }},
               {"secret", [&](const Field& g) { secret = g; }},
               {"public_key_file", [&](const Field& g) { key_file = g; }},
               {"subject_limits",
                [&](const Field& g) { read_map(g.value, g.path, budget_limits(subject_limits)); }},
               {"max_subjects", [&](const Field& g) { max_subjects = count32(g); }},
           });
  // An empty jwt: (every line under it commented out) must not silently open subscriptions.
  if (!alg) {
    fail(f.mark(), f.path + ": missing key 'alg' (HS256, RS256 or ES256); remove " + f.path +
                       " to turn JWT off");
  }
  JwtConfig j;
  j.subject_limits = subject_limits;
  j.max_subjects = max_subjects;
  std::string name = scalar(*alg, "HS256, RS256 or ES256");
  if (name == "HS256") {
    j.alg = JwtAlg::kHS256;
  } else if (name == "RS256") {
    j.alg = JwtAlg::kRS256;
  } else if (name == "ES256") {
    j.alg = JwtAlg::kES256;
  } else {
    fail(alg->mark(), alg->path + ": expected HS256, RS256 or ES256, got " + quoted(name) +
                          (name == "none" ? " (unsigned tokens are never accepted)" : ""));
  }

  if (j.alg == JwtAlg::kHS256) {
    if (key_file) {
      fail(key_file->key.Mark(),
           key_file->path + ": HS256 verifies with a secret, not a public key file");
    }
    if (!secret) fail(f.mark(), f.path + ": HS256 needs a secret");
    j.secret = scalar(*secret, "a secret of at least 32 bytes");
    if (j.secret.empty()) {
      fail(secret->mark(), secret->path + ": empty string (is the environment variable set?)");
    }
    if (j.secret.size() < kMinHmacSecretBytes) {
      fail(secret->mark(), secret->path + ": refusing a weak HMAC key: " +
                               std::to_string(j.secret.size()) + " bytes, HS256 needs at least " +
                               std::to_string(kMinHmacSecretBytes) + " (RFC 7518 section 3.2)");
    }
  } else {
    if (secret) {
      fail(secret->key.Mark(),
           secret->path + ": " + name + " verifies with public_key_file; a secret is not used");
    }
    if (!key_file) fail(f.mark(), f.path + ": " + name + " needs public_key_file");
    j.public_key_file = nonempty(*key_file, "a PEM public key file");
    try {
      j.public_key_pem = load_public_key(j.public_key_file, j.alg);
    } catch (const Error& e) {
      fail(key_file->mark(), key_file->path + ": " + e.what());
    }
  }
  return j;
}

}  // namespace ssegw::config
