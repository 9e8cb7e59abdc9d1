#!/usr/bin/env bash
# Failover figures of a 3-server warren ensemble on loopback, measured with real processes:
#
#   bench/failover.sh [--rounds N] [--preload N]
#
# Each round:
#   1. finds the leader (`srvr` → `Mode: leader`), SIGKILLs it, and times the first write
#      (`warren create` through the two survivors, retried until it succeeds): leader loss
#      to the first successful write;
#   2. restarts the killed server and times it from process start to serving a read of the
#      znode written after its death (`warren bench --workload ready`): restart to serving,
#      caught up;
#   3. does the same for a follower: SIGKILL, a write through the others, restart, time to
#      serving that write.
# The ensemble holds --preload znodes of 100 bytes first, so a restart has data to load.
# Prints one line per measurement and the medians. Processes are stopped by pid on exit.
# Environment: CARGO_TARGET_DIR (default ~/.cache/warren/target), BENCH_WORK (work dir).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
ROUNDS=5
PRELOAD=100000
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --preload) PRELOAD=$2; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "failover.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
SIZE=3
TICK_MS=2000
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/warren/target}
WARREN="$CARGO_TARGET_DIR/release/warren"

log() { printf '%s failover: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

declare -A PIDS=()
cleanup() {
    local rc=$?
    for i in "${!PIDS[@]}"; do stop_pid "${PIDS[$i]}"; done
    if [ -n "${WORK:-}" ] && [ "$rc" = 0 ]; then rm -rf "$WORK"; elif [ -n "${WORK:-}" ]; then
        log "work dir kept: $WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building warren (release)"
(cd "$REPO" && cargo build --release -p warren) >&2
WORK=${BENCH_WORK:-$(mktemp -d /var/tmp/warren-failover.XXXXXX)}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

ensemble_cfg "$WORK" "$SIZE" "$TICK_MS"
start() {
    WARREN_LOG=warn "$WARREN" server --config "$WORK/server$1/zoo.cfg" --id "$1" \
        >>"$WORK/server$1/server.log" 2>&1 &
    PIDS[$1]=$!
}
# wait_serving I PATH SECONDS: until server I serves a getData of PATH.
wait_serving() {
    "$WARREN" bench --server "127.0.0.1:${CPORT[$1]}" --workload ready --prefix "$2" \
        --duration "${3}s" --reply-timeout 5s -q >/dev/null
}
mode_of() { # I -> leader | follower | observer | down
    local out
    out=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/${CPORT[$1]}; printf srvr >&3; cat <&3" \
        2>/dev/null || true)
    sed -n 's/^Mode: //p' <<<"$out" | head -1 | grep . || echo down
}
others() { # I -> the client addresses of every other server
    local i out=""
    for i in $(seq $SIZE); do
        [ "$i" = "$1" ] || out="$out${out:+,}127.0.0.1:${CPORT[$i]}"
    done
    echo "$out"
}
# first_write SERVERS PATH: retries `warren create` until it succeeds (60 s at most).
first_write() {
    local deadline=$(($(now_ms) + 60000))
    until timeout 5 "$WARREN" create --server "$1" --session-timeout-ms 4000 "$2" x \
        >/dev/null 2>&1; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.01
    done
}

for i in $(seq $SIZE); do start "$i"; done
for i in $(seq $SIZE); do wait_serving "$i" / 60 || die "server $i did not start"; done
log "ensemble up: $(others 0); preloading $PRELOAD znodes"
"$WARREN" bench --server "$(others 0)" --workload load --ops "$PRELOAD" --multi-ops 10 \
    --sessions 4 --depth 32 --value-size 100 --prefix /preload --warmup 0s -q >/dev/null
"$WARREN" create --server "$(others 0)" /failover x >/dev/null

declare -a LEADER_WRITE=() LEADER_BACK=() FOLLOWER_BACK=()
for r in $(seq "$ROUNDS"); do
    leader=""
    for i in $(seq $SIZE); do [ "$(mode_of "$i")" = leader ] && leader=$i; done
    [ -n "$leader" ] || die "no leader found in round $r"
    t0=$(now_ms)
    kill -KILL "${PIDS[$leader]}"; wait "${PIDS[$leader]}" 2>/dev/null || true
    first_write "$(others "$leader")" "/failover/leader-$r" || die "no write after killing $leader"
    t1=$(now_ms)
    start "$leader"
    wait_serving "$leader" "/failover/leader-$r" 120 || die "server $leader did not come back"
    t2=$(now_ms)
    LEADER_WRITE+=($((t1 - t0))); LEADER_BACK+=($((t2 - t1)))
    echo "round $r: SIGKILL leader $leader -> first write $((t1 - t0)) ms;" \
        "its restart -> serving that write $((t2 - t1)) ms"

    follower=""
    for i in $(seq $SIZE); do [ "$(mode_of "$i")" = follower ] && follower=$i; done
    [ -n "$follower" ] || die "no follower found in round $r"
    kill -KILL "${PIDS[$follower]}"; wait "${PIDS[$follower]}" 2>/dev/null || true
    first_write "$(others "$follower")" "/failover/follower-$r" || die "no write without $follower"
    t3=$(now_ms)
    start "$follower"
    wait_serving "$follower" "/failover/follower-$r" 120 || die "server $follower did not come back"
    t4=$(now_ms)
    FOLLOWER_BACK+=($((t4 - t3)))
    echo "round $r: SIGKILL follower $follower; its restart -> serving the write made meanwhile $((t4 - t3)) ms"
done

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
echo "median over $ROUNDS rounds ($PRELOAD preloaded znodes, tickTime $TICK_MS):"
echo "  leader SIGKILL -> first successful write: $(median "${LEADER_WRITE[@]}") ms" \
    "(all: ${LEADER_WRITE[*]})"
echo "  killed leader restart -> serving, caught up: $(median "${LEADER_BACK[@]}") ms" \
    "(all: ${LEADER_BACK[*]})"
echo "  killed follower restart -> serving, caught up: $(median "${FOLLOWER_BACK[@]}") ms" \
    "(all: ${FOLLOWER_BACK[*]})"
