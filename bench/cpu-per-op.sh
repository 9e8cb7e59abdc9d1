#!/usr/bin/env bash
# Server CPU time per op, which a busy shared machine disturbs far less than wall-clock
# throughput:
#
#   bench/cpu-per-op.sh BIN PORT WORKLOAD RATE|max [DURATION]
#
# Starts BIN as a standalone server on 127.0.0.1:PORT (fresh data directory), warms it for
# 1 s, runs WORKLOAD (16 sessions x depth 8, 100-byte values; RATE ops/s offered, or closed
# loop with `max`) and prints throughput, p50/p99 and the server's utime+stime and voluntary
# context switches per op over the measured run. Stops the server by its pid.
set -euo pipefail
BIN=$1; PORT=$2; W=$3; RATE=$4; DUR=${5:-6s}
DIR=$(mktemp -d /var/tmp/warren-cpu.XXXXXX)
WARREN_LOG=warn "$BIN" server --client-port "$PORT" --client-port-address 127.0.0.1 \
    --data-dir "$DIR/data" >"$DIR/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
C=(--server "127.0.0.1:$PORT" --sessions 16 --depth 8 --value-size 100 --keys 1000 -q --json
   --read-ratio 0.9 --multi-ops 10 --warmup 0s)
[ "$RATE" != max ] && C+=(--rate "$RATE")
for _ in $(seq 60); do
    "$BIN" bench "${C[@]}" --workload get --ops 10 --reply-timeout 5s >/dev/null 2>&1 && break
    sleep 0.5
done
"$BIN" bench "${C[@]}" --workload "$W" --duration 1s >/dev/null
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
vcs() { cat /proc/"$PID"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }
t0=$(cpu); c0=$(vcs)
OUT=$("$BIN" bench "${C[@]}" --workload "$W" --duration "$DUR")
t1=$(cpu); c1=$(vcs)
python3 - "$OUT" $((t1 - t0)) $((c1 - c0)) "$(getconf CLK_TCK)" "$RATE" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); ticks, cs, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
n = r["ops"]; l = r["latency"]
print("%-8s %-6s %8.0f ops/s  p50 %7.2f  p99 %8.2f ms | server CPU %5.1f us/op, %.2f vol-cs/op"
      % (r["workload"], sys.argv[5], r["ops_per_s"], l["p50_ms"], l["p99_ms"],
         ticks * 1e6 / hz / n, cs / n))
PY
