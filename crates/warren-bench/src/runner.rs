//! Drives a run: the phases (warm-up, measure, stop), one task per session (or per pair for
//! `watch`), pacing for `--rate`, and the progress line.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use warren_proto::records::{GetDataRequest, SetDataRequest};
use warren_proto::request::Request;
use warren_proto::{ErrorCode, Xid};

use crate::args::{BenchArgs, Workload};
use crate::conn::{ConnError, Connection};
use crate::stats::Stats;
use crate::workload::{Layout, OpGen, OpKind, outcome};

/// Pause before reconnecting after a connection fault.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// Hands each paced session (`--rate`) the times its sends are due, from a thread of its
/// own. Why not a tokio timer per session: tokio's timers tick once a millisecond, so each
/// session would send up to a millisecond late, and all sessions at the same tick; the
/// latency of a paced op counts from its due time, so every op would carry that lateness
/// and the bunching, whatever the server. The thread sleeps with the OS timer (tens of
/// microseconds) until the next due time and hands that op's due time to its session.
///
/// Op `k` is due at `start + k / rate` and goes to session `k mod sessions`, so each
/// session sends every `sessions / rate` seconds, the sessions staggered evenly.
pub struct Pacer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pacer {
    /// Starts pacing `rate` ops/s over `sessions` sessions; returns each session's receiver
    /// of due times, in session order.
    pub fn start(rate: f64, sessions: u32) -> std::io::Result<(Pacer, Vec<Pace>)> {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..sessions.max(1))
            .map(|_| tokio::sync::mpsc::unbounded_channel())
            .unzip();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let every = Duration::from_secs_f64(1.0 / rate);
        let thread = std::thread::Builder::new()
            .name("bench-pacer".into())
            .spawn(move || {
                let start = std::time::Instant::now();
                let mut k: u64 = 0;
                let mut due = start;
                while !stopped.load(Ordering::Relaxed) {
                    let now = std::time::Instant::now();
                    if due > now {
                        // At most 100 ms at a time, so that a stop is seen.
                        std::thread::sleep((due - now).min(Duration::from_millis(100)));
                        continue;
                    }
                    let tx = &txs[k as usize % txs.len()];
                    if tx.send(Instant::from_std(due)).is_err() && txs.iter().all(|t| t.is_closed())
                    {
                        return;
                    }
                    k += 1;
                    // From the start, not by adding: no drift from rounding `every`.
                    due = start + every.mul_f64(k as f64);
                }
            })?;
        let paces = rxs.into_iter().map(|rx| Pace { rx, held: None }).collect();
        Ok((
            Pacer {
                stop,
                thread: Some(thread),
            },
            paces,
        ))
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One paced session's due times, from the [`Pacer`].
#[derive(Debug)]
pub struct Pace {
    rx: tokio::sync::mpsc::UnboundedReceiver<Instant>,
    /// A due time received while waiting, not yet used.
    held: Option<Instant>,
}

impl Pace {
    /// The next due time if it has come.
    fn due(&mut self) -> Option<Instant> {
        self.held.take().or_else(|| self.rx.try_recv().ok())
    }

