#!/usr/bin/env bash
# Installs the Debian 12 packages that ssegw needs to build and test.
# Idempotent: runs `apt-get update` and `apt-get install` only when a package is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev node-llhttp libyaml-cpp-dev prometheus-cpp-dev doctest-dev libssl-dev libhiredis-dev
  libnghttp2-dev liburing-dev
  curl python3 openssl
)
# Test tools: promtool, a real browser for the demo page, Redis, and Node.js for the real-client
# tests (the openai SDK; the machine image may ship its own node). Machines that only build and
# run skip them (SSEGW_BOOTSTRAP_MINIMAL=1, as the Docker image does).
tests=0
if [[ "${SSEGW_BOOTSTRAP_MINIMAL:-0}" != 1 ]]; then
  tests=1
  packages+=(prometheus chromium redis-server nghttp2-client)
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The real-client tests need the Node.js that tests/node/package.json names in "engines" (Debian
# 12's own 18 is enough). Say so now rather than fail half-way through the suite.
[[ $tests == 1 ]] || exit 0
engines=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["engines"]["node"])' \
  "$(dirname "$0")/../tests/node/package.json")
need=${engines#>=}
have=$(node -p 'process.versions.node')
if ! python3 -c 'import sys; v=lambda s: [int(x) for x in s.split(".")]; sys.exit(v(sys.argv[1]) < v(sys.argv[2]))' \
  "$have" "$need"; then
  echo "bootstrap: node $have is too old: the tests need Node.js $engines (tests/node/package.json)." >&2
  echo "bootstrap: install Debian's nodejs (18) or newer, and make sure it comes first on PATH." >&2
  exit 1
fi
