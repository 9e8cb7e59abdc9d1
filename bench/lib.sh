# Shell functions shared by bench/compare.sh and bench/failover.sh (sourced, not run).

# stop_pid PID: SIGTERM, up to 10 s to exit, then SIGKILL; reaps it.
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# free_ports N: N distinct TCP ports on 127.0.0.1 that were free a moment ago (all bound at
# once, so the kernel cannot hand out one twice).
free_ports() {
    python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}
free_port() { free_ports 1; }

# ensemble_cfg BASE SIZE TICK_MS: picks client, quorum and election ports for SIZE servers
# (global arrays CPORT, QPORT, EPORT, indexed 1..SIZE) and writes BASE/serverN/zoo.cfg and
# BASE/serverN/data/myid, one zoo.cfg format that warren and ZooKeeper both read.
ensemble_cfg() {
    local base=$1 size=$2 tick=$3 i j ports
    declare -gA CPORT=() QPORT=() EPORT=()
    read -r -a ports <<<"$(free_ports $((3 * size)))"
    for i in $(seq "$size"); do
        CPORT[$i]=${ports[3 * i - 3]}; QPORT[$i]=${ports[3 * i - 2]}; EPORT[$i]=${ports[3 * i - 1]}
    done
    for i in $(seq "$size"); do
        mkdir -p "$base/server$i/data"
        echo "$i" >"$base/server$i/data/myid"
        {
            echo "tickTime=$tick"
            echo "initLimit=10"
            echo "syncLimit=5"
            echo "dataDir=$base/server$i/data"
            echo "clientPort=${CPORT[$i]}"
            echo "clientPortAddress=127.0.0.1"
            echo "maxClientCnxns=0"
            echo "admin.enableServer=false"
            echo "4lw.commands.whitelist=*"
            for j in $(seq "$size"); do
                echo "server.$j=127.0.0.1:${QPORT[$j]}:${EPORT[$j]};127.0.0.1:${CPORT[$j]}"
            done
        } >"$base/server$i/zoo.cfg"
    done
}
