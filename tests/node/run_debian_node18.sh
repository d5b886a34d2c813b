#!/usr/bin/env bash
# Runs the real-client tests (tests/node) with Debian 12's own Node.js 18, unpacked into DIR by
# tools/debian_node18.sh, so that CI proves on every run that `make test` works on a stock Debian
# 12 whose node is 18 even when the machine's own node is newer.
#
# Debian's node loads three builtins from /usr/share/nodejs, a path compiled in. A private mount
# namespace lays DIR/usr/share over /usr/share (a read-only overlay) for this process only.
#
# usage: run_debian_node18.sh DIR    (SSEGW_BIN_DIR must name the binaries, as for node --test)
# Exit 77 (a ctest skip, printed with its reason) when this machine's node is 18 already, which
# the ordinary node test covers, or when DIR or the overlay is not available.
set -uo pipefail
dir=${1:?usage: run_debian_node18.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
skip() {
  echo "SKIPPED: $*"
  exit 77
}
if command -v node >/dev/null 2>&1 && [[ $(node -p 'process.versions.node.split(".")[0]') == 18 ]]; then
  skip "this machine's node is $(node --version); the test 'node: real clients' runs with it"
fi
[[ -x "$dir/usr/bin/node" ]] || skip "no Debian Node 18 in $dir (make test unpacks it with tools/debian_node18.sh)"
[[ $(id -u) -eq 0 ]] || skip "the /usr/share overlay needs root (unshare -m)"
export NODE18_DIR=$dir TESTS_DIR=$here
exec unshare -m bash -c '
  mount -t overlay overlay -o "lowerdir=$NODE18_DIR/usr/share:/usr/share" /usr/share ||
    { echo "SKIPPED: cannot overlay /usr/share here"; exit 77; }
  export LD_LIBRARY_PATH="$NODE18_DIR/usr/lib/x86_64-linux-gnu"
  node="$NODE18_DIR/usr/bin/node"
  version=$("$node" --version) || exit 1
  [[ $version == v18.* ]] || { echo "expected Node 18, got $version"; exit 1; }
  echo "running tests/node with Debian $version"
  exec "$node" --test "$TESTS_DIR/"
'
