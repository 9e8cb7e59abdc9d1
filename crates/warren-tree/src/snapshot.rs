//! Snapshots of the whole tree. Twin of ZooKeeper's `FileSnap` + `DataTree.serialize`,
//! with our own layout:
//!
//! ```text
//! "WTSN" | int format (1) | long zxid
//! | int n, n × (long session, int timeout_ms, buffer password)         (id order)
//! | int n, n × (bool used, [vector<ACL>])                               (ACL table slots)
//! | int n, n × (ustring path, buffer data, int acl, long czxid, long mzxid, long pzxid,
//!               long ctime, long mtime, long ephemeralOwner, int version,
//!               int cversion (stored), int aversion)                    (path order)
//! | long digest | CRC32 (IEEE) of every byte before it, big-endian
//! ```
//!
//! Decoding checks the CRC first, then every node in order (strictly increasing paths, a
//! valid path, a parent that exists and is not ephemeral, a known ACL slot and owner
//! session), counts children through a stack of ancestors, builds the node set in bulk, and
//! finally requires the digest summed over the nodes to equal the stored one.

use thiserror::Error;
use warren_proto::{Acl, DecodeError, Reader, Record, Writer};

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::acl::AclTable;
use crate::node::{Node, NodeKind};
use crate::path;
use crate::tree::{DataTree, Session};

const MAGIC: &[u8; 4] = b"WTSN";
/// The current snapshot format version.
pub const SNAPSHOT_FORMAT_V1: i32 = 1;

/// Why snapshot bytes were rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Too short to hold the header and the CRC.
    #[error("snapshot truncated ({0} bytes)")]
    Truncated(usize),
    /// The CRC at the end does not match the bytes.
    #[error("snapshot checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// CRC in the file.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// Not written by this crate.
    #[error("bad snapshot magic")]
    BadMagic,
    /// A format version this build does not know.
    #[error("unknown snapshot format version {0}")]
    UnknownVersion(i32),
    /// The body does not parse.
    #[error("snapshot body: {0}")]
    Decode(#[from] DecodeError),
    /// The body parses but breaks an invariant of the tree.
    #[error("snapshot inconsistent: {0}")]
    Inconsistent(String),
    /// The digest of the rebuilt tree differs from the stored one.
    #[error("snapshot digest mismatch: stored {stored:#018x}, recomputed {recomputed:#018x}")]
    Digest {
        /// Digest in the file.
        stored: u64,
        /// Digest of the rebuilt tree.
        recomputed: u64,
    },
}

/// What a snapshot holds, frozen at one moment (see [`DataTree::begin_freeze`]). The nodes
/// are shared with the tree (a reference count each, see `Node`), so the view costs one
/// pointer per znode and encodes on any thread.
#[derive(Debug, Clone)]
pub struct SnapshotView {
    nodes: Vec<Node>,
    sessions: Vec<(i64, i32, [u8; 16])>,
    acls: Vec<Option<Vec<Acl>>>,
    zxid: i64,
    digest: u64,
    data_size: i64,
}

impl SnapshotView {
    /// The snapshot bytes, equal to [`DataTree::encode_snapshot`] of the tree when the freeze
    /// began.
    pub fn encode(&self) -> Vec<u8> {
        encode(Parts {
            nodes: self.nodes.iter(),
            sessions: self.sessions.iter().map(|(id, t, p)| (*id, *t, p)),
            acls: self.acls.iter().map(|s| s.as_deref()),
            zxid: self.zxid,
            digest: self.digest,
            data_size: self.data_size,
        })
    }

    /// The zxid of the last command the frozen tree applied.
    pub fn zxid(&self) -> i64 {
        self.zxid
    }
}

/// A freeze in progress, kept in the tree it freezes.
///
/// The nodes are copied into `view` in path order, a chunk at a time
/// ([`DataTree::freeze_some`]), while the tree goes on applying in between. Every node
/// change goes through `DataTree::before_change` first, which keeps the node as it was when
/// the freeze began (or its absence) if its path is not copied yet and it was not kept
/// already; copying prefers those before-images to the live nodes. So the view is the tree
/// at the freeze's start, and no single step holds the tree for long.
#[derive(Debug, Clone)]
pub(crate) struct Freezing {
    view: SnapshotView,
    /// Every path up to and including this one is in `view` (`None`: no path yet).
    cursor: Option<Box<[u8]>>,
    /// Nodes past `cursor` changed since the freeze began, as they were then.
    before: BTreeMap<Box<[u8]>, Option<Node>>,
    /// Every node is copied (the tree was replaced by a restore meanwhile).
    done: bool,
}

