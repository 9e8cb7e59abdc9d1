//! One znode as stored. Twin of ZooKeeper's `DataNode` + `StatPersisted`, without the
//! children set (children are found in the ordered path map) and with the ACL as an index
//! into the tree's ACL table.

use std::sync::Arc;

use warren_proto::Stat;

/// `ephemeralOwner` marker of a container (`EphemeralType.CONTAINER_EPHEMERAL_OWNER`).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte of a TTL node's `ephemeralOwner`; the TTL is in the low 40 bits.
pub const TTL_MASK: i64 = 0xFF00_0000_0000_0000_u64 as i64;
/// Reserved bits of an extended `ephemeralOwner` (must be 0 for a TTL node).
const RESERVED_BITS: i64 = 0x00FF_FF00_0000_0000;
/// The largest TTL in ms (`EphemeralType.TTL.maxValue()`, about 34 years).
pub const TTL_MAX_MS: i64 = 0x0000_00FF_FFFF_FFFF;

/// What a node's stored `ephemeralOwner` means (`EphemeralType.get`, extended types on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A plain persistent node.
    Persistent,
    /// An ephemeral owned by this session.
    Ephemeral(i64),
    /// A container.
    Container,
    /// A persistent node with this TTL in ms.
    Ttl(i64),
}

impl NodeKind {
    /// Decodes a stored `ephemeralOwner`.
    pub fn from_owner(owner: i64) -> NodeKind {
        if owner == 0 {
            NodeKind::Persistent
        } else if owner == CONTAINER_OWNER {
            NodeKind::Container
        } else if owner & TTL_MASK == TTL_MASK && owner & RESERVED_BITS == 0 {
            NodeKind::Ttl(owner & TTL_MAX_MS)
        } else {
            NodeKind::Ephemeral(owner)
        }
    }

    /// The stored `ephemeralOwner` of this kind.
    pub fn owner(self) -> i64 {
        match self {
            NodeKind::Persistent => 0,
            NodeKind::Ephemeral(s) => s,
            NodeKind::Container => CONTAINER_OWNER,
            NodeKind::Ttl(ttl) => TTL_MASK | (ttl & TTL_MAX_MS),
        }
    }
}

/// Byte offsets of the fields in a node's buffer (little-endian).
mod at {
    pub(super) const CZXID: usize = 0;
    pub(super) const MZXID: usize = 8;
    pub(super) const PZXID: usize = 16;
    pub(super) const CTIME: usize = 24;
    pub(super) const MTIME: usize = 32;
    pub(super) const OWNER: usize = 40;
    pub(super) const VERSION: usize = 48;
    pub(super) const CVERSION: usize = 52;
    pub(super) const AVERSION: usize = 56;
    pub(super) const NUM_CHILDREN: usize = 60;
    pub(super) const ACL: usize = 64;
    /// Path length in the low 31 bits; the top bit set means null data.
    pub(super) const PATH_LEN: usize = 68;
    /// Where the path starts; the data follows it and runs to the end.
    pub(super) const PATH: usize = 72;
}

const NULL_DATA: u32 = 1 << 31;

/// A stored znode: its full path, persisted stat, ACL index and data in ONE allocation.
///
/// Layout of the buffer: `czxid mzxid pzxid ctime mtime ephemeralOwner` (i64 each),
/// `version cversion aversion num_children` (i32 each), `acl` (u32), `path_len | null<<31`
/// (u32), then the path bytes and the data bytes. One allocation instead of three (the map
/// key, the node, the data) saves two malloc headers and roundings per znode, and the map
/// entry shrinks to the 16-byte box, so the B-tree's half-empty leaves cost little.
///
/// The buffer is shared (`Arc`): cloning a node is a reference count, so a snapshot can
/// freeze the whole node set with one pointer copy per node and encode it on another
/// thread while apply goes on; a node changed while a snapshot still holds it is copied
/// first (copy on write, [`Arc::make_mut`]). The counts cost 16 bytes per znode.
///
/// Equality and order are those of the path (the tree keeps nodes in a set ordered by
/// path and looks them up by path bytes); [`Node::same`] compares whole nodes.
#[derive(Clone)]
pub(crate) struct Node {
    buf: Arc<[u8]>,
}

