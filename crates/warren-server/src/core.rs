//! The state one server shares between its connections, its tickers and the apply path, and
//! the apply path itself ([`ServerStateMachine`]).
//!
//! Apply is the one sequencing point of the server. For each committed command, with the
//! tree write-locked, it: applies the command; queues the watch events it fires into the
//! watchers' outboxes; does the session bookkeeping (a closed session's watches and
//! connection go); and, if the command came from one of this server's connections, fills in
//! that request's answer and drains the connection's queue (running reads that waited for
//! this write). Since everything is queued before the lock is released, a client always
//! receives an event before any reply that reflects the change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use warren_proto::records::ConnectResponse;
use warren_proto::response::encode_connect_response;
use warren_proto::{ErrorCode, SessionId, Xid, Zxid};
use warren_tree::{Applied, Command, DataTree, Op, Outcome};

use crate::conn::{ConnId, ConnRegistry, ReadCtx, WriteKind};
use crate::expiry::ExpiryQueue;
use crate::requests::{notification, write_reply};
use crate::watch::WatchRegistry;

/// Bits of `Command::origin` that hold the connection id; the server id is above them.
const ORIGIN_CONN_BITS: u32 = 48;

/// The `origin` of a command proposed by connection `conn` of server `node`. Connection 0
/// is the server itself (expiry, container and TTL sweeps).
pub fn origin(node: u64, conn: ConnId) -> u64 {
    (node << ORIGIN_CONN_BITS) | (conn & ((1 << ORIGIN_CONN_BITS) - 1))
}

fn split_origin(origin: u64) -> (u64, ConnId) {
    (
        origin >> ORIGIN_CONN_BITS,
        origin & ((1 << ORIGIN_CONN_BITS) - 1),
    )
}

/// Milliseconds since the Unix epoch: the time stamped into commands (znode ctime/mtime).
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Everything a server's tasks share.
pub struct Shared {
    /// This server's id (1 when standalone).
    pub node_id: u64,
    /// The replicated tree.
    pub tree: RwLock<DataTree>,
    /// Watches of this server's sessions.
    pub watches: Mutex<WatchRegistry>,
    /// Live connections.
    pub conns: Mutex<ConnRegistry>,
    /// Session deadlines (used while this server leads).
    pub expiry: Mutex<ExpiryQueue>,
    /// The monotonic clock's origin for [`Shared::now_ms`].
    pub started: Instant,
    /// The server's in-flight permits (`requests_in_flight_max`, ZooKeeper's
    /// `globalOutstandingLimit`).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Commands this server's connections proposed and that are not yet applied or failed,
    /// by the address of their encoded bytes (see [`Shared::remember_proposed`]).
    proposed: Mutex<HashMap<usize, (Bytes, Vec<Command>)>>,
}

