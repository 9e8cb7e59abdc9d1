//! [`RaftNode`]: start, submit/propose (on any node), read barrier (on any node), application
//! messages, membership, leadership transfer, status, shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::Either;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::ClientWriteError;
use openraft::{ChangeMembers, Instant as _, Raft, RaftMetrics, ServerState};
use tokio::task::JoinHandle;

use crate::applied::AppliedIndex;
use crate::backend::Backends;
use crate::config::RaftConfig;
use crate::core::{AppHandler, CallHandler, Core};
use crate::link::{LinkError, Links};
use crate::log_store::{IoCounters, LogStore};
use crate::network::{NetTimes, Network, NoPeers, PeerTransport, TcpTransport};
use crate::state_machine::{SmAdapter, SnapshotTrigger, Snapshots, StateMachine};
use crate::types::{PeerNode, TypeConfig};
use crate::wire::{ClientReply, ClientRequest};

/// How long the snapshot-asking task waits for a build to start before it repeats the
/// trigger (openraft drops one that arrives while a build is under way).
const SNAPSHOT_RETRIGGER_INTERVAL: Duration = Duration::from_millis(50);

/// Asks openraft for a snapshot until a build has started since `before` (a reading of
/// `builds`, see `SnapshotTrigger::builds`): openraft drops a trigger that arrives while a
/// build is under way (or just ending). Gives up at `deadline`, if any.
async fn ask_for_snapshot(
    raft: &Raft<TypeConfig, SmAdapter>,
    builds: &AtomicU64,
    before: u64,
    deadline: Option<tokio::time::Instant>,
) -> Result<(), String> {
    loop {
        raft.trigger()
            .snapshot()
            .await
            .map_err(|e| format!("snapshot trigger not taken: {e}"))?;
        tokio::time::sleep(SNAPSHOT_RETRIGGER_INTERVAL).await;
        if builds.load(Ordering::SeqCst) != before {
            return Ok(());
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Err("no snapshot build started".into());
        }
    }
}

/// The largest payload `submit` accepts: it must fit in one client-stream frame when a
/// follower forwards it (and in one append-entries frame).
pub const PAYLOAD_BYTES_MAX: usize = crate::wire::CLIENT_FRAME_BYTES_MAX - 64;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// The config is inconsistent.
    #[error("invalid Raft config: {0}")]
    Config(String),
    /// The data directory could not be opened or is damaged.
    #[error("Raft storage: {0}")]
    Storage(String),
    /// The peer port could not be bound.
    #[error("peer listener on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The Raft core stopped.
    #[error("Raft node stopped: {0}")]
    Fatal(String),
    /// A single-voter node did not become leader (or replay its log) in time.
    #[error("no leadership within {0:?} of starting")]
    StartTimeout(Duration),
}

/// Why a proposal, read barrier or membership change did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// No leader could take it (none known in time, or the one asked no longer leads); the
    /// entry is certainly not in the log. The leader as far as this node knows, as
    /// (id, peer address).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The current leader, if known.
        leader: Option<(u64, String)>,
    },
    /// The entry may or may not commit: it was discarded by a leader change after it was
    /// appended, or the stream to the leader failed after it was sent. The server treats it
    /// like a lost connection.
    #[error("entry discarded by a leader change; it may still commit (leader: {leader:?})")]
    Indeterminate {
        /// The new leader, if known.
        leader: Option<(u64, String)>,
    },
    /// Refused before entering the log: a payload over [`PAYLOAD_BYTES_MAX`], or a
    /// membership change the leader refused (another in progress, unknown node, ...).
    #[error("refused: {0}")]
    Rejected(String),
    /// The node stopped on an error (storage failure, panic); it will not recover.
    #[error("Raft node failed: {0}")]
    Fatal(String),
    /// The node is shutting down.
    #[error("Raft node shutting down")]
    ShuttingDown,
}

