//! The client workloads. Every worker is a tokio task driving one session at a time (one
//! session = one process in the history); when its session dies (SessionExpired, or the
//! worker ends it on purpose) it opens a new one and goes on as a new process.
//!
//! - **register**: reads, writes and compare-and-sets (setData with the version last read)
//!   on a few register znodes, each worker picking the znode per op. A read is `sync` then
//!   `getData` on the same session: ZooKeeper serves a plain read from the connected server's
//!   own state, which may lag the leader (plain reads are sequentially consistent, not
//!   linearizable, in ZooKeeper as in warren), while a read queued behind warren's `sync`, a
//!   Raft read index, sees every write acknowledged before the sync began.
//! - **counter**: increments of one znode by a CAS loop (getData, setData(v + 1, version),
//!   again on BadVersion). An increment whose setData outcome is unknown stops there: a
//!   retry could count twice.
//! - **unique ids**: persistent sequential creates, each with data unique to the call.
//! - **ephemerals**: sessions create ephemerals; until `churn_until` a session is now and
//!   then closed, or abandoned (connection dropped, never resumed) so the server must
//!   expire it. Then the survivors keep their sessions alive with pings until told to probe
//!   (an op answered after the final tree was read proves the session lived through it).
//!
//! Ops are paced (a few tens per second per worker) so histories stay small enough for the
//! linearizability search.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use warren_proto::{
    CreateMode, CreateRequest, CreateResponse, ErrorCode, ExistsRequest, GetDataResponse, Request,
    SetDataRequest, SetDataResponse,
};

use crate::client::{CallError, Session, SessionConfig, decode, open_acl, outcome};
use crate::history::{Call, Outcome, Recorder, SESSION_EXPIRED, Value};
use crate::rng::Rng;

/// Where the workloads keep their znodes.
pub const ROOT: &str = "/jepsen";
/// The register znodes' parent.
pub const REGISTERS: &str = "/jepsen/reg";
/// The counter znode.
pub const COUNTER: &str = "/jepsen/counter";
/// The sequential creates' prefix.
pub const IDS_PREFIX: &str = "/jepsen/ids/id-";
/// The ephemerals' parent.
pub const EPHEMERALS: &str = "/jepsen/eph";

/// What every worker shares.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The history.
    pub rec: Recorder,
    /// How sessions connect.
    pub session: SessionConfig,
    /// When workers stop issuing ops (moved once the faults are healed).
    pub stop: Deadline,
}

/// A deadline that can be moved while tasks watch it (the workers' stop time is known only
/// once the nemesis has healed everything).
#[derive(Debug, Clone)]
pub struct Deadline {
    base: Instant,
    after_ms: Arc<AtomicU64>,
}

impl Deadline {
    /// A deadline at `at`.
    pub fn new(at: Instant) -> Deadline {
        let base = Instant::now();
        let d = Deadline {
            base,
            after_ms: Arc::new(AtomicU64::new(0)),
        };
        d.set(at);
        d
    }

    /// Moves it to `at`.
    pub fn set(&self, at: Instant) {
        let ms = at.saturating_duration_since(self.base).as_millis() as u64;
        self.after_ms.store(ms, Ordering::Relaxed);
    }

    /// When it is.
    pub fn at(&self) -> Instant {
        self.base + Duration::from_millis(self.after_ms.load(Ordering::Relaxed))
    }

    /// Whether it has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at()
    }
}

/// A register znode's path.
pub fn register_path(k: usize) -> String {
    format!("{REGISTERS}/k{k}")
}

/// Opens a session, retrying until `until`; `None` if none could be opened by then.
pub async fn open_session(cfg: &SessionConfig, start_at: usize, until: Instant) -> Option<Session> {
    while Instant::now() < until {
        match Session::open(cfg.clone(), start_at).await {
            Ok(s) => return Some(s),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    None
}

/// Keeps a usable session in `slot`, opening a new one when it is missing or expired.
async fn live<'a>(
    slot: &'a mut Option<Session>,
    ctx: &Ctx,
    start_at: usize,
) -> Option<&'a mut Session> {
    if slot.as_ref().is_some_and(Session::is_expired) {
        *slot = None;
    }
    if slot.is_none() {
        *slot = open_session(&ctx.session, start_at, ctx.stop.at()).await;
    }
    slot.as_mut()
}

/// Records one request/answer as an op.
async fn record(
    ctx: &Ctx,
    s: &mut Session,
    call: Call,
    req: Request,
    value: impl FnOnce(&[u8]) -> Result<Value, String>,
) -> Outcome {
    let index = ctx.rec.invoke(s.id(), call);
    let (o, zxid) = outcome(s.call(&req).await, value);
    ctx.rec.complete(index, o.clone(), zxid);
    o
}

fn parse_value(data: &Option<Vec<u8>>) -> Result<i64, String> {
    let text = String::from_utf8_lossy(data.as_deref().unwrap_or_default()).into_owned();
    text.trim()
        .parse()
        .map_err(|_| format!("register holds {text:?}"))
}

