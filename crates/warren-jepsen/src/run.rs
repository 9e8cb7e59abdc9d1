//! One whole run: hosts, servers, workloads under the nemesis, heal, final reads, checks,
//! report, cleanup. The phases, in order:
//!
//! 1. Hosts and servers: a namespace per server ([`Network`]), `warren server` in each
//!    ([`Cluster`]), all serving before anything else.
//! 2. Setup: the workloads' znodes, through one session.
//! 3. Load under faults: every worker runs while the nemesis executes the seeded plan, then
//!    heals everything; the workers go on for `recovery` after the heal (writes must work
//!    again), then stop. Ephemeral sessions stop churning before the heal.
//! 4. Quiet: surviving ephemeral sessions ping while two session timeouts pass, so every
//!    session left silent since the heal must have been expired.
//! 5. Final tree: read through every server after a `sync`; then the survivors probe their
//!    sessions; then a fresh session reads every register (into the history).
//! 6. Convergence: every session closed, every server's tree read again with its `srvr`
//!    zxid and `hash` digests; with one server, it is SIGKILLed, restarted and read again.
//! 7. Checks, one per property, and the report. Servers, namespaces and rules are removed
//!    by `Drop` whatever happened.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::acked::check_acknowledged;
use crate::client::{Session, SessionConfig};
use crate::cluster::{Cluster, ClusterConfig, srvr_zxid};
use crate::converge::{Replica, check_converged};
use crate::dump::Dump;
use crate::ephemerals::{Window, check_ephemerals};
use crate::history::{Call, History, Outcome, Recorder, Value};
use crate::nemesis::{self, Execution, FaultEvent, Step, secs};
use crate::net::Network;
use crate::register::{RegisterState, check_registers};
use crate::rng::Rng;
use crate::verdict::{Check, Verdict};
use crate::wgl::Bounds;
use crate::workload::{self, Ctx, Deadline, Phase};

/// What a run does.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Servers in the ensemble (1: standalone).
    pub servers: usize,
    /// The seed of the nemesis plan and of every worker's choices.
    pub seed: u64,
    /// How long the nemesis plan may last.
    pub fault_window: Duration,
    /// How long the workloads go on after everything is healed.
    pub recovery: Duration,
    /// The session timeout clients ask for.
    pub session_timeout_ms: i32,
    /// zoo.cfg tickTime.
    pub tick_ms: u32,
    /// Register znodes.
    pub registers: usize,
    /// Workers per workload: register, counter, unique ids, ephemerals.
    pub workers: [usize; 4],
    /// Bounds of each register's linearizability search.
    pub bounds: Bounds,
    /// The `warren` binary.
    pub warren: PathBuf,
}

impl RunConfig {
    /// A short schedule for CI against `servers` servers, with `seed`.
    pub fn short(servers: usize, seed: u64, warren: PathBuf) -> RunConfig {
        RunConfig {
            servers,
            seed,
            fault_window: Duration::from_secs(40),
            recovery: Duration::from_secs(5),
            session_timeout_ms: 4_000,
            tick_ms: 500,
            registers: 4,
            workers: [4, 2, 2, 4],
            bounds: Bounds {
                max_states: 1_000_000,
                max_time: Duration::from_secs(10),
            },
            warren,
        }
    }
}

/// Counts of one workload's ops.
#[derive(Debug, Clone, Default)]
pub struct OpCounts {
    /// The workload.
    pub name: &'static str,
    /// All ops.
    pub total: usize,
    /// Answered OK.
    pub ok: usize,
    /// Definitely failed.
    pub fail: usize,
    /// Unknown outcome.
    pub info: usize,
    /// Answered OK after the final heal.
    pub ok_after_heal: usize,
}

/// Everything a run found.
#[derive(Debug)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Servers.
    pub servers: usize,
    /// The plan.
    pub plan: Vec<Step>,
    /// The faults as executed.
    pub faults: Vec<FaultEvent>,
    /// Ops per workload.
    pub ops: Vec<OpCounts>,
    /// One verdict per property.
    pub checks: Vec<Check>,
    /// Where the servers' data and logs were (kept when the run failed).
    pub dir: Option<PathBuf>,
    /// The whole history, for a closer look.
    pub history: History,
}

