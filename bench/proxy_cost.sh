#!/usr/bin/env bash
# What a proxied chunk costs (W4's shape), ssegw against nginx in the same run: the proxy's CPU
# (task-clock), its system calls by kind, and its user and kernel shares, per 1,000 chunks.
# perf stat counts over the bench's run only (not start-up); both proxies are pinned to
# SERVER_CPU, ssegw-mock-llm and ssegw-bench to CLIENT_CPU, as in bench/compare.sh's W4. The
# targets alternate (ssegw, nginx, nginx, ssegw, ...) so that neither always goes first; medians
# of RUNS. Not part of make test. Needs perf (linux-perf) and nginx.
#   bench/proxy_cost.sh        # BIN=build/bin RUNS=5 STREAMS=500 TOKENS=200 INTERVAL_MS=20
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin}
RUNS=${RUNS:-5}
STREAMS=${STREAMS:-500}
TOKENS=${TOKENS:-200}
INTERVAL_MS=${INTERVAL_MS:-20}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
MOCK_PORT=${MOCK_PORT:-18180} SSEGW_PORT=${SSEGW_PORT:-18181} NGINX_PORT=${NGINX_PORT:-18182}
work=$(mktemp -d)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null; wait 2>/dev/null; [[ -n ${KEEP:-} ]] || rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null
command -v perf >/dev/null || { echo "proxy_cost.sh: needs perf (apt-get install linux-perf)" >&2; exit 2; }
command -v nginx >/dev/null || { echo "proxy_cost.sh: needs nginx" >&2; exit 2; }

wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; echo "nothing on $1" >&2; exit 1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

taskset -c "$CLIENT_CPU" "$BIN/ssegw-mock-llm" --listen "127.0.0.1:$MOCK_PORT" >"$work/mock.log" 2>&1 &
echo $! >"$work/mock.pid"
sed -e "s|@PORT@|$SSEGW_PORT|; s|@WORKERS@|2|; s|@UPSTREAM_PORT@|$MOCK_PORT|" \
  bench/peers/ssegw.yaml >"$work/ssegw.yaml"
taskset -c "$SERVER_CPU" "$BIN/ssegw" --config "$work/ssegw.yaml" >"$work/ssegw.log" 2>&1 &
echo $! >"$work/ssegw.pid"
mkdir -p "$work/nginx"
sed -e "s|@DIR@|$work/nginx|g; s|@PORT@|$NGINX_PORT|; s|@UPSTREAM_PORT@|$MOCK_PORT|" \
  bench/peers/nginx-llm.conf >"$work/nginx/nginx.conf"
taskset -c "$SERVER_CPU" nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" >"$work/nginx.out" 2>&1 &
echo $! >"$work/nginx.pid"
wait_port "$MOCK_PORT"; wait_port "$SSEGW_PORT"; wait_port "$NGINX_PORT"
for _ in $(seq 100); do (($(pgrep -c -P "$(cat "$work/nginx.pid")") >= 2)) && break; sleep 0.05; done
ssegw_pids=$(cat "$work/ssegw.pid")
nginx_pids=$(pgrep -d, -P "$(cat "$work/nginx.pid")")

events=task-clock,raw_syscalls:sys_enter
for call in read recvfrom write writev epoll_wait epoll_ctl futex; do events+=",syscalls:sys_enter_$call"; done
chunks=$((STREAMS * TOKENS))
tck=$(getconf CLK_TCK)
for run in $(seq "$RUNS"); do
  order="ssegw nginx"
  ((run % 2 == 0)) && order="nginx ssegw"
  for target in $order; do
    port=$SSEGW_PORT pids=$ssegw_pids
    [[ $target == nginx ]] && port=$NGINX_PORT pids=$nginx_pids
    # user and kernel time from /proc (clock ticks), around the same window as perf stat's
    u0=0 s0=0
    for p in ${pids//,/ }; do read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat"); u0=$((u0 + u)) s0=$((s0 + s)); done
    perf stat -x, -e "$events" -p "$pids" -o "$work/$target-$run.stat" -- \
      taskset -c "$CLIENT_CPU" "$BIN/ssegw-bench" --mode llm \
      --url "http://127.0.0.1:$port/v1/chat/completions" --streams "$STREAMS" --tokens "$TOKENS" \
      --interval-ms "$INTERVAL_MS" --json --quiet >"$work/$target-$run.json" 2>"$work/$target-$run.err"
    u1=0 s1=0
    for p in ${pids//,/ }; do read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat"); u1=$((u1 + u)) s1=$((s1 + s)); done
    awk -F, '$3 ~ /sys_enter_(read|recvfrom)$/ { r += $1 } $3 ~ /sys_enter_(write|writev)$/ { w += $1 }
      END { print "reads (read+recvfrom)," r; print "writes (write+writev)," w }' \
      "$work/$target-$run.stat" >>"$work/$target-$run.stat"
    echo "user ms,$(((u1 - u0) * 1000 / tck))" >>"$work/$target-$run.stat"
    echo "kernel ms,$(((s1 - s0) * 1000 / tck))" >>"$work/$target-$run.stat"
    done_streams=$(jq -r '.streams.completed // .completed // empty' "$work/$target-$run.json" 2>/dev/null)
    echo "run $run $target: $(awk -F, '$3 == "task-clock" {printf "%.1f ms CPU", $1}' "$work/$target-$run.stat"), p99 $(jq -r .latency_ms.p99 "$work/$target-$run.json") ms ${done_streams:+, $done_streams streams completed}" >&2
  done
done

# One row per counter: the median per 1,000 chunks of each target, and ssegw's over nginx's.
value() {  # value STATFILE NAME: perf's "count,unit,event,..." or our "name,value"
  awk -F, -v name="$2" '$3 == name { print $1 } $1 == name { print $2 }' "$1"
}
echo "$STREAMS streams x $TOKENS chunks ($INTERVAL_MS ms apart), $RUNS runs each, medians per 1,000 chunks"
printf '| %s | %s | %s | %s |\n' "counter" "ssegw (workers: 2)" "nginx (2 workers)" "ssegw / nginx"
printf '|---|---|---|---|\n'
names=(task-clock raw_syscalls:sys_enter "reads (read+recvfrom)" "writes (write+writev)"
  syscalls:sys_enter_epoll_wait syscalls:sys_enter_epoll_ctl syscalls:sys_enter_futex "user ms" "kernel ms")
for name in "${names[@]}"; do
  s=$(for f in "$work"/ssegw-*.stat; do value "$f" "$name"; done | median)
  n=$(for f in "$work"/nginx-*.stat; do value "$f" "$name"; done | median)
  [[ -z $s || -z $n ]] && continue
  awk -v name="$name" -v s="$s" -v n="$n" -v c="$chunks" 'BEGIN {
    label = name; sub(/^syscalls:sys_enter_/, "", label); sub(/^raw_syscalls:sys_enter$/, "system calls", label)
    sub(/^task-clock$/, "CPU ms (task-clock)", label)
    ratio = (n > 0) ? sprintf("%.2f", s / n) : "-"
    printf "| %s | %.1f | %.1f | %s |\n", label, s * 1000 / c, n * 1000 / c, ratio }'
done
