#!/usr/bin/env bash
# ssegw against Nchan (nginx) and Pushpin on loopback, same machine, same run (issue 4):
#
#   W1    fan-out: 2,000 subscribers on 1 channel, 200 events/s of 256 B, 15 s
#   W2    idle scale: 10,000 subscribers on 1 channel, 10 events/s, RSS per idle subscriber
#   W3    many channels: 2,000 subscribers over 1,000 channels, 500 events/s
#   W-max W1 with the publish rate doubled step by step, then bisected, until fewer than 99 % of
#         the offered deliveries arrive or p99 passes 100 ms: the highest sustained deliveries/s.
#         Also ssegw with 1 worker against 2, pinned to one core and unpinned.
#   W4    LLM proxy: 500 streams x 200 chunks at 50 chunks/s from ssegw-mock-llm, directly,
#         through an ssegw route and through nginx (proxy_buffering off); latency added per chunk
#   scaling  W-max for ssegw with 1, 2 and auto workers (SCALING_WORKERS), unpinned: deliveries/s
#         against workers, the same method on any machine (not in WORKLOADS by default)
#   W5    proxied-stream capacity: 5,000 concurrent streaming routes at 20 chunks/s each from
#         ssegw-mock-llm, directly, through ssegw and through nginx (proxy_buffering off), and the
#         same at other stream counts (W5_STEPS): CPU per chunk, added p99, RSS per open stream, and
#         the most streams held with an added p99 under 5 ms
#   W1-load W1 under load: 1,000 subscribers on 1 channel, 400 events/s asked from ONE publisher
#         that waits for each answer (--publishers 1 --pipeline 1): the rate it is accepted at
#   floor after each round of W1 and W3: ssegw-floor, the kernel's price of the same deliveries
#         written by a program that does nothing else (one write per delivery, 2 and 4 per write)
#   coalesce  1,000 subscribers on 1 channel at 100, 400 and 1,000 events/s, for Nchan and for
#         ssegw with each fanout.coalesce window (0, 2, 5 and 10 ms): CPU per delivery against
#         latency (not in WORKLOADS by default)
#   H2    W1 over HTTP/1.1 and over HTTP/2 (h2c, 100 subscribers per connection, as a browser's
#         EventSources to one origin), for ssegw and for Nchan behind nginx's HTTP/2: CPU per
#         delivery, p99 and RSS per subscriber of each protocol (not in WORKLOADS by default)
#
# Each workload runs RUNS (3) times against every server, the servers' order rotating between
# runs, every run against a freshly started server. The medians go into bench/RESULTS.md, section
# "## Comparison (bench/compare.sh)" (replaced as a whole; every other section stays as it is),
# and every run's JSON stays in $OUT.
#
#   bench/compare.sh                          # the default workloads (about 40 minutes)
#   QUICK=1 bench/compare.sh                  # small sizes, 1 run: a minute or two, for debugging
#   WORKLOADS="w1 wmax" PEERS="ssegw nchan" bench/compare.sh
#   BIN=/tmp/wt/build/bin WRITE=0 bench/compare.sh   # other binaries; don't touch RESULTS.md
#
# Installs nginx, libnginx-mod-nchan, pushpin, nodejs and jq with apt-get when they are missing
# (and stops the system services that installing them may have started).
#
# Pinning (PIN=1, the default): every server process on CPU $SERVER_CPU (1), the bench, the mock
# LLM and Pushpin's origin on CPU $CLIENT_CPU (0), so that the load generator never takes CPU
# from the server it measures and each server gets exactly one core. The servers still run two
# workers each (ssegw workers: 2, nginx worker_processes 2, condure's 2 threads), as the issue
# asks; the W-max series ssegw-*-unpinned show what a second core does for ssegw.
#
# Environment (defaults; QUICK=1 defaults in brackets):
#   BIN (build/bin), OUT (new /tmp/ssegw-compare.XXXXXX), RESULTS (bench/RESULTS.md), WRITE (1)
#   RUNS 3 [1], PEERS "ssegw nchan pushpin", EXTRA "ssegw-1w" (servers that run W1 and W3 too,
#   outside the comparison: ssegw-1w is ssegw with workers: 1, ssegw-uring ssegw with
#   fanout.io_uring: EXTRA="ssegw-1w ssegw-uring" measures io_uring against writev), WORKLOADS
#   "w1 w1load w2 w3 wmax w4 w5" (also: coalesce, h2, scaling), PIN 1,
#   SERVER_CPU 1, CLIENT_CPU 0, CONNECT_RATE 1000 (new subscriber connections/s, all servers),
#   SIZE 256, PORT_BASE 18400 (free ports are taken from here up), TIME_LIMIT 3000 s (the whole
#   script), INSTALL 1, REPORT_ONLY 0 (1: only rebuild the report from the JSON in $OUT)
#   W1_SUBS 2000 [200], W1_RATE 200 [100], W1_DURATION 15 [3]
#   W2_SUBS 10000 [1000], W2_RATE 10, W2_DURATION 10 [3]
#   W3_SUBS 2000 [200], W3_CHANNELS 1000 [100], W3_RATE 500 [200], W3_DURATION 15 [3]
#   WMAX_SUBS 2000 [200], WMAX_START 50 [100], WMAX_FACTOR 2, WMAX_REFINE 2 [1],
#   WMAX_MAX_RATE 12800, WMAX_DURATION 4 [2], WMAX_BUSY 0.3 (a step that fails while other work
#   took more cores than this runs once more), WMAX_SERIES "ssegw-2w nchan pushpin ssegw-1w
#   ssegw-2w-unpinned ssegw-1w-unpinned" [without the unpinned ones]
#   W4_STREAMS 500 [50], W4_TOKENS 200 [50], W4_INTERVAL_MS 20, W4_MODES "pinned pinned-rt"
#   SCALING_WORKERS "1 2 auto" (workload scaling: the W-max search for each, unpinned)
#   W5_STEPS "1000 2500 5000 7500" ["200 500"], W5_MAIN 5000 [500] (the step the CPU and RSS
#   figures come from), W5_TOKENS 100 [40], W5_INTERVAL_MS 50 (20 chunks/s per stream)
#   W1L_SUBS 1000 [200], W1L_RATE 400, W1L_DURATION 10 [3]
#   COAL_SUBS 1000 [200], COAL_RATES "100 400 1000" ["400"], COAL_WINDOWS "0 2 5 10" ["0 5"],
#   COAL_DURATION 10 [3]
#   H2_SUBS 2000 [200], H2_RATE 200 [100], H2_DURATION 15 [3], H2_STREAMS 100 (subscribers per
#   HTTP/2 connection; nginx allows 128 streams per connection by default)
#   (pinned-rt: the three processes also under SCHED_FIFO, as if the machine were idle)
set -euo pipefail
shopt -s extglob  # run files: NAME-+([0-9]).json, so that ssegw's never take in ssegw-1w's

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/build/bin}
BIN=$(cd "$BIN" && pwd)
PEERS_DIR=$ROOT/bench/peers
QUICK=${QUICK:-0}
q() { if [[ $QUICK == 1 ]]; then echo "$2"; else echo "$1"; fi; }  # q FULL QUICK

OUT=${OUT:-$(mktemp -d /tmp/ssegw-compare.XXXXXX)}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
WRITE=${WRITE:-1}
RUNS=${RUNS:-$(q 3 1)}
PEERS=${PEERS:-"ssegw nchan pushpin"}
EXTRA=${EXTRA-ssegw-1w}
WORKLOADS=${WORKLOADS:-"w1 w1load w2 w3 wmax w4 w5"}
PIN=${PIN:-1}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
CONNECT_RATE=${CONNECT_RATE:-1000}
SIZE=${SIZE:-256}
PORT_BASE=${PORT_BASE:-18400}
TIME_LIMIT=${TIME_LIMIT:-3000}
INSTALL=${INSTALL:-1}
W1_SUBS=${W1_SUBS:-$(q 2000 200)} W1_RATE=${W1_RATE:-$(q 200 100)} W1_DURATION=${W1_DURATION:-$(q 15 3)}
W2_SUBS=${W2_SUBS:-$(q 10000 1000)} W2_RATE=${W2_RATE:-10} W2_DURATION=${W2_DURATION:-$(q 10 3)}
W3_SUBS=${W3_SUBS:-$(q 2000 200)} W3_CHANNELS=${W3_CHANNELS:-$(q 1000 100)}
W3_RATE=${W3_RATE:-$(q 500 200)} W3_DURATION=${W3_DURATION:-$(q 15 3)}
WMAX_SUBS=${WMAX_SUBS:-$(q 2000 200)} WMAX_START=${WMAX_START:-$(q 50 100)}
WMAX_FACTOR=${WMAX_FACTOR:-2} WMAX_REFINE=${WMAX_REFINE:-$(q 2 1)}
WMAX_MAX_RATE=${WMAX_MAX_RATE:-12800} WMAX_DURATION=${WMAX_DURATION:-$(q 4 2)} WMAX_BUSY=${WMAX_BUSY:-0.3}
WMAX_SERIES=${WMAX_SERIES:-$(q "ssegw-2w nchan pushpin ssegw-1w ssegw-2w-unpinned ssegw-1w-unpinned" \
  "ssegw-2w nchan pushpin ssegw-1w")}
W4_STREAMS=${W4_STREAMS:-$(q 500 50)} W4_TOKENS=${W4_TOKENS:-$(q 200 50)}
W4_INTERVAL_MS=${W4_INTERVAL_MS:-20} W4_MODES=${W4_MODES:-"pinned pinned-rt"}
SCALING_WORKERS=${SCALING_WORKERS:-"1 2 auto"}
W5_STEPS=${W5_STEPS:-$(q "1000 2500 5000 7500" "200 500")} W5_MAIN=${W5_MAIN:-$(q 5000 500)}
W5_TOKENS=${W5_TOKENS:-$(q 100 40)} W5_INTERVAL_MS=${W5_INTERVAL_MS:-50}
W1L_SUBS=${W1L_SUBS:-$(q 1000 200)} W1L_RATE=${W1L_RATE:-400} W1L_DURATION=${W1L_DURATION:-$(q 10 3)}
COAL_SUBS=${COAL_SUBS:-$(q 1000 200)} COAL_RATES=${COAL_RATES:-$(q "100 400 1000" 400)}
COAL_WINDOWS=${COAL_WINDOWS:-$(q "0 2 5 10" "0 5")} COAL_DURATION=${COAL_DURATION:-$(q 10 3)}
H2_SUBS=${H2_SUBS:-$(q 2000 200)} H2_RATE=${H2_RATE:-$(q 200 100)}
H2_DURATION=${H2_DURATION:-$(q 15 3)} H2_STREAMS=${H2_STREAMS:-100}