/// Why an application call got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppCallError {
    /// The peer is not in the membership or the configuration.
    #[error("unknown peer {0}")]
    UnknownPeer(u64),
    /// The peer could not be reached, or the stream failed before the answer.
    #[error("peer {0} unreachable")]
    Unreachable(u64),
    /// No answer in time.
    #[error("peer {0} did not answer in time")]
    TimedOut(u64),
    /// The peer has no call handler.
    #[error("peer {peer}: {reason}")]
    Refused {
        /// The peer.
        peer: u64,
        /// What it said.
        reason: String,
    },
    /// This node is shutting down.
    #[error("Raft node shutting down")]
    ShuttingDown,
}

/// A node's Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Leads the ensemble: proposals are accepted here.
    Leader,
    /// Follows a leader (or, a voter not yet part of a formed ensemble, waits for one).
    Follower,
    /// Asking for votes.
    Candidate,
    /// Receives the log but does not vote (ZooKeeper's observer).
    Learner,
    /// Stopped.
    Shutdown,
}

/// A snapshot of a node's Raft state, for `stat`/`mntr`/`srvr` and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// This node's id.
    pub id: u64,
    /// Its role.
    pub role: Role,
    /// The current term.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// The peer address of that leader.
    pub leader_addr: Option<String>,
    /// Index of the last log entry (appended, maybe not committed).
    pub last_log_index: Option<u64>,
    /// Index of the last entry known committed.
    pub committed: Option<u64>,
    /// Index of the last entry applied to the state machine.
    pub last_applied: Option<u64>,
    /// Index the newest snapshot covers.
    pub snapshot_index: Option<u64>,
    /// Every node of the effective membership (voters and learners): id → peer address.
    pub members: BTreeMap<u64, String>,
    /// The voters of the effective membership (both halves of a joint one).
    pub voters: BTreeSet<u64>,
    /// The learners (observers) of the effective membership.
    pub learners: BTreeSet<u64>,
    /// On the leader: each other node's matched log index (`None`: nothing matched yet).
    /// Empty elsewhere.
    pub replication: BTreeMap<u64, Option<u64>>,
    /// On the leader: milliseconds since a quorum of voters last acknowledged it (its
    /// lease; `None` elsewhere, or before the first acknowledgement). A leader cut off from
    /// its quorum keeps leading in Raft but this age grows: the server reads it to tell
    /// whether it may still serve read-write clients.
    pub quorum_acked_ms: Option<u64>,
}

/// Counters of the log's I/O (group commit makes `fsyncs` much smaller than `entries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoStats {
    /// Log fsyncs done since start.
    pub fsyncs: u64,
    /// Log entries written since start.
    pub entries: u64,
}

/// Where a request goes.
enum Route {
    /// This node leads.
    Local,
    /// Another node leads: (id, peer address).
    Remote(u64, String),
}

/// One Raft member: the log, the state machine driver, the Raft core, its peer server and
/// its streams to peers.
pub struct RaftNode {
    core: Arc<Core>,
    cfg: RaftConfig,
    links: Arc<Links>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Snapshot builds started (see `SnapshotTrigger::builds`).
    snapshot_builds: Arc<AtomicU64>,
    /// Transactions applied since the newest snapshot's state (`SnapshotTrigger::behind`).
    snapshot_behind: Arc<AtomicU64>,
}

impl RaftNode {
    /// Starts a node on the data directory of `cfg`, over TCP if it has peers.
    ///
    /// A single voter returns once it leads and has applied everything in its log. A member
    /// of a larger ensemble returns once its log is replayed (up to what it knew committed) and
    /// its peer port is bound; it does not wait for a quorum. On an empty directory the lowest
    /// voter forms the ensemble once a majority of the voters answer that they never were
    /// part of one (see the crate docs).
    pub async fn start(cfg: RaftConfig, sm: Box<dyn StateMachine>) -> Result<RaftNode, RaftError> {
        let backends = crate::storage::open(&cfg.data_dir, cfg.log_dir.as_deref())?;
        let transport: Arc<dyn PeerTransport> = if cfg.has_peers() {
            Arc::new(TcpTransport)
        } else {
            Arc::new(NoPeers)
        };
        Self::start_with(cfg, sm, backends, transport).await
    }