fn read_value(body: &[u8]) -> Result<Value, String> {
    let r: GetDataResponse = decode(body)?;
    Ok(Value::Data {
        value: parse_value(&r.data)?,
        version: r.stat.version,
    })
}

fn set_value(body: &[u8]) -> Result<Value, String> {
    let r: SetDataResponse = decode(body)?;
    Ok(Value::Version(r.stat.version))
}

fn set_data(path: &str, value: i64, version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(value.to_string().into_bytes()),
        version,
    })
}

async fn pace(rng: &mut Rng, lo_ms: u64, hi_ms: u64) {
    tokio::time::sleep(Duration::from_millis(rng.range(lo_ms, hi_ms))).await;
}

/// One register worker (see the module docs).
pub async fn register_worker(
    ctx: Ctx,
    worker: usize,
    keys: usize,
    mut rng: Rng,
) -> Option<Session> {
    let mut slot = None;
    let mut versions = vec![0i32; keys];
    let mut n: i64 = 0;
    while !ctx.stop.passed() {
        let Some(s) = live(&mut slot, &ctx, worker).await else {
            break;
        };
        let k = rng.range(0, keys as u64 - 1) as usize;
        let path = register_path(k);
        n += 1;
        let value = (worker as i64 + 1) * 1_000_000 + n;
        let roll = rng.range(0, 99);
        if roll < 40 {
            let index = ctx.rec.invoke(s.id(), Call::Read { path: path.clone() });
            let (o, zxid) = outcome(s.synced_get_data(&path).await, read_value);
            ctx.rec.complete(index, o.clone(), zxid);
            if let Outcome::Ok(Value::Data { version, .. }) = o {
                versions[k] = version;
            }
        } else if roll < 70 {
            let req = set_data(&path, value, -1);
            let o = record(&ctx, s, Call::Write { path, value }, req, set_value).await;
            if let Outcome::Ok(Value::Version(v)) = o {
                versions[k] = v;
            }
        } else {
            let version = versions[k];
            let req = set_data(&path, value, version);
            let call = Call::Cas {
                path,
                version,
                value,
            };
            if let Outcome::Ok(Value::Version(v)) = record(&ctx, s, call, req, set_value).await {
                versions[k] = v;
            }
        }
        pace(&mut rng, 10, 40).await;
    }
    slot
}

/// One counter worker (see the module docs).
pub async fn counter_worker(ctx: Ctx, worker: usize, mut rng: Rng) -> Option<Session> {
    let mut slot = None;
    while !ctx.stop.passed() {
        let Some(s) = live(&mut slot, &ctx, worker).await else {
            break;
        };
        let index = ctx.rec.invoke(
            s.id(),
            Call::Incr {
                path: COUNTER.into(),
            },
        );
        let (o, zxid) = increment(s, &mut rng).await;
        ctx.rec.complete(index, o, zxid);
        pace(&mut rng, 20, 60).await;
    }
    slot
}

/// The CAS loop of one increment: its outcome and the last reply zxid.
async fn increment(s: &mut Session, rng: &mut Rng) -> (Outcome, Option<i64>) {
    let mut zxid = None;
    for _ in 0..10 {
        let read = s.get_data(COUNTER).await;
        if let Ok(a) = &read {
            zxid = Some(a.zxid);
        }
        let (value, version) = match outcome(read, read_value) {
            (Outcome::Ok(Value::Data { value, version }), _) => (value, version),
            // The read changed nothing: the increment has not happened.
            (Outcome::Info(why), _) => return (Outcome::Fail(format!("read lost: {why}")), zxid),
            (other, _) => return (as_fail(other), zxid),
        };
        let answer = s.call(&set_data(COUNTER, value + 1, version)).await;
        if let Ok(a) = &answer {
            zxid = Some(a.zxid);
        }
        match answer {
            Ok(a) if a.err == ErrorCode::BadVersion => pace(rng, 1, 10).await,
            other => return (outcome(other, set_value).0, zxid),
        }
    }
    (Outcome::Fail("BadVersion 10 times".into()), zxid)
}

fn as_fail(o: Outcome) -> Outcome {
    match o {
        Outcome::Fail(f) => Outcome::Fail(f),
        other => Outcome::Fail(format!("{other:?}")),
    }
}

/// One unique-id worker (see the module docs).
pub async fn unique_worker(ctx: Ctx, worker: usize, mut rng: Rng) -> Option<Session> {
    let mut slot = None;
    let mut n = 0u64;
    while !ctx.stop.passed() {
        let Some(s) = live(&mut slot, &ctx, worker).await else {
            break;
        };
        n += 1;
        let data = format!("u{worker}-{n}");
        let req = Request::Create(CreateRequest {
            path: IDS_PREFIX.into(),
            data: Some(data.clone().into_bytes()),
            acl: open_acl(),
            flags: CreateMode::PersistentSequential.code(),
        });
        let call = Call::CreateSeq {
            prefix: IDS_PREFIX.into(),
            data,
        };
        record(&ctx, s, call, req, |b| {
            Ok(Value::Path(decode::<CreateResponse>(b)?.path))
        })
        .await;
        pace(&mut rng, 10, 40).await;
    }
    slot
}