impl Shared {
    /// A server's shared state over `tree`.
    pub fn new(node_id: u64, tree: DataTree, tick_ms: u64, in_flight_max: usize) -> Self {
        Shared {
            node_id,
            tree: RwLock::new(tree),
            watches: Mutex::new(WatchRegistry::new()),
            conns: Mutex::new(ConnRegistry::default()),
            expiry: Mutex::new(ExpiryQueue::new(tick_ms)),
            started: Instant::now(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(in_flight_max.max(1))),
            proposed: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps `cmds`, just encoded as the entry `payload` (one command or a batch), so that
    /// its apply on this server (the leader, whose log entry holds these very bytes) takes
    /// them as they are instead of decoding them again.
    /// The entry holds a clone of `payload`, which keeps its allocation alive: while it is
    /// here no other payload can have the same address, so the address identifies it.
    pub fn remember_proposed(&self, payload: Bytes, cmds: Vec<Command>) {
        let key = payload.as_ptr() as usize;
        self.proposed.lock().insert(key, (payload, cmds));
    }

    /// Drops the command kept for `payload`, if still there (its outcome is known: applied
    /// here already, applied from another copy of the bytes, or failed).
    pub fn forget_proposed(&self, payload: &Bytes) {
        self.proposed.lock().remove(&(payload.as_ptr() as usize));
    }

    /// The commands kept for the entry whose bytes are `payload`, if this server proposed
    /// it and the entry still holds the bytes it proposed.
    fn take_proposed(&self, payload: &[u8]) -> Option<Vec<Command>> {
        let (bytes, cmds) = self.proposed.lock().remove(&(payload.as_ptr() as usize))?;
        // The same address and length are the same immutable bytes.
        (bytes.len() == payload.len()).then_some(cmds)
    }

    /// Monotonic milliseconds since start, for session deadlines.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Applies one committed command (see the module doc).
    pub fn apply_command(&self, cmd: &Command) -> Applied {
        let mut tree = self.tree.write();
        let applied = tree.apply(cmd);
        self.fire(&applied);
        if let (Op::CloseSession, Outcome::Done) = (&cmd.op, &applied.outcome) {
            self.session_closed(cmd);
        }
        if let (Op::CreateSession { timeout_ms, .. }, Outcome::Done) = (&cmd.op, &applied.outcome) {
            self.expiry
                .lock()
                .touch(cmd.session, *timeout_ms as u64, self.now_ms());
        }
        self.answer(&tree, cmd, &applied);
        applied
    }

    fn fire(&self, applied: &Applied) {
        if applied.triggers.is_empty() {
            return;
        }
        let mut watches = self.watches.lock();
        for t in &applied.triggers {
            let sessions = watches.fire(&t.path, t.event);
            if sessions.is_empty() {
                continue;
            }
            let frame = notification(applied.zxid, &t.path, t.event);
            let conns = self.conns.lock();
            for s in sessions {
                if let Some(c) = conns.for_session(s) {
                    c.outbox.send(frame.clone());
                }
            }
        }
    }

    /// A session closed or expired: its watches go, and its connection closes unless it is
    /// the one that asked (that one gets its reply first).
    fn session_closed(&self, cmd: &Command) {
        self.watches.lock().remove_session(cmd.session);
        self.expiry.lock().remove(cmd.session);
        let (node, conn_id) = split_origin(cmd.origin);
        let conn = self.conns.lock().detach(cmd.session);
        if let Some(conn) = conn
            && (node != self.node_id || conn.id != conn_id)
        {
            conn.outbox.close();
        }
    }

    /// Fills in the answer of a command from one of this server's connections.
    fn answer(&self, tree: &DataTree, cmd: &Command, applied: &Applied) {
        let (node, conn_id) = split_origin(cmd.origin);
        if node != self.node_id || conn_id == 0 {
            return;
        }
        let Some(conn) = self.conns.lock().get(conn_id) else {
            return;
        };
        if let (Op::CreateSession { .. }, Outcome::Done) = (&cmd.op, &applied.outcome)
            && let Some(old) = self.conns.lock().attach(cmd.session, &conn)
        {
            old.outbox.close();
        }
        let mut st = conn.state.lock();
        let filled = st.write_applied(cmd.xid, |kind| answer_frames(kind, cmd, applied));
        if filled {
            let mut watches = self.watches.lock();
            let mut ctx = ReadCtx {
                tree,
                watches: &mut watches,
                outbox: &conn.outbox,
            };
            st.drain(&mut ctx);
        }
    }

    /// Answers a pending request of `conn` outside apply (a failed proposal, a finished
    /// barrier), then drains the queue.
    pub fn finish(&self, conn: &crate::conn::Conn, fill: impl FnOnce(&mut crate::conn::ConnState)) {
        let tree = self.tree.read();
        let mut st = conn.state.lock();
        fill(&mut st);
        let mut watches = self.watches.lock();
        let mut ctx = ReadCtx {
            tree: &tree,
            watches: &mut watches,
            outbox: &conn.outbox,
        };
        st.drain(&mut ctx);
    }
}

/// The frames answering an applied write, and whether the connection closes after them.
fn answer_frames(kind: &WriteKind, cmd: &Command, applied: &Applied) -> (Vec<Vec<u8>>, bool) {
    match kind {
        WriteKind::Connect {
            timeout_ms,
            read_only_byte,
        } => {
            let ok = matches!(applied.outcome, Outcome::Done);
            let Op::CreateSession { password, .. } = &cmd.op else {
                unreachable!("a Connect entry is only filled by its CreateSession")
            };
            let resp = ConnectResponse {
                protocol_version: 0,
                timeout_ms: if ok { *timeout_ms } else { 0 },
                session_id: if ok { cmd.session } else { SessionId(0) },
                passwd: if ok { password.to_vec() } else { vec![0; 16] },
                read_only: read_only_byte.then_some(false),
            };
            (vec![encode_connect_response(&resp)], !ok)
        }
        WriteKind::Request { op, multi } => {
            let frame = write_reply(cmd.xid, applied.zxid, *op, multi, &applied.outcome);
            (vec![frame], matches!(cmd.op, Op::CloseSession))
        }
    }
}

/// The error answer of a write that could not be proposed.
pub fn proposal_failed(
    xid: Xid,
    zxid: Zxid,
    kind: &WriteKind,
    code: ErrorCode,
) -> (Vec<Vec<u8>>, bool) {
    match kind {
        // A handshake that cannot be logged: close; the client tries another server.
        WriteKind::Connect { .. } => (Vec::new(), true),
        WriteKind::Request { .. } => (
            vec![warren_proto::response::encode_error(xid, zxid, code)],
            false,
        ),
    }
}

/// [`warren_raft::StateMachine`] over the server's shared state.
pub struct ServerStateMachine {
    shared: Arc<Shared>,
}

impl ServerStateMachine {
    /// The state machine of `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        ServerStateMachine { shared }
    }
}

/// Puts the calling thread (the snapshot encoder's own, once it holds no lock) in Linux's
/// SCHED_IDLE class: encoding a large snapshot takes a core for a second or more, and on a
/// busy machine it should take only CPU nobody else wants. Without this, a snapshot every
/// `snapCount` writes raised the p99 of a paced create load from 3 ms to 50 ms on 2 cores.
fn lower_this_threads_priority() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle) {
        tracing::debug!(error = ?e, "snapshot encoder keeps its priority");
    }
}