impl RunReport {
    /// Whether no checker found a violation.
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|c| c.verdict.is_fail())
    }

    /// The report as a text table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "\n== warren fault run: {} server(s), seed {} (WARREN_FAULT_SEED={} reproduces \
             the schedule)\n",
            self.servers, self.seed, self.seed
        );
        out.push_str("-- faults\n");
        for f in &self.faults {
            out.push_str(&format!(
                "  {:>7.2}s .. {:>7.2}s  {}\n",
                secs(f.at),
                secs(f.healed_at),
                f.what
            ));
        }
        out.push_str(&format!(
            "-- ops\n  {:<12} {:>6} {:>6} {:>6} {:>6} {:>14}\n",
            "workload", "total", "ok", "fail", "info", "ok after heal"
        ));
        for c in &self.ops {
            out.push_str(&format!(
                "  {:<12} {:>6} {:>6} {:>6} {:>6} {:>14}\n",
                c.name, c.total, c.ok, c.fail, c.info, c.ok_after_heal
            ));
        }
        out.push_str("-- checks\n");
        for c in &self.checks {
            out.push_str(&format!("  {:<28} {}\n", c.name, c.verdict));
        }
        out.push_str(&format!(
            "== {}\n",
            if self.passed() { "PASSED" } else { "FAILED" }
        ));
        if let (false, Some(dir)) = (self.passed(), &self.dir) {
            out.push_str(&format!(
                "   server data and logs kept in {}\n",
                dir.display()
            ));
        }
        out
    }
}