mkdir -p "$OUT"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- processes ----------------------------------------------------------------------------------
# Every server is started with setsid, so it leads its own process group, and that group is what
# gets killed: nginx's workers, Pushpin's condure/zurl/proxy/handler go with it. GROUPS_RUNNING
# holds every group still running; the trap kills them all, whatever way the script ends.
GROUPS_RUNNING=()
SCRIPT_PID=$$
WATCHDOG=
cleanup() {
  local status=$?
  set +e  # a failed kill must not end the cleanup early
  trap - EXIT INT TERM
  [[ -n $WATCHDOG ]] && kill -- "-$WATCHDOG" 2>/dev/null
  for g in "${GROUPS_RUNNING[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  sleep 0.5
  for g in "${GROUPS_RUNNING[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
# The whole script is bounded: after TIME_LIMIT seconds the watchdog ends it, and the script's
# own children (a running bench, so that the trap runs at once); the trap kills the rest.
setsid bash -c 'sleep "$1" && echo "TIME_LIMIT ($1 s) reached" >&2 && kill -TERM "$2" &&
  pkill -TERM -P "$2"' _ "$TIME_LIMIT" "$SCRIPT_PID" </dev/null &
WATCHDOG=$!

forget_group() {
  local g=$1 kept=()
  for x in "${GROUPS_RUNNING[@]}"; do [[ $x == "$g" ]] || kept+=("$x"); done
  GROUPS_RUNNING=("${kept[@]}")
}
alive_in_group() {  # a process of group $1 that is not a zombie
  local p
  for p in $(pgrep -g "$1" || true); do
    [[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) == [^Z] ]] && return 0
  done
  return 1
}
stop_group() {  # stop_group PGID: TERM, up to 5 s, then KILL
  local g=$1
  kill -TERM -- "-$g" 2>/dev/null || true
  for _ in $(seq 100); do
    alive_in_group "$g" || break
    sleep 0.05
  done
  kill -KILL -- "-$g" 2>/dev/null || true
  wait "$g" 2>/dev/null || true
  forget_group "$g"
}
spawn() {  # spawn LOG CMD...: starts CMD in a new process group; sets $SPAWNED to its pid
  local logf=$1
  shift
  setsid "$@" >"$logf" 2>&1 </dev/null &
  SPAWNED=$!
  GROUPS_RUNNING+=("$SPAWNED")
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {  # wait_port PORT LOG
  for _ in $(seq 200); do
    port_open "$1" && return 0
    sleep 0.05
  done
  cat "$2" >&2 || true
  die "nothing listens on 127.0.0.1:$1 (log: $2)"
}
free_port() {  # free_port VAR: the first port from $NEXT_PORT up that no socket uses, into VAR
  local p=$NEXT_PORT
  while [[ -n $(ss -Htan "( sport = :$p )" 2>/dev/null) ]]; do p=$((p + 1)); done
  NEXT_PORT=$((p + 1))
  printf -v "$1" '%s' "$p"
}
descendants() {  # descendants PID: PID and every process below it, comma-separated
  local out=$1 p
  for p in $(pgrep -P "$1" || true); do out+=",$(descendants "$p")"; done
  echo "$out"
}

# ---- packages -----------------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
if [[ $INSTALL == 1 ]]; then
  missing=()
  for p in nginx libnginx-mod-nchan pushpin jq; do installed "$p" || missing+=("$p"); done
  command -v node >/dev/null || missing+=(nodejs)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >"$OUT/apt.log"
    # Installing starts Debian's nginx (port 80) and pushpin (7999) services where services may
    # start. They are not part of the benchmark: stop them.
    if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
      for s in nginx pushpin; do
        if systemctl is-active -q "$s"; then "${sudo[@]}" systemctl stop "$s" || true; fi
      done
    fi
  fi
fi
for f in "$BIN/ssegw" "$BIN/ssegw-bench" "$BIN/ssegw-mock-llm" "$BIN/ssegw-floor"; do
  [[ -x $f ]] || die "$f missing: build first (make build, or BIN=...)"
done
command -v taskset >/dev/null || die "taskset missing (util-linux)"

NEXT_PORT=$PORT_BASE
for v in SSEGW_PORT NCHAN_PORT NCHAN_H2_PORT PP_HTTP_PORT PP_PUBLISH_PORT PP_ORIGIN_PORT MOCK_PORT NGINX_LLM_PORT; do
  free_port "$v"
done

# ---- servers ------------------------------------------------------------------------------------
SRV_CPU=()
CLI_CPU=()
set_pinning() {  # set_pinning 1|0
  if [[ $1 == 1 ]]; then
    SRV_CPU=(taskset -c "$SERVER_CPU")
    CLI_CPU=(taskset -c "$CLIENT_CPU")
  else
    SRV_CPU=()
    CLI_CPU=()
  fi
}
set_pinning "$PIN"

# start_server PEER WORKERS RUNDIR: starts it and waits until it listens. Sets SERVER_GROUPS
# (process groups to stop), SERVER_PIDS (the --pid list: every process of the server) and
# PEER_ARGS (the bench's URL options for it).
start_server() {
  local peer=$1 workers=$2 dir=$3
  mkdir -p "$dir"
  SERVER_GROUPS=()
  case $peer in
    ssegw | ssegw-uring | ssegw-c+([0-9]))
      sed -e "s|@PORT@|$SSEGW_PORT|; s|@WORKERS@|$workers|; s|@UPSTREAM_PORT@|$MOCK_PORT|" \
        "$PEERS_DIR/ssegw.yaml" >"$dir/ssegw.yaml"
      [[ $peer == ssegw-uring ]] && echo "fanout: { io_uring: true }" >>"$dir/ssegw.yaml"
      [[ $peer == ssegw-c* ]] && echo "fanout: { coalesce: ${peer#ssegw-c}ms }" >>"$dir/ssegw.yaml"
      spawn "$dir/ssegw.log" "${SRV_CPU[@]}" "$BIN/ssegw" --config "$dir/ssegw.yaml"
      SERVER_GROUPS=("$SPAWNED")
      wait_port "$SSEGW_PORT" "$dir/ssegw.log"
      SERVER_PIDS=$SPAWNED
      PEER_ARGS=(--url-template "http://127.0.0.1:$SSEGW_PORT/v1/channels/{ch}/events")
      ;;
    nchan | nginx-llm)
      local port=$NCHAN_PORT conf=nchan.conf
      [[ $peer == nginx-llm ]] && port=$NGINX_LLM_PORT conf=nginx-llm.conf
      sed -e "s|@DIR@|$dir|g; s|@PORT@|$port|; s|@H2PORT@|$NCHAN_H2_PORT|" \
        -e "s|@UPSTREAM_PORT@|$MOCK_PORT|" \
        "$PEERS_DIR/$conf" >"$dir/nginx.conf"
      spawn "$dir/nginx.out" "${SRV_CPU[@]}" nginx -c "$dir/nginx.conf" -p "$dir"
      SERVER_GROUPS=("$SPAWNED")
      wait_port "$port" "$dir/error.log"
      for _ in $(seq 100); do
        (($(pgrep -c -P "$SPAWNED" || true) >= 2)) && break
        sleep 0.05
      done
      SERVER_PIDS=$(descendants "$SPAWNED")
      PEER_ARGS=(--url-template "http://127.0.0.1:$NCHAN_PORT/sub/{ch}" --publish-mode nchan
        --publish-url-template "http://127.0.0.1:$NCHAN_PORT/pub/{ch}")
      ;;
    pushpin)
      # The origin is the application behind Pushpin, not Pushpin: it runs with the bench and its
      # CPU and memory are not counted.
      spawn "$dir/origin.log" "${CLI_CPU[@]}" node "$PEERS_DIR/pushpin-origin.js" "$PP_ORIGIN_PORT"
      SERVER_GROUPS=("$SPAWNED")
      mkdir -p "$dir/run" "$dir/log"
      sed -e "s|@DIR@|$dir|g; s|@HTTP_PORT@|$PP_HTTP_PORT|; s|@PUBLISH_PORT@|$PP_PUBLISH_PORT|" \
        "$PEERS_DIR/pushpin.conf" >"$dir/pushpin.conf"
      echo "* 127.0.0.1:$PP_ORIGIN_PORT" >"$dir/routes"
      wait_port "$PP_ORIGIN_PORT" "$dir/origin.log"
      spawn "$dir/pushpin.out" "${SRV_CPU[@]}" pushpin "--config=$dir/pushpin.conf"
      SERVER_GROUPS+=("$SPAWNED")
      wait_port "$PP_HTTP_PORT" "$dir/pushpin.out"
      wait_port "$PP_PUBLISH_PORT" "$dir/pushpin.out"
      # Until zurl and the proxy are connected, subscribes answer 502: wait for a 200.
      for _ in $(seq 100); do
        [[ $(curl -s -o /dev/null -m 0.5 -w '%{http_code}' \
          "http://127.0.0.1:$PP_HTTP_PORT/stream/probe" || true) == 200 ]] && break
        sleep 0.1
      done
      SERVER_PIDS=$(descendants "$SPAWNED")
      # Pushpin's HTTP publish endpoint answers a pipelined request with 400: one at a time.
      PEER_ARGS=(--url-template "http://127.0.0.1:$PP_HTTP_PORT/stream/{ch}" --publish-mode pushpin
        --publish-url-template "http://127.0.0.1:$PP_PUBLISH_PORT/publish/" --pipeline 1)
      ;;
    mock)
      spawn "$dir/mock.log" "${CLI_CPU[@]}" "$BIN/ssegw-mock-llm" --listen "127.0.0.1:$MOCK_PORT"
      SERVER_GROUPS=("$SPAWNED")
      wait_port "$MOCK_PORT" "$dir/mock.log"
      SERVER_PIDS=$SPAWNED
      ;;
    *) die "unknown server $peer" ;;
  esac
}
stop_server() {
  local g
  for g in "${SERVER_GROUPS[@]}"; do stop_group "$g"; done
  SERVER_GROUPS=()
}