    /// Starts a node over given stores and peer transport (tests wrap the transport to inject
    /// faults). Binds the peer port when the configuration has peers.
    pub async fn start_with(
        cfg: RaftConfig,
        sm: Box<dyn StateMachine>,
        backends: Backends,
        transport: Arc<dyn PeerTransport>,
    ) -> Result<RaftNode, RaftError> {
        cfg.validate()?;
        let config = Arc::new(cfg.openraft_config()?);
        let counters = Arc::new(IoCounters::default());
        let (log_store, io) = LogStore::open(backends.log, backends.meta, counters.clone())
            .map_err(|e| RaftError::Storage(e.0))?;
        let snapshots = Snapshots::new(backends.snapshots, cfg.snapshots_to_keep);
        let (snapshot_tx, mut snapshot_rx) = tokio::sync::mpsc::unbounded_channel();
        let trigger = SnapshotTrigger::new(cfg.snapshot_every_entries, snapshot_tx);
        let builds = trigger.builds();
        let behind = trigger.behind();
        let applied = Arc::new(AppliedIndex::default());
        let sm = SmAdapter::new(sm, snapshots, trigger, applied.clone());
        let times = NetTimes {
            rpc_floor: Duration::from_millis(cfg.rpc_timeout_min_ms),
            snapshot_install: cfg.forward_timeout().max(Duration::from_secs(30)),
        };
        let network = Network::new(cfg.node_id, transport.clone(), times);
        let raft = match Raft::new(cfg.node_id, config, network, log_store, sm).await {
            Ok(raft) => raft,
            Err(e) => {
                let _ = io.stop().await;
                return Err(RaftError::Storage(e.to_string()));
            }
        };
        let core = Arc::new(Core::new(
            cfg.node_id,
            raft,
            io,
            applied,
            counters,
            cfg.snapshot_bytes_max,
            cfg.forward_timeout(),
        ));
        let connect_timeout = Duration::from_millis(cfg.election_timeout_min_ms);
        let links = Arc::new(Links::new(cfg.node_id, transport.clone(), connect_timeout));
        let node = RaftNode {
            core,
            cfg,
            links,
            tasks: std::sync::Mutex::new(Vec::new()),
            snapshot_builds: builds.clone(),
            snapshot_behind: behind,
        };
        // The state machine adapter counts transactions and asks here for each snapshot.
        // openraft drops a trigger that arrives while a build is under way (or just ending),
        // so each request is repeated until a build has started after it; otherwise one
        // dropped request would stop snapshots for good and the log would grow unbounded.
        let raft = node.core.raft.clone();
        node.spawn(tokio::spawn(async move {
            while snapshot_rx.recv().await.is_some() {
                let before = builds.load(Ordering::SeqCst);
                if let Err(e) = ask_for_snapshot(&raft, &builds, before, None).await {
                    tracing::debug!(error = %e, "stopping");
                    return;
                }
            }
        }));
        match node.come_up(transport).await {
            Ok(()) => Ok(node),
            Err(e) => {
                node.shutdown().await;
                Err(e)
            }
        }
    }

    /// Opens the peer port and starts the ensemble tasks; a sole voter leads and replays
    /// before returning.
    async fn come_up(&self, transport: Arc<dyn PeerTransport>) -> Result<(), RaftError> {
        let cfg = &self.cfg;
        if cfg.has_peers() {
            let addr = cfg
                .peer_listen_addr
                .clone()
                .or_else(|| cfg.own_addr().cloned())
                .expect("validate checked that this node has an address");
            let listener =
                tokio::net::TcpListener::bind(&addr)
                    .await
                    .map_err(|e| RaftError::Listen {
                        addr: addr.clone(),
                        reason: e.to_string(),
                    })?;
            tracing::info!(node = cfg.node_id, %addr, "peer port bound");
            self.spawn(crate::peer_server::spawn(listener, self.core.clone()));
            self.spawn(tokio::spawn(crate::ensemble::run(
                self.core.clone(),
                self.links.clone(),
                transport,
                cfg.clone(),
            )));
        }
        if cfg.sole_voter() {
            self.lead_alone().await?;
        }
        Ok(())
    }

    fn spawn(&self, task: JoinHandle<()>) {
        self.tasks.lock().expect("task list lock").push(task);
    }

