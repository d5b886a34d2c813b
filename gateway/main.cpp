// ssegw: an SSE fan-out gateway. Wiring only: arguments, configuration, then the gateway.
#include <cstdio>
#include <cstring>
#include <string>

#include "config/config.hpp"
#include "gateway/base/log.hpp"
#include "gateway/probe.hpp"
#include "gateway/server/gateway.hpp"
#include "gateway/server/tls_setup.hpp"

using namespace ssegw;

namespace {

constexpr const char* kUsage =
    "usage: ssegw [--config FILE] [--listen HOST:PORT]\n"
    "       ssegw --check-config FILE\n"
    "       ssegw --probe URL\n"
    "       ssegw --version\n"
    "\n"
    "  --config FILE        YAML configuration (default: config/gateway.yaml)\n"
    "  --listen HOST:PORT   overrides the listen address of the configuration\n"
    "  --check-config FILE  validates FILE and exits: 0 when valid, 2 otherwise\n"
    "  --probe URL          GET http://HOST:PORT/PATH within 2s and exits: 0 on a 2xx answer,\n"
    "                       1 otherwise (a health check that needs no curl in the image)\n"
    "  --version            prints \"ssegw VERSION\" and exits 0\n";

int usage_error(const char* message) {
  std::fprintf(stderr, "ssegw: %s\n%s", message, kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "config/gateway.yaml";
  std::string listen_override;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)name;
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::fputs("ssegw " SSEGW_VERSION "\n", stdout);  // CMake's project(VERSION)
      return 0;
    } else if (arg == "--config" || arg == "--check-config") {
      const char* v = value(arg.c_str());
      if (!v) return usage_error("missing FILE");
      config_path = v;
      check_only = arg == "--check-config";
    } else if (arg == "--probe") {
      const char* v = value("--probe");
      if (!v) return usage_error("missing URL");
      return run_probe(v);
    } else if (arg == "--listen") {
      const char* v = value("--listen");
      if (!v) return usage_error("missing HOST:PORT");
      listen_override = v;
    } else {
      return usage_error(("unknown argument " + arg).c_str());
    }
  }

  config::Config config;
  try {
    config = config::load_file(config_path);
    if (!listen_override.empty())
      config::parse_listen(listen_override, config.listen_host, config.listen_port);
    if (check_only) server::check_tls(config);  // a normal start loads it in run_gateway
  } catch (const config::Error& e) {
    std::fprintf(stderr, "ssegw: %s\n", e.what());
    return 2;
  }
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  base::log::Level level = base::log::Level::kInfo;
  base::log::parse_level(config.log.level, level);
  base::log::set_level(level);
  return server::run_gateway(config);
}
