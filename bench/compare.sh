#!/usr/bin/env bash
# warren against Apache ZooKeeper 3.8, side by side, in one command:
#
#   bench/compare.sh            # the full comparison (~30 minutes on 2 cores)
#   bench/compare.sh --quick    # a smoke test of the same steps (~2 minutes)
#
# It installs Debian's `zookeeper` package when missing, builds warren (release), starts
# both standalone with equal settings (fsync on: ZooKeeper's forceSync=yes default, warren
# always fsyncs; the same tickTime and snapCount; data directories side by side on one disk;
# 127.0.0.1 on free ports), runs every workload of `warren bench` against both, alternating
# warren, ZooKeeper, warren, ZooKeeper... so that noise hits both, then the latency runs at
# the same offered load, then loads N znodes of 100 bytes into each for resident memory per
# znode, snapshot size and restart-to-serving time. The tables go to bench/RESULTS.md
# (between the compare.sh markers; text outside them is kept).
#
# Then it does the throughput and p99 runs of the target workloads again against two
# 3-server ensembles on loopback (warren and ZooKeeper, each server with its own data dir),
# the sessions of each run spread over the three servers.
#
# Options: --quick, --rounds N (throughput rounds), --out FILE, --keep-work (keep data dirs,
# logs and the p99 runs' `warren bench --trace` files, for bench/gaps.py),
# --no-ensemble (standalone only).
# Environment: CARGO_TARGET_DIR (default ~/.cache/warren/target), BENCH_WORK (work dir,
# default a new one under /var/tmp), JAVA (default java), ZOOKEEPER_CLASSPATH, LAT_ROUNDS
# (latency rounds, default 3; 1 with --quick).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
QUICK=0
ROUNDS=""
OUT="$REPO/bench/RESULTS.md"
KEEP_WORK=0
ENSEMBLE=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --rounds) ROUNDS=$2; shift ;;
        --out) OUT=$2; shift ;;
        --keep-work) KEEP_WORK=1 ;;
        --no-ensemble) ENSEMBLE=0 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# ---- settings (both servers get the same) --------------------------------------------
SESSIONS=16
DEPTH=8
VALUE_SIZE=100
TICK_MS=2000
ZK_HEAP=4g
WORKLOADS="create set get exists children mixed multi watch session"
TARGET_WORKLOADS="create set get mixed multi"   # the issue's throughput and p99 targets
if [ "$QUICK" = 1 ]; then
    WARMUP=1s; DURATION=2s; LAT_DURATION=2s; ROUNDS=${ROUNDS:-1}; LAT_ROUNDS=${LAT_ROUNDS:-1}
    LOAD_ZNODES=100000; SNAP_COUNT=10000
else
    WARMUP=2s; DURATION=8s; LAT_DURATION=8s; ROUNDS=${ROUNDS:-2}; LAT_ROUNDS=${LAT_ROUNDS:-3}
    LOAD_ZNODES=1000000; SNAP_COUNT=100000
fi
LOAD_MULTI=10          # creates per multi when loading (so both servers reach snapCount)
LAT_FRACTION=0.5       # offered load for the p99 runs: this share of the slower server's ops/s

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/warren/target}
JAVA=${JAVA:-java}
WARREN="$CARGO_TARGET_DIR/release/warren"

