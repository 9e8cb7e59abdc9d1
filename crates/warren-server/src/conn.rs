//! One client connection's shared state: its outbox and its FIFO queue of pending requests.
//!
//! ZooKeeper answers a session's requests in the order they were sent. Writes are answered
//! when they are applied; reads are answered at once unless a write of the same connection is
//! still pending, in which case they wait in the queue and run right after that write applies
//! (as ZooKeeper's `CommitProcessor` does), so a read sees its own session's earlier writes
//! and no later ones.
//!
//! The queue is drained from its head by whichever side made progress: the connection task
//! (a read arrived on an empty queue, a barrier finished, a proposal failed) or the apply
//! path (a write of this connection applied). Draining runs with the tree locked, so the
//! state a read sees and the events already queued in the outbox agree.
//!
//! Lock order, everywhere: tree → `Conn::state` → watch registry → connection registry.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use warren_proto::{SessionId, Xid};
use warren_tree::DataTree;

use crate::watch::WatchRegistry;

/// A connection's number on this server. Writes carry it (in `Command::origin`) so that the
/// apply path can route the reply to the connection that sent the request.
pub type ConnId = u64;

/// What the writer task of a connection sends.
#[derive(Debug)]
pub enum OutMsg {
    /// A complete, length-prefixed frame.
    Frame(Vec<u8>),
    /// Flush what came before, then close the connection.
    Close,
}

/// The sending side of a connection's outbox. Sending never blocks (the apply path must not
/// wait on a slow client); instead the bytes queued are bounded, and a connection over the
/// bound is closed as a slow consumer.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<OutMsg>,
    queued_bytes: Arc<AtomicUsize>,
    closed: Arc<AtomicBool>,
    bytes_max: usize,
}

/// The receiving side, owned by the connection's writer task.
#[derive(Debug)]
pub struct OutboxReader {
    rx: mpsc::UnboundedReceiver<OutMsg>,
    queued_bytes: Arc<AtomicUsize>,
}

/// A new outbox bounded to `bytes_max` queued bytes.
pub fn outbox(bytes_max: usize) -> (Outbox, OutboxReader) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let tx = Outbox {
        tx,
        queued_bytes: queued_bytes.clone(),
        closed: Arc::new(AtomicBool::new(false)),
        bytes_max,
    };
    (tx, OutboxReader { rx, queued_bytes })
}

impl Outbox {
    /// Queues a frame; closes the connection instead if that would pass the bound.
    pub fn send(&self, frame: Vec<u8>) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let n = frame.len();
        if self.queued_bytes.fetch_add(n, Ordering::Relaxed) + n > self.bytes_max {
            tracing::warn!(
                queued = n,
                "closing a slow connection: outbox over its bound"
            );
            self.close();
            return;
        }
        let _ = self.tx.send(OutMsg::Frame(frame));
    }

    /// Queues a close after everything already queued.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            let _ = self.tx.send(OutMsg::Close);
        }
    }

    /// True once a close was queued.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

impl OutboxReader {
    /// The next message, or `None` when every sender is gone.
    pub async fn recv(&mut self) -> Option<OutMsg> {
        let m = self.rx.recv().await;
        self.account(&m);
        m
    }

    /// The next message if one is queued now.
    pub fn try_recv(&mut self) -> Option<OutMsg> {
        let m = self.rx.try_recv().ok();
        self.account(&m);
        m
    }

    fn account(&self, m: &Option<OutMsg>) {
        if let Some(OutMsg::Frame(f)) = m {
            self.queued_bytes.fetch_sub(f.len(), Ordering::Relaxed);
        }
    }
}

/// What a queued read needs to run: the tree (locked), the watch registry and the outbox.
pub struct ReadCtx<'a> {
    /// The tree, read-locked or write-locked by the caller.
    pub tree: &'a DataTree,
    /// The watch registry (locked by the caller).
    pub watches: &'a mut WatchRegistry,
    /// Where the answer and any events go.
    pub outbox: &'a Outbox,
}

/// A read waiting for its turn: runs once, writing its answer (and any events it fires, as
/// setWatches does) into the outbox.
pub type ReadFn = Box<dyn FnOnce(&mut ReadCtx<'_>) + Send>;

/// What a pending write's answer looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteKind {
    /// A client request: its opcode, and for a multi the opcode of each op.
    Request {
        /// The request's opcode.
        op: i32,
        /// For a multi, each op's opcode (the reply names them).
        multi: Vec<i32>,
    },
    /// A new session's handshake: the reply is a bare `ConnectResponse`.
    Connect {
        /// The negotiated timeout.
        timeout_ms: i32,
        /// Whether the client sent the trailing readOnly byte (old clients do not, and
        /// must not get it back).
        read_only_byte: bool,
    },
}

