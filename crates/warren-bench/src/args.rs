//! The command line of `warren bench`: what to run, how hard, and for how long.

use std::time::Duration;

use clap::{Args, ValueEnum};

/// What each operation of a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// create: a new persistent znode of `--value-size` bytes per op (one parent per session).
    Create,
    /// setData on a random key of the pool (`--keys` znodes).
    Set,
    /// getData on a random key of the pool.
    Get,
    /// exists on a random key of the pool.
    Exists,
    /// getChildren on one znode with `--children` children.
    Children,
    /// getData with probability `--read-ratio`, else setData, on random keys of the pool.
    Mixed,
    /// multi of `--multi-ops` setData ops on random keys (one op = one transaction).
    Multi,
    /// Pairs of sessions: getData with a watch at one, setData at the other; the latency is
    /// from sending the setData to receiving the notification (`--depth` is ignored).
    Watch,
    /// connect (handshake) then closeSession; one op is the whole cycle (`--depth` ignored).
    Session,
    /// Bulk load: multis of `--multi-ops` creates; `--ops` counts znodes; the znodes are
    /// kept (no teardown), under `--prefix`.
    Load,
    /// Waits until the server serves a read of `--prefix` (restart-to-serving probes):
    /// reconnects every 5 ms until getData succeeds, then prints the wait in ms.
    Ready,
}

impl Workload {
    /// Whether the workload needs the shared pool of keys.
    pub fn uses_pool(self) -> bool {
        matches!(
            self,
            Workload::Set | Workload::Get | Workload::Exists | Workload::Mixed | Workload::Multi
        )
    }
}

/// `warren bench`: measures a ZooKeeper-compatible server under a pipelined load.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The server, host:port; or several, comma-separated (an ensemble), over which the
    /// sessions are spread round-robin (setup and teardown use the first).
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub server: String,
    /// The operation to measure.
    #[arg(long, value_enum, default_value = "get")]
    pub workload: Workload,
    /// Concurrent sessions (connections).
    #[arg(long = "sessions", short = 'c', default_value_t = 16)]
    pub sessions: u32,
    /// Requests kept in flight per session (pipelining).
    #[arg(long, short = 'd', default_value_t = 8)]
    pub depth: u32,
    /// How long to measure, e.g. `10s`, `500ms`, `2m` (ignored with `--ops`).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Measure this many ops (in all sessions) instead of a duration.
    #[arg(long)]
    pub ops: Option<u64>,
    /// Load before measuring, not recorded, e.g. `2s`.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub warmup: Duration,
    /// Bytes of data per znode written (create, set, mixed, multi, load, and the pool).
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Share of reads in `mixed`, 0.0 to 1.0.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Children of the node read by `children`.
    #[arg(long, default_value_t = 100)]
    pub children: u32,
    /// Ops per transaction in `multi` and `load`.
    #[arg(long, default_value_t = 10)]
    pub multi_ops: u32,
    /// Znodes in the pool read and written by set, get, exists, mixed and multi.
    #[arg(long, default_value_t = 1000)]
    pub keys: u32,
    /// Offered load in ops/s over all sessions, paced evenly per session (open loop:
    /// latency counts from the op's scheduled time, so a server that falls behind is
    /// charged for the queue). Sends are timed by a thread of their own, to within tens of
    /// microseconds. Without it every session keeps `--depth` in flight. Not for `watch`
    /// and `session`, which run closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Parent of the run's znodes; each run works under `<prefix>/<workload>-<pid>`, which
    /// it creates and deletes (except `load`, which keeps its znodes).
    #[arg(long, default_value = "/warren-bench")]
    pub prefix: String,
    /// Session timeout requested, ms.
    #[arg(long, default_value_t = 30_000)]
    pub session_timeout_ms: i32,
    /// Longest wait for one reply before the connection counts as failed, e.g. `30s`.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub reply_timeout: Duration,
    /// Client worker threads (the load generator shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Print the result as one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Skip deleting the run's znodes at the end.
    #[arg(long)]
    pub keep: bool,
    /// Write every measured op that succeeded to this file, one line each: its start (the
    /// due time when paced), when it was sent and when its reply came, in microseconds from
    /// the first op's start. The first line, `# monotonic SECONDS`, gives that zero on
    /// CLOCK_MONOTONIC, so that stalls can be lined up with `perf sched timehist`
    /// (`bench/gaps.py` does both). Pipelined workloads only.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<std::path::PathBuf>,
}

