//! A running server: start-up, the listener, the tickers, and graceful shutdown.
//!
//! Start-up opens the Raft node over the data directory (which restores the latest snapshot
//! and replays the committed log into the tree), re-arms every recovered session with a full
//! timeout, and only then listens. The tickers run while this server leads: session expiry
//! every tick, and the container/TTL sweep every `znode.container.checkIntervalMs`. Shutdown
//! (SIGTERM/SIGINT) stops accepting, lets pending requests finish for a bounded time, closes
//! connections, and flushes the log. Sessions are not closed: clients reconnect after a restart
//! and keep them, as with ZooKeeper.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use parking_lot::Mutex;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use warren_proto::{ErrorCode, Id, SessionId, Xid};
use warren_raft::{RaftConfig, RaftNode, Role};
use warren_tree::{Command, DataTree, Op};

use crate::config::ServerConfig;
use crate::conn::Conn;
use crate::connection::{fail_write, serve};
use crate::core::{ServerStateMachine, Shared, origin, wall_ms};

/// Why a server could not start or stopped.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The client port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The Raft node (log, snapshots) failed; the message names the file and offset when
    /// data is corrupt.
    #[error("{0}")]
    Raft(String),
    /// The secure client port's key or trust store cannot be used.
    #[error("secure client port: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The JAAS file (`java.security.auth.login.config`) cannot be used.
    #[error("{0}")]
    Jaas(#[from] crate::sasl::JaasError),
}

/// Counters for the four-letter words.
#[derive(Debug, Default)]
pub struct Stats {
    packets_received: AtomicU64,
}

impl Stats {
    /// Counts a packet from a client.
    pub fn packet_received(&self) {
        self.packets_received.fetch_add(1, Ordering::Relaxed);
    }

    /// Packets received since start.
    pub fn packets_received(&self) -> u64 {
        self.packets_received.load(Ordering::Relaxed)
    }
}

/// A write on its way to the log, in the order the connection sent it.
struct Proposal {
    conn: Arc<Conn>,
    xid: Xid,
    /// The command, kept so that this server's apply need not decode it (see
    /// [`Shared::remember_proposed`]).
    cmd: Command,
    /// Its log bytes, encoded on the connection's task.
    payload: Bytes,
}

/// What every connection task of a server shares.
pub struct ServerCtx {
    /// Configuration.
    pub cfg: ServerConfig,
    /// Tree, watches, connections, expiry.
    pub shared: Arc<Shared>,
    /// The Raft node.
    pub raft: Arc<RaftNode>,
    /// Counters.
    pub stats: Stats,
    /// The client port actually bound (the configured one may be 0), as `conf` reports it.
    pub client_port: u16,
    /// SASL DIGEST-MD5 users from the JAAS file's `Server` section, if any.
    pub sasl_users: Option<Arc<crate::sasl::SaslUsers>>,
    proposals: mpsc::UnboundedSender<Proposal>,
    next_session: AtomicI64,
    /// Whether this server leads now (kept by the leader ticker; read on every packet).
    leading: AtomicBool,
    /// Sessions heard from since the last batch to the leader (followers only).
    touched: Mutex<HashSet<SessionId>>,
    /// In touch with a quorum or not; read-only mode and its local sessions.
    pub quorum: crate::quorum::QuorumState,
}

impl ServerCtx {
    /// Proposes a write of `conn`. Proposals from one task are logged in call order, so a
    /// session's writes apply in the order it sent them.
    pub fn propose(&self, conn: Arc<Conn>, xid: Xid, session: SessionId, auth: Vec<Id>, op: Op) {
        let cmd = Command {
            origin: origin(self.shared.node_id, conn.id),
            session,
            xid,
            time_ms: wall_ms(),
            auth,
            op,
        };
        let payload = Bytes::from(cmd.encode());
        let proposal = Proposal {
            conn,
            xid,
            cmd,
            payload,
        };
        if let Err(mpsc::error::SendError(p)) = self.proposals.send(proposal) {
            fail_write(self, &p.conn, p.xid, ErrorCode::ConnectionLoss);
        }
    }

