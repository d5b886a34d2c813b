// The process: binds the listeners, starts one worker thread per configured worker, and turns
// SIGTERM/SIGINT into a graceful drain (docs/operations.md#shutdown-and-drain), and SIGHUP into a
// reload of the TLS certificate and key (tls_setup.hpp).
#pragma once

#include <string>

#include "config/config.hpp"

namespace ssegw::server {

// Runs until a signal has drained every worker. Returns the process exit status.
int run_gateway(const config::Config& config);

}  // namespace ssegw::server