/// Parses `250ms`, `10s`, `2m`, or a bare number of seconds (fractions allowed).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?}: expected e.g. 500ms, 10s, 2m"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!(
            "bad duration {s:?}: must be a finite, non-negative"
        ));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

impl BenchArgs {
    /// The servers of `--server`, in the order given.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.server.split(',').map(str::trim)
    }

    /// The server of session `idx`: round-robin over `--server`.
    pub fn server_for(&self, idx: u32) -> &str {
        let n = self.servers().count();
        self.servers()
            .nth(idx as usize % n)
            .expect("split yields at least one item")
    }

    /// Checks the combinations the run relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.servers().any(|s| s.is_empty() || !s.contains(':')) {
            return Err(format!(
                "--server must be host:port, or several comma-separated, not {:?}",
                self.server
            ));
        }
        if self.sessions == 0 || self.depth == 0 || self.threads == 0 {
            return Err("--sessions, --depth and --threads must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.read_ratio) {
            return Err("--read-ratio must be within 0.0..=1.0".into());
        }
        if self.multi_ops == 0 || self.keys == 0 {
            return Err("--multi-ops and --keys must be at least 1".into());
        }
        if self.workload == Workload::Multi && self.multi_ops > self.keys {
            return Err("--multi-ops must not exceed --keys (one key once per multi)".into());
        }
        if self.workload == Workload::Watch && self.sessions < 2 {
            return Err("watch needs --sessions of at least 2 (pairs)".into());
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err("--rate must be a positive number of ops/s".into());
            }
            if matches!(self.workload, Workload::Watch | Workload::Session) {
                return Err("--rate paces the pipelined workloads, not watch or session".into());
            }
        }
        if self.trace.is_some() && matches!(self.workload, Workload::Watch | Workload::Session) {
            return Err("--trace records the pipelined workloads, not watch or session".into());
        }
        if !self.prefix.starts_with('/') || (self.prefix.len() > 1 && self.prefix.ends_with('/')) {
            return Err("--prefix must be an absolute znode path".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_spread_round_robin_over_servers() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let parse = |server: &str| Cli::parse_from(["bench", "--server", server]).bench;
        let one = parse("127.0.0.1:2181");
        assert_eq!(one.server_for(0), "127.0.0.1:2181");
        assert_eq!(one.server_for(7), "127.0.0.1:2181");
        assert_eq!(one.validate(), Ok(()));
        let three = parse("a:1, b:2,c:3");
        let picked: Vec<&str> = (0..5).map(|i| three.server_for(i)).collect();
        assert_eq!(picked, ["a:1", "b:2", "c:3", "a:1", "b:2"]);
        assert_eq!(three.validate(), Ok(()));
        assert!(parse("a:1,,b:2").validate().is_err());
        assert!(parse("localhost").validate().is_err());
    }

    #[test]
    fn rate_paces_only_the_pipelined_workloads() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let parse =
            |w: &str, rate: &str| Cli::parse_from(["bench", "--workload", w, "--rate", rate]).bench;
        assert_eq!(parse("get", "1000").validate(), Ok(()));
        assert_eq!(parse("create", "0.5").validate(), Ok(()));
        assert!(parse("get", "0").validate().is_err());
        assert!(parse("watch", "1000").validate().is_err());
        assert!(parse("session", "1000").validate().is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
