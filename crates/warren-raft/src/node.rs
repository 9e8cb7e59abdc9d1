//! [`RaftNode`]: start, propose, read barrier, status, shutdown.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{ClientWriteError, ForwardToLeader, LinearizableReadError};
use openraft::impls::ProgressResponder;
use openraft::{Raft, ReadPolicy, ServerState, SnapshotPolicy};

use crate::backend::Backends;
use crate::log_store::{IoCounters, IoThread, LogStore};
use crate::network::{Network, NoPeers, PeerTransport};
use crate::state_machine::{SmAdapter, Snapshots, StateMachine};
use crate::types::{Payload, PeerNode, TypeConfig};

/// How a Raft node is set up. Built with [`RaftConfig::new`], then fields adjusted.
#[derive(Debug, Clone)]
pub struct RaftConfig {
    /// This server's id (ZooKeeper's `myid`).
    pub node_id: u64,
    /// Every voter: id → peer address. Used to form the ensemble on first start only; after
    /// that the membership is what the log says.
    pub members: BTreeMap<u64, String>,
    /// Where the meta file and the snapshots live (and the log, unless `log_dir` is set).
    pub data_dir: PathBuf,
    /// Where the log lives, if apart from `data_dir` (ZooKeeper's `dataLogDir`).
    pub log_dir: Option<PathBuf>,
    /// Applied entries between snapshots (ZooKeeper's `snapCount`).
    pub snapshot_every_entries: u64,
    /// Snapshots kept on disk (ZooKeeper's `autopurge.snapRetainCount`).
    pub snapshots_to_keep: usize,
    /// Entries already in a snapshot kept in the log, for followers slightly behind.
    pub log_entries_kept_behind_snapshot: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Leader heartbeat period.
    pub heartbeat_interval_ms: u64,
    /// How long `start` waits for a single-voter node to lead and replay its log.
    pub startup_timeout_ms: u64,
}

impl RaftConfig {
    /// A config with ZooKeeper-like defaults for the given identity, members and directory.
    pub fn new(node_id: u64, members: BTreeMap<u64, String>, data_dir: impl Into<PathBuf>) -> Self {
        RaftConfig {
            node_id,
            members,
            data_dir: data_dir.into(),
            log_dir: None,
            snapshot_every_entries: 100_000,
            snapshots_to_keep: 3,
            log_entries_kept_behind_snapshot: 1_000,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            heartbeat_interval_ms: 100,
            startup_timeout_ms: 30_000,
        }
    }

    /// A one-voter ensemble: node 1 at `127.0.0.1:2888`, as a standalone server runs.
    pub fn standalone(data_dir: impl Into<PathBuf>) -> Self {
        Self::new(
            1,
            BTreeMap::from([(1, "127.0.0.1:2888".to_string())]),
            data_dir,
        )
    }

    fn validate(&self) -> Result<(), RaftError> {
        let bad = |m: String| Err(RaftError::Config(m));
        if !self.members.contains_key(&self.node_id) {
            return bad(format!(
                "node {} is not among the members {:?}",
                self.node_id, self.members
            ));
        }
        if self.snapshot_every_entries == 0 {
            return bad("snapshot_every_entries must be at least 1".into());
        }
        if self.election_timeout_min_ms >= self.election_timeout_max_ms
            || self.heartbeat_interval_ms >= self.election_timeout_min_ms
        {
            return bad(format!(
                "need heartbeat ({}) < election min ({}) < election max ({})",
                self.heartbeat_interval_ms,
                self.election_timeout_min_ms,
                self.election_timeout_max_ms
            ));
        }
        Ok(())
    }