    /// Proposes a command of the server itself and waits until it is applied here.
    pub async fn propose_and_wait(&self, op: Op) -> Result<u64, warren_raft::ProposeError> {
        let cmd = Command {
            origin: origin(self.shared.node_id, 0),
            session: SessionId(0),
            xid: Xid(0),
            time_ms: wall_ms(),
            auth: Vec::new(),
            op,
        };
        self.raft.propose(cmd.encode()).await
    }

    /// Proposes a command of the server itself (expiry, sweeps).
    fn propose_internal(&self, session: SessionId, op: Op) {
        let cmd = Command {
            origin: origin(self.shared.node_id, 0),
            session,
            xid: Xid(0),
            time_ms: wall_ms(),
            auth: Vec::new(),
            op,
        };
        let raft = self.raft.clone();
        tokio::spawn(async move {
            if let Err(e) = raft.propose(cmd.encode()).await {
                warn!(error = %e, "internal proposal failed");
            }
        });
    }

    /// Renews a session's deadline (any packet from its client). Only the leader keeps
    /// deadlines; a follower batches the sessions it heard from to the leader every half
    /// tick, as ZooKeeper's followers forward pings.
    pub fn touch(&self, session: SessionId) {
        if session.0 == 0 || self.quorum.read_only() {
            return;
        }
        if !self.leading.load(Ordering::Relaxed) {
            self.touched.lock().insert(session);
            return;
        }
        self.touch_deadline(session);
    }

    /// Renews a session's deadline in this server's expiry queue.
    fn touch_deadline(&self, session: SessionId) {
        let timeout = self
            .shared
            .tree
            .read()
            .session(session)
            .map(|s| s.timeout_ms);
        if let Some(t) = timeout {
            self.shared
                .expiry
                .lock()
                .touch(session, t as u64, self.shared.now_ms());
        }
    }

    /// A fresh session id: this server's id in the top byte, time-based low bits, as
    /// ZooKeeper's `SessionTrackerImpl.initializeNextSessionId`.
    pub fn new_session_id(&self) -> SessionId {
        SessionId(self.next_session.fetch_add(1, Ordering::Relaxed))
    }

    /// 16 random bytes for a new session's password.
    pub fn new_password(&self) -> [u8; 16] {
        let mut p = [0u8; 16];
        getrandom::fill(&mut p).expect("the OS random source is available");
        p
    }

    /// The answer to a four-letter word.
    pub fn four_letter_word(&self, word: &str) -> String {
        crate::fourlw::answer(word, &self.cfg, &self.four_letter_stats())
    }

    fn four_letter_stats(&self) -> crate::fourlw::ServerStats {
        crate::stats::collect(self)
    }
}

fn first_session_id(node_id: u64) -> i64 {
    let now = wall_ms() as u64;
    (((now << 24) >> 8) | (node_id << 56)) as i64
}

