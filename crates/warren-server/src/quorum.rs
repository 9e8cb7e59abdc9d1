//! Whether this server is in touch with a quorum, and read-only mode when it is not.
//!
//! Twin of ZooKeeper's `ReadOnlyZooKeeperServer` and `ReadOnlyRequestProcessor`, with the
//! "LOOKING" half of `QuorumPeer.run`. ZooKeeper stops serving when a peer loses its leader
//! (the peer goes back to leader election); with `readonlymode.enabled` it starts a read-only
//! server after `max(2 s, tickTime)` that accepts only clients whose `ConnectRequest` says
//! `readOnly`, serves reads from its local tree, answers every write (and `sync`) with
//! `NotReadOnly`, and answers `isro` with `ro`. Once the peer follows or leads again the
//! read-only server shuts down and its clients reconnect to a read-write server.
//!
//! warren's Raft keeps a cut-off leader leading and a follower following until an election
//! succeeds, so "in touch with a quorum" is decided here, every [`PROBE_MS`]:
//! - the leader: a quorum of voters acknowledged it within the loss threshold
//!   (`NodeStatus::quorum_acked_ms`), or it is the only voter;
//! - a follower or observer: the leader it knows answers a probe (`call_app`, tag
//!   [`QUORUM_PROBE`]) saying that the leader itself is in touch with a quorum.
//!
//! The server counts as cut off once no such confirmation came for `max(2 × tickTime, 2 s)`
//! (measured from start-up, so a server that is starting gets the same grace). While cut off:
//! - new sessions are refused: the connection closes without an answer, as ZooKeeper's does
//!   when its `ZooKeeperServer` is not running, and the client tries another server;
//! - with `readonlymode.enabled`, clients that ask for it get a **local session** (see
//!   [`LocalSessions`]): an id from this server's generator, a random password, never
//!   logged, unknown to every other server, answered with `readOnly=true`. Sessions from the
//!   tree may resume read-only too. Their requests: reads as usual; writes and `sync`
//!   `NotReadOnly`; `closeSession` forgets the local session.
//!
//! When the quorum is back, every read-only connection is closed and the local sessions
//! are forgotten: their clients reconnect, find a read-write server (kazoo looks for one with
//! `isro`), and a local session is unknown there, so the client starts a new session, as
//! with ZooKeeper's read-only server, whose sessions die with it. Read-write connections are
//! left alone while the server is cut off (ZooKeeper closes them): their writes fail with
//! ConnectionLoss and their reads keep being served.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tracing::{debug, info};
use warren_proto::SessionId;
use warren_raft::Role;

use crate::server::ServerCtx;

/// How often the quorum is checked.
pub const PROBE_MS: u64 = 200;

/// The tag of the application call asking the leader whether it is in touch with a quorum.
/// The answer is one byte: 1 yes, 0 no.
pub const QUORUM_PROBE: u8 = 2;

/// A read-only client's session: this server's alone, never logged.
#[derive(Debug, Clone)]
pub struct LocalSession {
    /// The password the client must present to resume it.
    pub password: [u8; 16],
    /// The negotiated timeout.
    pub timeout_ms: i32,
    /// Since when (server milliseconds) no connection holds it; `None` while one does.
    pub detached_at_ms: Option<u64>,
}

/// The local sessions of read-only clients (ZooKeeper's local sessions of its read-only
/// server). Each one lives while a connection holds it and for its timeout after that.
#[derive(Debug, Default)]
pub struct LocalSessions {
    by_id: HashMap<SessionId, LocalSession>,
}

impl LocalSessions {
    /// Adds a new session.
    pub fn insert(&mut self, id: SessionId, password: [u8; 16], timeout_ms: i32) {
        let s = LocalSession {
            password,
            timeout_ms,
            detached_at_ms: None,
        };
        self.by_id.insert(id, s);
    }

    /// The session `id` if `password` is its password; it is attached again.
    pub fn resume(&mut self, id: SessionId, password: &[u8]) -> Option<&LocalSession> {
        let s = self.by_id.get_mut(&id)?;
        if s.password.as_slice() != password {
            return None;
        }
        s.detached_at_ms = None;
        Some(s)
    }