    /// Waits for the next due time (cancel-safe: a time received is held for `due`).
    async fn wait(&mut self) {
        if self.held.is_none() {
            self.held = self.rx.recv().await;
            if self.held.is_none() {
                // The pacer has stopped: nothing more will come.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Drops the sends that fell due before `now` (after a reconnect: catch up the pacing
    /// rather than burst the missed sends).
    fn skip_missed(&mut self, now: Instant) {
        while let Some(d) = self.due() {
            if d >= now {
                self.held = Some(d);
                break;
            }
        }
    }
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Load without recording.
    Warmup,
    /// Recording.
    Measure,
    /// Stop sending; drain what is in flight.
    Stop,
}

/// State shared by the sessions of a run.
#[derive(Debug)]
pub struct Control {
    phase: watch::Receiver<Phase>,
    /// Op units left to measure in `--ops` mode.
    tickets: Option<AtomicU64>,
    /// Successful ops so far, all phases (for the progress line).
    pub ok: AtomicU64,
    /// Errors so far, all phases (for the progress line).
    pub errors: AtomicU64,
}

impl Control {
    /// A control for `ops` op units (or a duration, if `None`), with the phase sender;
    /// without a warm-up it starts in the measure phase, so that no op goes uncounted.
    pub fn new(ops: Option<u64>, warmup: bool) -> (Control, watch::Sender<Phase>) {
        let first = if warmup {
            Phase::Warmup
        } else {
            Phase::Measure
        };
        let (tx, rx) = watch::channel(first);
        let ctl = Control {
            phase: rx,
            tickets: ops.map(AtomicU64::new),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        };
        (ctl, tx)
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Takes up to `want` op units to send in the measure phase; 0 when the count is spent.
    /// Without `--ops`, every request is granted.
    fn take(&self, want: u64) -> u64 {
        let Some(t) = &self.tickets else { return want };
        let mut cur = t.load(Ordering::Relaxed);
        loop {
            let got = cur.min(want);
            if got == 0 {
                return 0;
            }
            match t.compare_exchange_weak(cur, cur - got, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return got,
                Err(now) => cur = now,
            }
        }
    }

    /// Whether `--ops` is spent.
    fn spent(&self) -> bool {
        self.tickets
            .as_ref()
            .is_some_and(|t| t.load(Ordering::Relaxed) == 0)
    }
}

/// What one session task hands back.
#[derive(Debug, Default)]
pub struct SessionResult {
    /// Its measurements.
    pub stats: Stats,
    /// When its last measured op completed.
    pub last_completion: Option<Instant>,
    /// Its measured ops, when `--trace` is on.
    pub trace: Vec<OpTimes>,
}

/// When one op started (its due time when paced), was sent and completed (`--trace`).
#[derive(Debug, Clone, Copy)]
pub struct OpTimes {
    /// Its due time (paced) or its send (closed loop): where its latency starts.
    pub start: Instant,
    /// When the write carrying it returned.
    pub sent: Instant,
    /// When its reply was read.
    pub done: Instant,
}

/// One request in flight.
#[derive(Debug)]
struct InFlight {
    xid: Xid,
    kind: OpKind,
    /// When it was due (paced) or sent (closed loop): the start of its latency.
    start: Instant,
    /// Sent in the measure phase.
    measured: bool,
    /// When its bytes were handed to the socket (`--trace`).
    sent: Option<Instant>,
}

/// Everything a session task needs.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The run's arguments.
    pub args: Arc<BenchArgs>,
    /// The run's znodes.
    pub layout: Arc<Layout>,
    /// Shared state.
    pub ctl: Arc<Control>,
}

impl Ctx {
    fn count_error(&self, res: &mut SessionResult, kind: &str) {
        self.ctl.errors.fetch_add(1, Ordering::Relaxed);
        if self.ctl.phase() == Phase::Measure {
            res.stats.error(kind);
        }
    }

    /// Connects session `idx` to its server: sessions are spread round-robin over the
    /// servers of `--server` (one session's reconnects always go to the same server, so a
    /// run measures each server's share of the load, as ZooKeeper clients spread by host).
    async fn connect(&self, idx: u32) -> Result<Connection, ConnError> {
        let a = &self.args;
        Connection::connect(a.server_for(idx), a.session_timeout_ms, a.reply_timeout).await
    }

    fn finished(&self) -> bool {
        self.ctl.phase() == Phase::Stop || self.ctl.spent()
    }
}

/// Session `idx` of a pipelined workload: keeps `--depth` requests in flight (paced by
/// `--rate` if given) until the run stops; reconnects after a connection fault.
pub async fn run_session(ctx: Ctx, idx: u32, mut pace: Option<Pace>) -> SessionResult {
    let mut res = SessionResult::default();
    let mut gen_ = OpGen::new(idx, &ctx.args, &ctx.layout);
    while !ctx.finished() {
        let mut conn = match ctx.connect(idx).await {
            Ok(c) => c,
            Err(e) => {
                ctx.count_error(&mut res, e.kind());
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        };
        match drive(&ctx, &mut conn, &mut gen_, &mut res, pace.as_mut()).await {
            Ok(()) => {
                let _ = conn.close().await;
                break;
            }
            Err(e) => {
                ctx.count_error(&mut res, e.kind());
                tokio::time::sleep(RECONNECT_PAUSE).await;
                if let Some(p) = pace.as_mut() {
                    p.skip_missed(Instant::now());
                }
            }
        }
    }
    res
}

/// The pipelined loop on one connection; `Ok` when the run is over and nothing is in flight.
async fn drive(
    ctx: &Ctx,
    conn: &mut Connection,
    gen_: &mut OpGen,
    res: &mut SessionResult,
    mut pace: Option<&mut Pace>,
) -> Result<(), ConnError> {
    let depth = ctx.args.depth as usize;
    let units_per_op = match ctx.args.workload {
        Workload::Load => u64::from(ctx.args.multi_ops),
        _ => 1,
    };
    let ping_after = Duration::from_millis((ctx.args.session_timeout_ms / 3).max(100) as u64);
    let mut phase_rx = ctx.ctl.phase.clone();
    let mut inflight: VecDeque<InFlight> = VecDeque::with_capacity(depth);
    let mut stopping = false;
    let mut last_sent = Instant::now();
    loop {
        let phase = ctx.ctl.phase();
        stopping |= phase == Phase::Stop;
        let now = Instant::now();
        while !stopping && inflight.len() < depth {
            let start = match pace.as_deref_mut() {
                Some(p) => match p.due() {
                    Some(due) => due,
                    None => break,
                },
                None => now,
            };
            let measured = phase == Phase::Measure;
            let units = if measured {
                ctx.ctl.take(units_per_op)
            } else {
                units_per_op
            };
            if units == 0 {
                stopping = true;
                break;
            }
            let (xid, kind) = gen_.queue_next(conn, units);
            inflight.push_back(InFlight {
                xid,
                kind,
                start,
                measured,
                sent: None,
            });
        }
        if inflight.is_empty() && !stopping && now.duration_since(last_sent) > ping_after {
            let xid = conn.queue(&Request::Ping);
            inflight.push_back(InFlight {
                xid,
                kind: OpKind::Ping,
                start: now,
                measured: false,
                sent: None,
            });
        }
        if conn.has_queued() {
            conn.flush().await?;
            last_sent = now;
            if ctx.args.trace.is_some() {
                let sent = Instant::now();
                for f in inflight.iter_mut().rev().take_while(|f| f.sent.is_none()) {
                    f.sent = Some(sent);
                }
            }
        }
        if inflight.is_empty() && stopping {
            return Ok(());
        }
        let deadline = inflight
            .front()
            .map(|f| f.start.max(last_sent) + ctx.args.reply_timeout);
        let can_send = pace.is_some() && !stopping && inflight.len() < depth;
        tokio::select! {
            r = conn.read_reply(), if !inflight.is_empty() => {
                complete(ctx, r?, &mut inflight, res)?;
            }
            _ = async { pace.as_deref_mut().expect("paced").wait().await }, if can_send => {}
            _ = tokio::time::sleep(ping_after), if inflight.is_empty() && !can_send => {}
            r = phase_rx.changed() => {
                if r.is_err() {
                    stopping = true;
                }
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or(now)), if deadline.is_some() => {
                return Err(ConnError::Timeout);
            }
        }
        while conn.reply_buffered() {
            let r = conn.read_reply().await?;
            complete(ctx, r, &mut inflight, res)?;
        }
    }
}

/// Matches a reply to the oldest request in flight and records its outcome.
fn complete(
    ctx: &Ctx,
    reply: crate::conn::Reply,
    inflight: &mut VecDeque<InFlight>,
    res: &mut SessionResult,
) -> Result<(), ConnError> {
    if reply.header.xid == Xid::NOTIFICATION {
        return Ok(());
    }
    let Some(f) = inflight.pop_front() else {
        return Err(ConnError::Protocol("a reply with nothing in flight".into()));
    };
    if reply.header.xid != f.xid {
        return Err(ConnError::Protocol(format!(
            "reply xid {} where {} was next",
            reply.header.xid.0, f.xid.0
        )));
    }
    if f.kind == OpKind::Ping {
        return Ok(());
    }
    let done = Instant::now();
    let result = outcome(f.kind, reply.header.err, &reply.body)?;
    let counted = if result.is_ok() {
        &ctx.ctl.ok
    } else {
        &ctx.ctl.errors
    };
    counted.fetch_add(1, Ordering::Relaxed);
    if f.measured && ctx.ctl.phase() != Phase::Stop {
        match result {
            Ok(()) => {
                res.stats.record(done - f.start);
                if ctx.args.trace.is_some() {
                    res.trace.push(OpTimes {
                        start: f.start,
                        sent: f.sent.unwrap_or(done),
                        done,
                    });
                }
            }
            Err(code) => res.stats.zk_error(code),
        }
        res.last_completion = Some(done);
    }
    Ok(())
}

/// Pair `idx` of `watch`: a watcher session sets a data watch on the pair's node, a setter
/// session changes it, and the latency runs from the setData's send to the notification.
pub async fn run_watch_pair(ctx: Ctx, idx: u32) -> SessionResult {
    let mut res = SessionResult::default();
    while !ctx.finished() {
        let pair = match tokio::try_join!(ctx.connect(2 * idx), ctx.connect(2 * idx + 1)) {
            Ok(p) => p,
            Err(e) => {
                ctx.count_error(&mut res, e.kind());
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        };
        let (mut watcher, mut setter) = pair;
        match watch_loop(&ctx, idx, &mut watcher, &mut setter, &mut res).await {
            Ok(()) => {
                let _ = tokio::join!(watcher.close(), setter.close());
                break;
            }
            Err(e) => {
                ctx.count_error(&mut res, e.kind());
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        }
    }
    res
}

async fn watch_loop(
    ctx: &Ctx,
    idx: u32,
    watcher: &mut Connection,
    setter: &mut Connection,
    res: &mut SessionResult,
) -> Result<(), ConnError> {
    let path = ctx.layout.watch_node(idx);
    let arm = Request::GetData(GetDataRequest {
        path: path.clone(),
        watch: true,
    });
    let set = Request::SetData(SetDataRequest {
        path,
        data: Some(vec![b'w'; ctx.args.value_size]),
        version: -1,
    });
    loop {
        if ctx.finished() {
            return Ok(());
        }
        let measured = ctx.ctl.phase() == Phase::Measure;
        if measured && ctx.ctl.take(1) == 0 {
            return Ok(());
        }
        let armed = watcher.call(&arm).await?;
        if armed.header.err != ErrorCode::Ok {
            ctx.ctl.errors.fetch_add(1, Ordering::Relaxed);
            res.stats.zk_error(armed.header.err);
            continue;
        }
        let start = Instant::now();
        setter.queue(&set);
        setter.flush().await?;
        let (event, reply) = tokio::join!(next_event(watcher), setter.read_reply_timed());
        let (event, reply) = (event?, reply?);
        if reply.header.err != ErrorCode::Ok {
            ctx.ctl.errors.fetch_add(1, Ordering::Relaxed);
            if measured {
                res.stats.zk_error(reply.header.err);
            }
            continue;
        }
        ctx.ctl.ok.fetch_add(1, Ordering::Relaxed);
        if measured && ctx.ctl.phase() != Phase::Stop {
            res.stats.record(event - start);
            res.last_completion = Some(event);
        }
    }
}

/// Waits for the next notification on `conn` and returns when it arrived.
async fn next_event(conn: &mut Connection) -> Result<Instant, ConnError> {
    loop {
        let r = conn.read_reply_timed().await?;
        if r.header.xid == Xid::NOTIFICATION {
            return Ok(Instant::now());
        }
    }
}

/// Worker `idx` of `session`: connect (handshake), closeSession, repeat; one op per cycle.
pub async fn run_session_cycles(ctx: Ctx, idx: u32) -> SessionResult {
    let mut res = SessionResult::default();
    while !ctx.finished() {
        let measured = ctx.ctl.phase() == Phase::Measure;
        if measured && ctx.ctl.take(1) == 0 {
            break;
        }
        let start = Instant::now();
        let cycle = async { ctx.connect(idx).await?.close().await }.await;
        match cycle {
            Ok(()) => {
                ctx.ctl.ok.fetch_add(1, Ordering::Relaxed);
                if measured && ctx.ctl.phase() != Phase::Stop {
                    let done = Instant::now();
                    res.stats.record(done - start);
                    res.last_completion = Some(done);
                }
            }
            Err(e) => {
                ctx.count_error(&mut res, e.kind());
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        }
    }
    res
}

/// Prints one progress line a second on stderr until `stop` fires.
pub async fn progress(ctl: Arc<Control>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let began = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let (mut last_ok, mut last_err) = (0, 0);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => return,
        }
        let ok = ctl.ok.load(Ordering::Relaxed);
        let err = ctl.errors.load(Ordering::Relaxed);
        let phase = match ctl.phase() {
            Phase::Warmup => "warm-up",
            Phase::Measure => "measure",
            Phase::Stop => "drain",
        };
        eprintln!(
            "[{:>4}s] {phase:<7} {:>9} ops/s  {:>8} errors/s  total {ok} ok, {err} errors",
            began.elapsed().as_secs(),
            ok - last_ok,
            err - last_err
        );
        (last_ok, last_err) = (ok, err);
    }
}

#[cfg(test)]
mod tests {
    use super::{Pace, Pacer};
    use std::time::Duration;
    use tokio::time::Instant;

    fn next(p: &mut Pace) -> Instant {
        p.rx.blocking_recv().expect("the pacer runs")
    }

    #[test]
    fn the_pacer_deals_due_times_round_robin_at_the_rate() {
        let (pacer, mut paces) = Pacer::start(1000.0, 3).unwrap();
        let close = |a: Duration, ms: u64| {
            let want = Duration::from_millis(ms);
            assert!(
                a.abs_diff(want) < Duration::from_micros(1),
                "{a:?} != {want:?}"
            );
        };
        let s0 = [next(&mut paces[0]), next(&mut paces[0])];
        let s1 = next(&mut paces[1]);
        let s2 = next(&mut paces[2]);
        // Op k is due k ms after the first and goes to session k mod 3.
        close(s1 - s0[0], 1);
        close(s2 - s0[0], 2);
        close(s0[1] - s0[0], 3);
        drop(pacer);
        // Stopped: what was dealt can still be taken, then nothing more comes.
        let mut p = paces.remove(0);
        while p.due().is_some() {}
        assert!(p.rx.blocking_recv().is_none());
    }

    #[test]
    fn after_a_reconnect_missed_sends_are_dropped_not_burst() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut p = Pace { rx, held: None };
        let t = Instant::now();
        for ms in [0, 1, 2, 50, 51] {
            tx.send(t + Duration::from_millis(ms)).unwrap();
        }
        p.skip_missed(t + Duration::from_millis(10));
        assert_eq!(p.due(), Some(t + Duration::from_millis(50)));
        assert_eq!(p.due(), Some(t + Duration::from_millis(51)));
        assert_eq!(p.due(), None);
    }
}
