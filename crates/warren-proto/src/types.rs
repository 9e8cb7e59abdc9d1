//! Numbers and small records shared by every layer, with jute's widths.

use crate::jute::{DecodeError, Reader, Record, Writer};

/// A ZooKeeper transaction id: one per applied write (a whole `multi` counts once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Zxid(pub i64);

/// A session id; the top byte names the server that created it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub i64);

/// A client-chosen request id, echoed in the reply. Negative values are reserved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Xid(pub i32);

impl Xid {
    /// Watch notifications.
    pub const NOTIFICATION: Xid = Xid(-1);
    /// Pings.
    pub const PING: Xid = Xid(-2);
    /// Authentication packets.
    pub const AUTH: Xid = Xid(-4);
    /// setWatches after a reconnect.
    pub const SET_WATCHES: Xid = Xid(-8);
}

/// A znode's metadata as clients see it (68 bytes on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Stat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// Time of the create, ms since the epoch (from the leader's stamp).
    pub ctime: i64,
    /// Time of the last data change.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Child version as clients see it: creations plus deletions of children.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Owning session of an ephemeral, else 0 (containers and TTL nodes also show 0).
    pub ephemeral_owner: i64,
    /// Bytes of data.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// zxid of the last change to the children.
    pub pzxid: i64,
}

impl Record for Stat {
    fn encode(&self, w: &mut Writer) {
        w.long(self.czxid)
            .long(self.mzxid)
            .long(self.ctime)
            .long(self.mtime);
        w.int(self.version).int(self.cversion).int(self.aversion);
        w.long(self.ephemeral_owner)
            .int(self.data_length)
            .int(self.num_children);
        w.long(self.pzxid);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Stat {
            czxid: r.long()?,
            mzxid: r.long()?,
            ctime: r.long()?,
            mtime: r.long()?,
            version: r.int()?,
            cversion: r.int()?,
            aversion: r.int()?,
            ephemeral_owner: r.long()?,
            data_length: r.int()?,
            num_children: r.int()?,
            pzxid: r.long()?,
        })
    }
}

/// An identity in a scheme: `world:anyone`, `digest:user:hash`, `ip:10.0.0.0/8`, ...
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id {
    /// The scheme (`world`, `auth`, `digest`, `ip`, `sasl`, `x509`, `super`).
    pub scheme: String,
    /// The id within the scheme.
    pub id: String,
}

impl Id {
    /// A new id.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// `world:anyone`.
    pub fn anyone() -> Self {
        Id::new("world", "anyone")
    }
}

impl Record for Id {
    fn encode(&self, w: &mut Writer) {
        w.ustring(&self.scheme).ustring(&self.id);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Id {
            scheme: r.ustring()?,
            id: r.ustring()?,
        })
    }
}

/// Permission bits of an ACL entry.
pub mod perms {
    /// getData, getChildren, exists (since 3.9.2/3.8.4).
    pub const READ: i32 = 1;
    /// setData.
    pub const WRITE: i32 = 2;
    /// create a child.
    pub const CREATE: i32 = 4;
    /// delete a child.
    pub const DELETE: i32 = 8;
    /// setACL.
    pub const ADMIN: i32 = 16;
    /// All of the above.
    pub const ALL: i32 = 31;
}

/// One ACL entry: permission bits granted to an identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Acl {
    /// Bits from [`perms`].
    pub perms: i32,
    /// Who gets them.
    pub id: Id,
}

impl Acl {
    /// `world:anyone` with every permission (ZooKeeper's `OPEN_ACL_UNSAFE`).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: perms::ALL,
            id: Id::anyone(),
        }]
    }
}

impl Record for Acl {
    fn encode(&self, w: &mut Writer) {
        w.int(self.perms);
        self.id.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Acl {
            perms: r.int()?,
            id: Id::decode(r)?,
        })
    }
}

