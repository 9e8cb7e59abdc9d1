//! warren-tree: the deterministic ZooKeeper state machine.
//!
//! It is pure: no clock, no randomness, no I/O. Time, session ids and the caller's
//! identities arrive inside each [`Command`]; anything iterated into bytes (snapshots,
//! digests, child lists) is in path or id order, so replicas agree byte for byte.
//!
//! # Layout
//! - [`command`]: the log payload [`Command`]/[`Op`] (versioned bytes) and what applying it
//!   yields: [`Applied`] (zxid, [`Outcome`], [`Trigger`]s).
//! - `node`: one znode's buffer (path, stat, data in one allocation).
//! - `tree`: [`DataTree`] (znodes, sessions table, indexes) and the reads ([`NodeRef`],
//!   [`Children`]).
//! - `apply`: [`DataTree::apply`], ZooKeeper's write rules (twin of `PrepRequestProcessor`
//!   + `DataTree.processTxn`).
//! - [`path`]: `PathUtils.validatePath` and parent helpers.
//! - `acl`: `checkACL`, `fixupACL`, the `ip`/`digest` providers and the ACL table.
//! - `snapshot`: [`DataTree::encode_snapshot`] / [`DataTree::decode_snapshot`], and
//!   [`DataTree::begin_freeze`] / [`DataTree::freeze_some`] to freeze the tree a chunk at a
//!   time between applies and encode the view on another thread.
//! - `digest`: the rolling digest's hash.
//!
//! # How a write flows through it
//! The server decodes a request, builds a [`Command`], proposes `command.encode()` through
//! Raft (alone or in a batch, [`encode_batch`]); every replica calls [`decode_entry`] then
//! [`DataTree::apply`] on each command in log order. `apply` takes the next zxid, checks the
//! op in ZooKeeper's order (so a request fails with the code ZooKeeper gives), changes the
//! tree and returns the [`Outcome`] for the reply and the [`Trigger`]s for the watch
//! registry.
//!
//! # Invariants
//! - `num_children` of every node equals its number of children (checked for the touched
//!   nodes after every apply in debug builds; [`DataTree::check_invariants`] checks all).
//! - [`DataTree::digest`] always equals [`DataTree::compute_digest`].
//! - A failed command or multi changes nothing but the zxid.
//! - Every ephemeral's owner is in the sessions table.
//!
//! # Memory per znode
//! One ordered set of nodes; each node (`node.rs`) is ONE allocation holding its full path, its
//! persisted stat, ACL index and data, and the set is ordered and searched by the path
//! inside it (so the B-tree entry is a 16-byte box and its half-empty leaves cost little).
//! No children sets (children are found by a forward scan of the path order) and no
//! duplicate paths except in the ephemeral/container/TTL indexes; ACL lists are interned.
//! Stat-only changes (a parent's cversion, pzxid and child count) take the node out of the
//! set and put it back, which costs two descents but no allocation.
//! Estimate for a 100-byte znode with a 29-byte path (`warren bench --workload load`): the
//! node's shared buffer of 16 (reference counts) + 72 + 29 + 100 bytes (a 240-byte glibc
//! malloc chunk) plus ~40 bytes of B-tree (16-byte entries, leaves 55% full when keys are
//! appended): ~280 bytes.
//! Measured (`mem_test.rs`, 1M such znodes, release build): **260 resident bytes per
//! znode** (244 before the buffer was shared for snapshots), down from 356 with a map from
//! `Box<str>` to an 88-byte node with boxed data.
//! For comparison, a ZooKeeper 3.8 JVM holds roughly 430 live heap bytes for the same znode
//! (DataNode, StatPersisted, byte[], path String, map entry, the parent's children-set entry)
//! before GC headroom.
//!

pub mod command;
pub mod config;
pub mod path;

mod acl;
mod apply;
mod digest;
mod node;
mod snapshot;
mod tree;

#[cfg(test)]
mod mem_test;
#[cfg(test)]
mod script_test;
#[cfg(test)]
mod tree_test;

pub use command::{
    Applied, BATCH_FORMAT_V1, COMMAND_FORMAT_V1, Command, Op, Outcome, Trigger, decode_entry,
    encode_batch,
};
pub use node::{CONTAINER_OWNER, NodeKind, TTL_MASK, TTL_MAX_MS};
pub use snapshot::{SNAPSHOT_FORMAT_V1, SnapshotError, SnapshotView};
pub use tree::{Children, DataTree, NodeRef, Session};

/// `checkACL` on an ACL list, for callers that hold one (the tree's own reads use
/// [`DataTree::check_acl`]).
pub fn acl_allows(acl: &[warren_proto::Acl], perm: i32, auth: &[warren_proto::Id]) -> bool {
    acl::check(acl, perm, auth)
}
