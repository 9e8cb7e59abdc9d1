//! `DataTree`: the znodes, the sessions table and the indexes kept beside them. Twin of
//! ZooKeeper's `DataTree` (state and reads); `apply.rs` holds the write rules.
//!
//! Every mutation goes through [`DataTree::replace`] (a node appears, changes or disappears),
//! [`DataTree::set_child_meta`] (a parent's cversion/pzxid), or their fused forms for a
//! create and a delete ([`DataTree::add_child`], [`DataTree::remove_child`]: the parent is
//! looked up once), which keep the parent's `num_children`, the ephemeral/container/TTL
//! indexes, the ACL reference counts, the data size and the digest in step. All return
//! undo records, so a failed multi rolls back by replaying its undo list.

use std::collections::{BTreeMap, BTreeSet, btree_set};
use std::ops::Bound;

use warren_proto::{Acl, ErrorCode, Id, SessionId, Stat, Zxid, perms};

use crate::acl::{self, AclTable};
use crate::digest;
use crate::node::{Node, NodeKind};
use crate::path;
use crate::snapshot::Freezing;

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
#[derive(Debug, Clone)]
pub struct DataTree {
    /// Every znode, ordered and looked up by its full path (each [`Node`] holds its own
    /// path). Plain byte order keeps a node's descendants right after it, so children are
    /// found by scanning forward and seeking past each child's subtree.
    pub(crate) nodes: BTreeSet<Node>,
    pub(crate) acls: AclTable,
    pub(crate) sessions: BTreeMap<i64, Session>,
    pub(crate) containers: BTreeSet<Box<str>>,
    pub(crate) ttls: BTreeSet<Box<str>>,
    pub(crate) zxid: i64,
    pub(crate) digest: u64,
    pub(crate) data_size: i64,
    pub(crate) ephemeral_count: usize,
    /// A snapshot being frozen a chunk at a time (`snapshot.rs`); not part of the state.
    pub(crate) freezing: Option<Box<Freezing>>,
}

/// Equal trees: the same nodes (whole nodes, not only paths) and the same derived state.
impl PartialEq for DataTree {
    fn eq(&self, other: &DataTree) -> bool {
        self.nodes.len() == other.nodes.len()
            && self.nodes.iter().zip(&other.nodes).all(|(a, b)| a.same(b))
            && self.acls == other.acls
            && self.sessions == other.sessions
            && self.containers == other.containers
            && self.ttls == other.ttls
            && self.zxid == other.zxid
            && self.digest == other.digest
            && self.data_size == other.data_size
            && self.ephemeral_count == other.ephemeral_count
    }
}

impl Eq for DataTree {}

