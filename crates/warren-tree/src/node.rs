//! One znode as stored. Twin of ZooKeeper's `DataNode` + `StatPersisted`, without the
//! children set (children are found in the ordered path map) and with the ACL as an index
//! into the tree's ACL table.

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

/// A stored znode: 72 bytes inline plus its data allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) czxid: i64,
    pub(crate) mzxid: i64,
    pub(crate) pzxid: i64,
    pub(crate) ctime: i64,
    pub(crate) mtime: i64,
    /// Stored form: session id, [`CONTAINER_OWNER`] or a TTL marker.
    pub(crate) ephemeral_owner: i64,
    pub(crate) version: i32,
    /// Stored form: the number of child creations ever (wrapping like Java's int).
    pub(crate) cversion: i32,
    pub(crate) aversion: i32,
    /// Always equal to the number of children (checked in debug builds).
    pub(crate) num_children: i32,
    /// Index into the tree's ACL table.
    pub(crate) acl: u32,
    /// `None` is null data, which ZooKeeper keeps apart from empty data.
    pub(crate) data: Option<Box<[u8]>>,
}

impl Node {
    /// A node as ZooKeeper's `DataTree.createStat` makes it.
    pub(crate) fn new(zxid: i64, time: i64, owner: i64, acl: u32, data: Option<Box<[u8]>>) -> Node {
        Node {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            ephemeral_owner: owner,
            version: 0,
            cversion: 0,
            aversion: 0,
            num_children: 0,
            acl,
            data,
        }
    }

    /// The same node with other data (and the same stat, to be updated by the caller).
    pub(crate) fn with_data(&self, data: Option<Box<[u8]>>) -> Node {
        Node {
            data,
            ..self.meta_copy()
        }
    }

    /// A copy without the data (cheap), for updates that keep or replace it.
    pub(crate) fn meta_copy(&self) -> Node {
        Node {
            czxid: self.czxid,
            mzxid: self.mzxid,
            pzxid: self.pzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            ephemeral_owner: self.ephemeral_owner,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
            num_children: self.num_children,
            acl: self.acl,
            data: None,
        }
    }

    /// Bytes of data (0 for null).
    pub(crate) fn data_len(&self) -> usize {
        self.data.as_deref().map_or(0, <[u8]>::len)
    }

    pub(crate) fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.ephemeral_owner)
    }

    /// The Stat clients see (`DataNode.copyStat`): cversion counts creations and deletions
    /// (`2 * stored - numChildren`), and containers and TTL nodes show owner 0.
    pub(crate) fn stat(&self) -> Stat {
        let owner = match self.kind() {
            NodeKind::Ephemeral(s) => s,
            _ => 0,
        };
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self
                .cversion
                .wrapping_mul(2)
                .wrapping_sub(self.num_children),
            aversion: self.aversion,
            ephemeral_owner: owner,
            data_length: i32::try_from(self.data_len()).expect("znode data is under 2 GiB"),
            num_children: self.num_children,
            pzxid: self.pzxid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_is_compact() {
        assert_eq!(std::mem::size_of::<Node>(), 88);
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
