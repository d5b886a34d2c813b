#!/usr/bin/env bash
# W4, the latency ssegw adds to a proxied LLM stream: ssegw-bench --mode llm against
# ssegw-mock-llm directly and through a gateway in front of it, alternating, RUNS times each, on
# loopback. Prints every run and the medians as a Markdown table; the JSON of each run stays in
# $OUT.
#
#   bench/llm_latency.sh                          # W4: 500 streams x 200 chunks, 20 ms apart
#   STREAMS=50 bench/llm_latency.sh               # light load
#   PIN=1 bench/llm_latency.sh                    # gateway on CPU 0, mock and bench on CPU 1
#   RT=1 bench/llm_latency.sh                     # SCHED_FIFO: as if the machine were idle
#   ACCOUNTING=0 bench/llm_latency.sh             # without the accounting-off gateway
#
# Environment: STREAMS (500), TOKENS (200), INTERVAL_MS (20), RUNS (3), PIN (0), RT (0),
# ACCOUNTING (1), BIN (build/bin), OUT (a new temporary directory).
#
# The cost of usage accounting: with ACCOUNTING=1 a second gateway runs the same route with
# `usage: false` (no token counting, no include_usage, no usage record), and every round measures
# direct, accounting on and accounting off, in a rotating order.
#
# On a machine shared with other work (builds, tests), the three processes wait for a core at
# every wakeup, and each chunk needs three wakeups through the gateway (mock, gateway, bench)
# against two without it. RT=1 runs them under SCHED_FIFO, so other work cannot delay them; they
# need under one core together at W4, so the rest of the machine keeps running.
set -euo pipefail

STREAMS=${STREAMS:-500}
TOKENS=${TOKENS:-200}
INTERVAL_MS=${INTERVAL_MS:-20}
RUNS=${RUNS:-3}
PIN=${PIN:-0}
RT=${RT:-0}
ACCOUNTING=${ACCOUNTING:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/build/bin}
OUT=${OUT:-$(mktemp -d /tmp/ssegw-llm-latency.XXXXXX)}
mkdir -p "$OUT"

gw_cpu=()
side_cpu=()
if [[ $RT == 1 ]]; then
  gw_cpu+=(chrt -f 10)
  side_cpu+=(chrt -f 10)
fi
if [[ $PIN == 1 ]]; then
  gw_cpu+=(taskset -c 0)
  side_cpu+=(taskset -c 1)
fi

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Starts a server whose first stderr line is {"msg":"listening","addr":"HOST:PORT",...,"pid":N}
# and sets $port and $pid from it.
start_server() {
  local log=$1
  shift
  "$@" 2>"$log" &
  pids+=($!)
  for _ in $(seq 100); do
    if [[ -s $log ]] && head -1 "$log" | grep -q '"addr"'; then
      port=$(head -1 "$log" | jq -r '.addr | split(":") | .[-1]')
      pid=$(head -1 "$log" | jq -r '.pid')
      return 0
    fi
    sleep 0.05
  done
  echo "no listening line in $log" >&2
  cat "$log" >&2
  exit 1
}

start_server "$OUT/mock.log" "${side_cpu[@]}" "$BIN/ssegw-mock-llm" --listen 127.0.0.1:0
mock_port=$port mock_pid=$pid
cat >"$OUT/gateway.yaml" <<EOF
listen: 127.0.0.1:0
upstreams: { llm: { url: "http://127.0.0.1:$mock_port" } }
routes: [ { path: /v1/chat/completions, upstream: llm } ]
EOF
start_server "$OUT/gateway.log" "${gw_cpu[@]}" "$BIN/ssegw" --config "$OUT/gateway.yaml"
gw_port=$port gw_pid=$pid
targets=(direct gateway)
if [[ $ACCOUNTING == 1 ]]; then
  sed 's/upstream: llm }/upstream: llm, usage: false }/' "$OUT/gateway.yaml" >"$OUT/noacct.yaml"
  start_server "$OUT/noacct.log" "${gw_cpu[@]}" "$BIN/ssegw" --config "$OUT/noacct.yaml"
  noacct_port=$port noacct_pid=$pid
  targets+=(noacct)
fi

# Busy jiffies of the whole machine, and of one process. Other work on the machine (builds, tests)
# competes for the same cores, so each run records how many cores went to anything but the mock,
# the gateway and the bench.
tck=$(getconf CLK_TCK)
machine_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
process_jiffies() { awk '{print $14+$15}' "/proc/$1/stat"; }
own_jiffies() {  # the mock's and every gateway's
  local sum=0 p
  for p in "$mock_pid" "$gw_pid" ${noacct_pid:+"$noacct_pid"}; do
    sum=$((sum + $(process_jiffies "$p")))
  done
  echo "$sum"
}