/// The key of `path` in the node set: `""` is the root, as in ZooKeeper (`/a`'s parent).
fn key(path: &str) -> &[u8] {
    if path.is_empty() {
        b"/"
    } else {
        path.as_bytes()
    }
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
            nodes: BTreeSet::new(),
            acls: AclTable::default(),
            sessions: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            zxid: 0,
            digest: 0,
            data_size: 0,
            ephemeral_count: 0,
            freezing: None,
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
            t.replace(p, Some(Node::new(p, 0, 0, 0, acl, Some(b""))));
        }
        t
    }

    // ---- primitives -------------------------------------------------------------------

    /// Looks a node up; `""` is the root, as in ZooKeeper (`/a`'s parent).
    pub(crate) fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(key(path))
    }

    /// Changes a node's stat in place. A set gives no `&mut` to its elements, so the node
    /// is taken out and put back (two descents, no allocation); `f` must not change what
    /// the digest covers unless the caller accounts for it.
    fn update<R>(&mut self, path: &str, f: impl FnOnce(&mut Node) -> R) -> Option<R> {
        self.before_change(key(path));
        let mut n = self.nodes.take(key(path))?;
        let r = f(&mut n);
        let fresh = self.nodes.insert(n);
        debug_assert!(fresh, "a node taken out goes back to a free slot");
        Some(r)
    }

    /// Called before the node at `path` changes (appears, changes or goes): a freeze in
    /// progress keeps it as it is now if it still needs it (`snapshot::Freezing`).
    fn before_change(&mut self, path: &[u8]) {
        if let Some(f) = &mut self.freezing {
            f.note(path, &self.nodes);
        }
    }

    /// Puts `new` at `path` (or removes the node if `None`) and returns what was there,
    /// keeping every index and the parent's `num_children` in step. The parent must exist
    /// when a node appears; `new` must carry `path`.
    pub(crate) fn replace(&mut self, path: &str, new: Option<Node>) -> Option<Node> {
        let old = self.put(path, new);
        if old.1 && path != "/" {
            let parent = path::parent_of(path).expect("a stored path has a parent");
            let delta = if old.0.is_none() { 1 } else { -1 };
            self.update(parent, |p| p.set_num_children(p.num_children() + delta))
                .expect("a stored node's parent exists");
        }
        old.0
    }

    /// [`DataTree::replace`] without the parent's `num_children`: returns what was there
    /// and whether a node appeared or disappeared (the caller owes the parent's count).
    fn put(&mut self, path: &str, new: Option<Node>) -> (Option<Node>, bool) {
        self.before_change(key(path));
        let (old, added) = match new {
            Some(n) => {
                debug_assert_eq!(n.path(), path, "a node is put at its own path");
                // Take the new ACL reference before releasing the old one, so a shared
                // slot is never freed in between.
                self.acls.add_ref(n.acl());
                let added = (self.node_hash(&n), n.kind(), n.data_len());
                (self.nodes.replace(n), Some(added))
            }
            None => (self.nodes.take(path.as_bytes()), None),
        };
        if let Some(o) = &old {
            self.remove_indexes(o);
        }
        if let Some((hash, kind, len)) = added {
            self.add_indexes(path, hash, kind, len);
        }
        let changed = old.is_some() != added.is_some();
        (old, changed)
    }

    pub(crate) fn add_indexes(&mut self, path: &str, hash: u64, kind: NodeKind, data_len: usize) {
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

    fn remove_indexes(&mut self, n: &Node) {
        let path = n.path();
        self.digest = self.digest.wrapping_sub(self.node_hash(n));
        self.acls.release(n.acl());
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

    /// Sets a node's stored cversion and pzxid (with `None`, a deletion: cversion kept, pzxid
    /// raised to at least `pzxid`) and adds `children_delta` to its
    /// `num_children`, in one take-and-put; returns the undo record of cversion and pzxid.
    pub(crate) fn set_child_meta_and_count(
        &mut self,
        path: &str,
        cversion: Option<i32>,
        pzxid: i64,
        children_delta: i32,
    ) -> Undo {
        let k = key(path);
        self.before_change(k);
        let mut n = self
            .nodes
            .take(k)
            .expect("set_child_meta on an existing node");
        let before = digest::meta(&n);
        let undo = Undo::ChildMeta(n.path().into(), n.cversion(), n.pzxid());
        if let Some(c) = cversion {
            n.set_cversion(c);
            n.set_pzxid(pzxid);
        } else {
            // A deletion: pzxid never moves back (`DataTree.deleteNode`).
            n.set_pzxid(n.pzxid().max(pzxid));
        }
        n.set_num_children(n.num_children() + children_delta);
        let after = digest::meta(&n);
        self.digest = self.digest.wrapping_sub(before).wrapping_add(after);
        self.nodes.insert(n);
        undo
    }

    /// Sets a node's stored cversion and pzxid; returns the undo record.
    pub(crate) fn set_child_meta(&mut self, path: &str, cversion: i32, pzxid: i64) -> Undo {
        self.set_child_meta_and_count(path, Some(cversion), pzxid, 0)
    }

    /// A new child under `parent`: the parent's cversion and pzxid and `num_children`
    /// change with one lookup of the parent, then the child is put (not yet present).
    pub(crate) fn add_child(
        &mut self,
        parent: &str,
        cversion: i32,
        pzxid: i64,
        child: Node,
    ) -> [Undo; 2] {
        let meta = self.set_child_meta_and_count(parent, Some(cversion), pzxid, 1);
        let path: Box<str> = child.path().into();
        let (old, changed) = self.put(&path, Some(child));
        debug_assert!(old.is_none() && changed, "add_child of a new node");
        [meta, Undo::Node(path, None)]
    }

    /// Removes an existing child of `parent`; the parent's pzxid moves up to `zxid` (its
    /// cversion is kept), with one lookup of the parent.
    pub(crate) fn remove_child(&mut self, parent: &str, path: &str, zxid: i64) -> [Undo; 2] {
        let meta = self.set_child_meta_and_count(parent, None, zxid, -1);
        let (old, changed) = self.put(path, None);
        debug_assert!(old.is_some() && changed, "remove_child of an existing node");
        [meta, Undo::Node(path.into(), old)]
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

    pub(crate) fn node_hash(&self, n: &Node) -> u64 {
        Self::hash_of(n, &self.acls)
    }

    /// [`DataTree::node_hash`] with the ACL table given apart (hashing on another thread).
    pub(crate) fn hash_of(n: &Node, acls: &AclTable) -> u64 {
        digest::content(n.path_bytes(), n.data(), acls.get(n.acl())).wrapping_add(digest::meta(n))
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
        self.node(path).map(|n| (n.data(), n.stat()))
    }

    /// The node's ACL and Stat (getACL).
    pub fn acl(&self, path: &str) -> Option<(&[Acl], Stat)> {
        self.node(path).map(|n| (self.acls.get(n.acl()), n.stat()))
    }

    /// The names of the node's children in byte order (getChildren).
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.node(path)?;
        Some(self.child_names(path).map(str::to_owned).collect())
    }

    /// The children and the node's Stat (getChildren2).
    pub fn children_with_stat(&self, path: &str) -> Option<(Vec<String>, Stat)> {
        let n = self.node(path)?;
        Some((
            self.child_names(path).map(str::to_owned).collect(),
            n.stat(),
        ))
    }

    /// The node looked up once for a read: `Err(NoNode)` if missing, `Err(NoAuth)` unless
    /// `auth` grants `perm` (any of its bits), else a view of it. One B-tree descent where
    /// `check_acl` then `get_data` take two.
    pub fn read(&self, path: &str, perm: i32, auth: &[Id]) -> Result<NodeRef<'_>, ErrorCode> {
        let n = self.node(path).ok_or(ErrorCode::NoNode)?;
        if acl::check(self.acls.get(n.acl()), perm, auth) {
            Ok(NodeRef {
                tree: self,
                node: n,
            })
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    /// The names of an existing node's children, in byte order, borrowed from the tree.
    pub(crate) fn child_names<'t>(&'t self, path: &str) -> Children<'t> {
        let mut prefix = Vec::with_capacity(path.len() + 16);
        prefix.extend_from_slice(key(path));
        if prefix != b"/" {
            prefix.push(b'/');
        }
        let range = self
            .nodes
            .range::<[u8], _>((Bound::Excluded(prefix.as_slice()), Bound::Unbounded));
        Children {
            nodes: &self.nodes,
            range,
            prefix_len: prefix.len(),
            seek: prefix,
            done: false,
        }
    }

    /// Number of descendants of the node (getAllChildrenNumber), `None` if it is missing.
    pub fn all_children_number(&self, path: &str) -> Option<i32> {
        self.node(path)?;
        let count = if path == "/" || path.is_empty() {
            self.nodes.len() - 1
        } else {
            let prefix = format!("{path}/");
            self.nodes
                .range::<[u8], _>((Bound::Included(prefix.as_bytes()), Bound::Unbounded))
                .take_while(|n| n.path_bytes().starts_with(prefix.as_bytes()))
                .count()
        };
        Some(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// Whether `auth` grants `perm` on the node: `Err(NoNode)` or `Err(NoAuth)` otherwise.
    pub fn check_acl(&self, path: &str, perm: i32, auth: &[Id]) -> Result<(), ErrorCode> {
        self.read(path, perm, auth).map(|_| ())
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
            .fold(0u64, |d, n| d.wrapping_add(self.node_hash(n)))
    }

    /// Empty containers that once had children (stored cversion > 0): the leader proposes
    /// `DeleteContainer` for each (`ContainerManager.getCandidates`).
    pub fn container_sweep(&self) -> Vec<String> {
        self.containers
            .iter()
            .filter(|p| {
                self.nodes
                    .get(p.as_bytes())
                    .is_some_and(|n| n.num_children() == 0 && n.cversion() > 0)
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
                    .get(p.as_bytes())
                    .is_some_and(|n| ttl_expired(n, now_ms))
            })
            .map(|p| p.to_string())
            .collect()
    }

    /// Checks every derived field against the nodes (debug builds call it after each apply).
    /// Panics on the first broken invariant.
    pub fn check_invariants(&self) {
        let mut counts: BTreeMap<&str, i32> = BTreeMap::new();
        for n in &self.nodes {
            let p = n.path();
            if p != "/" {
                let parent = path::parent_of(p).expect("stored paths have parents");
                assert!(self.node(parent).is_some(), "parent of {p} exists");
                *counts.entry(parent).or_default() += 1;
            }
        }
        for n in &self.nodes {
            let p = n.path();
            let c = counts.get(p).copied().unwrap_or(0);
            assert_eq!(n.num_children(), c, "num_children of {p}");
            assert_eq!(self.child_names(p).count(), c as usize, "children of {p}");
        }
        assert_eq!(self.digest, self.compute_digest(), "rolling digest");
        let size: i64 = self
            .nodes
            .iter()
            .map(|n| (n.path_bytes().len() + n.data_len()) as i64)
            .sum();
        assert_eq!(self.data_size, size, "data size");
        let eph: usize = self.sessions.values().map(|s| s.ephemerals.len()).sum();
        assert_eq!(self.ephemeral_count, eph, "ephemeral count");
        for (id, s) in &self.sessions {
            for p in &s.ephemerals {
                let n = self.node(p).expect("indexed ephemeral exists");
                assert_eq!(n.kind(), NodeKind::Ephemeral(*id));
            }
        }
        assert_eq!(self.acls.unused(), 0, "every ACL slot is used");
    }
}

/// A node found by [`DataTree::read`], borrowed from the tree.
#[derive(Clone, Copy)]
pub struct NodeRef<'t> {
    tree: &'t DataTree,
    node: &'t Node,
}

impl<'t> NodeRef<'t> {
    /// The Stat clients see.
    pub fn stat(&self) -> Stat {
        self.node.stat()
    }

    /// The data; `None` is null data.
    pub fn data(&self) -> Option<&'t [u8]> {
        self.node.data()
    }

    /// The ACL list.
    pub fn acl(&self) -> &'t [Acl] {
        self.tree.acls.get(self.node.acl())
    }

    /// The names of the children in byte order, borrowed from the tree (no allocation per
    /// child: a reply can be encoded straight from this).
    pub fn children(&self) -> Children<'t> {
        self.tree.child_names(self.node.path())
    }
}