/// A started server.
pub struct Server {
    ctx: Arc<ServerCtx>,
    local_addr: SocketAddr,
    secure_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Opens the data directory, recovers, and starts listening.
    pub async fn start(cfg: ServerConfig) -> Result<Server, ServerError> {
        let node_id = u64::from(cfg.my_id.unwrap_or(1));
        let sasl_users = match &cfg.jaas_config_path {
            Some(path) => crate::sasl::SaslUsers::load(path, crate::sasl::DEFAULT_SECTION)?,
            None => None,
        };
        let tls = match cfg.secure_client_port {
            Some(_) => Some(crate::tls::acceptor(&cfg.ssl)?),
            None => None,
        };
        let shared = Arc::new(Shared::new(
            node_id,
            DataTree::new(),
            cfg.tick_time_ms.into(),
            cfg.limits.requests_in_flight_max as usize,
        ));
        let (members, learners) = ensemble(&cfg, node_id);
        let raft_cfg = RaftConfig {
            learners,
            snapshot_every_entries: cfg.snap_count.into(),
            snapshots_to_keep: cfg.snap_retain_count as usize,
            log_dir: cfg.data_log_dir.clone(),
            ..RaftConfig::new(node_id, members, cfg.data_dir.clone())
        };
        let sm = Box::new(ServerStateMachine::new(shared.clone()));
        let raft = RaftNode::start(raft_cfg, sm)
            .await
            .map_err(|e| ServerError::Raft(e.to_string()))?;
        let raft = Arc::new(raft);
        let addr = format!(
            "{}:{}",
            cfg.client_port_address.as_deref().unwrap_or("0.0.0.0"),
            cfg.client_port
        );
        let backlog = cfg.limits.listen_backlog_max;
        let (listener, local_addr) = bind(&addr, backlog).await?;
        let secure = match (cfg.secure_client_port, tls) {
            (Some(port), Some(acceptor)) => {
                let host = cfg
                    .secure_client_port_address
                    .as_deref()
                    .unwrap_or("0.0.0.0");
                Some((bind(&format!("{host}:{port}"), backlog).await?, acceptor))
            }
            _ => None,
        };
        let (ptx, prx) = mpsc::unbounded_channel();
        let ctx = Arc::new(ServerCtx {
            cfg,
            shared,
            raft,
            stats: Stats::default(),
            client_port: local_addr.port(),
            sasl_users: sasl_users.map(Arc::new),
            proposals: ptx,
            next_session: AtomicI64::new(first_session_id(node_id)),
            leading: AtomicBool::new(false),
            touched: Mutex::new(HashSet::new()),
            quorum: crate::quorum::QuorumState::default(),
        });
        install_touch_handler(&ctx);
        install_call_handler(&ctx);
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = vec![
            tokio::spawn(proposer(ctx.clone(), prx)),
            tokio::spawn(leader_ticks(ctx.clone(), stop_rx.clone())),
            tokio::spawn(accept_loop(ctx.clone(), listener, stop_rx.clone())),
        ];
        if !ctx.cfg.servers.is_empty() {
            let watch = crate::quorum::watch_quorum(ctx.clone(), stop_rx.clone());
            tasks.push(tokio::spawn(watch));
        }
        let mut secure_addr = None;
        if let Some(((listener, addr), acceptor)) = secure {
            secure_addr = Some(addr);
            info!(%addr, "serving TLS");
            let accept = crate::tls::accept_loop(ctx.clone(), listener, acceptor, stop_rx);
            tasks.push(tokio::spawn(accept));
        }
        info!(%local_addr, node_id, zxid = ctx.shared.tree.read().last_zxid().0, "serving");
        Ok(Server {
            ctx,
            local_addr,
            secure_addr,
            stop,
            tasks,
        })
    }

    /// The client port's address (useful when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The secure (TLS) client port's address, when `secureClientPort` is set.
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.secure_addr
    }

    /// The server's shared context (tests, four-letter words).
    pub fn ctx(&self) -> &Arc<ServerCtx> {
        &self.ctx
    }

    /// Graceful stop: no new connections; pending requests get up to `grace` to finish; then
    /// connections close and the log is flushed.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        // A leader of an ensemble hands leadership over first, so that writes resume after
        // one round trip rather than an election timeout.
        if self.ctx.raft.status().role == Role::Leader && self.ctx.raft.status().voters.len() > 1 {
            match tokio::time::timeout(grace, self.ctx.raft.transfer_leadership()).await {
                Ok(Ok(to)) => info!(to, "handed leadership over"),
                Ok(Err(e)) => warn!(error = %e, "could not hand leadership over"),
                Err(_) => warn!("handing leadership over timed out"),
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let busy = self
                .ctx
                .shared
                .conns
                .lock()
                .all()
                .iter()
                .any(|c| !c.state.lock().is_idle());
            if !busy || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for c in self.ctx.shared.conns.lock().all() {
            c.outbox.close();
        }
        for t in &self.tasks {
            t.abort();
        }
        // The writes are answered and the clients gone: snapshot what was applied, so the
        // next start does not replay it from the log (ZooKeeper snapshots at every start
        // instead, before it serves).
        use crate::limits::{SHUTDOWN_SNAPSHOT_MIN_WRITES, SHUTDOWN_SNAPSHOT_TIMEOUT};
        match self
            .ctx
            .raft
            .snapshot_if_behind(SHUTDOWN_SNAPSHOT_MIN_WRITES, SHUTDOWN_SNAPSHOT_TIMEOUT)
            .await
        {
            Ok(Some(index)) => info!(index, "snapshot saved for the next start"),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "no snapshot at shutdown; the next start replays the log"),
        }
        self.ctx.raft.shutdown().await;
        info!("stopped");
    }
}