    /// A sole voter forms the ensemble if new, elects itself at once and replays its log.
    async fn lead_alone(&self) -> Result<(), RaftError> {
        let cfg = &self.cfg;
        let raft = &self.core.raft;
        let fatal = |e: openraft::error::Fatal<TypeConfig>| RaftError::Fatal(e.to_string());
        if !raft.is_initialized().await.map_err(fatal)? {
            tracing::info!(node = cfg.node_id, members = ?cfg.members, "forming a new ensemble");
            raft.initialize(crate::ensemble::voter_nodes(cfg))
                .await
                .map_err(|e| RaftError::Fatal(format!("initialize: {e}")))?;
        }
        // Metrics follow the core asynchronously: wait until they show a membership.
        let timeout = Duration::from_millis(cfg.startup_timeout_ms);
        let m = raft
            .wait(Some(timeout))
            .metrics(
                |m| m.membership_config.voter_ids().next().is_some(),
                "membership known",
            )
            .await
            .map_err(|_| RaftError::StartTimeout(timeout))?;
        let voters: Vec<u64> = m.membership_config.voter_ids().collect();
        if voters != [cfg.node_id] {
            tracing::info!(
                ?voters,
                "the log's membership is not this node alone; not forcing an election"
            );
            return Ok(());
        }
        if !raft.is_leader() {
            // Alone, there is nobody to wait for: elect now rather than after a timeout.
            raft.trigger().elect(false).await.map_err(fatal)?;
        }
        let m = raft
            .wait(Some(timeout))
            .state(ServerState::Leader, "single voter leads")
            .await
            .map_err(|_| RaftError::StartTimeout(timeout))?;
        // Everything in the log up to now is committed by this term's first entry; wait until
        // it is all applied, so the caller's state machine is complete.
        if let Some(last) = m.last_log_index {
            raft.wait(Some(timeout))
                .applied_index_at_least(Some(last), "log replayed")
                .await
                .map_err(|_| RaftError::StartTimeout(timeout))?;
        }
        tracing::info!(node = cfg.node_id, last_log_index = ?m.last_log_index, "leading");
        Ok(())
    }

    fn metrics(&self) -> RaftMetrics<TypeConfig> {
        self.core.raft.metrics().borrow_watched().clone()
    }

    /// The leader as openraft's metrics know it, read in place: `route` runs once per write,
    /// and cloning the whole metrics (membership, replication map) cost several allocations.
    fn current_leader(&self) -> Option<u64> {
        self.core.raft.metrics().borrow_watched().current_leader
    }

    /// The peer address of `id`: the effective membership's, else the configuration's.
    fn addr_of(&self, id: u64) -> Option<String> {
        self.core
            .member_addr(id)
            .or_else(|| self.cfg.addr_of(id).cloned())
    }

    /// Where a request goes now: here if this node leads, else to the known leader; waits up
    /// to three maximal election timeouts for a leader to be known.
    async fn route(&self) -> Result<Route, ProposeError> {
        self.core.check_running()?;
        let mut leader = self.current_leader();
        if leader.is_none() {
            let wait = self.core.raft.wait(Some(self.cfg.leader_wait()));
            leader = match wait
                .metrics(|m| m.current_leader.is_some(), "a leader")
                .await
            {
                Ok(m) => m.current_leader,
                Err(_) => None,
            };
            self.core.check_running()?;
        }
        let l = match leader {
            None => return Err(ProposeError::NotLeader { leader: None }),
            Some(l) if l == self.core.id => return Ok(Route::Local),
            Some(l) => l,
        };
        let Some(addr) = self.addr_of(l) else {
            return Err(ProposeError::NotLeader {
                leader: Some((l, String::new())),
            });
        };
        if self.links.get(l, &addr).reachable() {
            return Ok(Route::Remote(l, addr));
        }
        // The last attempt to reach that leader failed: it is probably gone and an election
        // is under way. Wait (bounded) for another leader rather than fail at once.
        let wait = self.core.raft.wait(Some(self.cfg.leader_wait()));
        let other = wait
            .metrics(
                |m| m.current_leader.is_some_and(|x| x != l),
                "another leader",
            )
            .await;
        self.core.check_running()?;
        match other.ok().and_then(|m| m.current_leader) {
            Some(x) if x == self.core.id => Ok(Route::Local),
            Some(x) => match self.addr_of(x) {
                Some(addr) => Ok(Route::Remote(x, addr)),
                None => Err(ProposeError::NotLeader {
                    leader: Some((x, String::new())),
                }),
            },
            // Still the same leader as far as Raft knows: try it again.
            None => Ok(Route::Remote(l, addr)),
        }
    }

