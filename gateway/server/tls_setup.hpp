// The listener's TLS, from the configuration to the workers (docs/security.md#tls): the start-up
// load, the ALPN list, and the SIGHUP reload.
//
// Rules:
// - Loading reads files: it runs on the main thread (start-up, the Supervisor's SIGHUP), never
//   on a worker's loop. Workers only take the current context from Shared::tls, once per accepted
//   connection.
// - No OpenSSL or net type in this header: gateway/main.cpp includes it for --check-config.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace ssegw::net {
class TlsContext;
}

namespace ssegw::server {

struct Shared;

// The protocols the listener offers with ALPN, in order of preference.
std::vector<std::string> alpn_protocols(const config::Config& config);
// Loads config.tls; null with error ("file:line:column: tls.key_file: ...") when it fails.
std::shared_ptr<const net::TlsContext> load_tls(const config::Config& config, std::string& error);
// For --check-config: throws config::Error when config.tls is set and does not load.
void check_tls(const config::Config& config);
// Puts a loaded context in service for new connections: Shared::tls and the expiry gauge.
void serve_tls(Shared& shared, std::shared_ptr<const net::TlsContext> context);
// SIGHUP: loads the files again; on success new connections use the new pair, on failure the
// error is logged and counted, and the old pair stays.
void reload_tls(Shared& shared);

}  // namespace ssegw::server