macro_rules! field {
    ($get:ident, $set:ident, $ty:ty, $at:expr, $doc:literal) => {
        #[doc = $doc]
        pub(crate) fn $get(&self) -> $ty {
            const N: usize = std::mem::size_of::<$ty>();
            let mut a = [0u8; N];
            a.copy_from_slice(&self.buf[$at..$at + N]);
            <$ty>::from_le_bytes(a)
        }

        #[doc = $doc]
        pub(crate) fn $set(&mut self, v: $ty) {
            const N: usize = std::mem::size_of::<$ty>();
            self.bytes_mut()[$at..$at + N].copy_from_slice(&v.to_le_bytes());
        }
    };
}

impl Node {
    /// A node as ZooKeeper's `DataTree.createStat` makes it.
    pub(crate) fn new(
        path: &str,
        zxid: i64,
        time: i64,
        owner: i64,
        acl: u32,
        data: Option<&[u8]>,
    ) -> Node {
        let mut n = Node::with_path_and_data(path, data);
        for f in [at::CZXID, at::MZXID, at::PZXID] {
            n.bytes_mut()[f..f + 8].copy_from_slice(&zxid.to_le_bytes());
        }
        n.set_ctime(time);
        n.set_mtime(time);
        n.set_ephemeral_owner(owner);
        n.set_acl(acl);
        n
    }

    /// A zeroed stat with this path and data.
    fn with_path_and_data(path: &str, data: Option<&[u8]>) -> Node {
        let plen = u32::try_from(path.len())
            .ok()
            .filter(|l| l & NULL_DATA == 0)
            .expect("a znode path is under 2 GiB");
        let d = data.unwrap_or_default();
        let len = at::PATH + path.len() + d.len();
        // One allocation of the exact size (`repeat_n` is `TrustedLen`), filled in place.
        let mut buf: Arc<[u8]> = std::iter::repeat_n(0u8, len).collect();
        let b = Arc::get_mut(&mut buf).expect("a fresh buffer is not shared");
        let tag = if data.is_none() {
            plen | NULL_DATA
        } else {
            plen
        };
        b[at::PATH_LEN..at::PATH].copy_from_slice(&tag.to_le_bytes());
        b[at::PATH..at::PATH + path.len()].copy_from_slice(path.as_bytes());
        b[at::PATH + path.len()..].copy_from_slice(d);
        Node { buf }
    }

    /// The bytes, to change: copied first if a snapshot still shares them.
    fn bytes_mut(&mut self) -> &mut [u8] {
        Arc::make_mut(&mut self.buf)
    }

    /// The same node (path and stat) with other data; the caller updates the stat.
    pub(crate) fn with_data(&self, data: Option<&[u8]>) -> Node {
        let mut n = Node::with_path_and_data(self.path(), data);
        n.bytes_mut()[..at::PATH_LEN].copy_from_slice(&self.buf[..at::PATH_LEN]);
        n
    }

    fn tag(&self) -> u32 {
        let mut a = [0u8; 4];
        a.copy_from_slice(&self.buf[at::PATH_LEN..at::PATH]);
        u32::from_le_bytes(a)
    }

    fn path_end(&self) -> usize {
        at::PATH + (self.tag() & !NULL_DATA) as usize
    }

    /// The full path, as bytes (the set's key).
    pub(crate) fn path_bytes(&self) -> &[u8] {
        &self.buf[at::PATH..self.path_end()]
    }

    /// The full path.
    pub(crate) fn path(&self) -> &str {
        std::str::from_utf8(self.path_bytes()).expect("a node is built from a &str path")
    }

    /// The data; `None` is null data, which ZooKeeper keeps apart from empty data.
    pub(crate) fn data(&self) -> Option<&[u8]> {
        if self.tag() & NULL_DATA != 0 {
            None
        } else {
            Some(&self.buf[self.path_end()..])
        }
    }

    /// Whole-node equality (path, stat, ACL index and data).
    pub(crate) fn same(&self, other: &Node) -> bool {
        self.buf == other.buf
    }

    field!(czxid, set_czxid, i64, at::CZXID, "Zxid of the creation.");
    field!(
        mzxid,
        set_mzxid,
        i64,
        at::MZXID,
        "Zxid of the last data change."
    );
    field!(
        pzxid,
        set_pzxid,
        i64,
        at::PZXID,
        "Zxid of the last child change."
    );
    field!(ctime, set_ctime, i64, at::CTIME, "Creation time, ms.");
    field!(
        mtime,
        set_mtime,
        i64,
        at::MTIME,
        "Last data change time, ms."
    );
    field!(
        ephemeral_owner,
        set_ephemeral_owner,
        i64,
        at::OWNER,
        "Stored form: session id, [`CONTAINER_OWNER`] or a TTL marker."
    );
    field!(version, set_version, i32, at::VERSION, "Data version.");
    field!(
        cversion,
        set_cversion,
        i32,
        at::CVERSION,
        "Stored form: the number of child creations ever (wrapping like Java's int)."
    );
    field!(aversion, set_aversion, i32, at::AVERSION, "ACL version.");
    field!(
        num_children,
        set_num_children,
        i32,
        at::NUM_CHILDREN,
        "Always equal to the number of children (checked in debug builds)."
    );
    field!(
        acl,
        set_acl,
        u32,
        at::ACL,
        "Index into the tree's ACL table."
    );

