//! warren-raft: the only crate that names openraft's types.
//!
//! It replicates **opaque payload bytes** through Raft and drives a [`StateMachine`] trait
//! object that the server implements over its data tree. A standalone server is a one-voter
//! ensemble of this same code; an ensemble adds members, not code paths.
//!
//! # Layout
//! - [`types`]: the openraft type configuration (node id `u64`, [`PeerNode`], [`Payload`]).
//! - `codec`: hand-written, versioned encodings of entries, hard state, snapshot metadata.
//! - [`backend`]: the three stores (log, meta, snapshots) as traits, and [`MemBackend`].
//! - `storage`: the real stores over warren-storage.
//! - `log_store`: openraft's log storage with group commit on a dedicated I/O thread.
//! - `state_machine`: [`StateMachine`] and its openraft adapter (apply, snapshots).
//! - `config`: [`RaftConfig`].
//! - [`network`]: [`PeerTransport`] ([`TcpTransport`], [`NoPeers`]) and openraft's network
//!   over it (`PeerClient`: one Raft stream per peer and purpose, and a pipelined append
//!   stream for replication).
//! - `wire`: the peer wire format (below).
//! - `peer_server`: the peer listener; serves Raft streams and client streams.
//! - `link`: this node's client streams to its peers (forwards, read index, app messages).
//! - `ensemble`: formation, learners, resetting the stream to a deposed leader.
//! - `core`: what the node, the peer server and the tasks share.
//! - `node`: [`RaftNode`], the API the server uses.
//!
//! # How a proposal flows
//! `RaftNode::submit` on the leader → openraft appends → `LogStore::append` (readable at once,
//! queued) → I/O thread writes the batch, ONE fsync, completes every waiting append; at the
//! same time replication to the followers (append-entries on their append streams, sent as
//! soon as the entries are queued, without waiting for earlier answers; each follower fsyncs
//! before answering) → commit once a quorum, the leader's own fsync included, holds them
//! durably → the state machine worker reads the entries →
//! `StateMachine::apply` in log order on every node → the outcome future resolves with the
//! index.
//!
//! On a follower or learner, `submit` **forwards**: the payload is queued on this node's one
//! client stream to the leader it knows (ZooKeeper's followers forward writes too). The leader
//! reads that stream in order and enqueues each payload into its Raft core before reading the
//! next, so one follower's proposals keep their order; it answers each with the log index once
//! applied there (answers may overtake each other, matched by request id), and the follower's
//! future resolves once it has applied that index itself. Outcomes:
//! - `NotLeader`: certainly not in the log (no leader known within three maximal election
//!   timeouts, the stream to the leader could not be opened, or the node asked no longer
//!   leads);
//! - `Indeterminate`: sent, then the stream failed or the leader changed (it is reset when
//!   the follower sees another leader) or no answer within `forward_timeout_ms`; it may
//!   commit. A later proposal of the same node is never ordered before it: a follower's
//!   client streams carry growing epochs, and the leader enqueues nothing from an older
//!   stream once a newer one opened.
//!
//! `read_index` on a follower asks the leader for a read index (openraft's read linearizer:
//! the leader confirms its leadership with a quorum) and waits until it has applied that
//! index. `send_app`/`call_app` carry the server's own messages (session pings) on the same
//! client streams.
//!
//! # Formation and membership
//! Every member starts with the same `RaftConfig::members` (ZooKeeper's `server.N` lines);
//! the order does not matter and `start` does not wait for a quorum. Only the lowest voter
//! id ever initializes, once, on an empty log, after a majority of voters answered a probe
//! that they never belonged to an ensemble, and none that it did (see `ensemble`). Learners
//! (observers, `RaftConfig::learners`) are added by whichever node leads, when missing from
//! the membership. `reconfig` maps to [`RaftNode::add_learner`],
//! [`RaftNode::change_membership`] and [`RaftNode::remove_node`] on the leader. A wiped
//! node rejoins: the leader refills its log, by snapshot when the log was purged (openraft's
//! `allow_log_reversion`).
//!
//! # Peer wire format (version 2)
//! All integers little-endian. Each node listens on its peer address (ZooKeeper's peer port;
//! not opened by a standalone node). A dialer opens a stream per purpose and starts it with a
//! 32-byte handshake:
//! ```text
//! "WRNP" | u8 version=2 | u8 kind (1 Raft, 2 client, 3 append) | u16 0 | u64 from | u64 to | u64 epoch
//! ```
//! (the acceptor checks `to` is itself; `epoch` orders a node's client streams). Then frames:
//! `u32 length | u8 type | body`, at most 64 MiB on Raft streams and 16 MiB on client
//! streams, checked before allocating. A frame that is too long or does not decode closes
//! that connection only.
//!
//! Shared encodings: `vote = u64 term | u64 node | u8 committed`;
//! `logid? = u8 0 | u8 1, u64 term, u64 index`; `bytes = u32 len | len bytes`;
//! `entry` is the on-disk entry encoding (`codec`); `meta` the snapshot metadata encoding.
//!
//! Raft stream, one request then its reply (types `0x8_` are replies):
//! ```text
//! 1 AppendEntries   vote | logid? prev | logid? leader_commit | u32 n | n × bytes(entry)
//! 2 Vote, 3 PreVote vote | logid? last_log | u8 leadership_transfer
//! 4 SnapshotChunk   u64 offset | u8 last | [last: vote | bytes(meta)] | data to the end
//! 5 TransferLeader  vote from_leader | u64 to | logid? last_log
//! 6 Probe           (formation: "were you ever part of an ensemble?")
//! 0x81 u8 0 Success | 1 PartialSuccess logid? | 2 Conflict | 3 HigherVote vote
//! 0x82 vote | u8 granted | logid? last_log
//! 0x84 u8 0 (chunk stored, send the next) | u8 1 vote (installed)
//! 0x85 u8 0 ok | 1 VoteChanged vote vote | 2 LogNotFlushed logid? logid?
//! 0x86 u8 initialized          0xFF bytes(reason): the receiver could not handle it
//! ```
//! An append batch larger than 32 MiB goes out in part (reported as `PartialSuccess`);
//! snapshots go in 16 MiB chunks, reassembled up to `RaftConfig::snapshot_bytes_max`.
//! Timeouts are openraft's `RPCOption::soft_ttl`, never under `rpc_timeout_min_ms`; any
//! failure drops that stream and the next RPC reconnects.
//!
//! Append stream (version 2), pipelined: the leader writes each append-entries (type 1
//! above) as soon as openraft makes it, without waiting for the answers to those before;
//! the follower answers each in order, once its entries are durable:
//! ```text
//! 0x87 u8 0 matched logid? | u8 1 Conflict logid | u8 2 HigherVote vote
//! 0xFF bytes(reason)                     the receiver could not handle it
//! ```
//! After an error answer the follower closes the stream. A request over 32 MiB of entries
//! goes as several frames, each a request of its own (`prev` = the last entry of the frame
//! before), each answered. Version 1 had no append stream: an ensemble does not mix versions
//! (the handshake refuses the other version).
//!
//! Client stream, pipelined, replies in any order:
//! ```text
//! 10 Forward u64 id | payload to the end     0x8A u64 id | result
//! 11 ReadIndex u64 id                        0x8B u64 id | result
//! 12 AppSend payload to the end              (no reply)
//! 13 AppCall u64 id | payload to the end     0x8D u64 id | u8 0, reply to the end | u8 1, bytes(reason)
//! result = u8 0, u64 index | u8 1 NotLeader leader? | u8 2 Indeterminate leader?
//! leader? = u8 0 | u8 1, u64 id, bytes(addr)
//! ```
//! Bounds: 4,096 requests in flight per client stream, 1,024 frames queued per link (an
//! `AppSend` is dropped when full), 256 peer connections per node.
//!
//! # Invariants
//! - No entry is reported durable before the fsync covering it returned.
//! - Any storage error stops the node; nothing is retried or skipped.
//! - Entries reach `StateMachine::apply` exactly once each, in index order, across restarts
//!   (a restart restores the newest snapshot, then re-applies the committed log after it).
//! - Nothing a peer sends can panic this node: every peer input is decoded with bounds and a
//!   bad one closes its connection.

mod applied;
pub mod backend;
mod codec;
mod config;
mod core;
mod ensemble;
mod link;
mod log_store;
pub mod network;
mod node;
mod peer_server;
mod state_machine;
pub mod storage;
pub mod types;
mod wire;

pub use backend::{Backends, MemBackend};
pub use config::RaftConfig;
pub use core::{AppHandler, CallHandler};
pub use network::{
    ConnectFuture, NoPeers, PeerIo, PeerStream, PeerTransport, TcpTransport, TransportError,
};
pub use node::{
    AppCallError, IoStats, NodeStatus, PAYLOAD_BYTES_MAX, ProposeError, RaftError, RaftNode, Role,
};
pub use state_machine::{SnapshotEncoder, StateMachine};
pub use types::{Payload, PeerNode, TypeConfig};