impl Freezing {
    /// Keeps the node at `path` as it is now if the freeze still needs it.
    pub(crate) fn note(&mut self, path: &[u8], nodes: &BTreeSet<Node>) {
        if self.done
            || self.cursor.as_deref().is_some_and(|c| path <= c)
            || self.before.contains_key(path)
        {
            return;
        }
        self.before.insert(path.into(), nodes.get(path).cloned());
    }

    /// Copies up to `max` paths past the cursor; true when every path is copied.
    fn copy_some(&mut self, nodes: &BTreeSet<Node>, max: usize) -> bool {
        let from = match &self.cursor {
            Some(c) => Bound::Excluded(&**c),
            None => Bound::Unbounded,
        };
        let mut live = nodes.range::<[u8], _>((from, Bound::Unbounded)).peekable();
        let mut kept = self
            .before
            .range::<[u8], _>((from, Bound::Unbounded))
            .peekable();
        let mut last: Option<&[u8]> = None;
        for _ in 0..max {
            let next_live = live.peek().map(|n| n.path_bytes());
            let next_kept = kept.peek().map(|(p, _)| &***p);
            let (path, node) = match (next_live, next_kept) {
                (None, None) => break,
                // The kept image wins over the live node of the same path.
                (Some(l), Some(k)) if k <= l => {
                    if k == l {
                        live.next();
                    }
                    let (p, n) = kept.next().expect("peeked");
                    (&**p, n.as_ref())
                }
                (Some(_), _) => {
                    let n = live.next().expect("peeked");
                    (n.path_bytes(), Some(n))
                }
                (None, Some(_)) => {
                    let (p, n) = kept.next().expect("peeked");
                    (&**p, n.as_ref())
                }
            };
            if let Some(n) = node {
                self.view.nodes.push(n.clone());
            }
            last = Some(path);
        }
        let finished = live.peek().is_none() && kept.peek().is_none();
        if let Some(last) = last {
            let last: Box<[u8]> = last.into();
            // Images at or before the cursor are copied and no longer needed.
            let mut rest = self.before.split_off(&last);
            rest.remove(&last);
            self.before = rest;
            self.cursor = Some(last);
        }
        finished
    }
}

/// Borrowed parts of a tree, encoded by [`encode`].
struct Parts<N, S, A> {
    nodes: N,
    sessions: S,
    acls: A,
    zxid: i64,
    digest: u64,
    data_size: i64,
}