    fn openraft_config(&self) -> Result<openraft::Config, RaftError> {
        let config = openraft::Config {
            cluster_name: "warren".into(),
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            heartbeat_interval: self.heartbeat_interval_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every_entries),
            max_in_snapshot_log_to_keep: self.log_entries_kept_behind_snapshot,
            // A restarted leader goes through an election, whose blank entry commits (and so
            // replays into the state machine) everything its log holds: the state the node
            // serves after `start` is never older than what it served before the restart.
            enable_leader_restore: Some(false),
            ..openraft::Config::default()
        };
        config
            .validate()
            .map_err(|e| RaftError::Config(e.to_string()))
    }

    fn single_voter(&self) -> bool {
        self.members.len() == 1
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// The config is inconsistent.
    #[error("invalid Raft config: {0}")]
    Config(String),
    /// The data directory could not be opened or is damaged.
    #[error("Raft storage: {0}")]
    Storage(String),
    /// The Raft core stopped.
    #[error("Raft node stopped: {0}")]
    Fatal(String),
    /// A single-voter node did not become leader (or replay its log) in time.
    #[error("no leadership within {0:?} of starting")]
    StartTimeout(Duration),
}

/// Why a proposal (or read barrier) did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// This node is not the leader; the leader as far as it knows, as (id, peer address).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The current leader, if known.
        leader: Option<(u64, String)>,
    },
    /// The entry was appended here but discarded when this node lost leadership: it may or may
    /// not commit through the new leader. The server treats it like a lost connection.
    #[error("entry discarded by a leader change; it may still commit (leader: {leader:?})")]
    Indeterminate {
        /// The new leader, if known.
        leader: Option<(u64, String)>,
    },
    /// The node stopped on an error (storage failure, panic); it will not recover.
    #[error("Raft node failed: {0}")]
    Fatal(String),
    /// The node is shutting down.
    #[error("Raft node shutting down")]
    ShuttingDown,
}

/// A node's Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Leads the ensemble: proposals are accepted here.
    Leader,
    /// Follows a leader.
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
    /// Index of the last log entry (appended, maybe not committed).
    pub last_log_index: Option<u64>,
    /// Index of the last entry applied to the state machine.
    pub last_applied: Option<u64>,
    /// Index the newest snapshot covers.
    pub snapshot_index: Option<u64>,
    /// The members as of the effective membership: id → peer address.
    pub members: BTreeMap<u64, String>,
}

/// Counters of the log's I/O (group commit makes `fsyncs` much smaller than `entries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoStats {
    /// Log fsyncs done since start.
    pub fsyncs: u64,
    /// Log entries written since start.
    pub entries: u64,
}

/// One Raft member: the log, the state machine driver, the Raft core.
pub struct RaftNode {
    raft: Raft<TypeConfig, SmAdapter>,
    id: u64,
    io: IoThread,
    counters: Arc<IoCounters>,
    shutting_down: AtomicBool,
}

impl RaftNode {
    /// Starts a node on the data directory of `cfg`.
    ///
    /// A first start with an empty directory forms the ensemble from `cfg.members`. A restart
    /// recovers the vote, log and newest snapshot, and replays the committed log into `sm`.
    /// A single-voter node returns once it leads and has applied everything in its log.
    pub async fn start(cfg: RaftConfig, sm: Box<dyn StateMachine>) -> Result<RaftNode, RaftError> {
        let backends = crate::storage::open(&cfg.data_dir, cfg.log_dir.as_deref())?;
        Self::start_with(cfg, sm, backends, Arc::new(NoPeers)).await
    }

