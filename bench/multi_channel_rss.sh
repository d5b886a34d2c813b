#!/usr/bin/env bash
# Issue 14's memory row for multi-channel streams: the gateway's RSS per idle stream that follows
# 1, 10 and 64 channels (GET /v1/events?channel=...), against the same number of single-channel
# streams (GET /v1/channels/{ch}/events) as the anchor, in the same run. Every stream of a row
# follows the same channels (c0 .. c<C-1>), so what grows is the stream's own state, not the
# channels'. A fresh gateway per row; RSS from /proc/PID/status after every head has arrived and
# the gateway has settled, minus its RSS before the first connection. Not part of make test.
#   bench/multi_channel_rss.sh              # BIN=build/bin STREAMS=2000 RUNS=3
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin}
STREAMS=${STREAMS:-2000}
RUNS=${RUNS:-3}
work=$(mktemp -d)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)" 2> /dev/null

start_gateway() {  # prints the port; the pid goes to $work/gw.pid
  printf 'listen: "127.0.0.1:0"\n' > "$work/gw.yaml"
  "$BIN/ssegw" --config "$work/gw.yaml" > /dev/null 2> "$work/gw.log" &
  echo $! > "$work/gw.pid"
  for _ in $(seq 200); do grep -aq '"listening"' "$work/gw.log" && break; sleep 0.05; done
  grep -ao '"addr":"[^"]*"' "$work/gw.log" | head -1 | sed 's/.*:\([0-9]*\)"$/\1/'
}
stop_gateway() { kill "$(cat "$work/gw.pid")" 2> /dev/null; wait "$(cat "$work/gw.pid")" 2> /dev/null; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# measure PORT PID CHANNELS MODE: opens STREAMS streams, prints "rss_before_kib rss_after_kib".
measure() {
  python3 - "$1" "$2" "$3" "$4" "$STREAMS" << 'EOF'
import selectors, socket, sys, time
port, pid, channels, mode, streams = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])
def settle():  # RSS stops moving (the gateway is idle)
    last = rss()
    for _ in range(50):
        time.sleep(0.1)
        now = rss()
        if now == last: return now
        last = now
    return last
if mode == "multi":
    path = "/v1/events?" + "&".join(f"channel=c{i}" for i in range(channels))
else:
    path = "/v1/channels/c0/events"
request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
before = settle()
sel = selectors.DefaultSelector()
socks, waiting = [], 0
for i in range(streams):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, bytearray())
    socks.append(s)
    waiting += 1
deadline = time.time() + 60
while waiting and time.time() < deadline:
    for key, _ in sel.select(1):
        buf = key.data
        buf += key.fileobj.recv(65536)
        if b"retry:" in buf:  # the head and the first chunk: the stream is open
            if not buf.startswith(b"HTTP/1.1 200"): sys.exit("refused: " + buf[:200].decode())
            sel.unregister(key.fileobj)
            waiting -= 1
if waiting: sys.exit(f"{waiting} streams got no head")
after = settle()
print(before, after)
for s in socks: s.close()
EOF
}

printf '%-28s %8s %14s %16s\n' "row" "streams" "RSS delta MiB" "bytes per stream"
for row in "single 1" "multi 1" "multi 10" "multi 64"; do
  set -- $row
  mode=$1 channels=$2
  results=()
  for _ in $(seq "$RUNS"); do
    port=$(start_gateway)
    out=$(measure "$port" "$(cat "$work/gw.pid")" "$channels" "$mode") || { echo "$row: $out"; stop_gateway; exit 1; }
    stop_gateway
    read -r before after <<< "$out"
    results+=("$(( (after - before) * 1024 / STREAMS ))")
  done
  per=$(printf '%s\n' "${results[@]}" | median)
  label="$mode, $channels channel(s)"
  [ "$mode" = single ] && label="single-channel (anchor)"
  printf '%-28s %8d %14.1f %16.0f   (runs: %s)\n' "$label" "$STREAMS" \
    "$(echo "$per * $STREAMS / 1048576" | bc -l)" "$per" "${results[*]}"
done