fn encode<'a, N, S, A>(p: Parts<N, S, A>) -> Vec<u8>
where
    N: ExactSizeIterator<Item = &'a Node>,
    S: ExactSizeIterator<Item = (i64, i32, &'a [u8; 16])>,
    A: ExactSizeIterator<Item = Option<&'a [Acl]>>,
{
    let mut w = Writer::from_vec(Vec::with_capacity(64 + p.data_size as usize * 2));
    w.raw(MAGIC).int(SNAPSHOT_FORMAT_V1).long(p.zxid);
    w.int(len_i32(p.sessions.len()));
    for (id, timeout_ms, password) in p.sessions {
        w.long(id).int(timeout_ms).buffer(password);
    }
    w.int(len_i32(p.acls.len()));
    for s in p.acls {
        w.boolean(s.is_some());
        if let Some(acl) = s {
            w.vec(acl, |w, a| a.encode(w));
        }
    }
    w.int(len_i32(p.nodes.len()));
    for n in p.nodes {
        // A ustring's bytes; the path was valid UTF-8 when the node was made, and checking
        // it again here was a fifth of an encoding thread's time (perf, a create load).
        w.buffer(n.path_bytes());
        match n.data() {
            Some(d) => w.buffer(d),
            None => w.null_buffer(),
        };
        w.int(n.acl() as i32);
        w.long(n.czxid())
            .long(n.mzxid())
            .long(n.pzxid())
            .long(n.ctime())
            .long(n.mtime());
        w.long(n.ephemeral_owner())
            .int(n.version())
            .int(n.cversion())
            .int(n.aversion());
    }
    w.long(p.digest as i64);
    let mut out = w.into_vec();
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

impl DataTree {
    /// The tree as snapshot bytes (deterministic: equal trees give equal bytes).
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let acls: Vec<Option<&[Acl]>> = self.acls.slots().collect();
        encode(Parts {
            nodes: self.nodes.iter(),
            sessions: self
                .sessions
                .iter()
                .map(|(id, s)| (*id, s.timeout_ms, &s.password)),
            acls: acls.into_iter(),
            zxid: self.zxid,
            digest: self.digest,
            data_size: self.data_size,
        })
    }

    /// Begins freezing the tree as it is now for a snapshot; [`DataTree::freeze_some`]
    /// copies its nodes a chunk at a time while commands go on applying, and returns the
    /// view when done. This copies only the sessions and the ACL table. A freeze already in
    /// progress is dropped.
    pub fn begin_freeze(&mut self) {
        let view = SnapshotView {
            nodes: Vec::with_capacity(self.nodes.len()),
            sessions: self
                .sessions
                .iter()
                .map(|(id, s)| (*id, s.timeout_ms, s.password))
                .collect(),
            acls: self.acls.slots().map(|s| s.map(<[Acl]>::to_vec)).collect(),
            zxid: self.zxid,
            digest: self.digest,
            data_size: self.data_size,
        };
        self.freezing = Some(Box::new(Freezing {
            view,
            cursor: None,
            before: BTreeMap::new(),
            done: false,
        }));
    }

    /// Copies up to `max_nodes` more nodes into the freeze begun by
    /// [`DataTree::begin_freeze`]; returns the finished view once every node is copied
    /// (and ends the freeze), `None` while nodes remain, and also `None` with no freeze in
    /// progress.
    pub fn freeze_some(&mut self, max_nodes: usize) -> Option<SnapshotView> {
        let f = self.freezing.as_mut()?;
        if f.done || f.copy_some(&self.nodes, max_nodes.max(1)) {
            return self.freezing.take().map(|f| f.view);
        }
        None
    }

    /// Whether a freeze is in progress.
    pub fn freezing(&self) -> bool {
        self.freezing.is_some()
    }

    /// Replaces this tree with `new` (a restored snapshot), finishing a freeze in progress
    /// first and handing it to `new`, so [`DataTree::freeze_some`] still returns the view of
    /// the tree it began on.
    pub fn replace_with(&mut self, mut new: DataTree) {
        if let Some(mut f) = self.freezing.take() {
            if !f.done {
                let finished = f.copy_some(&self.nodes, usize::MAX);
                debug_assert!(finished, "an unbounded copy finishes");
                f.done = true;
            }
            new.freezing = Some(f);
        }
        *self = new;
    }

    /// Rebuilds a tree from [`DataTree::encode_snapshot`] bytes, verifying the CRC, the
    /// structure and the digest.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<DataTree, SnapshotError> {
        if bytes.len() < MAGIC.len() + 4 + 4 {
            return Err(SnapshotError::Truncated(bytes.len()));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(SnapshotError::Checksum { stored, computed });
        }
        let (magic, body) = body.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let mut r = Reader::new(body);
        let version = r.int()?;
        if version != SNAPSHOT_FORMAT_V1 {
            return Err(SnapshotError::UnknownVersion(version));
        }
        let tree = decode_v1(&mut r)?;
        r.finish()?;
        Ok(tree)
    }
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).expect("snapshot sections hold fewer than 2^31 entries")
}

fn inconsistent(msg: String) -> SnapshotError {
    SnapshotError::Inconsistent(msg)
}

