#!/usr/bin/env bash
# Instructions and allocations per request of a warren server, under callgrind:
#
#   bench/callgrind-per-op.sh BIN PORT WORKLOAD OPS
#
# Starts BIN as a standalone server under `valgrind --tool=callgrind` on 127.0.0.1:PORT,
# warms it with 2000 ops of WORKLOAD, zeroes the counters, runs OPS ops (16 sessions x depth
# 8, 100-byte values, znodes kept), dumps, stops the server (by its pid) and prints
# instructions, malloc and realloc calls per op. The whole server's user-space instructions
# are counted, setup of the run included. Needs valgrind; BIN should be a release build.
set -euo pipefail
BIN=$1; PORT=$2; W=$3; N=$4
DIR=$(mktemp -d /var/tmp/warren-callgrind.XXXXXX)
WARREN_LOG=warn valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$DIR/cg.%p" \
    "$BIN" server --client-port "$PORT" --client-port-address 127.0.0.1 \
    --data-dir "$DIR/data" -D zookeeper.snapCount=1000000 >"$DIR/valgrind.log" 2>&1 &
VPID=$!
trap 'kill $VPID 2>/dev/null || true' EXIT
C=(--server "127.0.0.1:$PORT" --sessions 16 --depth 8 --value-size 100 --keys 1000 -q
   --warmup 0s --multi-ops 10 --read-ratio 0.9)
for _ in $(seq 60); do
    "$BIN" bench "${C[@]}" --workload get --ops 10 --reply-timeout 5s >/dev/null 2>&1 && break
    sleep 1
done
"$BIN" bench "${C[@]}" --workload "$W" --ops 2000 --keep >/dev/null
callgrind_control -z "$VPID" >/dev/null 2>&1
"$BIN" bench "${C[@]}" --workload "$W" --ops "$N" --keep >/dev/null
callgrind_control -d "$W" "$VPID" >/dev/null 2>&1
sleep 1
kill "$VPID"; wait "$VPID" 2>/dev/null || true
F=$(ls "$DIR"/cg."$VPID".* | head -1)
python3 - "$F" "$N" "$W" <<'PY'
import re, sys, collections
names, calls, total, cur = {}, collections.Counter(), 0, None
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.strip())
    if m:
        if m.group(2):
            names[m.group(1)] = m.group(2)
        if line.startswith("cfn="):
            cur = names.get(m.group(1))
    elif line.startswith("calls=") and cur:
        calls[cur] += int(line.split("=")[1].split()[0])
    elif line.startswith(("summary:", "totals:")):
        total = int(line.split()[1])
n = int(sys.argv[2])
print("%-8s Ir/op %8.0f  malloc/op %5.1f  realloc/op %4.1f"
      % (sys.argv[3], total / n, calls["malloc"] / n, calls["realloc"] / n))
PY
echo "callgrind output: $F (callgrind_annotate --inclusive=yes $F)"
