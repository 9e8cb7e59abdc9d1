//! `DataTree`: the znodes, the sessions table and the indexes kept beside them. Twin of
//! ZooKeeper's `DataTree` (state and reads); `apply.rs` holds the write rules.
//!
//! Every mutation goes through [`DataTree::replace`] (a node appears, changes or disappears)
//! or [`DataTree::set_child_meta`] (a parent's cversion/pzxid), which keep the parent's
//! `num_children`, the ephemeral/container/TTL indexes, the ACL reference counts, the data
//! size and the digest in step. Both return what they overwrote, so a failed multi rolls
//! back by replaying its undo list.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use warren_proto::{Acl, ErrorCode, Id, SessionId, Stat, Zxid, perms};

use crate::acl::{self, AclTable};
use crate::digest;
use crate::node::{Node, NodeKind};
use crate::path;

/// One entry of the sessions table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Negotiated timeout in ms.
    pub timeout_ms: i32,
    /// The password clients must present to resume the session.
    pub password: [u8; 16],
    pub(crate) ephemerals: BTreeSet<Box<str>>,
}

impl Session {
    /// The session's ephemeral paths, in path order.
    pub fn ephemerals(&self) -> impl Iterator<Item = &str> {
        self.ephemerals.iter().map(|p| &**p)
    }
}

/// An undo record of one primitive mutation (see the module doc).
#[derive(Debug)]
pub(crate) enum Undo {
    /// The node at this path was this before (`None`: it did not exist).
    Node(Box<str>, Option<Node>),
    /// This node's cversion and pzxid were these before.
    ChildMeta(Box<str>, i32, i64),
}

