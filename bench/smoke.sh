#!/usr/bin/env bash
# A few seconds of ssegw-bench against a fresh gateway on loopback, failing unless every event
# reaches every subscriber. Part of make test (ctest); not a benchmark.
set -euo pipefail
bin=${1:?usage: smoke.sh BIN_DIR}
log=$(mktemp)
config=$(mktemp --suffix=.yaml)
printf 'listen: 127.0.0.1:0\n' > "$config"
"$bin/ssegw" --config "$config" 2> "$log" &
gateway=$!
trap 'kill $gateway 2>/dev/null; wait $gateway 2>/dev/null; rm -f "$log" "$config"' EXIT
for _ in $(seq 100); do grep -q '"listening"' "$log" && break; sleep 0.05; done
port=$(grep -o '"addr":"[^"]*"' "$log" | head -1 | sed 's/.*:\([0-9]*\)"$/\1/')
[[ -n "$port" ]] || { echo "gateway did not start"; cat "$log"; exit 1; }
timeout 60 "$bin/ssegw-bench" --url-template "http://127.0.0.1:$port/v1/channels/{ch}/events" \
  --subscribers 200 --channels 4 --rate 200 --size 256 --duration 2 --pid "$gateway" \
  --table --expect-all
# The same over HTTP/2: 50 subscribers on each h2c connection.
timeout 60 "$bin/ssegw-bench" --url-template "http://127.0.0.1:$port/v1/channels/{ch}/events" \
  --subscribers 200 --http2 50 --channels 4 --rate 200 --size 256 --duration 1 --pid "$gateway" \
  --table --expect-all
# The floor program: a short run that must write every delivery in full.
timeout 30 "$bin/ssegw-floor" --connections 20 --rate 100 --size 300 --batch 2 --duration 0.5 |
  grep -q '"short_writes":0,"deliveries":1000,'