/// Runs everything; `Err` only when the hosts or servers could not be set up at all
/// (the message says what failed: this is a failure, never a skip).
pub fn run(cfg: RunConfig) -> Result<RunReport, String> {
    println!(
        "warren-jepsen: seed {} ({} server(s)); WARREN_FAULT_SEED={} reproduces it",
        cfg.seed, cfg.servers, cfg.seed
    );
    let plan = nemesis::plan(cfg.seed, cfg.servers, cfg.fault_window);
    for s in &plan {
        println!("  plan: after {:?}, {:?} for {:?}", s.gap, s.fault, s.hold);
    }
    let net = Arc::new(Network::create(cfg.servers).map_err(|e| {
        format!("cannot create the test hosts (network namespaces need root and iproute2): {e}")
    })?);
    let dir = tempfile::Builder::new()
        .prefix("warren-jepsen-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let ccfg = ClusterConfig {
        warren: cfg.warren.clone(),
        tick_ms: cfg.tick_ms,
        ready_timeout: Duration::from_secs(30),
    };
    let mut cluster = Cluster::new(ccfg, &net, dir.path())?;
    for i in 0..cluster.len() {
        cluster.start(i)?;
    }
    for i in 0..cluster.len() {
        cluster.wait_ready(i)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let mut report = runtime.block_on(drive(&cfg, plan, Arc::clone(&net), cluster))?;
    report.dir = (!report.passed()).then(|| dir.keep());
    // Servers were dropped (killed) in `drive`; the namespaces go with `net` here.
    drop(net);
    Ok(report)
}

/// Waits for a task, bounded; a panicked or overdue task counts as no result.
async fn join<T>(h: JoinHandle<T>, limit: Duration) -> Option<T> {
    tokio::time::timeout(limit, h).await.ok()?.ok()
}

fn session_config(cfg: &RunConfig, servers: Vec<std::net::SocketAddr>) -> SessionConfig {
    SessionConfig {
        servers,
        timeout_ms: cfg.session_timeout_ms,
        reply_timeout: Duration::from_millis(1_500),
        connect_budget: Duration::from_secs(3),
    }
}

async fn drive(
    cfg: &RunConfig,
    plan: Vec<Step>,
    net: Arc<Network>,
    mut cluster: Cluster,
) -> Result<RunReport, String> {
    let rec = Recorder::new();
    let addrs = cluster.client_addrs();
    let scfg = session_config(cfg, addrs.clone());
    let mut rng = Rng::new(cfg.seed ^ 0x5EED);

    // Setup: the workloads' znodes.
    let far = Instant::now() + Duration::from_secs(30);
    let mut admin = workload::open_session(&scfg, 0, far)
        .await
        .ok_or("no session for the setup")?;
    workload::setup(&mut admin, cfg.registers, far).await?;

    // Load under faults.
    let planned: Duration = plan.iter().map(|s| s.gap + s.hold).sum();
    let t0 = Instant::now();
    let stop = Deadline::new(t0 + planned + Duration::from_secs(600));
    let ctx = Ctx {
        rec: rec.clone(),
        session: scfg.clone(),
        stop: stop.clone(),
    };
    let churn_until = t0 + planned.mul_f64(0.8);
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let [reg, cnt, uniq, eph] = cfg.workers;
    let mut workers: Vec<JoinHandle<Option<Session>>> = Vec::new();
    for w in 0..reg {
        let f = workload::register_worker(ctx.clone(), w, cfg.registers, rng.fork(w as u64));
        workers.push(tokio::spawn(f));
    }
    for w in 0..cnt {
        workers.push(tokio::spawn(workload::counter_worker(
            ctx.clone(),
            w,
            rng.fork(100 + w as u64),
        )));
    }
    for w in 0..uniq {
        workers.push(tokio::spawn(workload::unique_worker(
            ctx.clone(),
            w,
            rng.fork(200 + w as u64),
        )));
    }
    let mut ephemerals = Vec::new();
    for w in 0..eph {
        let f = workload::ephemeral_worker(
            ctx.clone(),
            w,
            churn_until,
            phase_rx.clone(),
            rng.fork(300 + w as u64),
        );
        ephemerals.push(tokio::spawn(f));
    }
    let stop_flag = Arc::new(AtomicBool::new(false));
    let nemesis = {
        let (net, clock, flag) = (Arc::clone(&net), rec.clone(), Arc::clone(&stop_flag));
        tokio::task::spawn_blocking(move || {
            let exec = nemesis::execute(&plan, &mut cluster, &net, &clock, &flag);
            (cluster, exec, plan)
        })
    };
    let bound = planned + Duration::from_secs(300);
    let Some((mut cluster, exec, plan)) = join(nemesis, bound).await else {
        // The nemesis panicked or hung: its cluster was dropped (servers killed).
        stop.set(Instant::now());
        return Err("the nemesis did not finish (panicked or hung)".into());
    };
    let Execution {
        events: faults,
        errors: nemesis_errors,
        healed_at,
    } = exec;
    stop.set(Instant::now() + cfg.recovery);
    let mut sessions: Vec<Session> = vec![admin];
    for h in workers {
        if let Some(Some(s)) = join(h, cfg.recovery + Duration::from_secs(60)).await {
            sessions.push(s);
        }
    }

    // Quiet: two session timeouts after the heal, survivors pinging.
    let timeout = Duration::from_millis(cfg.session_timeout_ms as u64);
    let healed = Duration::from_nanos(healed_at);
    let quiet_end = healed + 2 * timeout + Duration::from_secs(1);
    let since_start = Duration::from_nanos(rec.now());
    tokio::time::sleep(quiet_end.saturating_sub(since_start)).await;

    // Final tree through every server.
    let dump_started = rec.now();
    let mut finals = Vec::new();
    for &addr in &addrs {
        finals.push(read_tree(cfg, addr).await);
    }
    let dump_ended = rec.now();
    let _ = phase_tx.send(Phase::Probe);
    for h in ephemerals {
        if let Some(Some(s)) = join(h, Duration::from_secs(60)).await {
            sessions.push(s);
        }
    }
    final_register_reads(cfg, &ctx).await;

    // Convergence.
    for mut s in sessions {
        let _ = s.close().await;
    }
    for (_, s) in finals.iter_mut() {
        if let Some(s) = s.as_mut() {
            let _ = s.close().await;
        }
    }
    let replicas = replicas(cfg, &mut cluster).await;

    // Checks.
    let history = rec.snapshot();
    let window = Window {
        quiet_since: healed_at,
        dump_started,
        dump_ended,
        session_timeout: timeout,
    };
    let final_dump = finals.first().and_then(|(d, _)| d.as_ref().ok());
    let mut checks = Vec::new();
    let mut check = |name: &str, verdict: Verdict| {
        checks.push(Check {
            name: name.into(),
            verdict,
        })
    };
    match final_dump {
        Some(dump) => {
            check(
                "acknowledged writes present",
                check_acknowledged(&history, dump),
            );
            check(
                "ephemerals follow sessions",
                check_ephemerals(&history, dump, &window),
            );
        }
        None => {
            let why = finals
                .first()
                .and_then(|(d, _)| d.as_ref().err().cloned())
                .unwrap_or_default();
            check("final tree readable", Verdict::Fail(vec![why]));
        }
    }
    let init = RegisterState {
        value: 0,
        version: 0,
    };
    check(
        "registers linearizable",
        check_registers(&history, init, &cfg.bounds),
    );
    check(
        "session zxids never go back",
        crate::zxids::check_session_zxids(&history),
    );
    check("servers converge", check_converged(&replicas));
    let mut trouble = nemesis_errors;
    trouble.extend(cluster.unexpected_exits.iter().cloned());
    trouble.extend(cluster.damage());
    for (i, (d, _)) in finals.iter().enumerate() {
        if let Err(e) = d {
            trouble.push(format!("{}: final tree unreadable: {e}", cluster.name(i)));
        }
    }
    check(
        "servers healthy",
        Verdict::from_violations(trouble, format!("{} fault(s) survived", faults.len())),
    );
    let ops = counts(&history, healed_at);
    check("progress after heal", progress(&ops));
    drop(cluster);
    let report = RunReport {
        seed: cfg.seed,
        servers: cfg.servers,
        plan,
        faults,
        ops,
        checks,
        dir: None,
        history,
    };
    Ok(report)
}

type FinalRead = (Result<Dump, String>, Option<Session>);

/// Reads the whole tree through the server at `addr` (its own session, after a sync).
async fn read_tree(cfg: &RunConfig, addr: std::net::SocketAddr) -> FinalRead {
    let scfg = session_config(cfg, vec![addr]);
    let until = Instant::now() + Duration::from_secs(30);
    let Some(mut s) = workload::open_session(&scfg, 0, until).await else {
        return (Err(format!("no session on {addr}")), None);
    };
    let d = match tokio::time::timeout(Duration::from_secs(120), s.dump()).await {
        Ok(d) => d,
        Err(_) => Err("reading the tree took over 120 s".into()),
    };
    (d, Some(s))
}

/// A final read of every register by a fresh process, recorded in the history.
async fn final_register_reads(cfg: &RunConfig, ctx: &Ctx) {
    let until = Instant::now() + Duration::from_secs(30);
    let Some(mut s) = workload::open_session(&ctx.session, 0, until).await else {
        return;
    };
    for k in 0..cfg.registers {
        let path = workload::register_path(k);
        let index = ctx.rec.invoke(s.id(), Call::Read { path: path.clone() });
        let (o, zxid) = crate::client::outcome(s.synced_get_data(&path).await, |b| {
            let r: warren_proto::GetDataResponse = crate::client::decode(b)?;
            let text = String::from_utf8_lossy(r.data.as_deref().unwrap_or_default()).into_owned();
            Ok(Value::Data {
                value: text.trim().parse().map_err(|_| format!("{text:?}"))?,
                version: r.stat.version,
            })
        });
        ctx.rec.complete(index, o, zxid);
    }
    let _ = s.close().await;
}

/// Every server's final view; with one server, also its view after a SIGKILL and restart.
async fn replicas(cfg: &RunConfig, cluster: &mut Cluster) -> Vec<Replica> {
    let mut out = Vec::new();
    let mut trees = Vec::new();
    for i in 0..cluster.len() {
        let (d, s) = read_tree(cfg, cluster.addr(i)).await;
        if let Some(mut s) = s {
            let _ = s.close().await;
        }
        trees.push(d);
    }
    // Let the last closes reach every server before their zxids are compared.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (i, d) in trees.into_iter().enumerate() {
        let Ok(dump) = d else { continue };
        out.push(Replica {
            label: cluster.name(i),
            dump,
            zxid: cluster.srvr(i).as_deref().and_then(srvr_zxid),
            digests: cluster.digests(i),
        });
    }
    if cluster.len() == 1
        && let Some(r) = restarted(cfg, cluster).await
    {
        out.push(r);
    }
    out
}