/// The phases an ephemeral worker is told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Create ephemerals (churning sessions until `churn_until`), then hold.
    Run,
    /// Probe the session once and return it.
    Probe,
}

/// How an ephemeral worker ends a session on purpose.
#[derive(Debug, Clone, Copy)]
enum Doom {
    Close,
    Abandon,
}

/// One ephemeral worker (see the module docs). Returns its last session, alive or not.
pub async fn ephemeral_worker(
    ctx: Ctx,
    worker: usize,
    churn_until: Instant,
    mut phase: watch::Receiver<Phase>,
    mut rng: Rng,
) -> Option<Session> {
    let mut slot: Option<Session> = None;
    let mut created_in_session = 0u32;
    // Each worker dooms its first session once it holds two ephemerals, half of the
    // workers by closing it and half by abandoning it, so every run has dead sessions with
    // ephemerals; later sessions are doomed at random.
    let mut first_doom = Some(if worker.is_multiple_of(2) {
        Doom::Abandon
    } else {
        Doom::Close
    });
    let mut n = 0u64;
    while !ctx.stop.passed() {
        let Some(s) = live(&mut slot, &ctx, worker).await else {
            break;
        };
        n += 1;
        let path = format!("{EPHEMERALS}/{:x}-{n}", s.id());
        let req = Request::Create(CreateRequest {
            path: path.clone(),
            data: Some(Vec::new()),
            acl: open_acl(),
            flags: CreateMode::Ephemeral.code(),
        });
        let o = record(&ctx, s, Call::CreateEphemeral { path }, req, |_| {
            Ok(Value::None)
        })
        .await;
        if matches!(o, Outcome::Ok(_)) {
            created_in_session += 1;
        }
        let churn = Instant::now() < churn_until;
        let doom = if churn && created_in_session >= 2 && first_doom.is_some() {
            first_doom.take()
        } else if churn && created_in_session >= 2 && rng.chance(4) {
            Some(if rng.chance(50) {
                Doom::Close
            } else {
                Doom::Abandon
            })
        } else {
            None
        };
        if let Some(doom) = doom {
            end_session(&ctx, &mut slot, doom).await;
            created_in_session = 0;
        }
        pace(&mut rng, 100, 300).await;
    }
    hold_then_probe(&ctx, slot, &mut phase).await
}

/// Ends the session in `slot` on purpose; the next op opens a new one.
async fn end_session(ctx: &Ctx, slot: &mut Option<Session>, doom: Doom) {
    let Some(mut s) = slot.take() else {
        return;
    };
    match doom {
        Doom::Close => {
            let index = ctx.rec.invoke(s.id(), Call::Close);
            let (o, zxid) = outcome(s.close().await, |_| Ok(Value::None));
            ctx.rec.complete(index, o, zxid);
        }
        // Not a word to the server: it must notice the silence and expire the session.
        Doom::Abandon => s.disconnect(),
    }
}

/// Keeps the session alive with pings until told to probe, then probes it once.
async fn hold_then_probe(
    ctx: &Ctx,
    mut slot: Option<Session>,
    phase: &mut watch::Receiver<Phase>,
) -> Option<Session> {
    // Bounded: the runner moves to Probe within minutes; give up after 10 minutes.
    let give_up = Instant::now() + Duration::from_secs(600);
    while *phase.borrow() != Phase::Probe && Instant::now() < give_up {
        if let Some(s) = slot.as_mut() {
            let _ = s.ping().await;
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), phase.changed()).await;
    }
    let s = slot.as_mut()?;
    if s.is_expired() {
        return slot;
    }
    let req = Request::Exists(ExistsRequest {
        path: "/".into(),
        watch: false,
    });
    record(ctx, s, Call::Probe, req, |_| Ok(Value::None)).await;
    slot
}

/// Creates the workloads' znodes through `s`: registers at `0` (version 0), the counter at
/// `0`, the ids and ephemerals parents. Each create is retried until it is there
/// (NodeExists after a lost answer counts as there), bounded by `until`.
pub async fn setup(s: &mut Session, registers: usize, until: Instant) -> Result<(), String> {
    let mut nodes = vec![
        (ROOT.to_string(), ""),
        (REGISTERS.to_string(), ""),
        (COUNTER.to_string(), "0"),
        (IDS_PREFIX.trim_end_matches("/id-").to_string(), ""),
        (EPHEMERALS.to_string(), ""),
    ];
    nodes.extend((0..registers).map(|k| (register_path(k), "0")));
    for (path, data) in nodes {
        loop {
            let req = Request::Create(CreateRequest {
                path: path.clone(),
                data: Some(data.as_bytes().to_vec()),
                acl: open_acl(),
                flags: CreateMode::Persistent.code(),
            });
            match s.call(&req).await {
                Ok(a) if a.err == ErrorCode::Ok || a.err == ErrorCode::NodeExists => break,
                Ok(a) => return Err(format!("create {path}: {:?}", a.err)),
                Err(CallError::Expired) => return Err(format!("create {path}: {SESSION_EXPIRED}")),
                Err(e) if Instant::now() > until => return Err(format!("create {path}: {e:?}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    Ok(())
}
