//! warren-raft: the only crate that names openraft's types.
//!
//! It replicates **opaque payload bytes** through Raft and drives a [`StateMachine`] trait
//! object that the server implements over its data tree. A standalone server is a one-voter
//! ensemble of this same code.
//!
//! # Layout
//! - [`types`]: the openraft type configuration (node id `u64`, [`PeerNode`], [`Payload`]).
//! - `codec`: hand-written, versioned encodings of entries, hard state, snapshot metadata.
//! - [`backend`]: the three stores (log, meta, snapshots) as traits, and [`MemBackend`].
//! - `storage`: the real stores over warren-storage.
//! - `log_store`: openraft's log storage with group commit on a dedicated I/O thread.
//! - `state_machine`: [`StateMachine`] and its openraft adapter (apply, snapshots).
//! - [`network`]: the peer network over a [`PeerTransport`] ([`NoPeers`] for now).
//! - `node`: [`RaftNode`], the API the server uses.
//!
//! # How a proposal flows
//! `RaftNode::propose` → openraft leader appends → `LogStore::append` (readable at once,
//! queued) → I/O thread writes the batch, ONE fsync, completes every waiting append → commit
//! (a quorum, here just us) → the state machine worker reads the entries → `StateMachine::apply`
//! in log order → `propose` returns the index.
//!
//! # Invariants
//! - No entry is reported durable before the fsync covering it returned.
//! - Any storage error stops the node; nothing is retried or skipped.
//! - Entries reach `StateMachine::apply` exactly once each, in index order, across restarts
//!   (a restart restores the newest snapshot, then re-applies the committed log after it).

pub mod backend;
mod codec;
mod log_store;
pub mod network;
mod node;
mod state_machine;
pub mod storage;
pub mod types;

pub use backend::{Backends, MemBackend};
pub use network::{NoPeers, PeerTransport, TransportError};
pub use node::{IoStats, NodeStatus, ProposeError, RaftConfig, RaftError, RaftNode, Role};
pub use state_machine::StateMachine;
pub use types::{Payload, PeerNode, TypeConfig};