    fn link_error(&self, leader: (u64, String), e: LinkError) -> ProposeError {
        match e {
            LinkError::Closed if self.core.stopping() => ProposeError::ShuttingDown,
            LinkError::Closed | LinkError::Unsent => ProposeError::NotLeader {
                leader: Some(leader),
            },
            LinkError::Lost | LinkError::TimedOut => ProposeError::Indeterminate {
                leader: Some(leader),
            },
        }
    }

    /// Replicates `payload` and returns its log index once committed and applied here.
    ///
    /// The reply to a client never comes from this value but from [`StateMachine::apply`].
    pub async fn propose(&self, payload: Vec<u8>) -> Result<u64, ProposeError> {
        self.submit(payload).await?.await
    }

    /// Enqueues `payload` for replication and returns a future of its outcome: its log index
    /// once committed and applied on this node.
    ///
    /// Works on any node. On the leader the entry is in the Raft core's queue when this
    /// returns; on a follower (or learner) it has been queued, in call order, on this node's
    /// one ordered stream to the leader, which enqueues forwarded entries in arrival order. So
    /// calls made one after another from one task enter the log in call order, or some fail
    /// (`NotLeader`, `Indeterminate`) and none of the later ones precede them, while their
    /// outcomes are awaited concurrently. With no leader known, waits up to three election
    /// timeouts for one, then `NotLeader`.
    ///
    /// `payload` may be a `Vec<u8>` or [`Bytes`]: on the leader the entry keeps these very
    /// bytes (no copy), so a caller holding a clone of the `Bytes` can recognise its own entry
    /// when it is applied by the address of its data.
    pub async fn submit(
        &self,
        payload: impl Into<Bytes>,
    ) -> Result<impl Future<Output = Result<u64, ProposeError>> + Send + 'static, ProposeError>
    {
        let payload: Bytes = payload.into();
        if payload.len() > PAYLOAD_BYTES_MAX {
            return Err(ProposeError::Rejected(format!(
                "payload of {} bytes exceeds {PAYLOAD_BYTES_MAX}",
                payload.len()
            )));
        }
        let (id, addr) = match self.route().await? {
            Route::Local => {
                let fut = self.core.submit_local(payload).await?;
                return Ok(Either::Left(fut));
            }
            Route::Remote(id, addr) => (id, addr),
        };
        let link = self.links.get(id, &addr);
        let leader = (id, addr);
        let waiting = link
            .request(|rid| ClientRequest::Forward {
                id: rid,
                payload: Vec::from(payload),
            })
            .await
            .map_err(|e| self.link_error(leader.clone(), e))?;
        let core = self.core.clone();
        let timeout = self.cfg.forward_timeout();
        Ok(Either::Right(async move {
            let index = match waiting.reply(timeout).await {
                Ok(ClientReply::Forward { result, .. }) => result?,
                // Never written: certainly not in the log.
                Err(LinkError::Unsent) => {
                    return Err(ProposeError::NotLeader {
                        leader: Some(leader),
                    });
                }
                // A reply of the wrong kind is a confused peer: the outcome is unknown.
                Ok(_) | Err(_) => {
                    return Err(ProposeError::Indeterminate {
                        leader: Some(leader),
                    });
                }
            };
            // Committed; also applied here before reporting, so `propose` means the same on
            // every node. If this node lags too far, the index is still the truth.
            core.applied.wait_for(index, timeout).await;
            Ok(index)
        }))
    }