# ---- one bench run ------------------------------------------------------------------------------
tck=$(getconf CLK_TCK)
machine_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
pids_jiffies() {  # summed utime+stime of a comma-separated pid list
  local sum=0 p
  for p in ${1//,/ }; do
    [[ -r /proc/$p/stat ]] && sum=$((sum + $(awk '{print $14+$15}' "/proc/$p/stat")))
  done
  echo "$sum"
}
# bench NAME TIMEOUT ARGS...: one ssegw-bench run against $SERVER_PIDS into $OUT/NAME.json, with
# other_cores added: the machine's CPU that went to neither the server nor the bench. $CMD_KEY
# names the workload and server in commands.txt.
bench() {
  local name=$1 limit=$2
  shift 2
  local m0 s0 t0 m1 s1 t1
  echo "$CMD_KEY ${CLI_CPU[*]} ssegw-bench $* --pid SERVER_PIDS --json --quiet" >>"$OUT/commands.txt"
  m0=$(machine_jiffies) s0=$(pids_jiffies "$SERVER_PIDS") t0=$(date +%s.%N)
  "${CLI_CPU[@]}" timeout -k 5 "$limit" "$BIN/ssegw-bench" "$@" --pid "$SERVER_PIDS" --json \
    --quiet >"$OUT/$name.json" 2>"$OUT/$name.err" || true
  m1=$(machine_jiffies) s1=$(pids_jiffies "$SERVER_PIDS") t1=$(date +%s.%N)
  if ! jq -e .tool "$OUT/$name.json" >/dev/null 2>&1; then
    log "  $name: no report (see $OUT/$name.err)"
    echo '{"error":"no report"}' >"$OUT/$name.json"
    return
  fi
  jq --argjson other "$(((m1 - m0) - (s1 - s0)))" --argjson tck "$tck" \
    --argjson secs "$(jq -n "$t1 - $t0")" \
    '. + {other_cores: ((($other / $tck) - .bench.cpu_s) / $secs * 100 | round / 100)}' \
    "$OUT/$name.json" >"$OUT/$name.tmp" && mv "$OUT/$name.tmp" "$OUT/$name.json"
}
fanout_limit() {  # fanout_limit SUBS DURATION: seconds after which a run is surely stuck
  echo $(($1 / CONNECT_RATE + $2 + 40))
}
peers_in_order() {  # peers_in_order RUN LIST: LIST rotated by run so that none always goes first
  local run=$1 arr
  read -ra arr <<<"$2"
  local n=${#arr[@]} i
  for ((i = 0; i < n; i++)); do echo "${arr[$(((i + run - 1) % n))]}"; done
}
summary_line() {  # one line per run on stderr
  jq -r --arg n "$1" 'if .error then "  \($n): \(.error)" else
    "  \($n): connected \(.subscribers.connected)/\(.subscribers.requested), " +
    "received \(.deliveries.received)/\(.deliveries.expected), \(.deliveries.per_s | floor)/s, " +
    "p99 \(.latency_ms.p99) ms, server \(.server.cpu_s_per_million_deliveries) s/M, " +
    "\(.server.cpu_cores) cores, bench \(.bench.cpu_cores_window) cores, other \(.other_cores)"
    end' "$OUT/$1.json" >&2
}

# ---- W1, W2, W3 ---------------------------------------------------------------------------------
run_fanout() {  # run_fanout WL SUBS CHANNELS RATE DURATION SERVERS [BENCH ARGS...]
  local wl=$1 subs=$2 channels=$3 rate=$4 duration=$5 servers=$6 run peer
  shift 6
  local more=("$@")
  log "$wl: $subs subscribers, $channels channels, $rate events/s of $SIZE B, $duration s, $RUNS runs"
  for run in $(seq "$RUNS"); do
    for peer in $(peers_in_order "$run" "$servers"); do
      if [[ $peer == ssegw-1w ]]; then
        start_server ssegw 1 "$OUT/srv/$wl-$peer-$run"
      else
        start_server "$peer" 2 "$OUT/srv/$wl-$peer-$run"
      fi
      CMD_KEY="$wl $peer"
      bench "$wl-$peer-$run" "$(fanout_limit "$subs" "$duration")" "${PEER_ARGS[@]}" \
        --subscribers "$subs" --channels "$channels" --rate "$rate" --size "$SIZE" \
        --duration "$duration" --connect-rate "$CONNECT_RATE" --connect-timeout 20 "${more[@]}"
      stop_server
      summary_line "$wl-$peer-$run"
    done
    [[ $wl == w2 || $wl == w1load ]] || floor_runs "$wl" "$run" "$subs" "$channels" "$rate" "$duration"
  done
}
# floor_runs WL RUN SUBS CHANNELS RATE DURATION: ssegw-floor with the workload's shape (each
# subscriber gets RATE / CHANNELS events/s of the size an SSE event of SIZE B has on the wire),
# one write per delivery and 2 and 4 events per write, into $OUT/floor-WL-B-RUN.json. The writer
# runs where the servers run, the reader where the bench does.
floor_runs() {
  local wl=$1 run=$2 subs=$3 channels=$4 rate=$5 duration=$6 b cpus=()
  [[ $PIN == 1 ]] && cpus=(--writer-cpu "$SERVER_CPU" --reader-cpu "$CLIENT_CPU")
  for b in 1 2 4; do
    echo "$wl floor$b ssegw-floor --connections $subs --rate $(jq -n "$rate / $channels")" \
      "--size $((SIZE + 44)) --batch $b --duration $duration ${cpus[*]}" >>"$OUT/commands.txt"
    timeout -k 5 $((duration + 60)) "$BIN/ssegw-floor" --connections "$subs" \
      --rate "$(jq -n "$rate / $channels")" --size $((SIZE + 44)) --batch "$b" \
      --duration "$duration" "${cpus[@]}" >"$OUT/floor-$wl-$b-$run.json" 2>"$OUT/floor-$wl-$b-$run.err" ||
      echo '{"error":"ssegw-floor failed"}' >"$OUT/floor-$wl-$b-$run.json"
    log "  floor-$wl-$b-$run: $(jq -r '.us_per_delivery // .error' "$OUT/floor-$wl-$b-$run.json") µs per delivery"
  done
}

# ---- scaling with cores ------------------------------------------------------------------------
# W-max's search for ssegw with each of SCALING_WORKERS workers, unpinned (all the machine's
# cores, shared with the bench): the same method on any machine, more points on a bigger one.
run_scaling() {
  local series="" w
  for w in $SCALING_WORKERS; do series+="ssegw-${w}w-unpinned "; done
  WMAX_SERIES=$series run_wmax
}

# ---- W5 ---------------------------------------------------------------------------------------
# W4's shape at many more streams: each step starts the mock, ssegw and nginx afresh (pinned, as
# in W4), then runs direct, ssegw and nginx in a rotating order, RUNS times.
run_w5() {
  local step run target
  log "w5: steps $W5_STEPS streams x $W5_TOKENS chunks, $W5_INTERVAL_MS ms apart"
  set_pinning "$PIN"
  for step in $W5_STEPS; do
    start_server mock 0 "$OUT/srv/w5-$step-mock"
    local mock_groups=("${SERVER_GROUPS[@]}") mock_pid=$SERVER_PIDS
    start_server ssegw 2 "$OUT/srv/w5-$step-ssegw"
    local gw_groups=("${SERVER_GROUPS[@]}") gw_pids=$SERVER_PIDS
    start_server nginx-llm 2 "$OUT/srv/w5-$step-nginx"
    local ngx_groups=("${SERVER_GROUPS[@]}") ngx_pids=$SERVER_PIDS
    local limit=$((W5_TOKENS * W5_INTERVAL_MS / 1000 + step / CONNECT_RATE + 60))
    for run in $(seq "$RUNS"); do
      local order=(direct ssegw nginx)
      ((run % 3 == 2)) && order=(ssegw nginx direct)
      ((run % 3 == 0)) && order=(nginx direct ssegw)
      for target in "${order[@]}"; do
        local port=$MOCK_PORT
        SERVER_PIDS=$mock_pid
        [[ $target == ssegw ]] && port=$SSEGW_PORT SERVER_PIDS=$gw_pids
        [[ $target == nginx ]] && port=$NGINX_LLM_PORT SERVER_PIDS=$ngx_pids
        CMD_KEY="w5-$step $target"
        bench "w5-$step-$target-$run" "$limit" --mode llm \
          --url "http://127.0.0.1:$port/v1/chat/completions" --streams "$step" \
          --tokens "$W5_TOKENS" --interval-ms "$W5_INTERVAL_MS" --connect-rate "$CONNECT_RATE"
        jq -r --arg n "w5-$step-$target-$run" 'if .error then "  \($n): \(.error)" else
          "  \($n): completed \(.streams.completed)/\(.config.streams), p99 \(.latency_ms.p99) ms, " +
          "server \(.server.cpu_ms_per_1000_chunks) ms/1k chunks, other \(.other_cores)" end' \
          "$OUT/w5-$step-$target-$run.json" >&2
        sleep 1
      done
    done
    SERVER_GROUPS=("${ngx_groups[@]}" "${gw_groups[@]}" "${mock_groups[@]}")
    stop_server
  done
}

# ---- coalescing -------------------------------------------------------------------------------
# W1's shape at each of COAL_RATES, for Nchan and for ssegw with each window of COAL_WINDOWS
# (series ssegw-cN, N ms; ssegw-c0 is the default, no window), pinned like W1.
coal_series() {
  local list="nchan" w
  for w in $COAL_WINDOWS; do list+=" ssegw-c$w"; done
  echo "$list"
}
run_coalesce() {
  local run rate series
  log "coalesce: $COAL_SUBS subscribers, $COAL_RATES events/s, windows $COAL_WINDOWS ms, $RUNS runs"
  for run in $(seq "$RUNS"); do
    for rate in $COAL_RATES; do
      for series in $(peers_in_order "$run" "$(coal_series)"); do
        start_server "$series" 2 "$OUT/srv/coal-$rate-$series-$run"
        CMD_KEY="coalesce-$rate $series"
        bench "coal-$rate-$series-$run" "$(fanout_limit "$COAL_SUBS" "$COAL_DURATION")" \
          "${PEER_ARGS[@]}" --subscribers "$COAL_SUBS" --channels 1 --rate "$rate" --size "$SIZE" \
          --duration "$COAL_DURATION" --connect-rate "$CONNECT_RATE" --connect-timeout 20
        stop_server
        summary_line "coal-$rate-$series-$run"
      done
    done
  done
}

# ---- H2 ---------------------------------------------------------------------------------------
# The series are <server>-h1 and <server>-h2; ssegw speaks h2c on its one port (prior knowledge),
# nginx on a second listener of the same server block.
run_h2() {
  local run series peer proto
  log "h2: $H2_SUBS subscribers, $H2_RATE events/s of $SIZE B, $H2_DURATION s," \
    "HTTP/1.1 against HTTP/2 with $H2_STREAMS per connection, $RUNS runs"
  for run in $(seq "$RUNS"); do
    for series in $(peers_in_order "$run" "ssegw-h1 ssegw-h2 nchan-h1 nchan-h2"); do
      peer=${series%-*} proto=${series##*-}
      [[ " $PEERS " == *" $peer "* ]] || continue
      start_server "$peer" 2 "$OUT/srv/h2-$series-$run"
      local args=("${PEER_ARGS[@]}")
      if [[ $proto == h2 ]]; then
        args+=(--http2 "$H2_STREAMS")
        [[ $peer == nchan ]] && args+=(--url-template "http://127.0.0.1:$NCHAN_H2_PORT/sub/{ch}")
      fi
      CMD_KEY="h2 $series"
      bench "h2-$series-$run" "$(fanout_limit "$H2_SUBS" "$H2_DURATION")" "${args[@]}" \
        --subscribers "$H2_SUBS" --channels 1 --rate "$H2_RATE" --size "$SIZE" \
        --duration "$H2_DURATION" --connect-rate "$CONNECT_RATE" --connect-timeout 20
      stop_server
      summary_line "h2-$series-$run"
    done
  done
}

# ---- W-max --------------------------------------------------------------------------------------
# A step passes when every subscriber connected and at least 99 % of the offered deliveries
# (events offered at the rate x subscribers) arrived, with p99 at most 100 ms.
step_passes() {
  jq -e '(.error | not) and .subscribers.connected == .subscribers.requested and
    .deliveries.received >= 0.99 * (.config.rate * .config.duration_s) * .subscribers.requested
    and .deliveries.received >= 0.99 * .deliveries.expected and .latency_ms.p99 <= 100' \
    "$1" >/dev/null
}
wmax_step() {  # wmax_step SERIES RUN RATE [retry]: sets STEP_OK
  local series=$1 run=$2 rate=$3 peer workers=2 pinned=1
  peer=${series%%-*}
  local w=${series#*-}
  w=${w%%w*}  # ssegw-1w -> 1, ssegw-autow-unpinned -> auto
  [[ $series == ssegw-* && $w =~ ^([0-9]+|auto)$ ]] && workers=$w
  [[ $series == *-unpinned ]] && pinned=0
  set_pinning "$((PIN == 1 && pinned == 1 ? 1 : 0))"
  local name="wmax-$series-$run-step-$rate"
  start_server "$peer" "$workers" "$OUT/srv/$name"
  CMD_KEY="wmax $series"
  bench "$name" "$(fanout_limit "$WMAX_SUBS" "$WMAX_DURATION")" "${PEER_ARGS[@]}" \
    --subscribers "$WMAX_SUBS" --channels 1 --rate "$rate" --size "$SIZE" \
    --duration "$WMAX_DURATION" --drain 1 --connect-rate "$CONNECT_RATE" --connect-timeout 20
  stop_server
  set_pinning "$PIN"
  STEP_OK=0
  step_passes "$OUT/$name.json" && STEP_OK=1
  # Other work on the machine can fail a step the server would pass: when it took more than
  # WMAX_BUSY cores during a failed step, the step runs once more, and the second try counts.
  if ((!STEP_OK)) && [[ ${4:-} != retry ]] &&
    jq -e --argjson busy "$WMAX_BUSY" '.other_cores > $busy' "$OUT/$name.json" >/dev/null 2>&1; then
    summary_line "$name"
    log "  $name: failed while the machine was busy; once more"
    mv "$OUT/$name.json" "$OUT/$name.json.busy"
    wmax_step "$series" "$run" "$rate" retry
    return
  fi
  local verdict=fail
  ((STEP_OK)) && verdict=pass
  summary_line "$name"
  log "  $name: $verdict"
}
wmax_series() {  # wmax_series SERIES RUN: the search; writes $OUT/wmax-SERIES-RUN.json
  local series=$1 run=$2 rate=$WMAX_START pass=0 fail=0 i
  while :; do
    wmax_step "$series" "$run" "$rate"
    if ((STEP_OK)); then
      pass=$rate
      rate=$((rate * WMAX_FACTOR))
      ((rate > WMAX_MAX_RATE)) && break
    else
      fail=$rate
      ((pass > 0 || rate <= 1)) && break
      rate=$((rate / WMAX_FACTOR))  # even the start failed: go down
      ((rate < 1)) && break
    fi
    [[ $fail -gt 0 && $pass -gt 0 ]] && break
  done
  if ((pass > 0 && fail > 0)); then
    for ((i = 0; i < WMAX_REFINE; i++)); do
      rate=$(jq -n "($pass * $fail) | sqrt | round")
      ((rate <= pass || rate >= fail)) && break
      wmax_step "$series" "$run" "$rate"
      if ((STEP_OK)); then pass=$rate; else fail=$rate; fi
    done
  fi
  # The best passing step of this search.
  local steps=("$OUT"/wmax-"$series"-"$run"-step-*.json)
  jq -s --arg series "$series" --argjson run "$run" --argjson fail "$fail" '
    def ok: (.error | not) and .subscribers.connected == .subscribers.requested and
      .deliveries.received >= 0.99 * (.config.rate * .config.duration_s) * .subscribers.requested
      and .deliveries.received >= 0.99 * .deliveries.expected and .latency_ms.p99 <= 100;
    (map(select(ok)) | max_by(.deliveries.per_s)) as $best |
    (map(select((ok | not) and (.error | not) and .config.rate > ($best.config.rate // 0)))
      | min_by(.config.rate)) as $over |
    {series: $series, run: $run, steps: length, first_failed_rate: $fail,
     over: (if $over then {rate: $over.config.rate, per_s: $over.deliveries.per_s,
       p99: $over.latency_ms.p99, server_cores: $over.server.cpu_cores,
       bench_cores: $over.bench.cpu_cores_window,
       published_share: ($over.events.published / ($over.config.rate * $over.config.duration_s))}
       else null end),
     best: (if $best then {rate: $best.config.rate, per_s: $best.deliveries.per_s,
       p99: $best.latency_ms.p99, server_cores: $best.server.cpu_cores,
       server_us: $best.server.cpu_s_per_million_deliveries,
       bench_cores: $best.bench.cpu_cores_window, other_cores: $best.other_cores} else null end)}
  ' "${steps[@]}" >"$OUT/wmax-$series-$run.summary.json"
  log "  wmax $series run $run: $(jq -c .best "$OUT/wmax-$series-$run.summary.json")"
}
run_wmax() {
  log "wmax: $WMAX_SUBS subscribers on 1 channel, rate from $WMAX_START events/s x$WMAX_FACTOR," \
    "$WMAX_REFINE bisections, $WMAX_DURATION s steps; series: $WMAX_SERIES"
  local run series arr n i
  read -ra arr <<<"$WMAX_SERIES"
  n=${#arr[@]}
  for run in $(seq "$RUNS"); do
    for ((i = 0; i < n; i++)); do
      series=${arr[$(((i + run - 1) % n))]}
      [[ " $PEERS " == *" ${series%%-*} "* ]] || continue
      wmax_series "$series" "$run"
    done
  done
}

# ---- W4 -----------------------------------------------------------------------------------------
run_w4() {
  local mode run target
  log "w4: $W4_STREAMS streams x $W4_TOKENS chunks, $W4_INTERVAL_MS ms apart; modes: $W4_MODES"
  for mode in $W4_MODES; do
    set_pinning "$PIN"
    local rt=()
    [[ $mode == *-rt ]] && rt=(chrt -f 10)
    SRV_CPU=("${rt[@]}" "${SRV_CPU[@]}")
    CLI_CPU=("${rt[@]}" "${CLI_CPU[@]}")
    start_server mock 0 "$OUT/srv/w4-$mode-mock"
    local mock_groups=("${SERVER_GROUPS[@]}") mock_pid=$SERVER_PIDS
    start_server ssegw 2 "$OUT/srv/w4-$mode-ssegw"
    local gw_groups=("${SERVER_GROUPS[@]}") gw_pids=$SERVER_PIDS
    start_server nginx-llm 2 "$OUT/srv/w4-$mode-nginx"
    local ngx_groups=("${SERVER_GROUPS[@]}") ngx_pids=$SERVER_PIDS
    local limit=$((W4_TOKENS * W4_INTERVAL_MS / 1000 + 40))
    for run in $(seq "$RUNS"); do
      local order=(direct ssegw nginx)
      ((run % 3 == 2)) && order=(ssegw nginx direct)
      ((run % 3 == 0)) && order=(nginx direct ssegw)
      for target in "${order[@]}"; do
        local port=$MOCK_PORT
        SERVER_PIDS=$mock_pid
        [[ $target == ssegw ]] && port=$SSEGW_PORT SERVER_PIDS=$gw_pids
        [[ $target == nginx ]] && port=$NGINX_LLM_PORT SERVER_PIDS=$ngx_pids
        CMD_KEY="w4-$mode $target"
        bench "w4-$mode-$target-$run" "$limit" --mode llm \
          --url "http://127.0.0.1:$port/v1/chat/completions" --streams "$W4_STREAMS" \
          --tokens "$W4_TOKENS" --interval-ms "$W4_INTERVAL_MS"
        jq -r --arg n "w4-$mode-$target-$run" 'if .error then "  \($n): \(.error)" else
          "  \($n): completed \(.streams.completed)/\(.config.streams), p50 \(.latency_ms.p50) " +
          "p99 \(.latency_ms.p99) ms, server \(.server.cpu_ms_per_1000_chunks) ms/1k chunks, " +
          "other \(.other_cores)" end' "$OUT/w4-$mode-$target-$run.json" >&2
        sleep 1
      done
    done
    SERVER_GROUPS=("${ngx_groups[@]}" "${gw_groups[@]}" "${mock_groups[@]}")
    stop_server
  done
  set_pinning "$PIN"
}

# ---- run ----------------------------------------------------------------------------------------
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
CMDLINE=$(for v in QUICK RUNS PEERS WORKLOADS PIN; do printf '%s=%q ' "$v" "${!v}"; done)
CMDLINE+="BIN=$BIN bench/compare.sh"
T_START=$SECONDS
log "output in $OUT; ports: ssegw $SSEGW_PORT, nchan $NCHAN_PORT, pushpin $PP_HTTP_PORT" \
  "(publish $PP_PUBLISH_PORT, origin $PP_ORIGIN_PORT), mock $MOCK_PORT, nginx $NGINX_LLM_PORT"
[[ ${REPORT_ONLY:-0} == 1 ]] && WORKLOADS=""  # rebuild the report from the JSON already in $OUT
for wl in $WORKLOADS; do
  case $wl in
    w1) run_fanout w1 "$W1_SUBS" 1 "$W1_RATE" "$W1_DURATION" "$PEERS $EXTRA" ;;
    w1load) run_fanout w1load "$W1L_SUBS" 1 "$W1L_RATE" "$W1L_DURATION" "$PEERS" \
      --publishers 1 --pipeline 1 ;;
    w2) run_fanout w2 "$W2_SUBS" 1 "$W2_RATE" "$W2_DURATION" "$PEERS" ;;
    w3) run_fanout w3 "$W3_SUBS" "$W3_CHANNELS" "$W3_RATE" "$W3_DURATION" "$PEERS $EXTRA" ;;
    wmax) run_wmax ;;
    w4) run_w4 ;;
    h2) run_h2 ;;
    coalesce) run_coalesce ;;
    w5) run_w5 ;;
    scaling) run_scaling ;;
    *) die "unknown workload $wl" ;;
  esac
