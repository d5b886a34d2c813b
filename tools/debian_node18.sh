#!/usr/bin/env bash
# Unpacks Debian 12's own Node.js 18 (nodejs, libnode108 and the three builtins Debian keeps in
# /usr/share/nodejs) into DIR, so that `make test` can run the real-client tests with it even on a
# machine whose `node` is newer (tests/node/run_debian_node18.sh). Nothing is installed as
# `node`: the packages are only unpacked. Their shared libraries come from apt.
#
# usage: tools/debian_node18.sh DIR
# Does nothing when DIR already holds it, or when the machine's own node is Debian's 18 (the
# ordinary node test then covers it).
set -euo pipefail
dir=${1:?usage: tools/debian_node18.sh DIR}
if [[ -x "$dir/usr/bin/node" ]]; then exit 0; fi
if command -v node >/dev/null 2>&1 && [[ $(node -p 'process.versions.node.split(".")[0]') == 18 ]]; then
  exit 0
fi

# The bookworm version of nodejs (18.x), whatever else apt prefers (a NodeSource 20, say).
version=$(apt-cache madison nodejs | awk '$3 ~ /^18\./ {print $3; exit}')
if [[ -z "$version" ]]; then
  echo "debian_node18: Debian's nodejs 18 is not in the apt lists; run apt-get update" >&2
  exit 1
fi
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
libs=(libbrotli1 libc-ares2 libicu72 libnghttp2-14 libssl3 libuv1 zlib1g)
missing=()
for p in "${libs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sandbox=()
[[ $(id -u) -eq 0 ]] && sandbox=(-o APT::Sandbox::User=root)  # _apt cannot write to $work
(cd "$work" && apt-get download -qq "${sandbox[@]}" "nodejs=$version" "libnode108=$version" \
   node-acorn node-cjs-module-lexer node-undici)
mkdir -p "$dir.partial"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$dir.partial"; done
rm -rf "$dir"
mv "$dir.partial" "$dir"
echo "debian_node18: nodejs $version unpacked in $dir" >&2