/// The names of one node's children in byte order ([`NodeRef::children`]): a forward scan
/// of the path order that seeks past each child's subtree (`"{child}0"` is just past
/// `"{child}/..."`), so leaf children cost one step each.
pub struct Children<'t> {
    nodes: &'t BTreeSet<Node>,
    range: btree_set::Range<'t, Node>,
    prefix_len: usize,
    /// The parent's path and `/`, then the seek key of the last skipped subtree.
    seek: Vec<u8>,
    done: bool,
}

impl<'t> Iterator for Children<'t> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        while !self.done {
            let Some(n) = self.range.next() else { break };
            let k = n.path_bytes();
            if !k.starts_with(&self.seek[..self.prefix_len]) {
                break;
            }
            match k[self.prefix_len..].iter().position(|&b| b == b'/') {
                None => return Some(&n.path()[self.prefix_len..]),
                Some(i) => {
                    let nodes = self.nodes;
                    self.seek.truncate(self.prefix_len);
                    self.seek
                        .extend_from_slice(&k[self.prefix_len..self.prefix_len + i]);
                    self.seek.push(b'0');
                    self.range = nodes.range::<[u8], _>((
                        Bound::Included(self.seek.as_slice()),
                        Bound::Unbounded,
                    ));
                }
            }
        }
        self.done = true;
        None
    }
}

pub(crate) fn ttl_expired(n: &Node, now_ms: i64) -> bool {
    match n.kind() {
        NodeKind::Ttl(ttl) => {
            n.num_children() == 0 && ttl != 0 && now_ms.saturating_sub(n.mtime()) > ttl
        }
        _ => false,
    }
}
