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
//! Decoding checks the CRC first, then rebuilds the tree through the same primitive as
//! `apply` (so every index is derived, not trusted), and finally requires the recomputed
//! digest to equal the stored one.

use thiserror::Error;
use warren_proto::{Acl, DecodeError, Reader, Record, Writer};

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
        for (p, n) in &self.nodes {
            w.ustring(p);
            match &n.data {
                Some(d) => w.buffer(d),
                None => w.null_buffer(),
            };
            w.int(n.acl as i32);
            w.long(n.czxid)
                .long(n.mzxid)
                .long(n.pzxid)
                .long(n.ctime)
                .long(n.mtime);
            w.long(n.ephemeral_owner)
                .int(n.version)
                .int(n.cversion)
                .int(n.aversion);
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
    let n_slots = slots.len();

    let count = r.int()?;
    let count = usize::try_from(count).map_err(|_| inconsistent(format!("node count {count}")))?;
    let mut prev: Option<String> = None;
    for _ in 0..count {
        let p = r.ustring()?;
        let data: Option<Box<[u8]>> = r.opt_buffer()?.map(Into::into);
        let acl = r.int()?;
        let mut n = Node::new(0, 0, 0, 0, data);
        n.acl = u32::try_from(acl)
            .ok()
            .filter(|&a| (a as usize) < n_slots && slots[a as usize].is_some())
            .ok_or_else(|| inconsistent(format!("{p}: ACL index {acl}")))?;
        n.czxid = r.long()?;
        n.mzxid = r.long()?;
        n.pzxid = r.long()?;
        n.ctime = r.long()?;
        n.mtime = r.long()?;
        n.ephemeral_owner = r.long()?;
        n.version = r.int()?;
        n.cversion = r.int()?;
        n.aversion = r.int()?;
        check_node(&t, prev.as_deref(), &p, &n)?;
        t.replace(&p, Some(n));
        prev = Some(p);
    }
    if !t.nodes.contains_key("/") {
        return Err(inconsistent("no root".into()));
    }
    if t.acls.unused() != 0 {
        return Err(inconsistent("an ACL slot no node uses".into()));
    }
    let stored = r.long()? as u64;
    let recomputed = t.compute_digest();
    if stored != recomputed || t.digest != recomputed {
        return Err(SnapshotError::Digest { stored, recomputed });
    }
    Ok(t)
}

/// A node may be loaded only in path order (so its parent is already there), under a
/// parent that may have children, with an owner session that exists.
fn check_node(t: &DataTree, prev: Option<&str>, p: &str, n: &Node) -> Result<(), SnapshotError> {
    if prev.is_some_and(|q| q >= p) {
        return Err(inconsistent(format!("{p} out of order")));
    }
    if p != "/" {
        if !path::is_valid_path(p) {
            return Err(inconsistent(format!("invalid path {p:?}")));
        }
        let parent = path::parent_of(p).expect("a valid non-root path has a parent");
        match t.nodes.get(parent) {
            None => return Err(inconsistent(format!("{p} has no parent"))),
            Some(q) if matches!(q.kind(), NodeKind::Ephemeral(_)) => {
                return Err(inconsistent(format!("{p} is under an ephemeral")));
            }
            Some(_) => {}
        }
    }
    match n.kind() {
        NodeKind::Ephemeral(s) if !t.sessions.contains_key(&s) => {
            Err(inconsistent(format!("{p} owned by unknown session {s:#x}")))
        }
        _ => Ok(()),
    }
}