    /// A linearizable read barrier (ZooKeeper's `sync`, done right), on any node: returns once
    /// the leader confirmed its leadership with a quorum and this node has applied everything
    /// committed before the call.
    pub async fn read_index(&self) -> Result<(), ProposeError> {
        let (id, addr) = match self.route().await? {
            Route::Local => return self.core.local_read_index().await,
            Route::Remote(id, addr) => (id, addr),
        };
        let link = self.links.get(id, &addr);
        let leader = (id, addr);
        let timeout = self.cfg.forward_timeout();
        let waiting = link
            .request(|rid| ClientRequest::ReadIndex { id: rid })
            .await
            .map_err(|e| self.link_error(leader.clone(), e))?;
        let index = match waiting.reply(timeout).await {
            Ok(ClientReply::ReadIndex { result, .. }) => result?,
            Ok(_) | Err(_) => return Err(ProposeError::NotLeader { leader: None }),
        };
        if self.core.applied.wait_for(index, timeout).await {
            Ok(())
        } else {
            Err(ProposeError::NotLeader {
                leader: Some(leader),
            })
        }
    }

    /// Sends an application message to `target` (fire-and-forget): queued on this node's
    /// stream to it, dropped with a debug trace if the queue is full or the peer unreachable.
    pub fn send_app(&self, target: u64, bytes: Vec<u8>) {
        if self.core.stopping() {
            return;
        }
        if target == self.core.id {
            let handler = self.core.app_handler.read().expect("handler lock").clone();
            if let Some(h) = handler {
                h(target, bytes);
            }
            return;
        }
        let Some(addr) = self.addr_of(target) else {
            tracing::debug!(target, "app message to an unknown peer dropped");
            return;
        };
        let link = self.links.get(target, &addr);
        if !link.send(&ClientRequest::AppSend { payload: bytes }) {
            tracing::debug!(target, "app message dropped: the stream's queue is full");
        }
    }

    /// Sends `bytes` to `target`'s call handler and returns its answer (bounded by
    /// `forward_timeout_ms`).
    pub async fn call_app(&self, target: u64, bytes: Vec<u8>) -> Result<Vec<u8>, AppCallError> {
        if self.core.stopping() {
            return Err(AppCallError::ShuttingDown);
        }
        if target == self.core.id {
            let handler = self.core.call_handler.read().expect("handler lock").clone();
            return match handler {
                Some(h) => Ok(h(target, bytes)),
                None => Err(AppCallError::Refused {
                    peer: target,
                    reason: "no call handler on this node".into(),
                }),
            };
        }
        let addr = self
            .addr_of(target)
            .ok_or(AppCallError::UnknownPeer(target))?;
        let link = self.links.get(target, &addr);
        let waiting = link
            .request(|id| ClientRequest::AppCall { id, payload: bytes })
            .await
            .map_err(|_| AppCallError::ShuttingDown)?;
        match waiting.reply(self.cfg.forward_timeout()).await {
            Ok(ClientReply::AppCall { result, .. }) => {
                result.map_err(|reason| AppCallError::Refused {
                    peer: target,
                    reason,
                })
            }
            Err(LinkError::TimedOut) => Err(AppCallError::TimedOut(target)),
            Ok(_) | Err(_) => Err(AppCallError::Unreachable(target)),
        }
    }

    /// Sets the handler of application messages from peers (`from`, bytes). It runs on the
    /// stream's reader: keep it short (queue the work).
    pub fn set_app_handler(&self, handler: AppHandler) {
        *self.core.app_handler.write().expect("handler lock") = Some(handler);
    }

    /// Sets the handler answering application calls from peers (`from`, bytes) → reply.
    pub fn set_call_handler(&self, handler: CallHandler) {
        *self.core.call_handler.write().expect("handler lock") = Some(handler);
    }

    /// From now on the application keeps the membership (ZooKeeper's reconfig): this node no
    /// longer adds `RaftConfig::learners` back when they are missing, so a learner the
    /// application removed stays removed. Idempotent.
    pub fn hand_over_membership(&self) {
        self.core
            .membership_handed_over
            .store(true, Ordering::Relaxed);
    }