log() { printf '%s compare: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---- processes we start, stopped by pid on any exit ------------------------------------
declare -A PIDS=()
stop_server() {
    local name=$1
    [ -n "${PIDS[$name]:-}" ] || return 0
    stop_pid "${PIDS[$name]}"
    unset "PIDS[$name]"
}
cleanup() {
    local rc=$?
    for name in "${!PIDS[@]}"; do stop_pid "${PIDS[$name]}"; done
    if [ -n "${WORK:-}" ] && [ "$KEEP_WORK" = 0 ] && [ "$rc" = 0 ]; then
        rm -rf "$WORK"
    elif [ -n "${WORK:-}" ]; then
        log "work dir kept: $WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- prerequisites ------------------------------------------------------------------------
if ! dpkg-query -W -f='${Status}' zookeeper 2>/dev/null | grep -q "install ok installed"; then
    log "installing Debian's zookeeper package"
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y zookeeper
fi
ZK_CP=${ZOOKEEPER_CLASSPATH:-}
if [ -z "$ZK_CP" ]; then
    for jar in /usr/share/java/zookeeper.jar /usr/share/zookeeper/zookeeper-*.jar; do
        [ -f "$jar" ] && { ZK_CP=$jar; break; }
    done
    [ -n "$ZK_CP" ] || die "no ZooKeeper jar under /usr/share/java or /usr/share/zookeeper"
    # Debian's jar names its dependencies in its manifest; add a logging binding (warnings).
    [ -f /usr/share/java/slf4j-simple.jar ] && ZK_CP="$ZK_CP:/usr/share/java/slf4j-simple.jar"
fi
command -v jcmd >/dev/null || log "jcmd not found: ZooKeeper's RSS is read without a GC first"
log "building warren (release)"
(cd "$REPO" && cargo build --release -p warren) >&2

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=${BENCH_WORK:-$(mktemp -d /var/tmp/warren-compare.XXXXXX)}
mkdir -p "$WORK"
RUNS="$WORK/runs.jsonl"; MEM="$WORK/mem.jsonl"
: >"$RUNS"; : >"$MEM"
log "work dir $WORK; logs there"

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
now_ns() { date +%s%N; }

# ---- servers ------------------------------------------------------------------------------
# start_server NAME KIND DIR PORT: KIND is warren or zk; the pid lands in PIDS[NAME].
start_server() {
    local name=$1 kind=$2 dir=$3 port=$4
    mkdir -p "$dir"
    if [ "$kind" = warren ]; then
        WARREN_LOG=warn "$WARREN" server --client-port "$port" \
            --client-port-address 127.0.0.1 --data-dir "$dir/data" --tick-time "$TICK_MS" \
            -D maxClientCnxns=0 -D "zookeeper.snapCount=$SNAP_COUNT" \
            >>"$dir/server.log" 2>&1 &
    else
        mkdir -p "$dir/data"
        cat >"$dir/zoo.cfg" <<EOF
tickTime=$TICK_MS
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
EOF
        "$JAVA" "-Xmx$ZK_HEAP" -Djava.awt.headless=true \
            "-Dzookeeper.snapCount=$SNAP_COUNT" \
            -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
            -cp "$ZK_CP" org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" \
            >>"$dir/server.log" 2>&1 &
    fi
    PIDS[$name]=$!
}

# wait_ready PORT PATH SECONDS: until a getData of PATH succeeds.
wait_ready() {
    "$WARREN" bench --server "127.0.0.1:$1" --workload ready --prefix "$2" \
        --duration "${3}s" --reply-timeout 5s -q >/dev/null
}

# ---- throughput and latency runs ------------------------------------------------------------
COMMON=(--sessions "$SESSIONS" --depth "$DEPTH" --value-size "$VALUE_SIZE" --warmup "$WARMUP"
        --read-ratio 0.9 --multi-ops 10 --children 100 --keys 1000 --json -q)

# settle: waits, before each run, until every server up (of both kinds) is idle: their
# processes used at most SETTLE_CPU_TICKS of CPU together over half a second; then writes
# the page cache's dirty pages out (`sync`) and checks that at most SETTLE_DIRTY_KB are left
# dirty or in flight; at most SETTLE_MAX_S. Without it a run pays for the other server's
# leftovers: a snapshot still being written, a garbage collection, a JIT compilation, dirty
# pages of the run before going to disk. Waiting for the dirty pages to drain by themselves
# (to 16 MiB, which took 20-30 s after each create run: ZooKeeper writes its snapshots
# without an fsync) still left a few MiB for the kernel's flusher to write during the next
# run, and each log fsync of that run waited behind them (a 95 ms stall with no reply right
# as 5.8 MB of dirty pages went out, bench/RESULTS.md session 12); the run after
# ZooKeeper's create runs is always warren's. Sets SETTLED_S to the time waited (recorded
# with the run).
SETTLE_CPU_TICKS=3     # clock ticks (1/100 s): 6% of one core
SETTLE_DIRTY_KB=16384
SETTLE_MAX_S=30
cpu_ticks() { # PID...: utime + stime of the processes, in clock ticks
    local p t=0
    for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
    echo "$t"
}
settle() {
    local t0 a b dirty
    t0=$(now_ns)
    while :; do
        a=$(cpu_ticks "${PIDS[@]}"); sleep 0.5; b=$(cpu_ticks "${PIDS[@]}")
        dirty=-1
        if [ $((b - a)) -le "$SETTLE_CPU_TICKS" ]; then
            sync
            dirty=$(awk '/^(Dirty|Writeback):/ {s += $2} END {print s}' /proc/meminfo)
            [ "$dirty" -le "$SETTLE_DIRTY_KB" ] && break
        fi
        if [ $(($(now_ns) - t0)) -ge $((SETTLE_MAX_S * 1000000000)) ]; then
            log "settle: still busy after ${SETTLE_MAX_S}s (servers' CPU $((b - a)) ticks in 0.5 s, dirty ${dirty/#-1/not read} KB); running anyway"
            break
        fi
    done
    SETTLED_S=$(python3 -c "print(round(($(now_ns) - $t0) / 1e9, 1))")
}

# bench_run KIND ADDRS ROUND MODE WORKLOAD [extra args...]: one run, appended to $RUNS with
# the current $SETUP. ADDRS is host:port, or a comma-separated list (sessions round-robin).
SETUP=standalone
bench_run() {
    local kind=$1 addrs=$2 round=$3 mode=$4 workload=$5; shift 5
    local out trace=() tfile=""
    if [ "$mode" = latency ]; then
        # Every op's times, for bench/gaps.py (kept with --keep-work).
        tfile="$WORK/trace-$SETUP-r$round-$kind-$workload.txt"
        trace=(--trace "$tfile")
    fi
    settle
    out=$("$WARREN" bench --server "$addrs" --workload "$workload" "${COMMON[@]}" \
        "${trace[@]}" "$@" 2>>"$WORK/bench.log") || { log "bench $workload against $kind failed"; return 1; }
    printf '{"server":"%s","setup":"%s","round":%s,"mode":"%s","settled_s":%s,"report":%s}\n' \
        "$kind" "$SETUP" "$round" "$mode" "$SETTLED_S" "$out" >>"$RUNS"
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); l=r["latency"]
print("%-10s %-9s %-8s %10.0f ops/s  p50 %7.3f  p99 %7.3f ms  errors %d  (settled %ss)" % (sys.argv[3], sys.argv[2], r["workload"], r["ops_per_s"], l["p50_ms"], l["p99_ms"], r["errors"], sys.argv[4]))' \
        "$out" "$kind" "$SETUP" "$SETTLED_S" >&2
    if [ -n "$tfile" ]; then
        { python3 "$REPO/bench/gaps.py" "$tfile" || true; } | sed -n '/^\(gaps\|p99\) /s/^/           /p' >&2
    fi
}

WPORT=$(free_port); ZPORT=$(free_port)
log "starting warren on 127.0.0.1:$WPORT and ZooKeeper on 127.0.0.1:$ZPORT"
start_server warren warren "$WORK/warren" "$WPORT"
start_server zk zk "$WORK/zk" "$ZPORT"
wait_ready "$WPORT" / 60 || die "warren did not start (see $WORK/warren/server.log)"
wait_ready "$ZPORT" / 120 || die "ZooKeeper did not start (see $WORK/zk/server.log)"

for round in $(seq "$ROUNDS"); do
    log "throughput round $round of $ROUNDS (closed loop, $SESSIONS sessions x depth $DEPTH, $DURATION each)"
    for w in $WORKLOADS; do
        bench_run warren "127.0.0.1:$WPORT" "$round" tput "$w" --duration "$DURATION"
        bench_run zk "127.0.0.1:$ZPORT" "$round" tput "$w" --duration "$DURATION"
    done
done

# offered_rate WORKLOAD: the offered load of the p99 runs, the same for both servers: a share
# of the slower server's mean closed-loop throughput in the current $SETUP.
offered_rate() {
    python3 - "$RUNS" "$1" "$LAT_FRACTION" "$SETUP" <<'EOF'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def mean(server):
    v = [r["report"]["ops_per_s"] for r in runs
         if r["mode"] == "tput" and r["server"] == server and r.get("setup") == sys.argv[4]
         and r["report"]["workload"] == sys.argv[2]]
    return sum(v) / len(v)
print("%.0f" % max(1.0, float(sys.argv[3]) * min(mean("warren"), mean("zk"))))
EOF
}
# pool_latency: after a setup's latency rounds, one "pooled" line per server and workload
# in $RUNS: the percentiles of every measured op of all its rounds together (from the
# --trace files; latency = reply time - due time, as warren bench counts it), that is the
# p99 at that offered load over LAT_ROUNDS x LAT_DURATION, as load generators merge their
# histograms. The mean of the rounds' own p99s, which came before, let one round's rare
# stall (a device flush taking 20-50 ms, bench/RESULTS.md session 12) weigh as a whole
# round; those per-round figures stay in the table of every run.
pool_latency() {
    python3 - "$REPO/bench" "$WORK" "$SETUP" "$RUNS" $TARGET_WORKLOADS <<'EOF' >>"$RUNS"
import glob, json, math, sys
sys.path.insert(0, sys.argv[1])
from gaps import read_trace  # the one reader of the trace format
work, setup, runs_file, workloads = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
runs = [json.loads(l) for l in open(runs_file) if l.strip()]
for w in workloads:
    for server in ("warren", "zk"):
        files = sorted(glob.glob("%s/trace-%s-r*-%s-%s.txt" % (work, setup, server, w)))
        lat = [done - start for f in files for start, _sent, done in read_trace(f)[1]]
        if not lat:
            continue
        lat.sort()
        q = lambda p: lat[max(0, math.ceil(p * len(lat)) - 1)] / 1000.0
        rounds = [r["report"] for r in runs if r["mode"] == "latency" and r["server"] == server
                  and r.get("setup", "standalone") == setup and r["report"]["workload"] == w]
        # Every measured op of the rounds is in their traces, or the pool is not theirs.
        assert len(lat) == sum(r["ops"] for r in rounds), (w, server, len(lat))
        report = {"workload": w, "rate": rounds[0]["rate"], "ops": len(lat),
                  "ops_per_s": sum(r["ops_per_s"] for r in rounds) / len(rounds),
                  "errors": sum(r["errors"] for r in rounds),
                  "errors_by_kind": {k: sum(r["errors_by_kind"].get(k, 0) for r in rounds)
                                     for k in sorted({k for r in rounds for k in r["errors_by_kind"]})},
                  "latency": {"p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99),
                              "p999_ms": q(0.999), "max_ms": lat[-1] / 1000.0}}
        print(json.dumps({"server": server, "setup": setup, "round": 0, "mode": "pooled",
                          "settled_s": "–", "report": report}))
EOF
}
declare -A RATE=()
for w in $TARGET_WORKLOADS; do RATE[$w]=$(offered_rate "$w"); done
for round in $(seq "$LAT_ROUNDS"); do
    log "latency round $round of $LAT_ROUNDS (same offered load for both)"
    for w in $TARGET_WORKLOADS; do
        bench_run warren "127.0.0.1:$WPORT" "$round" latency "$w" --duration "$LAT_DURATION" --rate "${RATE[$w]}"
        bench_run zk "127.0.0.1:$ZPORT" "$round" latency "$w" --duration "$LAT_DURATION" --rate "${RATE[$w]}"
    done
done
pool_latency || die "pooling the latency rounds failed"
stop_server warren
stop_server zk

# ---- memory, snapshot, restart ----------------------------------------------------------------
newest_snapshot() { # DIR KIND -> "bytes path" of the newest snapshot file, or "0 -"
    local f
    if [ "$2" = warren ]; then f=$(ls -t "$1"/data/snapshots/snap-* 2>/dev/null | head -1 || true)
    else f=$(ls -t "$1"/data/version-2/snapshot.* 2>/dev/null | head -1 || true); fi
    if [ -n "$f" ]; then echo "$(stat -c %s "$f") $f"; else echo "0 -"; fi
}
jvm_gc() { # PID: a full GC so that RSS reflects live data as far as the JVM gives it back
    command -v jcmd >/dev/null && jcmd "$1" GC.run >/dev/null 2>&1 || true
    sleep 2
}

mem_phase() {
    local kind=$1 dir="$WORK/$1-mem" port
    port=$(free_port)
    log "$kind: loading $LOAD_ZNODES znodes of $VALUE_SIZE bytes"
    start_server "$kind" "$kind" "$dir" "$port"
    wait_ready "$port" / 120 || die "$kind did not start (see $dir/server.log)"
    local pid=${PIDS[$kind]}
    sleep 2
    [ "$kind" = zk ] && jvm_gc "$pid"
    local rss0; rss0=$(rss_kb "$pid")
    local t0 t1; t0=$(now_ns)
    "$WARREN" bench --server "127.0.0.1:$port" --workload load --ops "$LOAD_ZNODES" \
        --multi-ops "$LOAD_MULTI" --sessions 4 --depth 32 --value-size "$VALUE_SIZE" \
        --prefix /load --warmup 0s --json -q >"$dir/load.json" 2>>"$WORK/bench.log"
    t1=$(now_ns)
    sleep 2
    [ "$kind" = zk ] && jvm_gc "$pid"
    local rss1; rss1=$(rss_kb "$pid")
    local heap=""
    if [ "$kind" = zk ] && command -v jcmd >/dev/null; then
        heap=$(jcmd "$pid" GC.heap_info 2>/dev/null | grep -m1 -i "total" | tr -s ' ' || true)
    fi
    stop_server "$kind"
    log "$kind: restarting with the data"
    local r0 r1
    r0=$(now_ns)
    start_server "$kind" "$kind" "$dir" "$port"
    wait_ready "$port" /load 600 || die "$kind did not come back (see $dir/server.log)"
    r1=$(now_ns)
    local rss2; rss2=$(rss_kb "${PIDS[$kind]}")
    sleep 2
    local snap; snap=$(newest_snapshot "$dir" "$kind")
    local du; du=$(du -sb "$dir/data" | cut -f1)
    stop_server "$kind"
    python3 - "$kind" "$LOAD_ZNODES" "$rss0" "$rss1" "$rss2" "$t0" "$t1" "$r0" "$r1" \
        "${snap%% *}" "${snap#* }" "$du" "$heap" >>"$MEM" <<'EOF'
import json, sys
a = sys.argv[1:]
n = int(a[1])
print(json.dumps({
    "server": a[0], "znodes": n, "rss_before_kb": int(a[2]), "rss_after_kb": int(a[3]),
    "rss_per_znode": (int(a[3]) - int(a[2])) * 1024 / n, "rss_after_restart_kb": int(a[4]),
    "load_s": (int(a[6]) - int(a[5])) / 1e9, "restart_ms": (int(a[8]) - int(a[7])) / 1e6,
    "snapshot_bytes": int(a[9]), "snapshot_file": a[10], "data_dir_bytes": int(a[11]),
    "jvm_heap": a[12],
}))
EOF
    tail -1 "$MEM" >&2
}
mem_phase warren
mem_phase zk

# ---- 3 servers on loopback ------------------------------------------------------------------
# Both ensembles get the same zoo.cfg (ZooKeeper's keys, read by both): server.N lines with
# free ports, myid in each dataDir; warren runs `warren server --config F --id N`, ZooKeeper
# QuorumPeerMain. Both ensembles run at once (idle between their turns) and the sessions of
# each run are spread round-robin over the three servers, so followers forward writes.
ENSEMBLE_SIZE=3
ENSEMBLE_HEAP=1g
# start_ensemble KIND: starts the three servers of KIND (warren or zk), their pids in PIDS;
# sets ADDRS to the comma-separated client addresses once every server serves a read.
start_ensemble() {
    local kind=$1 base="$WORK/$1-ensemble" i
    ADDRS=""
    ensemble_cfg "$base" "$ENSEMBLE_SIZE" "$TICK_MS"
    for i in $(seq "$ENSEMBLE_SIZE"); do
        local dir="$base/server$i"
        if [ "$kind" = warren ]; then
            WARREN_LOG=warn "$WARREN" server --config "$dir/zoo.cfg" --id "$i" \
                -D "zookeeper.snapCount=$SNAP_COUNT" >>"$dir/server.log" 2>&1 &
        else
            "$JAVA" "-Xmx$ENSEMBLE_HEAP" -Djava.awt.headless=true \
                "-Dzookeeper.snapCount=$SNAP_COUNT" \
                -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
                -cp "$ZK_CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" \
                >>"$dir/server.log" 2>&1 &
        fi
        PIDS[$kind-$i]=$!
        ADDRS="$ADDRS${ADDRS:+,}127.0.0.1:${CPORT[$i]}"
    done
    for i in $(seq "$ENSEMBLE_SIZE"); do
        wait_ready "${CPORT[$i]}" / 120 \
            || die "$kind server $i did not serve (see $base/server$i/server.log)"
    done
}

if [ "$ENSEMBLE" = 1 ]; then
    SETUP=ensemble
    log "ensembles of $ENSEMBLE_SIZE on loopback"
    start_ensemble warren; WADDRS=$ADDRS
    start_ensemble zk; ZADDRS=$ADDRS
    log "warren at $WADDRS, ZooKeeper at $ZADDRS"
    for round in $(seq "$ROUNDS"); do
        log "ensemble throughput round $round of $ROUNDS"
        for w in $TARGET_WORKLOADS; do
            bench_run warren "$WADDRS" "$round" tput "$w" --duration "$DURATION"
            bench_run zk "$ZADDRS" "$round" tput "$w" --duration "$DURATION"
        done
    done
    for w in $TARGET_WORKLOADS; do RATE[$w]=$(offered_rate "$w"); done
    for round in $(seq "$LAT_ROUNDS"); do
        log "ensemble latency round $round of $LAT_ROUNDS (same offered load for both)"
        for w in $TARGET_WORKLOADS; do
            bench_run warren "$WADDRS" "$round" latency "$w" --duration "$LAT_DURATION" --rate "${RATE[$w]}"
            bench_run zk "$ZADDRS" "$round" latency "$w" --duration "$LAT_DURATION" --rate "${RATE[$w]}"
        done
    done
    pool_latency || die "pooling the ensemble's latency rounds failed"
    for name in "${!PIDS[@]}"; do stop_server "$name"; done
fi

# ---- report ------------------------------------------------------------------------------------
DISK=$(df -hT "$WORK" | awk 'NR==2 {print $1" ("$2", "$3")"}')
export REPORT_LOADAVG="load average (1/5/15 min) $LOADAVG_START before the run (other work on the shared 2 cores), $(cut -d' ' -f1-3 /proc/loadavg) at its end (this run's own load included)"
export REPORT_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
export REPORT_MACHINE="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, data on $DISK, Linux $(uname -r)"
export REPORT_WARREN="warren $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- crates || echo '+local changes') (release build, $(rustc --version | cut -d' ' -f2))"
export REPORT_ZK="Apache ZooKeeper $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null || echo '?') (Debian), $("$JAVA" -version 2>&1 | head -1)"
export REPORT_SETTINGS="standalone; fsync on (ZooKeeper forceSync=yes, its default; warren always fsyncs); tickTime=$TICK_MS; snapCount=$SNAP_COUNT; maxClientCnxns=0; data dirs side by side under $WORK; ZooKeeper JVM -Xmx$ZK_HEAP (default G1 collector), NIO connection factory, log level warn; warren WARREN_LOG=warn"
export REPORT_CLIENT="warren bench: $SESSIONS sessions x depth $DEPTH, value $VALUE_SIZE B, warm-up $WARMUP, $DURATION per throughput run, $LAT_DURATION per latency run, $ROUNDS throughput and $LAT_ROUNDS latency round(s) alternating warren/ZooKeeper; pool of 1000 keys; mixed read ratio 0.9; multi 10 setData ops; children 100; offered load of the p99 runs = $LAT_FRACTION x the slower server's mean throughput; before each run, a wait (at most ${SETTLE_MAX_S}s) until every server up is idle (under $((SETTLE_CPU_TICKS * 2))% of one core together over 0.5 s), then \`sync\` (at most $((SETTLE_DIRTY_KB / 1024)) MiB of dirty page cache left)"
export REPORT_CMD="bench/compare.sh$([ "$QUICK" = 1 ] && echo ' --quick') (rounds $ROUNDS, latency rounds $LAT_ROUNDS)"
export REPORT_BENCH_CMD="warren bench --server 127.0.0.1:PORT --workload W ${COMMON[*]} --duration $DURATION [--rate R]"
export REPORT_ENSEMBLE="3 warren servers (\`warren server --config zoo.cfg --id N\`) and 3 ZooKeeper servers (QuorumPeerMain, -Xmx$ENSEMBLE_HEAP each), one zoo.cfg format for both (server.N=127.0.0.1:quorumPort:electionPort;127.0.0.1:clientPort, tickTime=$TICK_MS, initLimit=10, syncLimit=5, snapCount=$SNAP_COUNT), both ensembles up for the whole phase, sessions spread round-robin over the 3 client ports (\`--server a,b,c\`), $ROUNDS throughput and $LAT_ROUNDS latency round(s) alternating"
export REPORT_LOAD_CMD="warren bench --server 127.0.0.1:PORT --workload load --ops $LOAD_ZNODES --multi-ops $LOAD_MULTI --sessions 4 --depth 32 --value-size $VALUE_SIZE --prefix /load --warmup 0s"
python3 "$REPO/bench/report.py" "$RUNS" "$MEM" "$OUT"
log "results written to $OUT"