    /// Starts a node over given stores and peer transport (tests, and the ensemble issue).
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
        let sm = SmAdapter::new(sm, snapshots);
        let raft =
            match Raft::new(cfg.node_id, config, Network::new(transport), log_store, sm).await {
                Ok(raft) => raft,
                Err(e) => {
                    let _ = io.stop().await;
                    return Err(RaftError::Storage(e.to_string()));
                }
            };
        let node = RaftNode {
            raft,
            id: cfg.node_id,
            io,
            counters,
            shutting_down: AtomicBool::new(false),
        };
        match node.come_up(&cfg).await {
            Ok(()) => Ok(node),
            Err(e) => {
                node.shutdown().await;
                Err(e)
            }
        }
    }

    /// Forms the ensemble if new; for a single voter, leads and replays before returning.
    async fn come_up(&self, cfg: &RaftConfig) -> Result<(), RaftError> {
        let fatal = |e: openraft::error::Fatal<TypeConfig>| RaftError::Fatal(e.to_string());
        let initialized = self.raft.is_initialized().await.map_err(fatal)?;
        let lowest = cfg.members.keys().next().copied();
        if !initialized && lowest == Some(cfg.node_id) {
            let nodes: BTreeMap<u64, PeerNode> = cfg
                .members
                .iter()
                .map(|(id, addr)| (*id, PeerNode { addr: addr.clone() }))
                .collect();
            tracing::info!(node = cfg.node_id, members = ?cfg.members, "forming a new ensemble");
            self.raft
                .initialize(nodes)
                .await
                .map_err(|e| RaftError::Fatal(format!("initialize: {e}")))?;
        }
        if !cfg.single_voter() {
            return Ok(());
        }
        // Metrics follow the core asynchronously: wait until they show a membership.
        let timeout = Duration::from_millis(cfg.startup_timeout_ms);
        let m = self
            .raft
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
        if !self.raft.is_leader() {
            // Alone, there is nobody to wait for: elect now rather than after a timeout.
            self.raft.trigger().elect(false).await.map_err(fatal)?;
        }
        let m = self
            .raft
            .wait(Some(timeout))
            .state(ServerState::Leader, "single voter leads")
            .await
            .map_err(|_| RaftError::StartTimeout(timeout))?;
        // Everything in the log up to now is committed by this term's first entry; wait until
        // it is all applied, so the caller's state machine is complete.
        if let Some(last) = m.last_log_index {
            self.raft
                .wait(Some(timeout))
                .applied_index_at_least(Some(last), "log replayed")
                .await
                .map_err(|_| RaftError::StartTimeout(timeout))?;
        }
        tracing::info!(node = cfg.node_id, last_log_index = ?m.last_log_index, "leading");
        Ok(())
    }

    /// Replicates `payload` and returns its log index once committed and applied here.
    ///
    /// The reply to a client never comes from this value but from [`StateMachine::apply`].
    pub async fn propose(&self, payload: Vec<u8>) -> Result<u64, ProposeError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(ProposeError::ShuttingDown);
        }
        match self.raft.client_write(Payload(Bytes::from(payload))).await {
            Ok(resp) => Ok(resp.log_id.index),
            Err(openraft::error::RaftError::APIError(e)) => Err(match e {
                ClientWriteError::ForwardToLeader(f) => ProposeError::NotLeader {
                    leader: self.leader_of(&f),
                },
                ClientWriteError::LogEntryDiscarded(f) => ProposeError::Indeterminate {
                    leader: self.leader_of(&f),
                },
                other => ProposeError::Fatal(format!("unexpected write error: {other}")),
            }),
            Err(openraft::error::RaftError::Fatal(f)) => Err(self.fatal(f)),
        }
    }

    /// Enqueues `payload` for replication and returns a future of its outcome (its log index
    /// once committed and applied here).
    ///
    /// The enqueue is done when this returns, so calls made one after another from one task
    /// enter the log in call order even while their outcomes are awaited concurrently. That
    /// lets the server keep many writes in flight and still apply each session's writes in
    /// the order the session sent them.
    pub async fn submit(
        &self,
        payload: Vec<u8>,
    ) -> Result<impl Future<Output = Result<u64, ProposeError>> + Send + 'static, ProposeError>
    {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(ProposeError::ShuttingDown);
        }
        let (responder, rx) = ProgressResponder::<TypeConfig, _>::complete_only();
        self.raft
            .client_write_ff(Payload(Bytes::from(payload)), Some(responder))
            .await
            .map_err(|f| self.fatal(f))?;
        Ok(async move {
            match rx.await {
                Ok(Ok(resp)) => Ok(resp.log_id.index),
                Ok(Err(ClientWriteError::ForwardToLeader(f))) => Err(ProposeError::NotLeader {
                    leader: leader_hint(&f),
                }),
                Ok(Err(ClientWriteError::LogEntryDiscarded(f))) => {
                    Err(ProposeError::Indeterminate {
                        leader: leader_hint(&f),
                    })
                }
                Ok(Err(other)) => Err(ProposeError::Fatal(format!(
                    "unexpected write error: {other}"
                ))),
                // The core dropped the responder: it stopped.
                Err(_) => Err(ProposeError::ShuttingDown),
            }
        })
    }

    /// A linearizable read barrier (ZooKeeper's `sync`, done right): returns once this node
    /// has confirmed its leadership with a quorum and applied everything committed before the
    /// call. Only the leader can serve it today; followers get `NotLeader`.
    pub async fn read_index(&self) -> Result<(), ProposeError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(ProposeError::ShuttingDown);
        }
        match self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
            Ok(_) => Ok(()),
            Err(openraft::error::RaftError::APIError(e)) => Err(match e {
                LinearizableReadError::ForwardToLeader(f) => ProposeError::NotLeader {
                    leader: self.leader_of(&f),
                },
                LinearizableReadError::QuorumNotEnough(_) => {
                    ProposeError::NotLeader { leader: None }
                }
            }),
            Err(openraft::error::RaftError::Fatal(f)) => Err(self.fatal(f)),
        }
    }

    /// The node's Raft state, from openraft's metrics: published asynchronously, so it may
    /// trail the state machine by a moment (e.g. `last_applied` just after `propose` returns).
    pub fn status(&self) -> NodeStatus {
        let m = self.raft.metrics().borrow_watched().clone();
        let stopped = self.shutting_down.load(Ordering::SeqCst) || m.running_state.is_err();
        let role = match m.state {
            _ if stopped => Role::Shutdown,
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        };
        NodeStatus {
            id: self.id,
            role,
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            members: m
                .membership_config
                .nodes()
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect(),
        }
    }

    /// Log I/O counters.
    pub fn io_stats(&self) -> IoStats {
        IoStats {
            fsyncs: self.counters.fsyncs.load(Ordering::Relaxed),
            entries: self.counters.entries.load(Ordering::Relaxed),
        }
    }

    /// Resolves when the node has stopped (shut down or failed); returns the failure, if any.
    /// The server selects on this to exit when storage fails.
    pub async fn stopped(&self) -> Option<String> {
        let _ = self
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
        if let Some(f) = self.io.failure() {
            return Some(f);
        }
        match &self.raft.metrics().borrow_watched().running_state {
            Err(e) => Some(e.to_string()),
            Ok(()) => None,
        }
    }

    /// Stops the Raft core, flushes the log and stops its I/O thread. Idempotent; proposals
    /// after it get [`ProposeError::ShuttingDown`]. Takes `&self` so a node shared behind an
    /// `Arc` can be stopped while other tasks still hold it.
    pub async fn shutdown(&self) {
        if self.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "Raft core did not stop cleanly");
        }
        if let Err(e) = self.io.stop().await {
            tracing::error!(error = %e, "final log flush failed");
        }
        tracing::info!(node = self.id, "Raft node stopped");
    }

    fn leader_of(&self, f: &ForwardToLeader<TypeConfig>) -> Option<(u64, String)> {
        let id = f.leader_id?;
        let addr = match &f.leader_node {
            Some(n) => n.addr.clone(),
            None => self.status().members.get(&id).cloned().unwrap_or_default(),
        };
        Some((id, addr))
    }

    fn fatal(&self, f: openraft::error::Fatal<TypeConfig>) -> ProposeError {
        if self.shutting_down.load(Ordering::SeqCst) {
            return ProposeError::ShuttingDown;
        }
        let cause = self.io.failure().unwrap_or_else(|| f.to_string());
        ProposeError::Fatal(cause)
    }
}

/// The leader named by a forward, as far as the forward itself knows.
fn leader_hint(f: &ForwardToLeader<TypeConfig>) -> Option<(u64, String)> {
    let id = f.leader_id?;
    Some((
        id,
        f.leader_node
            .as_ref()
            .map(|n| n.addr.clone())
            .unwrap_or_default(),
    ))
}