/// A request of this connection that has not been answered yet.
pub enum Pending {
    /// A write proposed to Raft; the apply path fills in its answer.
    Write {
        /// The request's xid; the apply path finds the entry by it.
        xid: Xid,
        /// What kind of answer the apply path builds.
        kind: WriteKind,
    },
    /// A read waiting for the writes ahead of it.
    Read(ReadFn),
    /// A request whose answer comes from elsewhere (a sync barrier), by token.
    Waiting {
        /// Matches the [`ConnState::finish`] call that completes it.
        token: u64,
    },
    /// An answer that goes out once everything ahead of it has.
    Ready {
        /// Frames to send, in order.
        frames: Vec<Vec<u8>>,
        /// Close the connection after sending (closeSession, fatal errors).
        close: bool,
    },
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::Write { xid, .. } => write!(f, "Write({})", xid.0),
            Pending::Read(_) => write!(f, "Read"),
            Pending::Waiting { token } => write!(f, "Waiting({token})"),
            Pending::Ready { frames, close } => write!(f, "Ready({}, close={close})", frames.len()),
        }
    }
}

/// The mutable part of a connection, behind [`Conn::state`].
#[derive(Debug, Default)]
pub struct ConnState {
    /// Requests not yet answered, oldest first.
    pub queue: VecDeque<Pending>,
    /// One in-flight permit pair (the server's and this connection's) per queued request,
    /// released as its answer leaves the queue. While none is free, the connection is not
    /// read: that is the in-flight bound (ZooKeeper's `globalOutstandingLimit`).
    pub permits: VecDeque<InFlight>,
    /// Next token for [`Pending::Waiting`].
    next_token: u64,
}

/// The permits a request holds while it is in flight: the server's and its connection's.
#[derive(Debug)]
pub struct InFlight {
    _server: OwnedSemaphorePermit,
    _connection: OwnedSemaphorePermit,
}

impl InFlight {
    /// Waits for a permit of each: the connection's first, then the server's.
    pub async fn acquire(server: &Arc<Semaphore>, connection: &Arc<Semaphore>) -> InFlight {
        let c = connection.clone().acquire_owned().await;
        let s = server.clone().acquire_owned().await;
        InFlight {
            _server: s.expect("the in-flight semaphore is never closed"),
            _connection: c.expect("the in-flight semaphore is never closed"),
        }
    }
}

/// A client connection, shared between its task, the apply path and the tickers.
#[derive(Debug)]
pub struct Conn {
    /// This connection's number.
    pub id: ConnId,
    /// The client's address.
    pub peer: SocketAddr,
    /// Where frames for the client go.
    pub outbox: Outbox,
    /// The FIFO queue.
    pub state: Mutex<ConnState>,
    /// The session, once the handshake has chosen one (0 before).
    pub session: Mutex<SessionId>,
    /// This connection's in-flight permits (`requests_in_flight_per_session_max`).
    pub in_flight: Arc<Semaphore>,
    /// A read-only client's connection on a server cut off from its quorum (see
    /// [`crate::quorum`]): writes get NotReadOnly.
    read_only: std::sync::atomic::AtomicBool,
}