/// The Raft voters and observers (learners) from zoo.cfg's `server.N` lines, each at its
/// peer address (`host:peerPort`; ZooKeeper's election port is not used: Raft elects over
/// the peer port). Without `server.N` lines: this server alone, as a standalone ZooKeeper.
fn ensemble(cfg: &ServerConfig, node_id: u64) -> (BTreeMap<u64, String>, BTreeMap<u64, String>) {
    if cfg.servers.is_empty() {
        return (
            BTreeMap::from([(node_id, "127.0.0.1:0".to_owned())]),
            BTreeMap::new(),
        );
    }
    let addr = |s: &crate::config::ServerSpec| {
        if s.host.contains(':') {
            format!("[{}]:{}", s.host, s.peer_port)
        } else {
            format!("{}:{}", s.host, s.peer_port)
        }
    };
    let (observers, voters): (Vec<_>, Vec<_>) = cfg
        .servers
        .iter()
        .partition(|s| s.role == crate::config::PeerRole::Observer);
    let map = |v: Vec<&crate::config::ServerSpec>| {
        v.into_iter()
            .map(|s| (u64::from(s.id), addr(s)))
            .collect::<BTreeMap<_, _>>()
    };
    (map(voters), map(observers))
}

/// Binds `addr` (host:port; the host may be a name) with the given listen backlog
/// (`clientPortListenBacklog`).
async fn bind(addr: &str, backlog: u32) -> Result<(TcpListener, SocketAddr), ServerError> {
    let bind_error = |source| ServerError::Bind {
        addr: addr.to_owned(),
        source,
    };
    let resolved = tokio::net::lookup_host(addr)
        .await
        .map_err(bind_error)?
        .next()
        .ok_or_else(|| bind_error(std::io::Error::other("the address resolves to nothing")))?;
    let socket = if resolved.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(bind_error)?;
    socket.set_reuseaddr(true).map_err(bind_error)?;
    socket.bind(resolved).map_err(bind_error)?;
    let listener = socket.listen(backlog.max(1)).map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

async fn accept_loop(ctx: Arc<ServerCtx>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve(ctx.clone(), stream, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Sends proposals to Raft in arrival order and answers those that fail.
///
/// Each entry is enqueued before the next (`submit`), which keeps every session's writes
/// in the order it sent them, while their outcomes are awaited concurrently so that many
/// writes share each fsync. The proposals queued at one moment go into ONE entry (a batch,
/// `warren_tree::encode_batch`, bounded by [`crate::limits::PROPOSAL_BATCH_MAX`] and
/// [`crate::limits::PROPOSAL_BATCH_BYTES_MAX`]): Raft's per-entry work (the log record and
/// its CRC, openraft's bookkeeping, the outcome, the apply call) is then paid once per
/// batch. A paced client's writes arrive one at a time and go alone, so batching adds no
/// wait.
///
/// The outcomes are polled here, in one set, rather than by a task per write: spawning cost
/// ~12% of a setData's instructions (a task cell allocated and the large outcome future copied
/// into it several times) and a cross-thread wake-up each.
async fn proposer(ctx: Arc<ServerCtx>, mut rx: mpsc::UnboundedReceiver<Proposal>) {
    let mut outcomes = FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(()) = outcomes.next(), if !outcomes.is_empty() => {}
            p = rx.recv() => {
                let Some(mut first) = p else { break };
                loop {
                    let (batch, rest) = take_batch(first, &mut rx);
                    let (payload, writers) = prepare_batch(&ctx, batch);
                    match ctx.raft.submit(payload.clone()).await {
                        Ok(outcome) => {
                            let ctx = ctx.clone();
                            outcomes.push(async move {
                                let result = outcome.await;
                                ctx.shared.forget_proposed(&payload);
                                if let Err(e) = result {
                                    fail_proposals(&ctx, &writers, &e);
                                }
                            });
                        }
                        Err(e) => {
                            ctx.shared.forget_proposed(&payload);
                            fail_proposals(&ctx, &writers, &e);
                        }
                    }
                    match rest {
                        Some(p) => first = p,
                        None => break,
                    }
                }
            }
        }
    }
    // The channel closed (shutdown): the writes already submitted still get their outcome.
    while outcomes.next().await.is_some() {}
}

/// `first` and the proposals queued behind it, within the batch bounds; the proposal that
/// did not fit, if any, starts the next batch.
fn take_batch(
    first: Proposal,
    rx: &mut mpsc::UnboundedReceiver<Proposal>,
) -> (Vec<Proposal>, Option<Proposal>) {
    use crate::limits::{PROPOSAL_BATCH_BYTES_MAX, PROPOSAL_BATCH_MAX};
    let mut bytes = first.payload.len();
    let mut batch = vec![first];
    while batch.len() < PROPOSAL_BATCH_MAX {
        let Ok(p) = rx.try_recv() else { break };
        if bytes + p.payload.len() > PROPOSAL_BATCH_BYTES_MAX {
            return (batch, Some(p));
        }
        bytes += p.payload.len();
        batch.push(p);
    }
    (batch, None)
}

/// The entry for `batch` (its command alone, or a batch of them) and the writers to answer
/// if it fails; its commands are kept for this server's apply until the outcome is known
/// (while the kept bytes live, no other payload can take their address in
/// `Shared::proposed`).
fn prepare_batch(ctx: &ServerCtx, batch: Vec<Proposal>) -> (Bytes, Vec<(Arc<Conn>, Xid)>) {
    let payload = if let [one] = batch.as_slice() {
        one.payload.clone()
    } else {
        Bytes::from(warren_tree::encode_batch(
            batch.iter().map(|p| &p.payload[..]),
        ))
    };
    let mut writers = Vec::with_capacity(batch.len());
    let mut cmds = Vec::with_capacity(batch.len());
    for p in batch {
        writers.push((p.conn, p.xid));
        cmds.push(p.cmd);
    }
    ctx.shared.remember_proposed(payload.clone(), cmds);
    (payload, writers)
}

/// Not leader, shutting down, or a failed log: the clients of an entry's writes cannot know
/// whether they happened, which is what ConnectionLoss tells them.
fn fail_proposals(ctx: &ServerCtx, writers: &[(Arc<Conn>, Xid)], e: &warren_raft::ProposeError) {
    debug!(error = %e, writes = writers.len(), "proposal failed");
    for (conn, xid) in writers {
        fail_write(ctx, conn, *xid, ErrorCode::ConnectionLoss);
    }
}

/// While this server leads: expire silent sessions every tick, sweep containers and TTL
/// nodes every check interval. On becoming leader, re-arm every session first.
async fn leader_ticks(ctx: Arc<ServerCtx>, mut stop: watch::Receiver<bool>) {
    let tick = Duration::from_millis(u64::from(ctx.cfg.tick_time_ms).max(10));
    let sweep_every =
        Duration::from_millis(u64::from(ctx.cfg.container_check_interval_ms).max(100));
    let mut leading = false;
    let mut last_sweep = tokio::time::Instant::now();
    let reconfiguring = Arc::new(AtomicBool::new(false));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(tick / 2) => {}
        }
        let status = ctx.raft.status();
        let is_leader = status.role == Role::Leader;
        if is_leader && !leading {
            rearm_sessions(&ctx);
        } else if !is_leader && leading {
            ctx.shared.expiry.lock().clear();
        }
        leading = is_leader;
        ctx.leading.store(leading, Ordering::Relaxed);
        if !leading {
            send_touches(&ctx, status.leader);
            continue;
        }
        let max = ctx.cfg.limits.expirations_per_tick_max as usize;
        let expired = ctx.shared.expiry.lock().expired(ctx.shared.now_ms(), max);
        for s in expired {
            info!(session = format_args!("{:#x}", s.0), "expiring session");
            ctx.propose_internal(s, Op::CloseSession);
        }
        crate::reconfig::reconcile(&ctx, &reconfiguring);
        if last_sweep.elapsed() >= sweep_every {
            last_sweep = tokio::time::Instant::now();
            sweep(&ctx);
        }
    }
}

