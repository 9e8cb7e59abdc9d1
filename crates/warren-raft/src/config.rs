//! [`RaftConfig`]: how a node is set up, with ZooKeeper-like defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use openraft::SnapshotPolicy;

use crate::node::RaftError;

/// How a Raft node is set up. Built with [`RaftConfig::new`], then fields adjusted.
#[derive(Debug, Clone)]
pub struct RaftConfig {
    /// This server's id (ZooKeeper's `myid`).
    pub node_id: u64,
    /// Every voter: id → peer address (ZooKeeper's `server.N=host:peerPort:...`). Every
    /// member of an ensemble starts with the same map; it forms the ensemble on first start
    /// only, after which the membership is what the log says.
    pub members: BTreeMap<u64, String>,
    /// Non-voting members (ZooKeeper's observers, openraft's learners): id → peer address.
    /// The leader adds those missing from the membership after formation.
    pub learners: BTreeMap<u64, String>,
    /// Where the peer listener binds, if not this node's own peer address (e.g. `0.0.0.0:2888`,
    /// ZooKeeper's `quorumListenOnAllIPs`).
    pub peer_listen_addr: Option<String>,
    /// Where the meta file and the snapshots live (and the log, unless `log_dir` is set).
    pub data_dir: PathBuf,
    /// Where the log lives, if apart from `data_dir` (ZooKeeper's `dataLogDir`).
    pub log_dir: Option<PathBuf>,
    /// Applied transactions between snapshots (ZooKeeper's `snapCount`): an entry counts
    /// as many as [`crate::StateMachine::apply`] says it held (the server batches several
    /// writes into one entry; ZooKeeper counts each write).
    pub snapshot_every_entries: u64,
    /// Snapshots kept on disk (ZooKeeper's `autopurge.snapRetainCount`).
    pub snapshots_to_keep: usize,
    /// Entries already in a snapshot kept in the log, for followers slightly behind.
    pub log_entries_kept_behind_snapshot: u64,
    /// The largest snapshot accepted from a leader, in bytes.
    pub snapshot_bytes_max: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Leader heartbeat period.
    pub heartbeat_interval_ms: u64,
    /// No peer RPC is given less time than this (openraft's own budget for an append is 3/4
    /// of a heartbeat, which a follower's fsync under load can exceed).
    pub rpc_timeout_min_ms: u64,
    /// How long a forwarded write, a follower's read barrier or an application call waits for
    /// the leader's answer before giving up (`Indeterminate` for a write).
    pub forward_timeout_ms: u64,
    /// How long `start` waits for a single-voter node to lead and replay its log.
    pub startup_timeout_ms: u64,
}

impl RaftConfig {
    /// A config with ZooKeeper-like defaults for the given identity, members and directory.
    pub fn new(node_id: u64, members: BTreeMap<u64, String>, data_dir: impl Into<PathBuf>) -> Self {
        RaftConfig {
            node_id,
            members,
            learners: BTreeMap::new(),
            peer_listen_addr: None,
            data_dir: data_dir.into(),
            log_dir: None,
            snapshot_every_entries: 100_000,
            snapshots_to_keep: 3,
            log_entries_kept_behind_snapshot: 1_000,
            snapshot_bytes_max: 4 << 30,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            heartbeat_interval_ms: 100,
            rpc_timeout_min_ms: 500,
            forward_timeout_ms: 10_000,
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

    pub(crate) fn validate(&self) -> Result<(), RaftError> {
        let bad = |m: String| Err(RaftError::Config(m));
        if self.own_addr().is_none() {
            return bad(format!(
                "node {} is not among the members {:?} or learners {:?}",
                self.node_id, self.members, self.learners
            ));
        }
        if let Some(id) = self
            .learners
            .keys()
            .find(|id| self.members.contains_key(id))
        {
            return bad(format!("node {id} is both a voter and a learner"));
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

    pub(crate) fn openraft_config(&self) -> Result<openraft::Config, RaftError> {
        let config = openraft::Config {
            cluster_name: "warren".into(),
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            heartbeat_interval: self.heartbeat_interval_ms,
            // Snapshots are triggered by the state machine adapter, which counts
            // transactions, not entries (`state_machine.rs`).
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: self.log_entries_kept_behind_snapshot,
            // A restarted leader goes through an election, whose blank entry commits (and so
            // replays into the state machine) everything its log holds: the state the node
            // serves after `start` is never older than what it served before the restart.
            enable_leader_restore: Some(false),
            // A server whose data directory was wiped rejoins (ZooKeeper allows it): its log
            // starts over and the leader refills it, by snapshot if the log was purged. Without
            // this openraft treats the shorter log as a bug.
            allow_log_reversion: Some(true),
            ..openraft::Config::default()
        };
        config
            .validate()
            .map_err(|e| RaftError::Config(e.to_string()))
    }

    /// This node's peer address.
    pub(crate) fn own_addr(&self) -> Option<&String> {
        self.members
            .get(&self.node_id)
            .or_else(|| self.learners.get(&self.node_id))
    }

    /// The configured address of any member or learner.
    pub(crate) fn addr_of(&self, id: u64) -> Option<&String> {
        self.members.get(&id).or_else(|| self.learners.get(&id))
    }

    /// Whether this node is the only voter (it leads at once, without waiting for anyone).
    pub(crate) fn sole_voter(&self) -> bool {
        self.members.len() == 1 && self.members.contains_key(&self.node_id)
    }

    /// Whether there is anyone to talk to: a standalone server opens no peer port.
    pub(crate) fn has_peers(&self) -> bool {
        self.members.len() + self.learners.len() > 1
    }

    /// How long a request waits for a leader to be known.
    pub(crate) fn leader_wait(&self) -> Duration {
        Duration::from_millis(self.election_timeout_max_ms * 3)
    }

    pub(crate) fn forward_timeout(&self) -> Duration {
        Duration::from_millis(self.forward_timeout_ms)
    }
}
