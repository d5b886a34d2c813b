#!/usr/bin/env bash
# Installs the Debian 12 packages that ssegw needs to build and test.
# Idempotent: runs `apt-get update` and `apt-get install` only when a package is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev node-llhttp libyaml-cpp-dev prometheus-cpp-dev doctest-dev libssl-dev libhiredis-dev
  curl python3 openssl
)
# Node.js runs the real-client tests (the openai SDK); the machine image may ship its own.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
# Extra tools for tests: promtool, and a real browser for the demo page; optional on machines
# that only build and run (SSEGW_BOOTSTRAP_MINIMAL=1, as the Docker image does).
if [[ "${SSEGW_BOOTSTRAP_MINIMAL:-0}" != 1 ]]; then
  packages+=(prometheus chromium redis-server)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "bootstrap: installing ${missing[*]}" >&2
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