    /// Whether `id` is a local session.
    pub fn contains(&self, id: SessionId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Its connection went away at `now_ms`: it lives on for its timeout.
    pub fn detach(&mut self, id: SessionId, now_ms: u64) {
        if let Some(s) = self.by_id.get_mut(&id) {
            s.detached_at_ms = Some(now_ms);
        }
    }

    /// Forgets `id` (closeSession).
    pub fn remove(&mut self, id: SessionId) {
        self.by_id.remove(&id);
    }

    /// Forgets the sessions detached for longer than their timeout.
    pub fn expire(&mut self, now_ms: u64) {
        self.by_id.retain(|_, s| {
            s.detached_at_ms
                .is_none_or(|at| now_ms.saturating_sub(at) < s.timeout_ms.max(0) as u64)
        });
    }

    /// Forgets every session (the quorum is back).
    pub fn clear(&mut self) {
        self.by_id.clear();
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// This server's view of its quorum.
#[derive(Debug)]
pub struct QuorumState {
    /// Server milliseconds of the last confirmation (0 = start-up).
    last_ok_ms: AtomicU64,
    /// Cut off: no confirmation for longer than the threshold.
    cut_off: AtomicBool,
    /// Serving read-only clients (cut off with `readonlymode.enabled`).
    read_only: AtomicBool,
    /// The read-only clients' sessions.
    pub local_sessions: Mutex<LocalSessions>,
}

impl Default for QuorumState {
    fn default() -> Self {
        QuorumState {
            last_ok_ms: AtomicU64::new(0),
            cut_off: AtomicBool::new(false),
            read_only: AtomicBool::new(false),
            local_sessions: Mutex::new(LocalSessions::default()),
        }
    }
}

impl QuorumState {
    /// Whether this server is cut off from its quorum (it then creates no read-write
    /// sessions).
    pub fn cut_off(&self) -> bool {
        self.cut_off.load(Ordering::Relaxed)
    }

    /// Whether this server serves read-only clients now (`isro` answers `ro`).
    pub fn read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }

    fn confirmed(&self, now_ms: u64) {
        self.last_ok_ms.fetch_max(now_ms, Ordering::Relaxed);
    }
}

/// How long without a confirmation before a server counts as cut off: ZooKeeper starts its
/// read-only server `max(2 s, tickTime)` after losing the leader; twice the tick keeps a
/// server whose leader is merely slow from flapping.
pub fn loss_threshold_ms(tick_ms: u32) -> u64 {
    (2 * u64::from(tick_ms)).max(2_000)
}

/// Whether the leader's own view says it is in touch with a quorum.
fn leader_has_quorum(status: &warren_raft::NodeStatus, threshold_ms: u64) -> bool {
    if status.role != Role::Leader {
        return false;
    }
    let alone = status.voters.len() == 1 && status.voters.contains(&status.id);
    alone || status.quorum_acked_ms.is_some_and(|ms| ms < threshold_ms)
}

/// The leader's answer to [`QUORUM_PROBE`].
pub fn answer_probe(ctx: &ServerCtx) -> Vec<u8> {
    let threshold = loss_threshold_ms(ctx.cfg.tick_time_ms);
    vec![u8::from(leader_has_quorum(&ctx.raft.status(), threshold))]
}

/// Watches the quorum of an ensemble member until `stop`; a standalone server never loses
/// its quorum and does not run this.
pub async fn watch_quorum(ctx: Arc<ServerCtx>, mut stop: watch::Receiver<bool>) {
    let threshold = loss_threshold_ms(ctx.cfg.tick_time_ms);
    let probe = Duration::from_millis(PROBE_MS);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(probe) => {}
        }
        let status = ctx.raft.status();
        let confirmed = match (status.role, status.leader) {
            (Role::Leader, _) => leader_has_quorum(&status, threshold),
            (Role::Follower | Role::Learner, Some(leader)) if leader != status.id => {
                let ask = ctx.raft.call_app(leader, vec![QUORUM_PROBE]);
                matches!(tokio::time::timeout(probe, ask).await, Ok(Ok(r)) if r == [1])
            }
            _ => false,
        };
        let now = ctx.shared.now_ms();
        let q = &ctx.quorum;
        if confirmed {
            q.confirmed(now);
        }
        let cut_off = now.saturating_sub(q.last_ok_ms.load(Ordering::Relaxed)) >= threshold;
        if cut_off != q.cut_off.swap(cut_off, Ordering::Relaxed) {
            if cut_off {
                info!(threshold_ms = threshold, role = ?status.role, "cut off from the quorum");
            } else {
                info!("in touch with the quorum again");
            }
        }
        let read_only = cut_off && ctx.cfg.read_only_mode_enabled;
        let was = q.read_only.swap(read_only, Ordering::Relaxed);
        if read_only && !was {
            info!("read-only mode: serving read-only clients");
        }
        if !read_only && was {
            leave_read_only(&ctx);
        }
        q.local_sessions.lock().expire(now);
    }
}

/// The quorum is back: close every read-only connection and forget the local sessions.
fn leave_read_only(ctx: &ServerCtx) {
    let conns = ctx.shared.conns.lock().all();
    let mut closed = 0;
    for c in conns.iter().filter(|c| c.read_only()) {
        c.outbox.close();
        closed += 1;
    }
    let sessions = {
        let mut local = ctx.quorum.local_sessions.lock();
        let n = local.len();
        local.clear();
        n
    };
    info!(
        connections = closed,
        local_sessions = sessions,
        "read-only mode over: read-only clients closed"
    );
    debug!("read-write service resumes");
}
