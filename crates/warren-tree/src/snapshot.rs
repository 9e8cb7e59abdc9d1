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

use std::collections::BTreeSet;

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

impl DataTree {
    /// The tree as snapshot bytes (deterministic: equal trees give equal bytes).
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut w = Writer::from_vec(Vec::with_capacity(64 + self.data_size as usize * 2));
        w.raw(MAGIC).int(SNAPSHOT_FORMAT_V1).long(self.zxid);
        w.int(len_i32(self.sessions.len()));
        for (id, s) in &self.sessions {
            w.long(*id).int(s.timeout_ms).buffer(&s.password);
        }
        let slots: Vec<Option<&[Acl]>> = self.acls.slots().collect();
        w.int(len_i32(slots.len()));
        for s in slots {
            w.boolean(s.is_some());
            if let Some(acl) = s {
                w.vec(acl, |w, a| a.encode(w));
            }
        }
        w.int(len_i32(self.nodes.len()));
        for n in &self.nodes {
            w.ustring(n.path());
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
        w.long(self.digest as i64);
        let mut out = w.into_vec();
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
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
        let hash = t.node_hash(&n);
        let (kind, len) = (n.kind(), n.data_len());
        if kind != NodeKind::Persistent {
            t.add_indexes(p, hash, kind, len);
        } else {
            t.digest = t.digest.wrapping_add(hash);
            t.data_size += (p.len() + len) as i64;
        }
        ancestors.push(nodes.len());
        nodes.push(n);
    }
    if nodes.first().is_none_or(|n| n.path() != "/") {
        return Err(inconsistent("no root".into()));
    }
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
