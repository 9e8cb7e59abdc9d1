//! What a run measured: per-session [`Stats`] merged into one [`Report`], printed as a table
//! for people ([`Report::table`]) or as JSON for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use warren_proto::ErrorCode;

use crate::args::{BenchArgs, Workload};

/// Longest latency the histogram holds, in microseconds (larger ones are clamped to it).
const LATENCY_US_MAX: u64 = 600_000_000;

/// Latencies and outcome counts of one session (or, merged, of a run).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency of each successful op, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Ops that completed without error.
    pub ok: u64,
    /// Errors by kind: ZooKeeper error codes by name, `conn:*` for connection faults.
    pub errors: BTreeMap<String, u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            latency_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
                .expect("fixed, valid histogram bounds"),
            ok: 0,
            errors: BTreeMap::new(),
        }
    }
}

impl Stats {
    /// Records a successful op that took `latency`.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(us.max(1));
        self.ok += 1;
    }

    /// Counts a protocol error (a ZooKeeper error code in the reply).
    pub fn zk_error(&mut self, code: ErrorCode) {
        *self.errors.entry(format!("{code:?}")).or_default() += 1;
    }

    /// Counts an error of another kind (`conn:*`).
    pub fn error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_owned()).or_default() += 1;
    }

    /// All errors.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms share bounds");
        self.ok += other.ok;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// The result of a run, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The server measured.
    pub server: String,
    /// The workload.
    pub workload: Workload,
    /// Sessions.
    pub sessions: u32,
    /// In flight per session.
    pub depth: u32,
    /// Offered load (ops/s), if paced.
    pub rate: Option<f64>,
    /// Data bytes per write.
    pub value_size: usize,
    /// Ops per multi (multi and load).
    pub multi_ops: Option<u32>,
    /// Read share (mixed).
    pub read_ratio: Option<f64>,
    /// Children of the read node (children).
    pub children: Option<u32>,
    /// The measured window, seconds.
    pub elapsed_s: f64,
    /// Successful ops in the window.
    pub ops: u64,
    /// Successful ops per second.
    pub ops_per_s: f64,
    /// Errors in the window.
    pub errors: u64,
    /// Errors by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Latency of the successful ops.
    pub latency: Latency,
    /// The run's znode directory.
    pub base: String,
}

impl Report {
    /// Builds the report of a run of `args` whose window lasted `elapsed`.
    pub fn new(args: &BenchArgs, base: String, stats: &Stats, elapsed: Duration) -> Report {
        let h = &stats.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let secs = elapsed.as_secs_f64().max(1e-9);
        let w = args.workload;
        Report {
            server: args.server.clone(),
            workload: w,
            sessions: args.sessions,
            depth: args.depth,
            rate: args.rate,
            value_size: args.value_size,
            multi_ops: matches!(w, Workload::Multi | Workload::Load).then_some(args.multi_ops),
            read_ratio: (w == Workload::Mixed).then_some(args.read_ratio),
            children: (w == Workload::Children).then_some(args.children),
            elapsed_s: secs,
            ops: stats.ok,
            ops_per_s: stats.ok as f64 / secs,
            errors: stats.error_count(),
            errors_by_kind: stats.errors.clone(),
            latency: Latency {
                p50_ms: ms(h.value_at_quantile(0.50)),
                p90_ms: ms(h.value_at_quantile(0.90)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                p999_ms: ms(h.value_at_quantile(0.999)),
                max_ms: ms(h.max()),
                mean_ms: h.mean() / 1000.0,
            },
            base,
        }
    }

    /// The report as an aligned table for people.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let name = format!("{:?}", self.workload).to_lowercase();
        let mut shape = format!(
            "{name} against {}: {} sessions x depth {}, value {} B",
            self.server, self.sessions, self.depth, self.value_size
        );
        if let Some(t) = self.multi_ops {
            let _ = write!(shape, ", {t} ops/multi");
        }
        if let Some(r) = self.read_ratio {
            let _ = write!(shape, ", read ratio {r}");
        }
        if let Some(k) = self.children {
            let _ = write!(shape, ", {k} children");
        }
        let offered = match self.rate {
            Some(r) => format!("{r:.0} ops/s offered"),
            None => "closed loop".to_owned(),
        };
        let _ = writeln!(s, "{shape}; {offered}");
        let _ = writeln!(
            s,
            "{:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "ops", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "mean ms", "errors"
        );
        let l = &self.latency;
        let _ = writeln!(
            s,
            "{:>12} {:>12.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8}",
            self.ops,
            self.ops_per_s,
            l.p50_ms,
            l.p90_ms,
            l.p99_ms,
            l.p999_ms,
            l.max_ms,
            l.mean_ms,
            self.errors
        );
        let _ = writeln!(s, "window {:.2} s", self.elapsed_s);
        for (kind, n) in &self.errors_by_kind {
            let _ = writeln!(s, "  error {kind}: {n}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_and_latencies() {
        let mut a = Stats::default();
        a.record(Duration::from_micros(100));
        a.zk_error(ErrorCode::NoNode);
        let mut b = Stats::default();
        b.record(Duration::from_micros(300));
        b.zk_error(ErrorCode::NoNode);
        b.error("conn:closed");
        a.merge(&b);
        assert_eq!(a.ok, 2);
        assert_eq!(a.latency_us.len(), 2);
        assert_eq!(a.errors.get("NoNode"), Some(&2));
        assert_eq!(a.errors.get("conn:closed"), Some(&1));
        assert_eq!(a.error_count(), 3);
        assert!(a.latency_us.max() >= 300);
    }
}
