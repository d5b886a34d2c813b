#!/usr/bin/env bash
# Issue 7's benchmark rows: W1 (2,000 subscribers on 1 channel, 200 events/s of 256 B) through
# two ssegw instances sharing a Redis backplane (subscribers on B, publisher on A), against one
# instance in memory; then 10,000 active channels on one instance (10,000 subscribers, one per
# channel, on B; 1,000 events/s spread over them, published on A). RUNS alternating runs each,
# medians. Starts its own redis-server on a free loopback port. Not part of make test.
#   bench/backplane.sh            # BIN=build/bin RUNS=3 DURATION=15
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin}
RUNS=${RUNS:-3}
DURATION=${DURATION:-15}
work=$(mktemp -d)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
command -v redis-server > /dev/null || { echo "redis-server is missing (apt-get install redis-server)"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_gateway() {  # start_gateway NAME YAML: prints the port; the pid goes to $work/NAME.pid
  local name=$1
  printf '%s\n' "$2" > "$work/$name.yaml"
  "$BIN/ssegw" --config "$work/$name.yaml" > /dev/null 2> "$work/$name.log" &
  echo $! > "$work/$name.pid"
  for _ in $(seq 200); do grep -q '"listening"' "$work/$name.log" && break; sleep 0.05; done
  grep -o '"addr":"[^"]*"' "$work/$name.log" | head -1 | sed 's/.*:\([0-9]*\)"$/\1/'
}
stop_gateway() { kill "$(cat "$work/$1.pid")" 2> /dev/null; wait "$(cat "$work/$1.pid")" 2> /dev/null; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  > "$work/redis.log" 2>&1 &
echo $! > "$work/redis.pid"
for _ in $(seq 100); do redis-cli -p "$redis_port" ping 2> /dev/null | grep -q PONG && break; sleep 0.05; done

# run NAME SUB_PORT PUB_PORT PIDS SUBSCRIBERS CHANNELS RATE: one ssegw-bench run, JSON in $work.
run() {
  "$BIN/ssegw-bench" --url-template "http://127.0.0.1:$2/v1/channels/{ch}/events" \
    --publish-url-template "http://127.0.0.1:$3/v1/channels/{ch}/events" --pid "$4" \
    --subscribers "$5" --channels "$6" --rate "$7" --size 256 --duration "$DURATION" \
    --channel-prefix "$1." --json --quiet > "$work/$1.json" || true
}

memory_yaml="listen: 127.0.0.1:0
workers: 1"
redis_yaml="listen: 127.0.0.1:0
workers: 1
backplane: { type: redis, url: \"redis://127.0.0.1:$redis_port/0\", key_prefix: \"bench:\" }"

for i in $(seq "$RUNS"); do
  m=$(start_gateway mem "$memory_yaml")
  run "w1-memory-$i" "$m" "$m" "$(cat "$work/mem.pid")" 2000 1 200
  stop_gateway mem
  a=$(start_gateway a "$redis_yaml")
  b=$(start_gateway b "$redis_yaml")
  ab="$(cat "$work/a.pid"),$(cat "$work/b.pid")"
  run "w1-redis-$i" "$b" "$a" "$ab" 2000 1 200
  run "ch10k-redis-$i" "$b" "$a" "$ab" 10000 10000 1000
  stop_gateway a
  stop_gateway b
done

row() {  # row LABEL PREFIX
  local files=("$work/$2"-*.json)
  local lost=0
  for f in "${files[@]}"; do lost=$((lost + $(field "$f" deliveries.lost))); done
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" \
    "$(for f in "${files[@]}"; do field "$f" deliveries.per_s; done | median)" "$lost" \
    "$(for f in "${files[@]}"; do field "$f" latency_ms.p50; done | median)" \
    "$(for f in "${files[@]}"; do field "$f" latency_ms.p99; done | median)" \
    "$(for f in "${files[@]}"; do field "$f" server.cpu_s_per_million_deliveries; done | median)" \
    "$(for f in "${files[@]}"; do field "$f" subscribers.connected; done | median)"
}
{
  echo
  echo "### $(date -u +%Y-%m-%d): bench/backplane.sh (RUNS=$RUNS, DURATION=${DURATION}s, $(nproc) cores, redis $(redis-server --version | grep -o 'v=[0-9.]*'))"
  echo
  echo "| workload | deliveries/s | lost (all runs) | p50 ms | p99 ms | server CPU s per 10^6 deliveries | subscribers |"
  echo "|---|---|---|---|---|---|---|"
  row "W1, 1 instance, memory" w1-memory
  row "W1, 2 instances + Redis (subscribe on B, publish on A)" w1-redis
  row "10,000 channels, 2 instances + Redis (1 subscriber each on B, 1,000 events/s on A)" ch10k-redis
} | tee "$work/table.md"
if [[ "${WRITE_RESULTS:-1}" == 1 ]]; then
  grep -q '^## Redis backplane' bench/RESULTS.md ||
    printf '\n## Redis backplane (bench/backplane.sh)\n\nCPU is summed over both instances in the Redis rows; Redis'"'"'s own CPU is not included.\n' >> bench/RESULTS.md
  cat "$work/table.md" >> bench/RESULTS.md
fi
