#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets with clang, ASan and UBSan in build-fuzz/, and runs
# each for FUZZ_SECONDS with its dictionary, starting from its committed corpus. New inputs go
# to a scratch directory, never into tests/fuzz/corpus/. Fails when any target finds a crash, a
# leak, a timeout or an out-of-memory, and prints the reproducer's path.
#
# Environment (all optional):
#   FUZZ_SECONDS=60        time per target
#   FUZZ_TARGETS="..."     which targets, in order (default: all four)
#   FUZZ_BUILD_DIR=build-fuzz, FUZZ_OUT=$FUZZ_BUILD_DIR/fuzz-out (scratch corpora, artifacts, logs)
#   FUZZ_NICE=10           niceness of the build and the fuzzers
#   FUZZ_ARGS="..."        extra libFuzzer flags, e.g. "-max_len=65536"
#   JOBS=2                 build parallelism
#   SSEGW_SOURCE_DIR       the source tree to configure (default: this repository)
#
# A reproducer replays with:  build-fuzz/bin/<target> <file>
# and, without clang:         build/bin/<target>_replay <file>
# Once its bug is fixed, copy it into tests/fuzz/corpus/<target>/ so `make test` keeps it fixed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fuzz_dir="$root/tests/fuzz"
src="${SSEGW_SOURCE_DIR:-$root}"
seconds="${FUZZ_SECONDS:-60}"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
out="${FUZZ_OUT:-$build/fuzz-out}"
niceness="${FUZZ_NICE:-10}"
jobs="${JOBS:-2}"
read -r -a targets <<<"${FUZZ_TARGETS:-http_request_fuzzer sse_parser_fuzzer ndjson_parser_fuzzer config_fuzzer}"
read -r -a extra <<<"${FUZZ_ARGS:-}"

log() { echo "fuzz: $*" >&2; }

# ---- tools: clang and libFuzzer (Debian 12: clang, and libclang-rt-14-dev for the runtime) ----
"$root/tools/bootstrap.sh"
have_libfuzzer() {
  command -v clang >/dev/null 2>&1 && command -v clang++ >/dev/null 2>&1 || return 1
  local probe
  probe=$(mktemp -d)
  printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' \
    >"$probe/p.cpp"
  local ok=0
  clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >/dev/null 2>&1 || ok=1
  rm -rf "$probe"
  return $ok
}
if ! have_libfuzzer; then
  log "installing clang and libFuzzer"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
  have_libfuzzer || { log "clang cannot link -fsanitize=fuzzer even after installing it"; exit 1; }
fi

# ---- build: clang, ASan+UBSan everywhere, fuzzer coverage on the gateway code -----------------
# -O1 without NDEBUG: the gateway's assert()s stay on while fuzzing.
log "configuring $build"
CC=clang CXX=clang++ nice -n "$niceness" cmake -S "$src" -B "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DSSEGW_SANITIZER=address -DSSEGW_FUZZ=ON >/dev/null
if [[ ! -d "$build/tests/fuzz" ]]; then
  log "the top-level CMakeLists.txt does not add_subdirectory(tests/fuzz)"
  exit 1
fi
nice -n "$niceness" cmake --build "$build" -j"$jobs" --target "${targets[@]}"

# ---- run --------------------------------------------------------------------------------------
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
summary=()
for t in "${targets[@]}"; do
  work="$out/$t"
  mkdir -p "$work/corpus" "$work/artifacts"
  dict="$fuzz_dir/dict/$t.dict"
  seeds="$fuzz_dir/corpus/$t"
  log "running $t for ${seconds}s (new inputs: $work/corpus)"
  set +e
  # The first corpus directory receives new inputs; the committed one is only read. The outer
  # timeout is a safety net: libFuzzer's own -timeout handler can deadlock inside ASan's
  # allocator when the slow input is busy allocating (seen with yaml-cpp's endless loop).
  timeout -s KILL "$((seconds + 180))" nice -n "$niceness" "$build/bin/$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -dict="$dict" \
    -artifact_prefix="$work/artifacts/" -print_final_stats=1 "${extra[@]}" \
    "$work/corpus" "$seeds" </dev/null >"$work/log" 2>&1
  status=$?
  set -e
  artifacts=$(find "$work/artifacts" -type f | sort)
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  summary+=("$(printf '%-22s exit=%-3s execs=%-10s %s' "$t" "$status" "${execs:-?}" \
    "$(sed -E 's/^#[0-9]+[[:space:]]+DONE[[:space:]]+//' <<<"$done_line")")")
  if [[ $status -ne 0 || -n "$artifacts" ]]; then
    failed+=("$t")
    [[ $status -eq 137 ]] && log "$t was killed: it hung (see the last lines of its log)"
    log "$t FAILED (exit $status); last lines of $work/log:"
    tail -n 40 "$work/log" >&2
    for a in $artifacts; do log "reproducer: $a"; done
  fi
done

echo "fuzz summary (${seconds}s each):"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  log "findings in: ${failed[*]} (artifacts under $out/<target>/artifacts/)"
  exit 1
fi
log "no findings"
