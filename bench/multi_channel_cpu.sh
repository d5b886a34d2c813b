#!/usr/bin/env bash
# The price of a multi-channel stream's per-subscriber prefix (its cursor and event line, written
# before the shared frame): the gateway's CPU per delivery when STREAMS subscribers each get
# EVENTS events of 128 B, as single-channel streams (the anchor) and as streams of 10 and 64
# channels (the events all go to one of them, so every row delivers the same count). A fresh
# gateway per row; CPU is the gateway's utime+stime from /proc/PID/stat over the publishing, the
# clients read everything (a Python selector loop) and the last event's arrival ends the row.
# Not part of make test.
#   bench/multi_channel_cpu.sh              # BIN=build/bin STREAMS=500 EVENTS=2000 RUNS=3
#   ROTATE=1 bench/multi_channel_cpu.sh     # the events take turns over the channels
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin}
STREAMS=${STREAMS:-500}
EVENTS=${EVENTS:-2000}
RUNS=${RUNS:-3}
work=$(mktemp -d)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)" 2> /dev/null

start_gateway() {  # prints the port; the pid goes to $work/gw.pid
  printf 'listen: "127.0.0.1:0"\nslow_consumer: {max_queued_bytes: 64MiB}\n' > "$work/gw.yaml"
  "$BIN/ssegw" --config "$work/gw.yaml" > /dev/null 2> "$work/gw.log" &
  echo $! > "$work/gw.pid"
  for _ in $(seq 200); do grep -aq '"listening"' "$work/gw.log" && break; sleep 0.05; done
  grep -ao '"addr":"[^"]*"' "$work/gw.log" | head -1 | sed 's/.*:\([0-9]*\)"$/\1/'
}
stop_gateway() { kill "$(cat "$work/gw.pid")" 2> /dev/null; wait "$(cat "$work/gw.pid")" 2> /dev/null; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# measure PORT PID CHANNELS MODE: prints the gateway's CPU microseconds per delivery.
measure() {
  python3 - "$1" "$2" "$3" "$4" "$STREAMS" "$EVENTS" << 'EOF'
import os, selectors, socket, sys, threading, time
port, pid, channels, mode, streams, events = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
port = int(port)
tick = os.sysconf("SC_CLK_TCK")
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick if os.environ.get("SPLIT") is None else (int(f[11]) if os.environ["SPLIT"] == "user" else int(f[12])) / tick
path = ("/v1/events?" + "&".join(f"channel=c{i}" for i in range(channels))) if mode == "multi" else "/v1/channels/c0/events"
request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
sel = selectors.DefaultSelector()
state = {}
for i in range(streams):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    state[s] = [b"", 0]  # unparsed tail, events seen
marker = b"data: e"
def pump(until):
    done = sum(1 for v in state.values() if v[1] >= until)
    deadline = time.time() + 120
    while done < len(state) and time.time() < deadline:
        for key, _ in sel.select(1):
            v = state[key.fileobj]
            data = v[0] + key.fileobj.recv(1 << 20)
            before = v[1]
            v[1] += data.count(marker)
            cut = data.rfind(b"\n")
            v[0] = data[cut + 1:] if cut >= 0 else data
            if before < until <= v[1]: done += 1
    if done < len(state): sys.exit(f"only {done} of {len(state)} streams got {until} events")
# Heads: every stream open before anything is published.
deadline = time.time() + 60
opened = set()
while len(opened) < streams and time.time() < deadline:
    for key, _ in sel.select(1):
        v = state[key.fileobj]
        v[0] += key.fileobj.recv(65536)
        if b"retry:" in v[0]: opened.add(key.fileobj)
for v in state.values(): v[0] = b""
if len(opened) < streams: sys.exit("not every stream opened")
payload = b"e" + b"x" * 127
pub = socket.create_connection(("127.0.0.1", port))
def publish():
    # ROTATE=1: the events take turns over the stream's channels (each one moves the cursor's
    # entry of another channel), else they all go to c0.
    rotate = os.environ.get("ROTATE") == "1" and mode == "multi"
    def head(k):
        c = k % channels if rotate else 0
        return f"POST /v1/channels/c{c}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
    batch = 50  # pipelined, then their answers
    for start in range(0, events, batch):
        n = min(batch, events - start)
        pub.sendall(b"".join(head(start + k) + payload for k in range(n)))
        got = b""
        while got.count(b"HTTP/1.1 200") < n:
            got += pub.recv(65536)
time.sleep(0.5)
c0 = cpu()
t = threading.Thread(target=publish)
t.start()
pump(events)
t.join()
c1 = cpu()
print(f"{(c1 - c0) * 1e6 / (streams * events):.3f}")
EOF
}

printf '%-28s %8s %8s %22s\n' "row" "streams" "events" "CPU us per delivery"
for row in "single 1" "multi 10" "multi 64"; do
  set -- $row
  mode=$1 channels=$2
  results=()
  for _ in $(seq "$RUNS"); do
    port=$(start_gateway)
    out=$(measure "$port" "$(cat "$work/gw.pid")" "$channels" "$mode") || { echo "$row: $out"; stop_gateway; exit 1; }
    stop_gateway
    results+=("$out")
  done
  label="$mode, $channels channel(s)"
  [ "$mode" = single ] && label="single-channel (anchor)"
  printf '%-28s %8d %8d %22s   (runs: %s)\n' "$label" "$STREAMS" "$EVENTS" \
    "$(printf '%s\n' "${results[@]}" | median)" "${results[*]}"
done