impl Conn {
    /// A new connection with an empty queue.
    pub fn new(id: ConnId, peer: SocketAddr, outbox: Outbox, in_flight_max: usize) -> Self {
        Conn {
            id,
            peer,
            outbox,
            state: Mutex::new(ConnState::default()),
            session: Mutex::new(SessionId(0)),
            in_flight: Arc::new(Semaphore::new(in_flight_max.max(1))),
            read_only: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether this is a read-only client's connection.
    pub fn read_only(&self) -> bool {
        self.read_only.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Marks this connection read-only (its handshake was answered `readOnly=true`).
    pub fn set_read_only(&self) {
        self.read_only
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The session of this connection (0 before the handshake).
    pub fn session(&self) -> SessionId {
        *self.session.lock()
    }
}

impl ConnState {
    /// Queues a write; its answer comes from [`ConnState::write_applied`].
    pub fn push_write(&mut self, xid: Xid, kind: WriteKind) {
        self.queue.push_back(Pending::Write { xid, kind });
    }

    /// Queues a placeholder and returns its token for [`ConnState::finish`].
    pub fn push_waiting(&mut self) -> u64 {
        self.next_token += 1;
        self.queue.push_back(Pending::Waiting {
            token: self.next_token,
        });
        self.next_token
    }

    /// Queues a ready answer.
    pub fn push_ready(&mut self, frames: Vec<Vec<u8>>, close: bool) {
        self.queue.push_back(Pending::Ready { frames, close });
    }

    /// True when nothing is pending: a read may run at once.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Fills in the answer of the pending write with `xid`, built from its [`WriteKind`].
    /// Returns false if there is none: the write came from an earlier connection of the
    /// session, and its answer has nowhere to go.
    pub fn write_applied(
        &mut self,
        xid: Xid,
        answer: impl FnOnce(&WriteKind) -> (Vec<Vec<u8>>, bool),
    ) -> bool {
        for p in self.queue.iter_mut() {
            if let Pending::Write { xid: x, kind } = p
                && *x == xid
            {
                let (frames, close) = answer(kind);
                *p = Pending::Ready { frames, close };
                return true;
            }
        }
        false
    }

    /// Fills in the answer of a [`Pending::Waiting`] entry.
    pub fn finish(&mut self, token: u64, frames: Vec<Vec<u8>>, close: bool) {
        for p in self.queue.iter_mut() {
            if matches!(p, Pending::Waiting { token: t } if *t == token) {
                *p = Pending::Ready { frames, close };
                return;
            }
        }
    }

    /// Sends every answer that can go from the head of the queue, running reads as they come
    /// up, until it meets a write or barrier still in flight.
    pub fn drain(&mut self, ctx: &mut ReadCtx<'_>) {
        while let Some(head) = self.queue.front() {
            if matches!(head, Pending::Write { .. } | Pending::Waiting { .. }) {
                return;
            }
            self.permits.pop_front();
            match self.queue.pop_front().expect("front exists: just matched") {
                Pending::Read(run) => run(ctx),
                Pending::Ready { frames, close } => {
                    for f in frames {
                        ctx.outbox.send(f);
                    }
                    if close {
                        ctx.outbox.close();
                    }
                }
                Pending::Write { .. } | Pending::Waiting { .. } => unreachable!("checked above"),
            }
        }
    }
}

/// The bounds a new connection is registered under.
#[derive(Debug, Clone, Copy)]
pub struct ConnBounds {
    /// Connections in all (0 = no bound).
    pub total: usize,
    /// Connections from one IP address (0 = no bound).
    pub per_ip: usize,
    /// Requests in flight on the connection.
    pub in_flight: usize,
}

/// Every live connection of this server, by id and by session, with counts per client IP.
#[derive(Debug, Default)]
pub struct ConnRegistry {
    by_id: HashMap<ConnId, Arc<Conn>>,
    by_session: HashMap<SessionId, ConnId>,
    per_ip: HashMap<IpAddr, usize>,
    next_id: ConnId,
}

impl ConnRegistry {
    /// Registers a new connection unless the server already has `bounds.total` or its IP
    /// `bounds.per_ip` (0 = no bound).
    pub fn register(
        &mut self,
        peer: SocketAddr,
        outbox: Outbox,
        bounds: ConnBounds,
    ) -> Option<Arc<Conn>> {
        if bounds.total > 0 && self.by_id.len() >= bounds.total {
            return None;
        }
        let n = self.per_ip.entry(peer.ip()).or_default();
        if bounds.per_ip > 0 && *n >= bounds.per_ip {
            return None;
        }
        *n += 1;
        self.next_id += 1;
        let conn = Arc::new(Conn::new(self.next_id, peer, outbox, bounds.in_flight));
        self.by_id.insert(conn.id, conn.clone());
        Some(conn)
    }

    /// Forgets a connection (its task ended). Returns true if it was its session's current
    /// connection (whose watches then go, as ZooKeeper drops a closed connection's watches).
    pub fn unregister(&mut self, conn: &Conn) -> bool {
        if self.by_id.remove(&conn.id).is_none() {
            return false;
        }
        if let Some(n) = self.per_ip.get_mut(&conn.peer.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&conn.peer.ip());
            }
        }
        let session = conn.session();
        if self.by_session.get(&session) == Some(&conn.id) {
            self.by_session.remove(&session);
            return true;
        }
        false
    }

    /// Makes `conn` the connection of `session`, returning the one it replaces, if any.
    pub fn attach(&mut self, session: SessionId, conn: &Arc<Conn>) -> Option<Arc<Conn>> {
        *conn.session.lock() = session;
        let old = self.by_session.insert(session, conn.id)?;
        if old == conn.id {
            None
        } else {
            self.by_id.get(&old).cloned()
        }
    }

    /// Forgets the session's connection (the session closed or expired).
    pub fn detach(&mut self, session: SessionId) -> Option<Arc<Conn>> {
        let id = self.by_session.remove(&session)?;
        self.by_id.get(&id).cloned()
    }

    /// The connection by id.
    pub fn get(&self, id: ConnId) -> Option<Arc<Conn>> {
        self.by_id.get(&id).cloned()
    }

    /// The current connection of a session.
    pub fn for_session(&self, session: SessionId) -> Option<Arc<Conn>> {
        self.by_session
            .get(&session)
            .and_then(|id| self.by_id.get(id))
            .cloned()
    }

    /// Every connection (for `cons`, shutdown).
    pub fn all(&self) -> Vec<Arc<Conn>> {
        let mut v: Vec<_> = self.by_id.values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Number of connections.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(r: &mut OutboxReader) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(m) = r.try_recv() {
            match m {
                OutMsg::Frame(f) => out.push(f),
                OutMsg::Close => out.push(b"CLOSE".to_vec()),
            }
        }
        out
    }

    #[test]
    fn reads_behind_a_write_wait_for_it_and_keep_their_order() {
        // Phase 1: a write is pending, so two reads queue behind it and nothing is sent.
        let (tx, mut rx) = outbox(1 << 20);
        let tree = DataTree::new();
        let mut watches = WatchRegistry::new();
        let mut st = ConnState::default();
        st.push_write(
            Xid(1),
            WriteKind::Request {
                op: 5,
                multi: vec![],
            },
        );
        st.queue
            .push_back(Pending::Read(Box::new(|c: &mut ReadCtx<'_>| {
                c.outbox.send(b"r2".to_vec())
            })));
        st.queue
            .push_back(Pending::Read(Box::new(|c: &mut ReadCtx<'_>| {
                c.outbox.send(b"r3".to_vec())
            })));
        let mut ctx = ReadCtx {
            tree: &tree,
            watches: &mut watches,
            outbox: &tx,
        };
        st.drain(&mut ctx);
        assert!(frames(&mut rx).is_empty());
        // Phase 2: the write applies; its answer and then both reads go, in order.
        assert!(
            !st.write_applied(Xid(9), |_| (vec![], false)),
            "a foreign xid is not ours"
        );
        assert!(st.write_applied(Xid(1), |k| {
            assert_eq!(
                k,
                &WriteKind::Request {
                    op: 5,
                    multi: vec![]
                }
            );
            (vec![b"w1".to_vec()], false)
        }));
        st.drain(&mut ctx);
        assert_eq!(
            frames(&mut rx),
            vec![b"w1".to_vec(), b"r2".to_vec(), b"r3".to_vec()]
        );
        assert!(st.is_idle());
    }