done
ELAPSED=$((SECONDS - T_START))
if [[ ${REPORT_ONLY:-0} == 1 ]]; then
  ELAPSED=$(cat "$OUT/elapsed" 2>/dev/null || echo 0)
  STARTED=$(cat "$OUT/started" 2>/dev/null || echo "$STARTED")
else
  echo "$ELAPSED" >"$OUT/elapsed"
  echo "$STARTED" >"$OUT/started"
fi

# ---- report -------------------------------------------------------------------------------------
# med FIELD FILES...: the median (the middle value; of two, the higher) over the runs that have it
med() {
  local field=$1
  shift
  [[ -e $1 ]] || { echo null; return; }
  jq -s "[.[] | select(.error | not) | $field | select(. != null)] | sort |
    if length == 0 then null else .[length / 2 | floor] end" "$@"
}
f() {  # f VALUE DECIMALS: a number for a table, or n/a
  if [[ $1 == null || -z $1 ]]; then echo "n/a"; else printf "%.${2}f" "$1"; fi
}
# received / offered (events at the rate x duration, times the subscribers), in %
OFFERED_SHARE='(.deliveries.received / (.config.rate * .config.duration_s * .subscribers.requested / (.config.channels)) * 100)'
peer_label() {
  case $1 in
    ssegw) echo "ssegw (workers: 2)" ;;
    ssegw-1w) echo "ssegw (workers: 1; not in the comparison)" ;;
    ssegw-uring) echo "ssegw (workers: 2, fanout.io_uring; not in the comparison)" ;;
    nchan) echo "Nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null | sed 's/^1://; s/+.*//') (nginx, 2 workers)" ;;
    pushpin) echo "Pushpin $(dpkg-query -W -f='${Version}' pushpin 2>/dev/null | sed 's/-.*//') (condure 2 threads)" ;;
    *) echo "$1" ;;
  esac
}
series_label() {
  case $1 in
    ssegw-2w) echo "ssegw, workers: 2, pinned to 1 core" ;;
    ssegw-1w) echo "ssegw, workers: 1, pinned to 1 core" ;;
    ssegw-2w-unpinned) echo "ssegw, workers: 2, unpinned (2 cores, shared with the bench)" ;;
    ssegw-1w-unpinned) echo "ssegw, workers: 1, unpinned (2 cores, shared with the bench)" ;;
    ssegw-*w-unpinned) local w=${1#ssegw-}; echo "ssegw, workers: ${w%%w-unpinned}, unpinned ($(nproc) cores, shared with the bench)" ;;
    nchan) echo "$(peer_label nchan), pinned to 1 core" ;;
    pushpin) echo "$(peer_label pushpin), pinned to 1 core" ;;
    *) echo "$1" ;;
  esac
}