/// Server 0 after SIGKILL and restart: zxid and digests first (a new session would take a
/// zxid), then the tree.
async fn restarted(cfg: &RunConfig, cluster: &mut Cluster) -> Option<Replica> {
    cluster.kill(0).ok()?;
    cluster.start(0).ok()?;
    cluster.wait_ready(0).ok()?;
    let zxid = cluster.srvr(0).as_deref().and_then(srvr_zxid);
    let digests = cluster.digests(0);
    let (d, s) = read_tree(cfg, cluster.addr(0)).await;
    if let Some(mut s) = s {
        let _ = s.close().await;
    }
    Some(Replica {
        label: format!("{} after kill -9 and restart", cluster.name(0)),
        dump: d.ok()?,
        zxid,
        digests,
    })
}

fn workload_of(call: &Call) -> &'static str {
    match call {
        Call::Read { .. } | Call::Write { .. } | Call::Cas { .. } => "register",
        Call::Incr { .. } => "counter",
        Call::CreateSeq { .. } => "unique-ids",
        Call::CreateEphemeral { .. } | Call::Probe | Call::Close => "ephemerals",
    }
}

fn counts(history: &History, healed_at: u64) -> Vec<OpCounts> {
    let mut out: Vec<OpCounts> = ["register", "counter", "unique-ids", "ephemerals"]
        .iter()
        .map(|&name| OpCounts {
            name,
            ..OpCounts::default()
        })
        .collect();
    for op in history {
        let name = workload_of(&op.call);
        let c = out
            .iter_mut()
            .find(|c| c.name == name)
            .expect("every workload has a row");
        c.total += 1;
        match op.outcome {
            Outcome::Ok(_) => {
                c.ok += 1;
                if op.invoke >= healed_at {
                    c.ok_after_heal += 1;
                }
            }
            Outcome::Fail(_) => c.fail += 1,
            Outcome::Info(_) => c.info += 1,
        }
    }
    out
}