/// Declares a fieldless `i32` enum with ZooKeeper's codes and a fallible conversion.
macro_rules! code_enum {
    (
        $(#[$m:meta])* $name:ident $(default $d:ident)?
        { $($(#[$vm:meta])* $v:ident = $n:expr,)* }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v = $n,)* }

        impl $name {
            /// The code on the wire.
            pub fn code(self) -> i32 { self as i32 }

            /// The variant for a wire code, if the protocol defines one.
            pub fn from_code(code: i32) -> Option<Self> {
                match code { $($n => Some($name::$v),)* _ => None }
            }
        }

        $(
            /// The default lets records holding this code derive `Default`.
            impl Default for $name {
                fn default() -> Self { $name::$d }
            }
        )?
    };
}

code_enum! {
    /// KeeperException codes (`KeeperException.Code`).
    ErrorCode {
        /// Success.
        Ok = 0,
        /// Range marker for system errors.
        SystemError = -1,
        /// A state that should be impossible; also the code of ops after a failed one in multi.
        RuntimeInconsistency = -2,
        /// Data inconsistency.
        DataInconsistency = -3,
        /// Connection to the server lost.
        ConnectionLoss = -4,
        /// Error while marshalling or unmarshalling.
        MarshallingError = -5,
        /// Operation not implemented.
        Unimplemented = -6,
        /// Operation timeout.
        OperationTimeout = -7,
        /// Invalid arguments.
        BadArguments = -8,
        /// Unknown session (internal).
        UnknownSession = -12,
        /// No quorum for a new config.
        NewConfigNoQuorum = -13,
        /// Another reconfiguration is in progress.
        ReconfigInProgress = -14,
        /// Range marker for API errors.
        ApiError = -100,
        /// The node does not exist.
        NoNode = -101,
        /// Not authenticated for the operation.
        NoAuth = -102,
        /// Version conflict.
        BadVersion = -103,
        /// Ephemeral nodes may not have children.
        NoChildrenForEphemerals = -108,
        /// The node already exists.
        NodeExists = -110,
        /// The node has children.
        NotEmpty = -111,
        /// The session has been expired by the server.
        SessionExpired = -112,
        /// Invalid callback.
        InvalidCallback = -113,
        /// Invalid ACL.
        InvalidAcl = -114,
        /// Client authentication failed.
        AuthFailed = -115,
        /// Session moved to another server.
        SessionMoved = -118,
        /// State-changing request to a read-only server.
        NotReadOnly = -119,
        /// Ephemeral on a local session.
        EphemeralOnLocalSession = -120,
        /// No such watch to remove.
        NoWatcher = -121,
        /// Request timed out.
        RequestTimeout = -122,
        /// Reconfiguration is disabled.
        ReconfigDisabled = -123,
        /// SASL authentication is required.
        SessionClosedRequireSaslAuth = -124,
        /// Quota exceeded.
        QuotaExceeded = -125,
        /// Operation throttled.
        ThrottledOp = -127,
    }
}

code_enum! {
    /// Request opcodes (`ZooDefs.OpCode`).
    OpCode {
        /// Server push (xid -1).
        Notification = 0,
        /// create.
        Create = 1,
        /// delete.
        Delete = 2,
        /// exists.
        Exists = 3,
        /// getData.
        GetData = 4,
        /// setData.
        SetData = 5,
        /// getACL.
        GetAcl = 6,
        /// setACL.
        SetAcl = 7,
        /// getChildren.
        GetChildren = 8,
        /// sync.
        Sync = 9,
        /// ping.
        Ping = 11,
        /// getChildren2.
        GetChildren2 = 12,
        /// check (inside multi).
        Check = 13,
        /// multi.
        Multi = 14,
        /// create2.
        Create2 = 15,
        /// reconfig.
        Reconfig = 16,
        /// checkWatches.
        CheckWatches = 17,
        /// removeWatches.
        RemoveWatches = 18,
        /// createContainer.
        CreateContainer = 19,
        /// deleteContainer (server-internal).
        DeleteContainer = 20,
        /// createTTL.
        CreateTtl = 21,
        /// multiRead.
        MultiRead = 22,
        /// auth.
        Auth = 100,
        /// setWatches.
        SetWatches = 101,
        /// sasl.
        Sasl = 102,
        /// getEphemerals.
        GetEphemerals = 103,
        /// getAllChildrenNumber.
        GetAllChildrenNumber = 104,
        /// setWatches2.
        SetWatches2 = 105,
        /// addWatch.
        AddWatch = 106,
        /// whoAmI.
        WhoAmI = 107,
        /// createSession (internal).
        CreateSession = -10,
        /// closeSession.
        CloseSession = -11,
        /// error marker in multi results.
        Error = -1,
    }
}

code_enum! {
    /// `CreateMode` flags of create requests.
    CreateMode {
        /// Persistent.
        Persistent = 0,
        /// Ephemeral.
        Ephemeral = 1,
        /// Persistent, sequential.
        PersistentSequential = 2,
        /// Ephemeral, sequential.
        EphemeralSequential = 3,
        /// Container.
        Container = 4,
        /// Persistent with a TTL.
        PersistentWithTtl = 5,
        /// Persistent, sequential, with a TTL.
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// True for the modes that append a sequence number.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// True for the modes owned by a session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// True for the TTL modes.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

code_enum! {
    /// `Watcher.Event.EventType`.
    EventType default None {
        /// A state change, no node.
        None = -1,
        /// The node was created.
        NodeCreated = 1,
        /// The node was deleted.
        NodeDeleted = 2,
        /// The node's data changed.
        NodeDataChanged = 3,
        /// The node's children changed.
        NodeChildrenChanged = 4,
        /// A data watch was removed.
        DataWatchRemoved = 5,
        /// A child watch was removed.
        ChildWatchRemoved = 6,
        /// A persistent watch was removed.
        PersistentWatchRemoved = 7,
    }
}

code_enum! {
    /// `Watcher.Event.KeeperState`.
    KeeperState default SyncConnected {
        /// Disconnected.
        Disconnected = 0,
        /// Connected.
        SyncConnected = 3,
        /// Authentication failed.
        AuthFailed = 4,
        /// Connected to a read-only server.
        ConnectedReadOnly = 5,
        /// SASL authenticated.
        SaslAuthenticated = 6,
        /// Session expired.
        Expired = -112,
        /// Closed (client-local).
        Closed = 7,
    }
}

code_enum! {
    /// `Watcher.WatcherType`, used by checkWatches and removeWatches.
    WatcherType default Any {
        /// Child watches.
        Children = 1,
        /// Data watches.
        Data = 2,
        /// Any watch.
        Any = 3,
        /// Persistent watches.
        Persistent = 4,
        /// Persistent recursive watches.
        PersistentRecursive = 5,
    }
}

code_enum! {
    /// `AddWatchMode` of addWatch.
    AddWatchMode default Persistent {
        /// Persistent on the node.
        Persistent = 0,
        /// Persistent on the node and its whole subtree.
        PersistentRecursive = 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_68_bytes_and_round_trips() {
        let s = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: -6,
            aversion: 7,
            ephemeral_owner: i64::MIN,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        let b = s.to_bytes();
        assert_eq!(b.len(), 68);
        assert_eq!(Stat::from_bytes(&b).unwrap(), s);
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_are_none() {
        assert_eq!(ErrorCode::from_code(-101), Some(ErrorCode::NoNode));
        assert_eq!(ErrorCode::NoNode.code(), -101);
        assert_eq!(OpCode::from_code(106), Some(OpCode::AddWatch));
        assert_eq!(OpCode::from_code(10), None);
        assert_eq!(CreateMode::from_code(7), None);
    }
}