fanout_table() {  # fanout_table WL
  local wl=$1 peer files
  echo "| server | connected | delivered (received / offered) | deliveries/s | p50 ms | p99 ms | max ms | server CPU µs / delivery | server cores | server RSS peak MiB | bench cores | other cores |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  for peer in $PEERS $EXTRA; do
    files=("$OUT/$wl-$peer-"+([0-9]).json)
    [[ -e ${files[0]} ]] || continue
    printf '| %s | %s / %s | %s %% (lost %s) | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
      "$(peer_label "$peer")" \
      "$(f "$(med .subscribers.connected "${files[@]}")" 0)" \
      "$(f "$(med .subscribers.requested "${files[@]}")" 0)" \
      "$(f "$(med "$OFFERED_SHARE" "${files[@]}")" 2)" \
      "$(f "$(med .deliveries.lost "${files[@]}")" 0)" \
      "$(f "$(med .deliveries.per_s "${files[@]}")" 0)" \
      "$(f "$(med .latency_ms.p50 "${files[@]}")" 2)" \
      "$(f "$(med .latency_ms.p99 "${files[@]}")" 2)" \
      "$(f "$(med .latency_ms.max "${files[@]}")" 2)" \
      "$(f "$(med .server.cpu_s_per_million_deliveries "${files[@]}")" 2)" \
      "$(f "$(med .server.cpu_cores "${files[@]}")" 2)" \
      "$(f "$(med '.server.rss_peak_kib / 1024' "${files[@]}")" 1)" \
      "$(f "$(med .bench.cpu_cores_window "${files[@]}")" 2)" \
      "$(f "$(med .other_cores "${files[@]}")" 2)"
  done
  local b
  for b in 1 2 4; do
    files=("$OUT/floor-$wl-$b-"*.json)
    [[ -e ${files[0]} ]] || continue
    printf '| the floor: %s | | | | | | | %s | | | | |\n' \
      "$([[ $b == 1 ]] && echo "one write per delivery" || echo "$b events per write")" \
      "$(f "$(med .us_per_delivery "${files[@]}")" 2)"
  done
}
coalesce_table() {
  local rate series files
  echo "| events/s asked | server | delivered (received / offered) | deliveries/s | p50 ms | p99 ms | server CPU µs / delivery | server cores | other cores |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for rate in $COAL_RATES; do
    for series in $(coal_series); do
      files=("$OUT/coal-$rate-$series-"+([0-9]).json)
      [[ -e ${files[0]} ]] || continue
      printf '| %s | %s | %s %% | %s | %s | %s | %s | %s | %s |\n' "$rate" \
        "$([[ $series == nchan ]] && peer_label nchan || echo "ssegw, fanout.coalesce: ${series#ssegw-c}ms")" \
        "$(f "$(med "$OFFERED_SHARE" "${files[@]}")" 2)" \
        "$(f "$(med .deliveries.per_s "${files[@]}")" 0)" \
        "$(f "$(med .latency_ms.p50 "${files[@]}")" 2)" \
        "$(f "$(med .latency_ms.p99 "${files[@]}")" 2)" \
        "$(f "$(med .server.cpu_s_per_million_deliveries "${files[@]}")" 2)" \
        "$(f "$(med .server.cpu_cores "${files[@]}")" 2)" \
        "$(f "$(med .other_cores "${files[@]}")" 2)"
    done
  done
}
w2_table() {
  local peer files
  echo "| server | connected | RSS before → idle MiB | RSS per idle subscriber | delivered (of offered) | p99 ms | server CPU µs / delivery | bench cores | other cores |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for peer in $PEERS; do
    files=("$OUT/w2-$peer-"+([0-9]).json)
    [[ -e ${files[0]} ]] || continue
    printf '| %s | %s / %s | %s → %s | %s B | %s %% | %s | %s | %s | %s |\n' \
      "$(peer_label "$peer")" \
      "$(f "$(med .subscribers.connected "${files[@]}")" 0)" \
      "$(f "$(med .subscribers.requested "${files[@]}")" 0)" \
      "$(f "$(med '.server.rss_before_kib / 1024' "${files[@]}")" 1)" \
      "$(f "$(med '.server.rss_idle_kib / 1024' "${files[@]}")" 1)" \
      "$(f "$(med .server.rss_per_subscriber_bytes "${files[@]}")" 0)" \
      "$(f "$(med "$OFFERED_SHARE" "${files[@]}")" 2)" \
      "$(f "$(med .latency_ms.p99 "${files[@]}")" 2)" \
      "$(f "$(med .server.cpu_s_per_million_deliveries "${files[@]}")" 2)" \
      "$(f "$(med .bench.cpu_cores_window "${files[@]}")" 2)" \
      "$(f "$(med .other_cores "${files[@]}")" 2)"
  done
}
wmax_table() {
  local series files runs
  echo "| server | highest sustained deliveries/s (median) | each run | at events/s | p99 ms there | server cores there | bench cores there | other cores there | one step up: bench cores, server cores, events published |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for series in $WMAX_SERIES; do
    files=("$OUT/wmax-$series-"[0-9].summary.json)
    [[ -e ${files[0]} ]] || continue
    runs=$(jq -s -r '[.[] | .best.per_s // 0 | floor | tostring] | join(", ")' "${files[@]}")
    printf '| %s | **%s** | %s | %s | %s | %s | %s | %s | %s, %s, %s %% |\n' \
      "$(series_label "$series")" \
      "$(f "$(med '.best.per_s // 0' "${files[@]}")" 0)" "$runs" \
      "$(f "$(med .best.rate "${files[@]}")" 0)" \
      "$(f "$(med .best.p99 "${files[@]}")" 2)" \
      "$(f "$(med .best.server_cores "${files[@]}")" 2)" \
      "$(f "$(med .best.bench_cores "${files[@]}")" 2)" \
      "$(f "$(med .best.other_cores "${files[@]}")" 2)" \
      "$(f "$(med .over.bench_cores "${files[@]}")" 2)" \
      "$(f "$(med .over.server_cores "${files[@]}")" 2)" \
      "$(f "$(med '.over.published_share * 100' "${files[@]}")" 0)"
  done
}
w4_table() {  # w4_table MODE
  local mode=$1 target files d50 d99 t50 t99
  d50=$(med .latency_ms.p50 "$OUT/w4-$mode-direct-"*.json)
  d99=$(med .latency_ms.p99 "$OUT/w4-$mode-direct-"*.json)
  echo "| target | completed | p50 ms | p99 ms | added p50 ms | added p99 ms | server CPU ms / 1k chunks | bench cores | other cores |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for target in direct ssegw nginx; do
    files=("$OUT/w4-$mode-$target-"*.json)
    [[ -e ${files[0]} ]] || continue
    t50=$(med .latency_ms.p50 "${files[@]}")
    t99=$(med .latency_ms.p99 "${files[@]}")
    local label added50 added99
    case $target in
      direct) label="direct (ssegw-mock-llm)" added50="" added99="" ;;
      ssegw) label="through an ssegw route (workers: 2)" ;;
      nginx) label="through nginx $(nginx -v 2>&1 | sed 's|.*/||') (proxy_buffering off, 2 workers)" ;;
    esac
    if [[ $target != direct ]]; then
      added50=$(f "$(jq -n "$t50 - $d50" 2>/dev/null || echo null)" 3)
      added99=$(f "$(jq -n "$t99 - $d99" 2>/dev/null || echo null)" 3)
    else
      added50=— added99=—
    fi
    printf '| %s | %s / %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
      "$(f "$(med .streams.completed "${files[@]}")" 0)" "$(f "$(med .config.streams "${files[@]}")" 0)" \
      "$(f "$t50" 3)" "$(f "$t99" 3)" "$added50" "$added99" \
      "$(f "$(med .server.cpu_ms_per_1000_chunks "${files[@]}")" 1)" \
      "$(f "$(med .bench.cpu_cores "${files[@]}")" 2)" \
      "$(f "$(med .other_cores "${files[@]}")" 2)"
  done
}