    /// Bytes of data (0 for null).
    pub(crate) fn data_len(&self) -> usize {
        self.buf.len() - self.path_end()
    }

    pub(crate) fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.ephemeral_owner())
    }

    /// The Stat clients see (`DataNode.copyStat`): cversion counts creations and deletions
    /// (`2 * stored - numChildren`), and containers and TTL nodes show owner 0.
    pub(crate) fn stat(&self) -> Stat {
        let owner = match self.kind() {
            NodeKind::Ephemeral(s) => s,
            _ => 0,
        };
        Stat {
            czxid: self.czxid(),
            mzxid: self.mzxid(),
            ctime: self.ctime(),
            mtime: self.mtime(),
            version: self.version(),
            cversion: self
                .cversion()
                .wrapping_mul(2)
                .wrapping_sub(self.num_children()),
            aversion: self.aversion(),
            ephemeral_owner: owner,
            data_length: i32::try_from(self.data_len()).expect("znode data is under 2 GiB"),
            num_children: self.num_children(),
            pzxid: self.pzxid(),
        }
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        self.path_bytes() == other.path_bytes()
    }
}

impl Eq for Node {}

impl PartialOrd for Node {
    fn partial_cmp(&self, other: &Node) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Node {
    fn cmp(&self, other: &Node) -> std::cmp::Ordering {
        self.path_bytes().cmp(other.path_bytes())
    }
}

/// The set of nodes is ordered and searched by path bytes (UTF-8 byte order is `str` order).
impl std::borrow::Borrow<[u8]> for Node {
    fn borrow(&self) -> &[u8] {
        self.path_bytes()
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("path", &self.path())
            .field("stat", &self.stat())
            .field("owner", &self.ephemeral_owner())
            .field("acl", &self.acl())
            .field("data", &self.data())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_is_one_shared_buffer() {
        assert_eq!(std::mem::size_of::<Node>(), 16);
        let mut n = Node::new("/a/b", 7, 8, 9, 3, Some(b"xyz"));
        assert_eq!(n.path(), "/a/b");
        assert_eq!(n.data(), Some(&b"xyz"[..]));
        assert_eq!((n.czxid(), n.mzxid(), n.pzxid()), (7, 7, 7));
        assert_eq!(
            (n.ctime(), n.mtime(), n.ephemeral_owner(), n.acl()),
            (8, 8, 9, 3)
        );
        n.set_cversion(-5);
        n.set_num_children(2);
        assert_eq!((n.cversion(), n.num_children(), n.version()), (-5, 2, 0));
        let null = n.with_data(None);
        assert_eq!(
            (null.data(), null.data_len(), null.cversion()),
            (None, 0, -5)
        );
        assert_eq!(null.path(), "/a/b");
        let empty = n.with_data(Some(b""));
        assert_eq!((empty.data(), empty.data_len()), (Some(&b""[..]), 0));
        assert!(null == empty && !null.same(&empty));
    }

    #[test]
    fn a_shared_node_is_copied_on_write() {
        let mut n = Node::new("/a", 7, 8, 0, 0, Some(b"x"));
        let frozen = n.clone();
        n.set_version(3);
        n.set_mzxid(9);
        assert_eq!((frozen.version(), frozen.mzxid()), (0, 7));
        assert_eq!((n.version(), n.mzxid()), (3, 9));
        // No longer shared: changed in place.
        let before = n.buf.as_ptr();
        drop(frozen);
        n.set_version(4);
        assert_eq!((n.version(), n.buf.as_ptr()), (4, before));
    }

    #[test]
    fn kinds_round_trip() {
        for k in [
            NodeKind::Persistent,
            NodeKind::Ephemeral(0x0100_0000_0000_0001),
            NodeKind::Container,
            NodeKind::Ttl(1),
            NodeKind::Ttl(TTL_MAX_MS),
        ] {
            assert_eq!(NodeKind::from_owner(k.owner()), k);
        }
        assert_eq!(NodeKind::Ttl(5).owner() as u64, 0xFF00_0000_0000_0005);
    }
}