/// The tag of a batch of touched sessions sent by a follower to the leader.
const TOUCH_BATCH: u8 = 1;

/// Sends the sessions heard from since the last batch to the leader, which renews their
/// deadlines (ZooKeeper's followers forward their clients' pings the same way).
fn send_touches(ctx: &ServerCtx, leader: Option<u64>) {
    let Some(leader) = leader.filter(|l| *l != ctx.shared.node_id) else {
        return;
    };
    let sessions: Vec<SessionId> = ctx.touched.lock().drain().collect();
    if sessions.is_empty() {
        return;
    }
    let mut batch = Vec::with_capacity(1 + 8 * sessions.len());
    batch.push(TOUCH_BATCH);
    for s in sessions {
        batch.extend_from_slice(&s.0.to_be_bytes());
    }
    ctx.raft.send_app(leader, batch);
}

/// The leader's side of [`send_touches`]. The handler holds the context weakly: the Raft
/// node it is installed in belongs to that context.
fn install_touch_handler(ctx: &Arc<ServerCtx>) {
    let weak = Arc::downgrade(ctx);
    ctx.raft
        .set_app_handler(Arc::new(move |from, bytes: Vec<u8>| {
            let Some(ctx) = weak.upgrade() else { return };
            let Some((&TOUCH_BATCH, rest)) = bytes.split_first() else {
                debug!(from, "unknown application message");
                return;
            };
            if ctx.leading.load(Ordering::Relaxed) {
                for chunk in rest.chunks_exact(8) {
                    let id = i64::from_be_bytes(chunk.try_into().expect("chunks of 8 bytes"));
                    ctx.touch_deadline(SessionId(id));
                }
            }
        }));
}