    #[test]
    fn a_barrier_holds_later_answers_until_finished() {
        let (tx, mut rx) = outbox(1 << 20);
        let tree = DataTree::new();
        let mut watches = WatchRegistry::new();
        let mut st = ConnState::default();
        let token = st.push_waiting();
        st.push_ready(vec![b"later".to_vec()], true);
        let mut ctx = ReadCtx {
            tree: &tree,
            watches: &mut watches,
            outbox: &tx,
        };
        st.drain(&mut ctx);
        assert!(frames(&mut rx).is_empty());
        st.finish(token, vec![b"sync".to_vec()], false);
        st.drain(&mut ctx);
        assert_eq!(
            frames(&mut rx),
            vec![b"sync".to_vec(), b"later".to_vec(), b"CLOSE".to_vec()]
        );
    }

    #[test]
    fn an_outbox_over_its_bound_closes_instead_of_growing() {
        let (tx, mut rx) = outbox(10);
        tx.send(vec![0; 8]);
        tx.send(vec![0; 8]);
        assert_eq!(frames(&mut rx), vec![vec![0; 8], b"CLOSE".to_vec()]);
        assert!(tx.is_closed());
    }

    #[test]
    fn connections_per_ip_are_bounded_and_sessions_move() {
        let mut reg = ConnRegistry::default();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let bounds = ConnBounds {
            total: 3,
            per_ip: 2,
            in_flight: 10,
        };
        let a = reg.register(peer, outbox(10).0, bounds).unwrap();
        let b = reg.register(peer, outbox(10).0, bounds).unwrap();
        assert!(reg.register(peer, outbox(10).0, bounds).is_none());
        let other: SocketAddr = "127.0.0.2:5000".parse().unwrap();
        let c = reg.register(other, outbox(10).0, bounds).unwrap();
        let third: SocketAddr = "127.0.0.3:5000".parse().unwrap();
        assert!(
            reg.register(third, outbox(10).0, bounds).is_none(),
            "3 in all"
        );
        reg.unregister(&c);
        assert!(reg.attach(SessionId(7), &a).is_none());
        assert_eq!(
            reg.attach(SessionId(7), &b).unwrap().id,
            a.id,
            "the old connection is handed back"
        );
        reg.unregister(&a);
        assert_eq!(reg.for_session(SessionId(7)).unwrap().id, b.id);
        reg.unregister(&b);
        assert!(reg.is_empty());
        assert!(reg.register(peer, outbox(10).0, bounds).is_some());
    }
}