/// The replicated state: znodes, sessions, zxid. See the crate doc for the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataTree {
    /// Every znode by full path. Plain string order keeps a node's descendants right
    /// after it, so children are found by seeking past each child's subtree.
    pub(crate) nodes: BTreeMap<Box<str>, Node>,
    pub(crate) acls: AclTable,
    pub(crate) sessions: BTreeMap<i64, Session>,
    pub(crate) containers: BTreeSet<Box<str>>,
    pub(crate) ttls: BTreeSet<Box<str>>,
    pub(crate) zxid: i64,
    pub(crate) digest: u64,
    pub(crate) data_size: i64,
    pub(crate) ephemeral_count: usize,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl DataTree {
    /// A fresh tree as a ZooKeeper 3.8 server starts: `/`, `/zookeeper`, `/zookeeper/quota`
    /// (world:anyone ALL) and `/zookeeper/config` (world:anyone READ), all with zeroed
    /// stats. As in ZooKeeper these children are added without counting a creation, so `/`
    /// shows cversion -1 and `/zookeeper` shows -2.
    pub fn new() -> DataTree {
        let mut t = DataTree {
            nodes: BTreeMap::new(),
            acls: AclTable::default(),
            sessions: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            zxid: 0,
            digest: 0,
            data_size: 0,
            ephemeral_count: 0,
        };
        let open = t.acls.intern(&Acl::open_unsafe());
        let read = t.acls.intern(&[Acl {
            perms: perms::READ,
            id: Id::anyone(),
        }]);
        for (p, acl) in [
            ("/", open),
            ("/zookeeper", open),
            ("/zookeeper/quota", open),
            ("/zookeeper/config", read),
        ] {
            t.replace(p, Some(Node::new(0, 0, 0, acl, Some(Box::default()))));
        }
        t
    }

    // ---- primitives -------------------------------------------------------------------

    /// Looks a node up; `""` is the root, as in ZooKeeper (`/a`'s parent).
    pub(crate) fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(if path.is_empty() { "/" } else { path })
    }

    /// Puts `new` at `path` (or removes the node if `None`) and returns what was there,
    /// keeping every index in step. The parent must exist when a node appears.
    pub(crate) fn replace(&mut self, path: &str, new: Option<Node>) -> Option<Node> {
        let (old, added) = match new {
            Some(n) => {
                // Take the new ACL reference before releasing the old one, so a shared
                // slot is never freed in between.
                self.acls.add_ref(n.acl);
                let added = (self.node_hash(path, &n), n.kind(), n.data_len());
                let old = match self.nodes.get_mut(path) {
                    Some(slot) => Some(std::mem::replace(slot, n)),
                    None => {
                        self.nodes.insert(path.into(), n);
                        None
                    }
                };
                (old, Some(added))
            }
            None => (self.nodes.remove(path), None),
        };
        if let Some(o) = &old {
            self.remove_indexes(path, o);
        }
        if let Some((hash, kind, len)) = added {
            self.add_indexes(path, hash, kind, len);
        }
        if old.is_some() != added.is_some() && path != "/" {
            let parent = path::parent_of(path).expect("a stored path has a parent");
            let p = self
                .nodes
                .get_mut(parent)
                .expect("a stored node's parent exists");
            p.num_children += if old.is_none() { 1 } else { -1 };
        }
        old
    }

    fn add_indexes(&mut self, path: &str, hash: u64, kind: NodeKind, data_len: usize) {
        self.digest = self.digest.wrapping_add(hash);
        self.data_size += (path.len() + data_len) as i64;
        match kind {
            NodeKind::Persistent => {}
            NodeKind::Container => {
                self.containers.insert(path.into());
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(path.into());
            }
            NodeKind::Ephemeral(s) => {
                let session = self
                    .sessions
                    .get_mut(&s)
                    .expect("an ephemeral's owner is a live session");
                if session.ephemerals.insert(path.into()) {
                    self.ephemeral_count += 1;
                }
            }
        }
    }

    fn remove_indexes(&mut self, path: &str, n: &Node) {
        self.digest = self.digest.wrapping_sub(self.node_hash(path, n));
        self.acls.release(n.acl);
        self.data_size -= (path.len() + n.data_len()) as i64;
        match n.kind() {
            NodeKind::Persistent => {}
            NodeKind::Container => {
                self.containers.remove(path);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            NodeKind::Ephemeral(s) => {
                let removed = self
                    .sessions
                    .get_mut(&s)
                    .is_some_and(|session| session.ephemerals.remove(path));
                if removed {
                    self.ephemeral_count -= 1;
                }
            }
        }
    }

    /// Sets a node's stored cversion and pzxid; returns the undo record.
    pub(crate) fn set_child_meta(&mut self, path: &str, cversion: i32, pzxid: i64) -> Undo {
        let key = if path.is_empty() { "/" } else { path };
        let n = self
            .nodes
            .get(key)
            .expect("set_child_meta on an existing node");
        let before = digest::meta(key, n);
        let n = self
            .nodes
            .get_mut(key)
            .expect("set_child_meta on an existing node");
        let undo = Undo::ChildMeta(key.into(), n.cversion, n.pzxid);
        n.cversion = cversion;
        n.pzxid = pzxid;
        let after = digest::meta(key, n);
        self.digest = self.digest.wrapping_sub(before).wrapping_add(after);
        undo
    }

    /// Replays undo records (newest first) to restore the state before them.
    pub(crate) fn rollback(&mut self, undo: Vec<Undo>) {
        for u in undo.into_iter().rev() {
            match u {
                Undo::Node(path, node) => {
                    self.replace(&path, node);
                }
                Undo::ChildMeta(path, cversion, pzxid) => {
                    self.set_child_meta(&path, cversion, pzxid);
                }
            }
        }
    }

    fn node_hash(&self, path: &str, n: &Node) -> u64 {
        digest::content(path, n.data.as_deref(), self.acls.get(n.acl))
            .wrapping_add(digest::meta(path, n))
    }

    // ---- reads --------------------------------------------------------------------------

    /// The zxid of the last applied command (0 before any).
    pub fn last_zxid(&self) -> Zxid {
        Zxid(self.zxid)
    }

    /// The node's Stat (exists).
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.node(path).map(Node::stat)
    }

    /// The node's data and Stat (getData).
    /// `None` data is null, which ZooKeeper keeps apart from empty.
    pub fn get_data(&self, path: &str) -> Option<(Option<&[u8]>, Stat)> {
        self.node(path).map(|n| (n.data.as_deref(), n.stat()))
    }

    /// The node's ACL and Stat (getACL).
    pub fn acl(&self, path: &str) -> Option<(&[Acl], Stat)> {
        self.node(path).map(|n| (self.acls.get(n.acl), n.stat()))
    }

    /// The names of the node's children in byte order (getChildren).
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.node(path)?;
        Some(self.child_names(path))
    }

    /// The children and the node's Stat (getChildren2).
    pub fn children_with_stat(&self, path: &str) -> Option<(Vec<String>, Stat)> {
        let n = self.node(path)?;
        Some((self.child_names(path), n.stat()))
    }

    /// Walks the direct children of an existing node: each seek lands on the next child,
    /// then skips that child's whole subtree (`"{child}0"` is just past `"{child}/..."`).
    fn child_names(&self, path: &str) -> Vec<String> {
        let prefix = if path.is_empty() || path == "/" {
            "/".to_owned()
        } else {
            format!("{path}/")
        };
        let mut out = Vec::new();
        let mut from: Bound<String> = Bound::Excluded(prefix.clone());
        loop {
            let mut range = self
                .nodes
                .range::<str, _>((from.as_ref().map(|s| s.as_str()), Bound::Unbounded));
            let Some((k, _)) = range.next() else { break };
            let Some(rest) = k.strip_prefix(prefix.as_str()) else {
                break;
            };
            match rest.find('/') {
                None => {
                    out.push(rest.to_owned());
                    from = Bound::Excluded(k.to_string());
                }
                Some(i) => from = Bound::Included(format!("{prefix}{}0", &rest[..i])),
            }
        }
        out
    }

    /// Number of descendants of the node (getAllChildrenNumber), `None` if it is missing.
    pub fn all_children_number(&self, path: &str) -> Option<i32> {
        self.node(path)?;
        let count = if path == "/" || path.is_empty() {
            self.nodes.len() - 1
        } else {
            let prefix = format!("{path}/");
            self.nodes
                .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(&prefix))
                .count()
        };
        Some(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// Whether `auth` grants `perm` on the node: `Err(NoNode)` or `Err(NoAuth)` otherwise.
    pub fn check_acl(&self, path: &str, perm: i32, auth: &[Id]) -> Result<(), ErrorCode> {
        let n = self.node(path).ok_or(ErrorCode::NoNode)?;
        if acl::check(self.acls.get(n.acl), perm, auth) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    /// The session's ephemerals whose path starts with `prefix` (getEphemerals): a plain
    /// string prefix, and an empty, blank or `/` prefix means all, as ZooKeeper.
    pub fn ephemerals(&self, session: SessionId, prefix: &str) -> Vec<String> {
        let Some(s) = self.sessions.get(&session.0) else {
            return Vec::new();
        };
        let all = prefix.trim().is_empty() || prefix.trim() == "/";
        s.ephemerals
            .iter()
            .filter(|p| all || p.starts_with(prefix))
            .map(|p| p.to_string())
            .collect()
    }

    /// A session's entry.
    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id.0)
    }

    /// Every session in id order.
    pub fn sessions(&self) -> impl Iterator<Item = (SessionId, &Session)> {
        self.sessions.iter().map(|(id, s)| (SessionId(*id), s))
    }

    /// Number of sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of znodes, the root and `/zookeeper/*` included. (ZooKeeper's
    /// `zk_znode_count` is one more: it counts the root's `""` alias too.)
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of ephemeral znodes.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemeral_count
    }

    /// Σ (path bytes + data bytes) over all znodes (`zk_approximate_data_size`).
    pub fn approximate_data_size(&self) -> i64 {
        self.data_size
    }

    /// Number of distinct ACL lists in use.
    pub fn acl_count(&self) -> usize {
        self.acls.len()
    }

    /// The rolling digest, maintained on every mutation in O(1) node hashes.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The digest recomputed from scratch (for tests and snapshot checks).
    pub fn compute_digest(&self) -> u64 {
        self.nodes
            .iter()
            .fold(0u64, |d, (p, n)| d.wrapping_add(self.node_hash(p, n)))
    }

    /// Empty containers that once had children (stored cversion > 0): the leader proposes
    /// `DeleteContainer` for each (`ContainerManager.getCandidates`).
    pub fn container_sweep(&self) -> Vec<String> {
        self.containers
            .iter()
            .filter(|p| {
                self.nodes
                    .get(&***p)
                    .is_some_and(|n| n.num_children == 0 && n.cversion > 0)
            })
            .map(|p| p.to_string())
            .collect()
    }

    /// TTL nodes without children not modified for longer than their TTL at `now_ms`.
    pub fn ttl_expired(&self, now_ms: i64) -> Vec<String> {
        self.ttls
            .iter()
            .filter(|p| {
                self.nodes
                    .get(&***p)
                    .is_some_and(|n| ttl_expired(n, now_ms))
            })
            .map(|p| p.to_string())
            .collect()
    }

    /// Checks every derived field against the nodes (debug builds call it after each apply).
    /// Panics on the first broken invariant.
    pub fn check_invariants(&self) {
        let mut counts: BTreeMap<&str, i32> = BTreeMap::new();
        for p in self.nodes.keys() {
            if &**p != "/" {
                let parent = path::parent_of(p).expect("stored paths have parents");
                assert!(self.nodes.contains_key(parent), "parent of {p} exists");
                *counts.entry(parent).or_default() += 1;
            }
        }
        for (p, n) in &self.nodes {
            let c = counts.get(&**p).copied().unwrap_or(0);
            assert_eq!(n.num_children, c, "num_children of {p}");
            assert_eq!(self.child_names(p).len(), c as usize, "children of {p}");
        }
        assert_eq!(self.digest, self.compute_digest(), "rolling digest");
        let size: i64 = self
            .nodes
            .iter()
            .map(|(p, n)| (p.len() + n.data_len()) as i64)
            .sum();
        assert_eq!(self.data_size, size, "data size");
        let eph: usize = self.sessions.values().map(|s| s.ephemerals.len()).sum();
        assert_eq!(self.ephemeral_count, eph, "ephemeral count");
        for (id, s) in &self.sessions {
            for p in &s.ephemerals {
                let n = self.nodes.get(p).expect("indexed ephemeral exists");
                assert_eq!(n.kind(), NodeKind::Ephemeral(*id));
            }
        }
        assert_eq!(self.acls.unused(), 0, "every ACL slot is used");
    }
}

pub(crate) fn ttl_expired(n: &Node, now_ms: i64) -> bool {
    match n.kind() {
        NodeKind::Ttl(ttl) => {
            n.num_children == 0 && ttl != 0 && now_ms.saturating_sub(n.mtime) > ttl
        }
        _ => false,
    }
}
