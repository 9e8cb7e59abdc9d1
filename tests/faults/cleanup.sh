#!/usr/bin/env bash
# Removes what a killed fault run (crates/warren-jepsen) may have left behind: network
# namespaces named wj<pid>-* and root links named wj<pid> whose test process <pid> is gone,
# after SIGKILLing the processes still inside those namespaces (only ever warren servers
# the run started). Runs normally clean up after themselves, and each run reaps leftovers
# of dead runs when it starts; this is for by hand. Needs root. Touches nothing else.
#   tests/faults/cleanup.sh          remove leftovers of dead runs
#   tests/faults/cleanup.sh --list   only list what is there
set -euo pipefail

list_only=false
[ "${1:-}" = "--list" ] && list_only=true

owner_alive() { [ -d "/proc/$1" ]; }

for ns in $(ip netns list | awk '{print $1}' | grep -E '^wj[0-9]+-' || true); do
    pid=${ns#wj}; pid=${pid%%-*}
    if owner_alive "$pid"; then
        echo "keep   namespace $ns (run $pid is alive)"
        continue
    fi
    echo "remove namespace $ns (run $pid is gone)"
    $list_only && continue
    for p in $(ip netns pids "$ns" 2>/dev/null || true); do
        kill -CONT "$p" 2>/dev/null || true
        kill -KILL "$p" 2>/dev/null || true
    done
    ip netns del "$ns"
done

for link in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^wj[0-9]+$' || true); do
    pid=${link#wj}
    if owner_alive "$pid"; then
        echo "keep   link $link (run $pid is alive)"
        continue
    fi
    echo "remove link $link (run $pid is gone)"
    $list_only || ip link del "$link"
done
