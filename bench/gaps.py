#!/usr/bin/env python3
"""Where a paced run's tail latency comes from: reads a `warren bench --trace FILE` and,
optionally, the text of `perf sched timehist -w` recorded during the same run.

    warren bench ... --rate R --trace /tmp/trace.txt &
    perf sched record -o /tmp/sched.data -- sleep 3     # while the bench runs
    perf sched timehist -w -i /tmp/sched.data > /tmp/timehist.txt
    bench/gaps.py /tmp/trace.txt [/tmp/timehist.txt]

Prints the latency split (start -> sent is the client's lateness, sent -> done the server
and the client's reading), the "gaps" (stretches of GAP_MS or more in which no reply
arrived at all), p99 with and without the ops due near a gap, and, for each gap inside
the scheduler trace, the threads that ran for 0.3 ms or more through it and the threads
that waited 0.5 ms or more for a CPU (perf's "sch delay"). Below about 2,000 replies a
second, 1.5 ms without one is no longer unusual: read the count against the rate. The
trace's first line gives its zero on CLOCK_MONOTONIC, the clock of perf's timestamps on
this project's machines. Standard library only.
"""
import bisect
import re
import signal
import sys

GAP_MS = 1.5
NEAR_BEFORE_US = 3000  # ops due this long before a gap count as near it
NEAR_AFTER_US = 8000   # and this long after its end (the backlog drains)


def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, int(q / 100.0 * len(sorted_vals)))
    return sorted_vals[i]


def summary(name, vals):
    s = sorted(vals)
    print("%-12s p50 %7.0f  p90 %7.0f  p99 %7.0f  p99.9 %7.0f us"
          % (name, pct(s, 50), pct(s, 90), pct(s, 99), pct(s, 99.9)))


def read_trace(path):
    with open(path) as f:
        head = f.readline()
        m = re.match(r"# monotonic (\d+\.\d+)", head)
        if not m:
            sys.exit("%s: no '# monotonic' first line (not a warren bench --trace file)" % path)
        ops = [tuple(int(x) for x in line.split()) for line in f if line.strip()]
    return float(m.group(1)), ops


def read_timehist(path):
    """Switch-out rows of `perf sched timehist -w`: (time s, cpu, task, sch delay ms, run ms)."""
    rows = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < 6 or "awakened:" in line or not re.match(r"^\d+\.\d+$", p[0]):
                continue
            try:
                rows.append((float(p[0]), p[1], p[2], float(p[4]), float(p[5])))
            except ValueError:
                continue
    return rows


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    zero, ops = read_trace(sys.argv[1])
    if not ops:
        sys.exit("no ops in the trace")
    lat = [d - s for s, _, d in ops]
    print("%d ops over %.1f s" % (len(ops), ops[-1][0] / 1e6))
    summary("latency", lat)
    summary("start->sent", [x - s for s, x, _ in ops])
    summary("sent->done", [d - x for _, x, d in ops])

    done = sorted(d for _, _, d in ops)
    gaps = [(a, b) for a, b in zip(done, done[1:]) if b - a >= GAP_MS * 1000]
    starts = [s for s, _, _ in ops]  # the trace is in start order
    near = [False] * len(ops)
    for a, b in gaps:
        for i in range(bisect.bisect_left(starts, a - NEAR_BEFORE_US),
                       bisect.bisect_left(starts, b + NEAR_AFTER_US)):
            near[i] = True
    rest = [x for x, n in zip(lat, near) if not n]
    print("gaps of %.1f ms or more with no reply: %d; ops due near them: %.1f%%"
          % (GAP_MS, len(gaps), 100.0 * sum(near) / len(ops)))
    print("p99 %.0f us; without the ops near a gap %.0f us"
          % (pct(sorted(lat), 99), pct(sorted(rest), 99)))

    if len(sys.argv) == 3:
        rows = read_timehist(sys.argv[2])
        if not rows:
            sys.exit("no switch-out rows in %s" % sys.argv[2])
        lo, hi = rows[0][0], rows[-1][0]
        for a, b in gaps:
            ga, gb = zero + a / 1e6, zero + b / 1e6
            if ga < lo or gb > hi:
                continue
            ran = ["%s %s %.2fms" % (task, cpu, run) for t, cpu, task, _, run in rows
                   if run >= 0.3 and t - run / 1000 < gb and t > ga]
            waited = ["%s %.2fms" % (task, sd) for t, _, task, sd, _ in rows
                      if ga <= t <= gb + 0.001 and sd >= 0.5]
            print("gap at %.4f (%.1f ms): ran %s; waited %s"
                  % (ga, (b - a) / 1000, ran[:5] or "-", waited[:6] or "-"))


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends it quietly
    main()