/// Answers application calls from peers: the quorum probe (see [`crate::quorum`]). Held
/// weakly, as [`install_touch_handler`].
fn install_call_handler(ctx: &Arc<ServerCtx>) {
    let weak = Arc::downgrade(ctx);
    ctx.raft
        .set_call_handler(Arc::new(move |from, bytes: Vec<u8>| {
            let Some(ctx) = weak.upgrade() else {
                return Vec::new();
            };
            match bytes.first() {
                Some(&crate::quorum::QUORUM_PROBE) => crate::quorum::answer_probe(&ctx),
                _ => {
                    debug!(from, "unknown application call");
                    Vec::new()
                }
            }
        }));
}

fn rearm_sessions(ctx: &ServerCtx) {
    let now = ctx.shared.now_ms();
    let tree = ctx.shared.tree.read();
    let mut q = ctx.shared.expiry.lock();
    q.clear();
    for (id, session) in tree.sessions() {
        q.touch(id, session.timeout_ms as u64, now);
    }
}

fn sweep(ctx: &ServerCtx) {
    let (containers, ttls) = {
        let tree = ctx.shared.tree.read();
        (tree.container_sweep(), tree.ttl_expired(wall_ms()))
    };
    let max = ctx.cfg.limits.container_deletions_per_minute_max as usize;
    for path in containers.into_iter().take(max) {
        ctx.propose_internal(SessionId(0), Op::DeleteContainer { path });
    }
    for path in ttls.into_iter().take(max) {
        ctx.propose_internal(SessionId(0), Op::DeleteTtl { path });
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;
    use crate::limits::{PROPOSAL_BATCH_BYTES_MAX, PROPOSAL_BATCH_MAX};

    fn proposal(conn: &Arc<Conn>, xid: i32, data_bytes: usize) -> Proposal {
        let cmd = Command {
            origin: 1,
            session: SessionId(1),
            xid: Xid(xid),
            time_ms: 0,
            auth: Vec::new(),
            op: Op::SetData {
                path: "/a".into(),
                data: Some(vec![7; data_bytes]),
                version: -1,
            },
        };
        let payload = Bytes::from(cmd.encode());
        Proposal {
            conn: conn.clone(),
            xid: Xid(xid),
            cmd,
            payload,
        }
    }

    fn xids(batch: &[Proposal]) -> Vec<i32> {
        batch.iter().map(|p| p.xid.0).collect()
    }

    #[test]
    fn a_batch_takes_what_is_queued_in_order_within_its_bounds() {
        let (outbox, _reader) = crate::conn::outbox(1 << 20);
        let conn = Arc::new(Conn::new(1, "127.0.0.1:1".parse().unwrap(), outbox, 10));
        let (tx, mut rx) = mpsc::unbounded_channel();

        // Phase 1: more than a batch's count is queued: a full batch, in order, the rest stays.
        for i in 0..PROPOSAL_BATCH_MAX as i32 + 3 {
            tx.send(proposal(&conn, i, 10)).unwrap();
        }
        let first = rx.try_recv().unwrap();
        let (batch, rest) = take_batch(first, &mut rx);
        assert_eq!(
            xids(&batch),
            (0..PROPOSAL_BATCH_MAX as i32).collect::<Vec<_>>()
        );
        assert!(rest.is_none());
        let (batch, rest) = take_batch(rx.try_recv().unwrap(), &mut rx);
        assert_eq!(xids(&batch), vec![512, 513, 514]);
        assert!(rest.is_none());

        // Phase 2: the byte bound: a command that would overflow it starts the next batch,
        // and one larger than the bound goes alone.
        let big = PROPOSAL_BATCH_BYTES_MAX / 2;
        tx.send(proposal(&conn, 1, big)).unwrap();
        tx.send(proposal(&conn, 2, big)).unwrap();
        tx.send(proposal(&conn, 3, 10)).unwrap();
        let (batch, rest) = take_batch(proposal(&conn, 0, 10), &mut rx);
        assert_eq!(xids(&batch), vec![0, 1]);
        let (batch, rest) = take_batch(rest.unwrap(), &mut rx);
        assert_eq!(xids(&batch), vec![2, 3]);
        assert!(rest.is_none());
        let (batch, rest) = take_batch(proposal(&conn, 9, 2 * PROPOSAL_BATCH_BYTES_MAX), &mut rx);
        assert_eq!((xids(&batch), rest.is_none()), (vec![9], true));

        // Phase 3: the entry of a batch decodes to its commands in order.
        let two = [proposal(&conn, 5, 1), proposal(&conn, 6, 1)];
        let expected: Vec<Command> = two.iter().map(|p| p.cmd.clone()).collect();
        let payload = warren_tree::encode_batch(two.iter().map(|p| &p.payload[..]));
        assert_eq!(warren_tree::decode_entry(&payload).unwrap(), expected);
    }
}