fn decode_v1(r: &mut Reader<'_>) -> Result<DataTree, SnapshotError> {
    let mut t = DataTree::new();
    t.nodes.clear();
    t.acls = AclTable::default();
    t.digest = 0;
    t.data_size = 0;
    t.zxid = r.long()?;

    let sessions = r.vec(8 + 4 + 4, |r| {
        let id = r.long()?;
        let timeout_ms = r.int()?;
        let pw = r.buffer()?;
        let password = <[u8; 16]>::try_from(pw).map_err(|_| DecodeError::BadValue {
            field: "password length",
            value: pw.len() as i64,
        })?;
        Ok((
            id,
            Session {
                timeout_ms,
                password,
                ephemerals: Default::default(),
            },
        ))
    })?;
    for (id, s) in sessions {
        if t.sessions.insert(id, s).is_some() {
            return Err(inconsistent(format!("session {id:#x} twice")));
        }
    }

    let slots = r.vec(1, |r| {
        if r.boolean()? {
            r.vec(12, Acl::decode).map(Some)
        } else {
            Ok(None)
        }
    })?;
    t.acls = AclTable::from_slots(slots.clone());

    let count = r.int()?;
    let count = usize::try_from(count).map_err(|_| inconsistent(format!("node count {count}")))?;
    // Nodes arrive in path order: they are checked and counted into a Vec, then the set is
    // built in bulk (no descent per node), and the digest is summed on the way.
    let mut nodes: Vec<Node> = Vec::with_capacity(count.min(r.remaining() / NODE_BYTES_MIN));
    let mut ancestors = Ancestors::default();
    for _ in 0..count {
        let n = decode_node(r, &slots)?;
        let p = n.path();
        if nodes
            .last()
            .is_some_and(|q| q.path_bytes() >= n.path_bytes())
        {
            return Err(inconsistent(format!("{p} out of order")));
        }
        if p == "/" {
            if !nodes.is_empty() {
                return Err(inconsistent("the root is not first".into()));
            }
        } else {
            if !path::is_valid_path(p) {
                return Err(inconsistent(format!("invalid path {p:?}")));
            }
            let parent = path::parent_of(p).expect("a valid non-root path has a parent");
            let i = ancestors
                .find(&nodes, parent)
                .ok_or_else(|| inconsistent(format!("{p} has no parent")))?;
            let q = &mut nodes[i];
            if matches!(q.kind(), NodeKind::Ephemeral(_)) {
                return Err(inconsistent(format!("{p} is under an ephemeral")));
            }
            q.set_num_children(q.num_children() + 1);
        }
        if let NodeKind::Ephemeral(s) = n.kind()
            && !t.sessions.contains_key(&s)
        {
            return Err(inconsistent(format!("{p} owned by unknown session {s:#x}")));
        }
        t.acls.add_ref(n.acl());
        let (kind, len) = (n.kind(), n.data_len());
        if kind != NodeKind::Persistent {
            let hash = t.node_hash(&n);
            t.add_indexes(p, hash, kind, len);
        } else {
            // Hashed after the loop, in parallel (`persistent_digest`).
            t.data_size += (p.len() + len) as i64;
        }
        ancestors.push(nodes.len());
        nodes.push(n);
    }
    if nodes.first().is_none_or(|n| n.path() != "/") {
        return Err(inconsistent("no root".into()));
    }
    t.digest = t.digest.wrapping_add(persistent_digest(&nodes, &t.acls));
    t.nodes = BTreeSet::from_iter(nodes);
    if t.acls.unused() != 0 {
        return Err(inconsistent("an ACL slot no node uses".into()));
    }
    let stored = r.long()? as u64;
    if stored != t.digest {
        return Err(SnapshotError::Digest {
            stored,
            recomputed: t.digest,
        });
    }
    debug_assert_eq!(t.digest, t.compute_digest(), "summed digest");
    Ok(t)
}

/// Nodes below which `persistent_digest` hashes on one thread.
const PARALLEL_DIGEST_NODES_MIN: usize = 100_000;