/// Every workload must have ops answered OK after the heal: a service that stays down
/// after the faults end, or a harness that never reached it, fails here.
fn progress(ops: &[OpCounts]) -> Verdict {
    let stuck: Vec<String> = ops
        .iter()
        .filter(|c| c.ok_after_heal == 0)
        .map(|c| format!("{}: no op answered OK after the heal", c.name))
        .collect();
    let total: usize = ops.iter().map(|c| c.ok_after_heal).sum();
    Verdict::from_violations(stuck, format!("{total} ops answered OK after the heal"))
}

/// The seed: `WARREN_FAULT_SEED` if set (it must parse), else from the clock.
pub fn seed_from_env() -> u64 {
    match std::env::var("WARREN_FAULT_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WARREN_FAULT_SEED={s:?} is not a u64")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

/// The `warren` binary: `WARREN_BIN` if set, else built by cargo into the target directory
/// this test binary lives in (`<target>/<profile>/deps/..`), so `cargo test -p
/// warren-jepsen` alone is enough.
pub fn warren_binary() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("WARREN_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("test binary outside a target directory")?;
    let target = profile_dir.parent().ok_or("no target directory")?;
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec![
        "build",
        "-q",
        "-p",
        "warren",
        "--bin",
        "warren",
        "--manifest-path",
        manifest,
        "--target-dir",
    ];
    let target_s = target.to_string_lossy().into_owned();
    args.push(&target_s);
    if profile_dir.ends_with("release") {
        args.push("--release");
    }
    crate::cmd::run_for(&cargo, &args, Duration::from_secs(1_800))?;
    let bin = profile_dir.join("warren");
    if !bin.exists() {
        return Err(format!("{} missing after cargo build", bin.display()));
    }
    Ok(bin)
}