run() {
  local name=$1 port=$2 server_pid=$3
  local m0 p0 t0 m1 p1 t1
  m0=$(machine_jiffies) p0=$(own_jiffies)
  t0=$(date +%s.%N)
  "${side_cpu[@]}" "$BIN/ssegw-bench" --mode llm \
    --url "http://127.0.0.1:$port/v1/chat/completions" --streams "$STREAMS" --tokens "$TOKENS" \
    --interval-ms "$INTERVAL_MS" --pid "$server_pid" --json --quiet >"$OUT/$name.json" || true
  t1=$(date +%s.%N)
  m1=$(machine_jiffies) p1=$(own_jiffies)
  jq --argjson other "$(((m1 - m0) - (p1 - p0)))" --argjson tck "$tck" \
    --argjson secs "$(jq -n "$t1 - $t0")" \
    '. + {other_cores: ((($other / $tck) - .bench.cpu_s) / $secs * 100 | round / 100)}' \
    "$OUT/$name.json" >"$OUT/$name.tmp" && mv "$OUT/$name.tmp" "$OUT/$name.json"
}

for i in $(seq "$RUNS"); do
  # A rotating order, so that no target always runs first (or right after a given one).
  n=${#targets[@]}
  for k in $(seq 0 $((n - 1))); do
    target=${targets[$(((i + k) % n))]}
    case $target in
      direct) run "direct-$i" "$mock_port" "$mock_pid" ;;
      gateway) run "gateway-$i" "$gw_port" "$gw_pid" ;;
      noacct) run "noacct-$i" "$noacct_port" "$noacct_pid" ;;
    esac
    sleep 1
  done
done

row() {
  jq -r --arg name "$1" '[$name, "\(.streams.completed)/\(.config.streams)",
      "\(.streams.terminated)", "\(.chunks.received)/\(.chunks.expected)",
      (.latency_ms.p50, .latency_ms.p90, .latency_ms.p99, .latency_ms.max | tostring),
      (.chunks.per_s | floor | tostring), (.server.cpu_ms_per_1000_chunks | tostring),
      (.bench.cpu_cores | tostring), (.other_cores | tostring)] | "| " + join(" | ") + " |"' "$2"
}
median() {  # median of field $2 over the runs named $1-*
  jq -s "[.[] | $2] | sort | .[length / 2 | floor]" "$OUT/$1"-*.json
}

pinning=unpinned
[[ $PIN == 1 ]] && pinning="gateway on CPU 0, mock and bench on CPU 1"
[[ $RT == 1 ]] && pinning+=", SCHED_FIFO"
echo "W4 LLM proxy: $STREAMS streams x $TOKENS chunks, ${INTERVAL_MS} ms apart, $RUNS runs each" \
  "($pinning, $(nproc) CPUs)"
echo
echo "| run | completed | [DONE] | chunks | p50 ms | p90 ms | p99 ms | max ms | chunks/s |" \
  "server CPU ms / 1k chunks | bench cores | other cores |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for i in $(seq "$RUNS"); do
  row "direct $i (mock)" "$OUT/direct-$i.json"
  row "gateway $i" "$OUT/gateway-$i.json"
  [[ $ACCOUNTING == 1 ]] && row "gateway $i, usage: false" "$OUT/noacct-$i.json"
done
echo
d50=$(median direct .latency_ms.p50) d99=$(median direct .latency_ms.p99)
g50=$(median gateway .latency_ms.p50) g99=$(median gateway .latency_ms.p99)
dcpu=$(median direct .server.cpu_ms_per_1000_chunks)
gcpu=$(median gateway .server.cpu_ms_per_1000_chunks)
echo "| median of $RUNS | p50 ms | p99 ms | server CPU ms / 1k chunks |"
echo "|---|---|---|---|"
echo "| direct (mock) | $d50 | $d99 | $dcpu (mock) |"
echo "| through ssegw | $g50 | $g99 | $gcpu (gateway) |"
printf '| added by ssegw | %.3f | %.3f | |\n' "$(jq -n "$g50 - $d50")" "$(jq -n "$g99 - $d99")"
if [[ $ACCOUNTING == 1 ]]; then
  n50=$(median noacct .latency_ms.p50) n99=$(median noacct .latency_ms.p99)
  ncpu=$(median noacct .server.cpu_ms_per_1000_chunks)
  echo "| through ssegw, usage: false | $n50 | $n99 | $ncpu (gateway) |"
  printf '| added by ssegw, usage: false | %.3f | %.3f | |\n' "$(jq -n "$n50 - $d50")" \
    "$(jq -n "$n99 - $d99")"
  printf '| cost of accounting (on − off) | %.3f | %.3f | %.1f |\n' "$(jq -n "$g50 - $n50")" \
    "$(jq -n "$g99 - $n99")" "$(jq -n "$gcpu - $ncpu")"
fi
echo
echo "JSON of every run: $OUT"