/// The sum of the persistent nodes' hashes, on two threads for a large tree. Hashing is a
/// serial chain of multiplications per node, about a seventh of the CPU of a restart with
/// 1M znodes (perf), and a wrapping sum is the same whatever order it is taken in, so the
/// result is deterministic.
fn persistent_digest(nodes: &[Node], acls: &AclTable) -> u64 {
    let sum = |part: &[Node]| {
        part.iter()
            .filter(|n| n.kind() == NodeKind::Persistent)
            .fold(0u64, |d, n| d.wrapping_add(DataTree::hash_of(n, acls)))
    };
    if nodes.len() < PARALLEL_DIGEST_NODES_MIN {
        return sum(nodes);
    }
    let (a, b) = nodes.split_at(nodes.len() / 2);
    std::thread::scope(|s| {
        let other = s.spawn(|| sum(b));
        let mine = sum(a);
        mine.wrapping_add(other.join().expect("hashing nodes does not panic"))
    })
}

/// The fewest bytes one encoded node takes (path and data lengths, ACL, stat), to bound a
/// preallocation by what the input can hold.
const NODE_BYTES_MIN: usize = 4 + 4 + 4 + 6 * 8 + 3 * 4;

fn decode_node(r: &mut Reader<'_>, slots: &[Option<Vec<Acl>>]) -> Result<Node, SnapshotError> {
    let p = r.buffer()?;
    let p = std::str::from_utf8(p).map_err(|_| inconsistent(format!("path {p:?} is not UTF-8")))?;
    let data = r.opt_buffer()?;
    let acl = r.int()?;
    let acl = u32::try_from(acl)
        .ok()
        .filter(|&a| slots.get(a as usize).is_some_and(Option::is_some))
        .ok_or_else(|| inconsistent(format!("{p}: ACL index {acl}")))?;
    let mut n = Node::new(p, 0, 0, 0, acl, data);
    n.set_czxid(r.long()?);
    n.set_mzxid(r.long()?);
    n.set_pzxid(r.long()?);
    n.set_ctime(r.long()?);
    n.set_mtime(r.long()?);
    n.set_ephemeral_owner(r.long()?);
    n.set_version(r.int()?);
    n.set_cversion(r.int()?);
    n.set_aversion(r.int()?);
    Ok(n)
}

/// The chain of nodes (indexes into the decoded Vec) whose subtree the path-order walk is
/// in, so a node's parent is usually found without a search. Byte order can interleave a
/// sibling between a node and its children (`/a`, `/a-b`, `/a/x`); then the parent is
/// found by binary search of the nodes decoded so far (sorted, checked above).
#[derive(Default)]
struct Ancestors {
    stack: Vec<usize>,
}

impl Ancestors {
    fn find(&mut self, nodes: &[Node], parent: &str) -> Option<usize> {
        let parent = parent.as_bytes();
        while let Some(&top) = self.stack.last() {
            let t = nodes[top].path_bytes();
            if t == parent {
                return Some(top);
            }
            let is_ancestor =
                t == b"/" || (parent.starts_with(t) && parent.get(t.len()) == Some(&b'/'));
            if is_ancestor {
                break;
            }
            self.stack.pop();
        }
        nodes.binary_search_by(|n| n.path_bytes().cmp(parent)).ok()
    }

    fn push(&mut self, index: usize) {
        self.stack.push(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_on_two_threads_is_the_sum_on_one() {
        // Past the threshold, so the nodes are hashed in two halves on two threads; every
        // tenth node is an ephemeral, which the sum leaves to the decode loop.
        let acls = AclTable::from_slots(vec![Some(Acl::open_unsafe())]);
        let n = PARALLEL_DIGEST_NODES_MIN + 1_001;
        let nodes: Vec<Node> = (0..n)
            .map(|i| {
                let owner = if i % 10 == 0 {
                    0x0100_0000_0000_0001
                } else {
                    0
                };
                let data = [i as u8; 9];
                Node::new(&format!("/n/{i:07}"), i as i64, 7, owner, 0, Some(&data))
            })
            .collect();
        let one_thread = |part: &[Node]| {
            part.iter()
                .filter(|n| n.kind() == NodeKind::Persistent)
                .fold(0u64, |d, n| d.wrapping_add(DataTree::hash_of(n, &acls)))
        };
        assert_eq!(persistent_digest(&nodes, &acls), one_thread(&nodes));
        // Below the threshold the same sum comes from one thread.
        let few = &nodes[..1_000];
        let expected = one_thread(few);
        assert_eq!(persistent_digest(few, &acls), expected);
        assert_ne!(expected, 0);
    }
}