    /// Adds a learner (observer) at `addr`, on the leader; returns the membership entry's log
    /// index once committed. It starts receiving the log at once.
    pub async fn add_learner(&self, id: u64, addr: String) -> Result<u64, ProposeError> {
        self.core.check_running()?;
        let r = self
            .core
            .raft
            .add_learner(id, PeerNode { addr }, false)
            .await;
        self.membership_result(r)
    }

    /// Makes `voters` the voters, on the leader (through a joint configuration); nodes that
    /// were voters and are not in `voters` leave the membership. Every new voter must already
    /// be a learner ([`RaftNode::add_learner`]). Returns the final entry's log index.
    pub async fn change_membership(&self, voters: BTreeSet<u64>) -> Result<u64, ProposeError> {
        self.core.check_running()?;
        let r = self.core.raft.change_membership(voters, false).await;
        self.membership_result(r)
    }

    /// Removes a node from the membership, on the leader: a voter through
    /// [`RaftNode::change_membership`], a learner directly.
    pub async fn remove_node(&self, id: u64) -> Result<u64, ProposeError> {
        self.core.check_running()?;
        let voters: BTreeSet<u64> = self.status().voters;
        if voters.contains(&id) {
            let rest = voters.into_iter().filter(|v| *v != id).collect();
            return self.change_membership(rest).await;
        }
        let change: ChangeMembers<u64, PeerNode> = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
        let r = self.core.raft.change_membership(change, false).await;
        self.membership_result(r)
    }

    fn membership_result(
        &self,
        r: Result<
            openraft::raft::ClientWriteResponse<TypeConfig>,
            openraft::error::RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
        >,
    ) -> Result<u64, ProposeError> {
        match r {
            Ok(resp) => Ok(resp.log_id.index),
            Err(openraft::error::RaftError::APIError(e)) => Err(match e {
                ClientWriteError::ForwardToLeader(f) => ProposeError::NotLeader {
                    leader: self.core.leader_of(&f),
                },
                ClientWriteError::LogEntryDiscarded(f) => ProposeError::Indeterminate {
                    leader: self.core.leader_of(&f),
                },
                other => ProposeError::Rejected(other.to_string()),
            }),
            Err(openraft::error::RaftError::Fatal(f)) => Err(self.core.fatal(f)),
        }
    }