scaling_table() {
  local w first="" v
  echo "| workers | best deliveries/s (median) | against 1 worker |"
  echo "|---|---|---|"
  for w in $SCALING_WORKERS; do
    compgen -G "$OUT/wmax-ssegw-${w}w-unpinned-[0-9].summary.json" >/dev/null || continue
    v=$(med '.best.per_s // 0' "$OUT/wmax-ssegw-${w}w-unpinned-"[0-9].summary.json)
    [[ -z $first ]] && first=$v
    printf '| %s | %s | %s× |\n' "$w$([[ $w == auto ]] && echo " ($(nproc) here)")" "$(f "$v" 0)" \
      "$(f "$(jq -n "$v / $first" 2>/dev/null || echo null)" 2)"
  done
}
scaling_section() {
  compgen -G "$OUT/wmax-ssegw-*w-unpinned-[0-9].summary.json" >/dev/null || return 0
  [[ " $WORKLOADS " == *" scaling "* ]] || return 0
  cat <<EOF

### Scaling with cores: W-max for ssegw with workers $SCALING_WORKERS, unpinned

$(scaling_table)
EOF
}
w5_added99() {  # w5_added99 STEP TARGET: median p99 through TARGET minus direct's, or null
  local d t
  d=$(med .latency_ms.p99 "$OUT/w5-$1-direct-"*.json)
  t=$(med .latency_ms.p99 "$OUT/w5-$1-$2-"*.json)
  jq -n "$t - $d" 2>/dev/null || echo null
}
w5_table() {
  local step target files
  echo "| streams | target | completed | p99 ms | added p99 ms | server CPU ms / 1k chunks | RSS per open stream | other cores |"
  echo "|---|---|---|---|---|---|---|---|"
  for step in $W5_STEPS; do
    for target in direct ssegw nginx; do
      files=("$OUT/w5-$step-$target-"*.json)
      [[ -e ${files[0]} ]] || continue
      local added=—
      [[ $target != direct ]] && added=$(f "$(w5_added99 "$step" "$target")" 3)
      printf '| %s | %s | %s / %s | %s | %s | %s | %s B | %s |\n' "$step" "$target" \
        "$(f "$(med .streams.completed "${files[@]}")" 0)" "$step" \
        "$(f "$(med .latency_ms.p99 "${files[@]}")" 3)" "$added" \
        "$(f "$(med .server.cpu_ms_per_1000_chunks "${files[@]}")" 1)" \
        "$(f "$(med '(.server.rss_peak_kib - .server.rss_before_kib) * 1024 / .config.streams' "${files[@]}")" 0)" \
        "$(f "$(med .other_cores "${files[@]}")" 2)"
    done
  done
}
w5_section() {
  compgen -G "$OUT/w5-*.json" >/dev/null || return 0
  local target capacity step a
  cat <<EOF

### W5 proxied-stream capacity: $W5_STEPS concurrent streams × $W5_TOKENS chunks, $W5_INTERVAL_MS ms apart

W4's setup (pinned) at more streams; "added" is the median p99 through the proxy minus the
median p99 direct at the same step. RSS per open stream = (peak RSS − RSS before) ÷ streams.

$(w5_table)

$(for target in ssegw nginx; do
  capacity=0
  for step in $W5_STEPS; do
    a=$(w5_added99 "$step" "$target")
    [[ $(jq -n "$a != null and $a < 5" 2>/dev/null) == true ]] &&
      [[ $(med .streams.completed "$OUT/w5-$step-$target-"*.json) == "$step" ]] && capacity=$step
  done
  echo "- $target: the most concurrent streams with every stream complete and an added p99 under 5 ms: $capacity (of the steps $W5_STEPS)"
done)
EOF
}
w1load_table() {
  local peer files
  echo "| server | accepted events/s (of $W1L_RATE asked) | delivered (of accepted) | p99 ms | server cores | server CPU µs / delivery | other cores |"
  echo "|---|---|---|---|---|---|---|"
  for peer in $PEERS; do
    files=("$OUT/w1load-$peer-"+([0-9]).json)
    [[ -e ${files[0]} ]] || continue
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$(peer_label "$peer")" \
      "$(f "$(med '.events.published / .config.duration_s' "${files[@]}")" 1)" \
      "$(f "$(med '.deliveries.received / (.deliveries.expected + 0.000001) * 100' "${files[@]}")" 2) %" \
      "$(f "$(med .latency_ms.p99 "${files[@]}")" 2)" \
      "$(f "$(med .server.cpu_cores "${files[@]}")" 2)" \
      "$(f "$(med .server.cpu_s_per_million_deliveries "${files[@]}")" 2)" \
      "$(f "$(med .other_cores "${files[@]}")" 2)"
  done
}
w1load_section() {
  compgen -G "$OUT/w1load-*.json" >/dev/null || return 0
  cat <<EOF

### W1 under load: $W1L_SUBS subscribers on 1 channel, $W1L_RATE events/s asked of one unpipelined publisher, $W1L_DURATION s

The publisher sends the next event only once the answer to the last one has come
(\`--publishers 1 --pipeline 1\`): a server that answers after its fan-out throttles it.

$(w1load_table)
EOF
}
h2_table() {
  local series files
  echo "| server, protocol | connected | delivered (of offered) | p50 ms | p99 ms | server CPU µs / delivery | RSS per subscriber | server cores | other cores |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for series in ssegw-h1 ssegw-h2 nchan-h1 nchan-h2; do
    files=("$OUT/h2-$series-"*.json)
    [[ -e ${files[0]} ]] || continue
    local proto="HTTP/1.1"
    [[ $series == *-h2 ]] && proto="HTTP/2 (h2c, $H2_STREAMS streams per connection)"
    printf '| %s, %s | %s / %s | %s %% | %s | %s | %s | %s B | %s | %s |\n' \
      "$(peer_label "${series%-*}")" "$proto" \
      "$(f "$(med .subscribers.connected "${files[@]}")" 0)" \
      "$(f "$(med .subscribers.requested "${files[@]}")" 0)" \
      "$(f "$(med "$OFFERED_SHARE" "${files[@]}")" 2)" \
      "$(f "$(med .latency_ms.p50 "${files[@]}")" 2)" \
      "$(f "$(med .latency_ms.p99 "${files[@]}")" 2)" \
      "$(f "$(med .server.cpu_s_per_million_deliveries "${files[@]}")" 2)" \
      "$(f "$(med .server.rss_per_subscriber_bytes "${files[@]}")" 0)" \
      "$(f "$(med .server.cpu_cores "${files[@]}")" 2)" \
      "$(f "$(med .other_cores "${files[@]}")" 2)"
  done
}
h2_section() {
  compgen -G "$OUT/h2-*.json" >/dev/null || return 0
  cat <<EOF

### H2: W1 over HTTP/1.1 and HTTP/2, $H2_SUBS subscribers on 1 channel, $H2_RATE events/s of $SIZE B, $H2_DURATION s

Each protocol against a freshly started server; over HTTP/2 the bench puts $H2_STREAMS
subscribers on each connection (one stream each), as a browser does with many EventSources to one
origin. Nchan's HTTP/2 is nginx's (\`listen ... http2\`, h2c). RSS per subscriber = (RSS after
connecting − RSS before) ÷ connected.

$(h2_table)
EOF
}
coalesce_section() {
  compgen -G "$OUT/coal-*.json" >/dev/null || return 0
  cat <<EOF

### Coalescing: $COAL_SUBS subscribers on 1 channel, $SIZE B events, $COAL_DURATION s, against fanout.coalesce

Each row a freshly started server (\`workers: 2\`, pinned to one core like W1), the default
publisher of the bench. A window of N ms holds a busy channel's events for up to N ms so that each
subscriber's write carries several; \`0ms\` is the default (no window).

$(coalesce_table)
EOF
}

# ---- targets (issue 4), from the medians ---------------------------------------------------------
better_peer() {  # better_peer WL FIELD min|max: the better of Nchan's and Pushpin's medians
  local wl=$1 field=$2 how=$3 vals=() p v
  for p in nchan pushpin; do
    [[ -e $OUT/$wl-$p-1.json ]] || continue
    v=$(med "$field" "$OUT/$wl-$p-"+([0-9]).json)
    [[ $v != null ]] && vals+=("$v")
  done
  ((${#vals[@]})) || { echo null; return; }
  jq -n "[$(IFS=,; echo "${vals[*]}")] | $how"
}
verdict() {  # verdict OK_EXPR: met / missed
  if [[ $(jq -n "$1" 2>/dev/null) == true ]]; then echo "**met**"; else echo "**missed**"; fi
}
targets_table() {
  echo "| target | ssegw (median) | better peer (median) | needed | verdict |"
  echo "|---|---|---|---|---|"
  local wl s p sv who
  for wl in w1 w3; do
    for sv in ssegw ssegw-1w; do
      [[ -e $OUT/$wl-$sv-1.json ]] || continue
      local WL=${wl^^} short
      who=""
      [[ $sv == ssegw-1w ]] && who=" (ssegw with workers: 1)"
      # Runs that fell short: something lost, or the server took the publishes too slowly for
      # the offered rate. "n worst%": how many, and the least share of the offered deliveries.
      short=$(jq -s -r "[.[] | select(.error | not) | select(.all_delivered | not) | $OFFERED_SHARE] |
         if length == 0 then \"\" else \"\\(length) \\(min)\" end" "$OUT/$wl-$sv-"+([0-9]).json)
      if [[ -z $short ]]; then
        echo "| $WL$who: every event delivered | every run: all delivered | | every run | **met** |"
      else
        echo "| $WL$who: every event delivered | ${short%% *} of $RUNS runs fell short (the worst: $(f "${short##* }" 1) % of the offered deliveries; the publisher could not publish at the full rate) | | every run | **missed** |"
      fi
      s=$(med .latency_ms.p99 "$OUT/$wl-$sv-"+([0-9]).json)
      p=$(better_peer "$wl" .latency_ms.p99 min)
      echo "| $WL$who: p99 latency ≤ ½ better peer's | $(f "$s" 2) ms | $(f "$p" 2) ms | ≤ $(f "$(jq -n "$p / 2" 2>/dev/null || echo null)" 2) ms | $(verdict "$s <= $p / 2") ($(f "$(jq -n "$s / $p" 2>/dev/null || echo null)" 2)× the peer's) |"
      s=$(med .server.cpu_s_per_million_deliveries "$OUT/$wl-$sv-"+([0-9]).json)
      if [[ -e $OUT/floor-$wl-1-1.json ]]; then
        p=$(med .us_per_delivery "$OUT/floor-$wl-1-"*.json)
        echo "| $WL$who: server CPU per delivery ≤ 1.1× the floor (one write per delivery) | $(f "$s" 2) µs | $(f "$p" 2) µs (the floor) | ≤ $(f "$(jq -n "$p * 1.1" 2>/dev/null || echo null)" 2) µs | $(verdict "$s <= $p * 1.1") ($(f "$(jq -n "$s / $p" 2>/dev/null || echo null)" 2)× the floor) |"
      fi
      p=$(better_peer "$wl" .server.cpu_s_per_million_deliveries min)
      echo "| $WL$who: server CPU per delivery ≤ ½ better peer's | $(f "$s" 2) µs | $(f "$p" 2) µs | ≤ $(f "$(jq -n "$p / 2" 2>/dev/null || echo null)" 2) µs | $(verdict "$s <= $p / 2") ($(f "$(jq -n "$s / $p" 2>/dev/null || echo null)" 2)× the peer's) |"
    done
  done
  for wl in w1 w3; do
    [[ -e $OUT/$wl-ssegw-uring-1.json && -e $OUT/$wl-ssegw-1.json ]] || continue
    s=$(med .server.cpu_s_per_million_deliveries "$OUT/$wl-ssegw-uring-"+([0-9]).json)
    p=$(med .server.cpu_s_per_million_deliveries "$OUT/$wl-ssegw-"+([0-9]).json)
    echo "| ${wl^^}: fanout.io_uring CPU per delivery ≤ 0.85× writev's (keep it) | $(f "$s" 2) µs | $(f "$p" 2) µs (ssegw, writev) | ≤ $(f "$(jq -n "$p * 0.85" 2>/dev/null || echo null)" 2) µs | $(verdict "$s <= $p * 0.85") ($(f "$(jq -n "$s / $p" 2>/dev/null || echo null)" 2)× writev's) |"
  done
  if [[ -e $OUT/w2-ssegw-1.json ]]; then
    s=$(med .server.rss_per_subscriber_bytes "$OUT/w2-ssegw-"+([0-9]).json)
    p=$(better_peer w2 .server.rss_per_subscriber_bytes min)
    echo "| W2: RSS per idle subscriber ≤ ½ better peer's | $(f "$s" 0) B | $(f "$p" 0) B | ≤ $(f "$(jq -n "$p / 2" 2>/dev/null || echo null)" 0) B | $(verdict "$s <= $p / 2") ($(f "$(jq -n "$s / $p" 2>/dev/null || echo null)" 2)× the peer's) |"
    echo "| W2: RSS per idle subscriber < 4 KiB | $(f "$s" 0) B | | < 4096 B | $(verdict "$s < 4096") |"
  fi
  if [[ -e $OUT/wmax-ssegw-2w-1.summary.json ]]; then
    local vals=() v
    for p in nchan pushpin; do
      [[ -e $OUT/wmax-$p-1.summary.json ]] || continue
      vals+=("$(med '.best.per_s // 0' "$OUT/wmax-$p-"[0-9].summary.json)")
    done
    p=null
    ((${#vals[@]})) && p=$(jq -n "[$(IFS=,; echo "${vals[*]}")] | max")
    for series in ssegw-2w ssegw-1w ssegw-2w-unpinned ssegw-1w-unpinned; do
      [[ -e $OUT/wmax-$series-1.summary.json ]] || continue
      s=$(med '.best.per_s // 0' "$OUT/wmax-$series-"[0-9].summary.json)
      echo "| W-max: ≥ 2× better peer's deliveries/s ($(series_label "$series")) | $(f "$s" 0)/s | $(f "$p" 0)/s | ≥ $(f "$(jq -n "$p * 2" 2>/dev/null || echo null)" 0)/s | $(verdict "$s >= 2 * $p") ($(f "$(jq -n "$s / $p" 2>/dev/null || echo null)" 2)× the peer's) |"
    done
  fi
  local mode
  for mode in $W4_MODES; do
    [[ -e $OUT/w4-$mode-ssegw-1.json ]] || continue
    local d99 g99 n99
    d99=$(med .latency_ms.p99 "$OUT/w4-$mode-direct-"*.json)
    g99=$(med .latency_ms.p99 "$OUT/w4-$mode-ssegw-"*.json)
    n99=$(med .latency_ms.p99 "$OUT/w4-$mode-nginx-"*.json)
    s=$(jq -n "$g99 - $d99")
    p=$(jq -n "$n99 - $d99")
    echo "| W4 ($mode): added p99 per chunk < 1 ms | $(f "$s" 3) ms | | < 1 ms | $(verdict "$s < 1") |"
    echo "| W4 ($mode): added p99 below nginx's | $(f "$s" 3) ms | $(f "$p" 3) ms (nginx) | < $(f "$p" 3) ms | $(verdict "$s < $p") |"
  done
}

report() {
  local cpu kernel
  cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
  kernel=$(uname -sr)
  cat <<EOF
## Comparison (bench/compare.sh)

Written by \`bench/compare.sh\` on $STARTED ($((ELAPSED / 60)) min $((ELAPSED % 60)) s). Every figure is
the median of $RUNS runs, each against a freshly started server, the servers' order rotating from
run to run. JSON of every run: \`$OUT\` on the machine that ran it.

- **Machine:** $(nproc) CPUs ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, $kernel, $(. /etc/os-release && echo "$PRETTY_NAME"); fd limit $(ulimit -Hn).
- **Versions:** ssegw $(git -C "$BIN" rev-parse --short HEAD 2>/dev/null || echo "?") (binaries from \`$BIN\`), $(nginx -v 2>&1 | sed 's/.*: //') with libnginx-mod-nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null), pushpin $(dpkg-query -W -f='${Version}' pushpin 2>/dev/null) with $(condure --version 2>/dev/null || echo condure) and zurl $(dpkg-query -W -f='${Version}' zurl 2>/dev/null), node $(node --version).
- **Pinning:** $( if [[ $PIN == 1 ]]; then echo "every server process on CPU $SERVER_CPU (\`taskset -c $SERVER_CPU\`), the bench, the mock LLM and Pushpin's origin on CPU $CLIENT_CPU, so that the bench never takes CPU from the server it measures. Each server has one core, and runs its 2 workers on it; the W-max rows marked unpinned let ssegw use both cores (shared with the bench)."; else echo "none (PIN=0)"; fi)
- **Shared machine:** other work (builds, tests) may run at the same time. \`other cores\` is the machine's CPU that went to neither the server nor the bench during a run; near 1, the run measured the scheduler more than the server (slightly negative values are rounding: the bench's CPU and the machine's are read at slightly different moments).
- **Command:** \`$CMDLINE\`; the exact \`ssegw-bench\` invocation of every run is in \`$OUT/commands.txt\`, and below.

### W1 fan-out: $W1_SUBS subscribers on 1 channel, $W1_RATE events/s of $SIZE B, $W1_DURATION s

$(fanout_table w1)

### W2 idle scale: $W2_SUBS subscribers on 1 channel, $W2_RATE events/s, $W2_DURATION s

$(w2_table)

RSS per idle subscriber = (RSS after connecting and settling − RSS before the first connect) ÷
connected, summed over the server's processes. 50,000 subscribers do not fit on this machine:
its hard fd limit is $(ulimit -Hn) per process, and neither the bench nor the servers can raise it.

### W3 many channels: $W3_SUBS subscribers over $W3_CHANNELS channels, $W3_RATE events/s spread over them, $W3_DURATION s

$(fanout_table w3)

### W-max saturation: $WMAX_SUBS subscribers on 1 channel, $SIZE B events

The publish rate starts at $WMAX_START events/s and doubles until a step fails (or halves until
one passes), then the gap is bisected $WMAX_REFINE times (geometric mean of the last pass and the
first fail); each step is a fresh server and $WMAX_DURATION s of publishing. A step
passes when every subscriber connected, at least 99 % of the offered deliveries (rate × duration
× subscribers) arrived, and p99 ≤ 100 ms. The figure is the best passing step's deliveries/s.

$(wmax_table)

### W4 LLM proxy: $W4_STREAMS streams × $W4_TOKENS chunks, $W4_INTERVAL_MS ms apart

The proxy (ssegw or nginx) on CPU $SERVER_CPU; \`ssegw-mock-llm\` and the bench on CPU $CLIENT_CPU.
"Added" is the median through the proxy minus the median direct. Server CPU is the proxy's (the
mock's for direct).
$(for mode in $W4_MODES; do
  echo
  case $mode in
    pinned) echo "**pinned** (normal priority):" ;;
    pinned-rt) echo "**pinned-rt** (the three processes under SCHED_FIFO, \`chrt -f 10\`: other work on the machine cannot delay them, as if it were idle):" ;;
    *) echo "**$mode**:" ;;
  esac
  echo
  w4_table "$mode"
done)

$(w1load_section)
$(w5_section)
$(scaling_section)
$(h2_section)
$(coalesce_section)

### Targets (issue 4)

Ratios of medians from this run; "better peer" is the better of Nchan and Pushpin.

$(targets_table)

### How each server was set up, and what was tuned

- **ssegw** ([bench/peers/ssegw.yaml](peers/ssegw.yaml)): \`workers: 2\`; W1, W3 and W-max
  also run it with \`workers: 1\`, in rows that say so, outside the comparison. Defaults otherwise: history of 1,000 events / 8 MiB / 10 min per channel,
  heartbeat 15 s, 1 MiB slow-consumer limit; the per-address limits raised so that the bench's
  single publisher address is never rate-limited; log level warn; no demo page.
- **Nchan** ([bench/peers/nchan.conf](peers/nchan.conf)): \`worker_processes 2\`, \`listen ...
  reuseport\` (one accept queue per worker, like ssegw's SO_REUSEPORT), \`worker_connections
  19000\` and \`worker_rlimit_nofile 20000\` (the fd limit), \`access_log off\`,
  \`keepalive_requests\` raised so the publisher's keep-alive connections are not recycled,
  \`nchan_subscriber_first_message newest\` (ssegw's semantics), \`nchan_message_buffer_length
  10\` (the default) with \`nchan_message_timeout 10m\`, \`nchan_max_reserved_memory 256M\`,
  \`nchan_eventsource_ping_interval 15\` (ssegw's heartbeat).
- **Pushpin** ([bench/peers/pushpin.conf](peers/pushpin.conf), origin
  [bench/peers/pushpin-origin.js](peers/pushpin-origin.js)): condure with its default 2 worker
  threads (the runner has no setting for it), zurl, pushpin-proxy and pushpin-handler, all
  counted as the server; ZeroMQ over ipc:// sockets in the run's directory;
  \`message_rate=-1\` (no limit) and \`message_hwm\` 1,000,000: the default limit (2,500)
  counts deliveries, not publishes, and any finite limit batches a subscriber's messages behind
  its timer (with 1,000,000, messages 10 ms apart to one subscriber arrived up to 1.1 s late;
  with -1, within 2 ms); \`client_maxconn 19000\`; log level 1; \`client_buffer_size\` left
  at 8192. The origin answers each subscribe with \`Grip-Hold: stream\`, \`Grip-Channel\`
  and a 15 s \`Grip-Keep-Alive\`; it is the application, so its CPU and memory are not
  counted. Pushpin's HTTP publish endpoint answers pipelined requests with \`400\` and closes
  the connection after each answer, so its publisher sends one request at a time and reconnects
  for each (\`--pipeline 1\`; ssegw and Nchan get 16 in flight on a keep-alive connection).
- **nginx for W4** ([bench/peers/nginx-llm.conf](peers/nginx-llm.conf)): 2 workers,
  \`proxy_buffering off\`, \`proxy_request_buffering off\`, HTTP/1.1 keep-alive pool to the mock
  (\`keepalive 64\`), \`access_log off\`.
- **All:** subscribers connect at $CONNECT_RATE/s from 127.0.0.1 … 127.0.0.8 (Pushpin answers
  some subscribes with \`502\` at 2,000/s, so every server gets the same, lower rate); payloads of
  $SIZE B carrying the publish time; the bench on one event loop.

<details><summary>Every run</summary>

| run | connected | received / expected | deliveries/s | p99 ms | server µs / delivery | server cores | bench cores | other cores |
|---|---|---|---|---|---|---|---|---|
$(for wl in w1 w2 w3; do for file in "$OUT/$wl"-*-[0-9].json; do [[ -e $file ]] || continue; jq -r --arg n "$(basename "$file" .json)" 'if .error then "| \($n) | \(.error) |||||||" else "| \($n) | \(.subscribers.connected)/\(.subscribers.requested) | \(.deliveries.received)/\(.deliveries.expected) | \(.deliveries.per_s | floor) | \(.latency_ms.p99) | \(.server.cpu_s_per_million_deliveries) | \(.server.cpu_cores) | \(.bench.cpu_cores_window) | \(.other_cores) |" end' "$file"; done; done)

W-max steps (rate in events/s → deliveries/s, p99 ms, pass or fail):

$(for file in "$OUT"/wmax-*-[0-9].summary.json; do [[ -e $file ]] || continue; s=$(basename "$file" .summary.json); printf -- '- %s: ' "$s"; jq -s -r 'def ok: (.error | not) and .subscribers.connected == .subscribers.requested and .deliveries.received >= 0.99 * (.config.rate * .config.duration_s) * .subscribers.requested and .deliveries.received >= 0.99 * .deliveries.expected and .latency_ms.p99 <= 100; sort_by(.config.rate // 0) | map(if .error then "(no report)" else "\(.config.rate) → \(.deliveries.per_s | floor), \(.latency_ms.p99), \(if ok then "pass" else "fail" end)" end) | join("; ")' "$OUT/$s"-step-*.json; done)

W4 runs (p50 / p99 ms, proxy CPU ms per 1k chunks, other cores):

$(for file in "$OUT"/w4-*-[0-9].json; do [[ -e $file ]] || continue; jq -r --arg n "$(basename "$file" .json)" 'if .error then "- \($n): \(.error)" else "- \($n): \(.streams.completed)/\(.config.streams) completed, \(.latency_ms.p50) / \(.latency_ms.p99), \(.server.cpu_ms_per_1000_chunks), \(.other_cores)" end' "$file"; done)

Commands (ports as in this run; \`SERVER_PIDS\` is the server's processes):

\`\`\`
$(awk '!seen[$1 " " $2]++ { $1 = $1 " " $2 ":"; $2 = ""; print }' "$OUT/commands.txt" | sed "s|:  *\(.*\)ssegw-bench|: \1$BIN/ssegw-bench|")
\`\`\`

</details>
EOF
}

report >"$OUT/comparison.md"
cat "$OUT/comparison.md"
if [[ $WRITE == 1 ]]; then
  [[ -f $RESULTS ]] || printf '# Benchmark results\n' >"$RESULTS"
  # Replace the section "## Comparison (bench/compare.sh)" (up to the next "## " heading), or
  # append it; every other section stays as it is.
  awk -v file="$OUT/comparison.md" '
    function emit() { while ((getline line < file) > 0) print line; close(file); done = 1 }
    /^## / { if (skip) { skip = 0; print "" } }
    $0 == "## Comparison (bench/compare.sh)" { skip = 1; emit(); next }
    !skip { print }
    END { if (!done) { print ""; emit() } }
  ' "$RESULTS" >"$OUT/RESULTS.md.new"
  cat "$OUT/RESULTS.md.new" >"$RESULTS"
  log "wrote the comparison into $RESULTS"
fi
log "done in $((SECONDS - T_START)) s; JSON in $OUT"