impl warren_raft::StateMachine for ServerStateMachine {
    fn apply(&mut self, _index: u64, payload: &[u8]) -> u64 {
        let cmds = match self.shared.take_proposed(payload) {
            Some(cmds) => {
                // Assertions in pairs: the kept commands are what the log entry says.
                debug_assert_eq!(
                    warren_tree::decode_entry(payload).ok().as_ref(),
                    Some(&cmds)
                );
                cmds
            }
            // A committed entry that does not decode means the log holds bytes this version
            // cannot read: stop rather than diverge from the other replicas.
            None => warren_tree::decode_entry(payload)
                .unwrap_or_else(|e| panic!("committed log entry does not decode: {e}")),
        };
        for cmd in &cmds {
            self.shared.apply_command(cmd);
        }
        cmds.len() as u64
    }

    fn snapshot(&self) -> warren_raft::SnapshotEncoder {
        // Only the sessions and ACLs are copied here, on the apply path. The encoder (on a
        // thread of its own) copies the node pointers a chunk at a time under the write lock,
        // while commands go on applying between chunks, then encodes without any lock.
        self.shared.tree.write().begin_freeze();
        let shared = self.shared.clone();
        Box::new(move || {
            let view = loop {
                let mut tree = shared.tree.write();
                assert!(
                    tree.freezing(),
                    "a snapshot freeze is finished only by its builder"
                );
                if let Some(view) = tree.freeze_some(crate::limits::SNAPSHOT_FREEZE_CHUNK_NODES) {
                    break view;
                }
                drop(tree);
                std::thread::yield_now();
            };
            lower_this_threads_priority();
            view.encode()
        })
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let tree = DataTree::decode_snapshot(snapshot).map_err(|e| e.to_string())?;
        // A snapshot being frozen still gets the tree it began on.
        self.shared.tree.write().replace_with(tree);
        Ok(())
    }
}
