//! The openraft type configuration: who is a node, what an entry carries.
//!
//! Standard Raft leader ids (one leader per term) are used, so a log id is `(term, index)`
//! and a vote is `(term, voted_for, committed)`, the shapes the codec writes to disk.

use std::fmt;

use bytes::Bytes;

/// The opaque bytes one log entry carries to [`crate::StateMachine::apply`].
///
/// A newtype over [`Bytes`] so cloning an entry (openraft clones entries between its log,
/// replication and apply paths) never copies the payload.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Payload(pub Bytes);

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0.len())
    }
}

/// A member of the ensemble as Raft's membership records it: where its peers reach it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PeerNode {
    /// The peer (quorum) address, `host:port`.
    pub addr: String,
}

openraft::declare_raft_types!(
    /// warren's openraft type configuration.
    pub TypeConfig:
        D = Payload,
        R = (),
        NodeId = u64,
        Node = PeerNode,
        Term = u64,
        LeaderId = openraft::vote::leader_id_std::LeaderId<u64, u64>,
        Vote = openraft::impls::Vote<openraft::vote::leader_id_std::LeaderId<u64, u64>>,
        AsyncRuntime = openraft_rt_tokio::TokioRuntime,
);

/// The standard-mode leader id: `(term, voted_for)`.
pub(crate) type LeaderId = openraft::vote::leader_id_std::LeaderId<u64, u64>;
/// The committed leader id carried by log ids: just the term.
pub(crate) type CommittedLeaderId = openraft::vote::leader_id_std::CommittedLeaderId<u64>;
/// A log id: `(term, index)` in standard Raft mode.
pub(crate) type LogId = openraft::LogId<CommittedLeaderId>;
/// A stored vote.
pub(crate) type Vote = openraft::impls::Vote<LeaderId>;
/// The payload of a log entry: blank, normal or membership.
pub(crate) type EntryPayload = openraft::EntryPayload<Payload, u64, PeerNode>;
/// A log entry.
pub(crate) type Entry = openraft::Entry<CommittedLeaderId, EntryPayload>;
/// A membership config.
pub(crate) type Membership = openraft::Membership<u64, PeerNode>;
/// A membership config together with the log id that introduced it.
pub(crate) type StoredMembership = openraft::StoredMembership<CommittedLeaderId, u64, PeerNode>;
/// Snapshot metadata.
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<CommittedLeaderId, u64, PeerNode>;

/// Builds a log id from its parts.
pub(crate) fn log_id(term: u64, index: u64) -> LogId {
    openraft::LogId::new(CommittedLeaderId::new(term), index)
}
/// A snapshot as openraft handles it: metadata plus the state machine's bytes.
pub(crate) type Snapshot = openraft::Snapshot<CommittedLeaderId, u64, PeerNode, Vec<u8>>;