    /// Hands leadership to the most caught-up other voter (graceful shutdown of a leader) and
    /// waits, up to three election timeouts, until this node sees another leader; returns it.
    /// `NotLeader` if this node does not lead or the transfer did not happen in time.
    pub async fn transfer_leadership(&self) -> Result<u64, ProposeError> {
        self.core.check_running()?;
        let m = self.metrics();
        let me = self.core.id;
        if m.state != ServerState::Leader {
            return Err(ProposeError::NotLeader {
                leader: m
                    .current_leader
                    .and_then(|l| self.addr_of(l).map(|a| (l, a))),
            });
        }
        let matched = m.replication.clone().unwrap_or_default();
        let to = m
            .membership_config
            .voter_ids()
            .filter(|v| *v != me)
            .max_by_key(|v| matched.get(v).cloned().flatten().map(|l| l.index));
        let Some(to) = to else {
            return Err(ProposeError::NotLeader { leader: None });
        };
        tracing::info!(node = me, to, "transferring leadership");
        self.core
            .raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|f| self.core.fatal(f))?;
        let moved = self
            .core
            .raft
            .wait(Some(self.cfg.leader_wait()))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != me),
                "leadership moved",
            )
            .await;
        match moved {
            Ok(m) => Ok(m.current_leader.expect("the wait condition")),
            Err(_) => Err(ProposeError::NotLeader { leader: None }),
        }
    }

    /// The node's Raft state, from openraft's metrics: published asynchronously, so it may
    /// trail the state machine by a moment (e.g. `last_applied` just after `propose` returns).
    pub fn status(&self) -> NodeStatus {
        let m = self.metrics();
        let me = self.core.id;
        let stopped = self.core.stopping() || m.running_state.is_err();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let learners: BTreeSet<u64> = membership.learner_ids().collect();
        let role = match m.state {
            _ if stopped => Role::Shutdown,
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            // openraft calls a node outside any membership (not yet formed) a learner too.
            ServerState::Learner if learners.contains(&me) => Role::Learner,
            ServerState::Learner if self.cfg.learners.contains_key(&me) => Role::Learner,
            ServerState::Learner => Role::Follower,
            ServerState::Shutdown => Role::Shutdown,
        };
        let members: BTreeMap<u64, String> = m
            .membership_config
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect();
        let replication = match (&m.replication, m.state) {
            (Some(r), ServerState::Leader) => r
                .iter()
                .filter(|(id, _)| **id != me)
                .map(|(id, l)| (*id, l.map(|l| l.index)))
                .collect(),
            _ => BTreeMap::new(),
        };
        NodeStatus {
            id: me,
            role,
            term: m.current_term,
            leader: m.current_leader,
            leader_addr: m.current_leader.and_then(|l| members.get(&l).cloned()),
            last_log_index: m.last_log_index,
            committed: m.local_committed.map(|l| l.index),
            last_applied: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            members,
            voters,
            learners,
            replication,
            quorum_acked_ms: m
                .last_quorum_acked
                .as_ref()
                .filter(|_| m.state == ServerState::Leader)
                .map(|t| t.elapsed().as_millis() as u64),
        }
    }

    /// Log I/O counters.
    pub fn io_stats(&self) -> IoStats {
        IoStats {
            fsyncs: self.core.counters.fsyncs.load(Ordering::Relaxed),
            entries: self.core.counters.entries.load(Ordering::Relaxed),
        }
    }

    /// Resolves when the node has stopped (shut down or failed); returns the failure, if any.
    /// The server selects on this to exit when storage fails.
    pub async fn stopped(&self) -> Option<String> {
        let _ = self
            .core
            .raft
            .wait(None)
            .metrics(
                |m| m.running_state.is_err() || m.state == ServerState::Shutdown,
                "node stopped",
            )
            .await;
        self.failure()
    }

    /// The error the node stopped on, if it stopped on one.
    pub fn failure(&self) -> Option<String> {
        if let Some(f) = self.core.io.failure() {
            return Some(f);
        }
        match &self.core.raft.metrics().borrow_watched().running_state {
            Err(e) => Some(e.to_string()),
            Ok(()) => None,
        }
    }

    /// Takes a snapshot of everything applied, if at least `min_transactions` were applied
    /// since the newest snapshot's state (counted as the snapshot schedule counts them: a
    /// batched entry counts each of its writes), and waits up to `timeout` for it to be
    /// saved; the index it covers, or `None` if none was needed. A graceful shutdown calls
    /// it, so that the next start reads one snapshot instead of replaying up to `snapCount`
    /// writes from the log.
    pub async fn snapshot_if_behind(
        &self,
        min_transactions: u64,
        timeout: Duration,
    ) -> Result<Option<u64>, String> {
        let Some(applied) = self.status().last_applied else {
            return Ok(None);
        };
        if self.snapshot_behind.load(Ordering::SeqCst) < min_transactions.max(1) {
            return Ok(None);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let builds = &self.snapshot_builds;
        let before = builds.load(Ordering::SeqCst);
        ask_for_snapshot(&self.core.raft, builds, before, Some(deadline))
            .await
            .map_err(|e| format!("{e} (waited up to {timeout:?})"))?;
        loop {
            if let Some(s) = self.status().snapshot_index.filter(|s| *s >= applied) {
                return Ok(Some(s));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the snapshot of index {applied} was not saved within {timeout:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the peer port and streams, the Raft core, flushes the log and stops its I/O
    /// thread. Idempotent; proposals after it get [`ProposeError::ShuttingDown`]. Takes
    /// `&self` so a node shared behind an `Arc` can be stopped while other tasks still hold
    /// it. When it returns the peer port is closed (a restart can bind it again).
    pub async fn shutdown(&self) {
        if self.core.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("task list lock"));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        self.links.shutdown();
        if let Err(e) = self.core.raft.shutdown().await {
            tracing::warn!(error = %e, "Raft core did not stop cleanly");
        }
        if let Err(e) = self.core.io.stop().await {
            tracing::error!(error = %e, "final log flush failed");
        }
        tracing::info!(node = self.core.id, "Raft node stopped");
    }
}
