#!/usr/bin/env bash
# What snapshots cost a paced write load, measured by hand:
#
#   bench/snapshot-stall.sh BIN SNAPCOUNT [DATA_BASE]
#
# Starts BIN as a standalone server (snapCount=SNAPCOUNT; data under DATA_BASE, default
# /var/tmp; /dev/shm takes the disk out of the picture), loads 1,000,000 znodes of 100 bytes,
# then offers 15,000 creates/s for 20 s (16 sessions x depth 8) and prints the latency line
# and how many snapshots the server saved. Compare SNAPCOUNT=100000 (ZooKeeper's default)
# with a SNAPCOUNT too large to snapshot during the run. Stops the server by its pid.
set -euo pipefail
BIN=$1; SNAP=$2; BASE=${3:-/var/tmp}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
DIR=$(mktemp -d "$BASE/warren-stall.XXXXXX")
PORT=$(free_port)
printf 'tickTime=2000\ndataDir=%s/data\nclientPort=%s\nclientPortAddress=127.0.0.1\nsnapCount=%s\n' \
    "$DIR" "$PORT" "$SNAP" >"$DIR/zoo.cfg"
WARREN_LOG=info "$BIN" server --config "$DIR/zoo.cfg" >"$DIR/server.log" 2>&1 &
PID=$!
trap 'stop_pid $PID; rm -rf "$DIR"' EXIT
S=(--server "127.0.0.1:$PORT")
for _ in $(seq 60); do
    "$BIN" bench "${S[@]}" --workload get --ops 10 --warmup 0s -q >/dev/null 2>&1 && break
    sleep 0.5
done
"$BIN" bench "${S[@]}" --workload load --ops 1000000 --multi-ops 10 --sessions 4 --depth 32 \
    --value-size 100 --prefix /load --warmup 0s -q >/dev/null
"$BIN" bench "${S[@]}" --workload create --sessions 16 --depth 8 --value-size 100 \
    --rate 15000 --duration 20s --warmup 1s -q | sed -n 2,3p
echo "snapshots saved: $(grep -c 'snapshot saved' "$DIR/server.log" || true)"
