//! Every record a ZooKeeper client and server exchange, from `zookeeper.jute` (module
//! `org.apache.zookeeper.proto` plus `ClientInfo` of `org.apache.zookeeper.data`), checked
//! field by field against tag `release-3.9.3`.
//!
//! Plain records are declared with the private `record!` macro, which writes the struct and its [`Record`]
//! impl from one field list, so field order is stated exactly once. The handshake records
//! are written by hand because of their optional trailing `readOnly` byte.
//!
//! Field kinds of the macro and their wire forms: `int` (4 B), `long` (8 B), `boolean`
//! (1 B), `buffer` (`Vec<u8>`, null reads as empty), `ustring` (`String`, null reads as
//! empty, decoded leniently: [`crate::jute::decode_string_lossy`]), `strings`
//! (`vector<ustring>`), `record` (a nested record), `records(n)` (`vector<T>` whose
//! elements take at least `n` bytes), `code(T)` (an `int` that must be a known value of the
//! code enum `T`).
//!
//! Names follow Rust's casing of ZooKeeper's (`GetACLRequest` is [`GetAclRequest`],
//! `CreateTTLRequest` is [`CreateTtlRequest`], `GetSASLRequest` is [`GetSaslRequest`]).

use crate::jute::{DecodeError, Reader, Record, Writer};
use crate::types::{
    Acl, AddWatchMode, ErrorCode, EventType, KeeperState, SessionId, Stat, WatcherType, Xid, Zxid,
};

/// Bytes of the smallest possible ACL entry on the wire: perms plus two empty strings.
const ACL_MIN_BYTES: usize = 12;

macro_rules! decode_field {
    ($r:ident, int) => {
        $r.int()?
    };
    ($r:ident, long) => {
        $r.long()?
    };
    ($r:ident, boolean) => {
        $r.boolean()?
    };
    ($r:ident, buffer) => {
        $r.buffer()?.to_vec()
    };
    ($r:ident, opt_buffer) => {
        $r.opt_buffer()?.map(<[u8]>::to_vec)
    };
    ($r:ident, ustring) => {
        $r.ustring()?
    };
    ($r:ident, strings) => {
        $r.string_vec()?
    };
    ($r:ident, record) => {
        Record::decode($r)?
    };
    ($r:ident, records($n:expr)) => {
        $r.vec($n, Record::decode)?
    };
    ($r:ident, code($t:ty, $name:literal)) => {{
        let v = $r.int()?;
        <$t>::from_code(v).ok_or(DecodeError::BadValue {
            field: $name,
            value: i64::from(v),
        })?
    }};
}

macro_rules! encode_field {
    ($w:ident, $v:expr, int) => {
        $w.int($v);
    };
    ($w:ident, $v:expr, long) => {
        $w.long($v);
    };
    ($w:ident, $v:expr, boolean) => {
        $w.boolean($v);
    };
    ($w:ident, $v:expr, buffer) => {
        $w.buffer(&$v);
    };
    ($w:ident, $v:expr, opt_buffer) => {
        match &$v {
            Some(b) => $w.buffer(b),
            None => $w.null_buffer(),
        };
    };
    ($w:ident, $v:expr, ustring) => {
        $w.ustring(&$v);
    };
    ($w:ident, $v:expr, strings) => {
        $w.string_vec(&$v);
    };
    ($w:ident, $v:expr, record) => {
        $v.encode($w);
    };
    ($w:ident, $v:expr, records($n:expr)) => {
        $w.vec(&$v, |w, x| x.encode(w));
    };
    ($w:ident, $v:expr, code($t:ty, $name:literal)) => {
        $w.int($v.code());
    };
}

/// Declares a plain jute record: the struct, with its fields in wire order, and its
/// [`Record`] impl.
macro_rules! record {
    (
        $(#[$m:meta])*
        $name:ident {
            $( $(#[$fm:meta])* $field:ident : $ty:ty = $kind:ident $(($($arg:tt)*))? ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fm])* pub $field: $ty, )*
        }

        impl Record for $name {
            #[allow(unused_variables)]
            fn encode(&self, w: &mut Writer) {
                $( encode_field!(w, self.$field, $kind $(($($arg)*))?); )*
            }

            #[allow(unused_variables)]
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($name { $( $field: decode_field!(r, $kind $(($($arg)*))?), )* })
            }
        }
    };
}

// ---------------------------------------------------------------------------------------
// Headers.

/// The header of every client request after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestHeader {
    /// Client-chosen id echoed in the reply; negative ids are reserved ([`Xid`]).
    pub xid: Xid,
    /// The opcode as sent: kept raw because an undefined opcode is answered, not refused.
    pub op: i32,
}

impl RequestHeader {
    /// The opcode, if ZooKeeper defines it.
    pub fn op_code(&self) -> Option<crate::types::OpCode> {
        crate::types::OpCode::from_code(self.op)
    }
}

impl Record for RequestHeader {
    fn encode(&self, w: &mut Writer) {
        w.int(self.xid.0).int(self.op);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RequestHeader {
            xid: Xid(r.int()?),
            op: r.int()?,
        })
    }
}

/// The header of every server reply after the handshake (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The request's xid, or a reserved one ([`Xid::NOTIFICATION`], [`Xid::PING`], ...).
    pub xid: Xid,
    /// For replies, the server's last applied zxid (the write's own zxid for a write).
    /// For notifications, -1 on 3.8 and the firing change's zxid on 3.9.
    pub zxid: Zxid,
    /// The outcome; anything but [`ErrorCode::Ok`] means no body follows.
    pub err: ErrorCode,
}

impl ReplyHeader {
    /// A header.
    pub fn new(xid: Xid, zxid: Zxid, err: ErrorCode) -> Self {
        ReplyHeader { xid, zxid, err }
    }
}

impl Record for ReplyHeader {
    fn encode(&self, w: &mut Writer) {
        w.int(self.xid.0).long(self.zxid.0).int(self.err.code());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let xid = Xid(r.int()?);
        let zxid = Zxid(r.long()?);
        let err = r.int()?;
        let err = ErrorCode::from_code(err).ok_or(DecodeError::BadValue {
            field: "ReplyHeader.err",
            value: i64::from(err),
        })?;
        Ok(ReplyHeader { xid, zxid, err })
    }
}

// ---------------------------------------------------------------------------------------
// Handshake.

/// The first message of a connection, sent without a [`RequestHeader`].
///
/// `read_only` is `None` when the client (3.3 and older) did not send the byte; the server
/// must then answer with a [`ConnectResponse`] whose `read_only` is also `None`
/// (ZooKeeper's `isOldClient`). Bytes after the record are ignored, as ZooKeeper does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// The highest zxid the client has seen; a server behind it must refuse the client.
    pub last_zxid_seen: Zxid,
    /// Requested session timeout, ms.
    pub timeout_ms: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: SessionId,
    /// The session password (16 bytes, zeros for a new session).
    pub passwd: Vec<u8>,
    /// Whether the client accepts a read-only server; `None` if the byte was absent.
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    fn encode(&self, w: &mut Writer) {
        w.int(self.protocol_version)
            .long(self.last_zxid_seen.0)
            .int(self.timeout_ms);
        w.long(self.session_id.0).buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.boolean(ro);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.int()?,
            last_zxid_seen: Zxid(r.long()?),
            timeout_ms: r.int()?,
            session_id: SessionId(r.long()?),
            passwd: r.buffer()?.to_vec(),
            read_only: r.opt_boolean()?,
        })
    }
}

/// The answer to a [`ConnectRequest`], sent without a [`ReplyHeader`].
///
/// An invalid or expired session is answered with `timeout_ms` 0, `session_id` 0 and a
/// 16-zero-byte password, then the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// The negotiated session timeout, ms.
    pub timeout_ms: i32,
    /// The session.
    pub session_id: SessionId,
    /// The session password (16 bytes).
    pub passwd: Vec<u8>,
    /// Whether this server is read-only; `None` omits the byte (for clients that did not
    /// send it).
    pub read_only: Option<bool>,
}

impl Record for ConnectResponse {
    fn encode(&self, w: &mut Writer) {
        w.int(self.protocol_version)
            .int(self.timeout_ms)
            .long(self.session_id.0);
        w.buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.boolean(ro);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.int()?,
            timeout_ms: r.int()?,
            session_id: SessionId(r.long()?),
            passwd: r.buffer()?.to_vec(),
            read_only: r.opt_boolean()?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Watches and sessions.

record! {
    /// A watch notification (the body of a frame with xid -1).
    WatcherEvent {
        /// What happened.
        kind: EventType = code(EventType, "WatcherEvent.type"),
        /// The client's connection state ([`KeeperState::SyncConnected`] for node events).
        state: KeeperState = code(KeeperState, "WatcherEvent.state"),
        /// The node (empty for state events). Chroot is the client's business.
        path: String = ustring,
    }
}

record! {
    /// setWatches (opcode 101, xid -8): re-register one-shot watches after a reconnect.
    SetWatches {
        /// The client's last zxid: watches on nodes changed after it fire at once.
        relative_zxid: i64 = long,
        /// getData watches.
        data_watches: Vec<String> = strings,
        /// exists watches (on nodes that may not exist).
        exist_watches: Vec<String> = strings,
        /// getChildren watches.
        child_watches: Vec<String> = strings,
    }
}

record! {
    /// setWatches2 (opcode 105): [`SetWatches`] plus persistent watches (3.6+).
    SetWatches2 {
        /// The client's last zxid.
        relative_zxid: i64 = long,
        /// getData watches.
        data_watches: Vec<String> = strings,
        /// exists watches.
        exist_watches: Vec<String> = strings,
        /// getChildren watches.
        child_watches: Vec<String> = strings,
        /// Persistent watches.
        persistent_watches: Vec<String> = strings,
        /// Persistent recursive watches.
        persistent_recursive_watches: Vec<String> = strings,
    }
}

record! {
    /// addWatch (opcode 106). ZooKeeper answers success with an [`ErrorResponse`] body of 0.
    AddWatchRequest {
        /// The node.
        path: String = ustring,
        /// Persistent or persistent-recursive.
        mode: AddWatchMode = code(AddWatchMode, "AddWatchRequest.mode"),
    }
}

record! {
    /// checkWatches (opcode 17).
    CheckWatchesRequest {
        /// The node.
        path: String = ustring,
        /// Which kind of watch.
        kind: WatcherType = code(WatcherType, "CheckWatchesRequest.type"),
    }
}

record! {
    /// removeWatches (opcode 18).
    RemoveWatchesRequest {
        /// The node.
        path: String = ustring,
        /// Which kind of watch.
        kind: WatcherType = code(WatcherType, "RemoveWatchesRequest.type"),
    }
}

record! {
    /// auth (opcode 100, xid -4).
    AuthPacket {
        /// Always 0.
        kind: i32 = int,
        /// The scheme (`digest`, ...).
        scheme: String = ustring,
        /// The credentials (`user:password` for digest).
        auth: Vec<u8> = buffer,
    }
}

record! {
    /// sasl (opcode 102): a client SASL token.
    GetSaslRequest {
        /// The token.
        token: Vec<u8> = buffer,
    }
}

record! {
    /// The server's SASL token.
    SetSaslResponse {
        /// The token.
        token: Vec<u8> = buffer,
    }
}

record! {
    /// One authenticated identity of the caller (whoAmI).
    ClientInfo {
        /// The scheme.
        auth_scheme: String = ustring,
        /// The user or other id (an address for `ip`).
        user: String = ustring,
    }
}

record! {
    /// The answer to whoAmI (opcode 107, no request body).
    WhoAmIResponse {
        /// The caller's identities.
        client_info: Vec<ClientInfo> = records(8),
    }
}

// ---------------------------------------------------------------------------------------
// Writes.

record! {
    /// create (1), create2 (15) and createContainer (19).
    CreateRequest {
        /// The node (or prefix, for sequential modes).
        path: String = ustring,
        /// The data.
        data: Option<Vec<u8>> = opt_buffer,
        /// The ACL (ZooKeeper answers InvalidACL when it is empty).
        acl: Vec<Acl> = records(ACL_MIN_BYTES),
        /// A [`crate::CreateMode`] flag, kept raw: a standalone create with an unknown flag
        /// is answered BadArguments, not refused.
        flags: i32 = int,
    }
}

record! {
    /// createTTL (opcode 21).
    CreateTtlRequest {
        /// The node.
        path: String = ustring,
        /// The data.
        data: Option<Vec<u8>> = opt_buffer,
        /// The ACL.
        acl: Vec<Acl> = records(ACL_MIN_BYTES),
        /// A [`crate::CreateMode`] flag (must be a TTL mode).
        flags: i32 = int,
        /// Time to live, ms.
        ttl: i64 = long,
    }
}

record! {
    /// The answer to create.
    CreateResponse {
        /// The created path (with its sequence suffix).
        path: String = ustring,
    }
}

record! {
    /// The answer to create2, createContainer and createTTL.
    Create2Response {
        /// The created path.
        path: String = ustring,
        /// The new node's stat.
        stat: Stat = record,
    }
}

record! {
    /// delete (opcode 2); the answer has no body.
    DeleteRequest {
        /// The node.
        path: String = ustring,
        /// Expected data version, -1 for any.
        version: i32 = int,
    }
}

record! {
    /// setData (opcode 5).
    SetDataRequest {
        /// The node.
        path: String = ustring,
        /// The new data.
        data: Option<Vec<u8>> = opt_buffer,
        /// Expected data version, -1 for any.
        version: i32 = int,
    }
}

record! {
    /// The answer to setData.
    SetDataResponse {
        /// The node's new stat.
        stat: Stat = record,
    }
}

record! {
    /// setACL (opcode 7).
    SetAclRequest {
        /// The node.
        path: String = ustring,
        /// The new ACL.
        acl: Vec<Acl> = records(ACL_MIN_BYTES),
        /// Expected ACL version, -1 for any.
        version: i32 = int,
    }
}

record! {
    /// The answer to setACL.
    SetAclResponse {
        /// The node's new stat.
        stat: Stat = record,
    }
}

record! {
    /// check (opcode 13), inside multi.
    CheckVersionRequest {
        /// The node.
        path: String = ustring,
        /// Expected data version, -1 for any.
        version: i32 = int,
    }
}

record! {
    /// reconfig (opcode 16). The answer is a [`GetDataResponse`] of `/zookeeper/config`.
    ReconfigRequest {
        /// Servers to add (incremental mode).
        joining_servers: String = ustring,
        /// Server ids to remove (incremental mode).
        leaving_servers: String = ustring,
        /// The whole new membership (non-incremental mode).
        new_members: String = ustring,
        /// Expected current config version, -1 for any.
        cur_config_id: i64 = long,
    }
}

// ---------------------------------------------------------------------------------------
// Reads.

record! {
    /// exists (opcode 3).
    ExistsRequest {
        /// The node.
        path: String = ustring,
        /// Leave a data watch (also on a missing node).
        watch: bool = boolean,
    }
}

record! {
    /// The answer to exists on an existing node (a missing node is NoNode, no body).
    ExistsResponse {
        /// The node's stat.
        stat: Stat = record,
    }
}

record! {
    /// getData (opcode 4).
    GetDataRequest {
        /// The node.
        path: String = ustring,
        /// Leave a data watch.
        watch: bool = boolean,
    }
}

record! {
    /// The answer to getData (and reconfig).
    GetDataResponse {
        /// The data.
        data: Option<Vec<u8>> = opt_buffer,
        /// The node's stat.
        stat: Stat = record,
    }
}

record! {
    /// getACL (opcode 6).
    GetAclRequest {
        /// The node.
        path: String = ustring,
    }
}

record! {
    /// The answer to getACL.
    GetAclResponse {
        /// The ACL.
        acl: Vec<Acl> = records(ACL_MIN_BYTES),
        /// The node's stat.
        stat: Stat = record,
    }
}

record! {
    /// getChildren (opcode 8).
    GetChildrenRequest {
        /// The node.
        path: String = ustring,
        /// Leave a child watch.
        watch: bool = boolean,
    }
}

record! {
    /// The answer to getChildren.
    GetChildrenResponse {
        /// Child names (not paths).
        children: Vec<String> = strings,
    }
}

record! {
    /// getChildren2 (opcode 12).
    GetChildren2Request {
        /// The node.
        path: String = ustring,
        /// Leave a child watch.
        watch: bool = boolean,
    }
}

record! {
    /// The answer to getChildren2.
    GetChildren2Response {
        /// Child names.
        children: Vec<String> = strings,
        /// The node's stat.
        stat: Stat = record,
    }
}

record! {
    /// sync (opcode 9).
    SyncRequest {
        /// The node (echoed back).
        path: String = ustring,
    }
}

record! {
    /// The answer to sync.
    SyncResponse {
        /// The path of the request.
        path: String = ustring,
    }
}

record! {
    /// getEphemerals (opcode 103).
    GetEphemeralsRequest {
        /// Plain string prefix of the paths to list (`/e` also matches `/e2`).
        prefix_path: String = ustring,
    }
}

record! {
    /// The answer to getEphemerals.
    GetEphemeralsResponse {
        /// The caller's ephemeral paths under the prefix.
        ephemerals: Vec<String> = strings,
    }
}

record! {
    /// deleteContainer (opcode 20). ZooKeeper's leader sends it for its container sweep, but
    /// its servers also accept it from clients (3.9 reads this record).
    DeleteContainerRequest {
        /// The node.
        path: String = ustring,
    }
}

record! {
    /// getAllChildrenNumber (opcode 104).
    GetAllChildrenNumberRequest {
        /// The node.
        path: String = ustring,
    }
}

record! {
    /// The answer to getAllChildrenNumber.
    GetAllChildrenNumberResponse {
        /// Number of descendants (the node itself excluded).
        total_number: i32 = int,
    }
}

// ---------------------------------------------------------------------------------------
// Multi framing.

record! {
    /// The header in front of each op of a multi request and each result of a multi reply.
    MultiHeader {
        /// The op's opcode, or -1 for an error result and the terminator.
        kind: i32 = int,
        /// True only on the terminator.
        done: bool = boolean,
        /// -1 in requests; the op's error code (0 on success) in replies.
        err: i32 = int,
    }
}

impl MultiHeader {
    /// The header that ends a multi request or reply: `{-1, true, -1}`.
    pub const DONE: MultiHeader = MultiHeader {
        kind: -1,
        done: true,
        err: -1,
    };
}

record! {
    /// The body of a failed op inside a multi reply (type -1).
    ErrorResponse {
        /// The op's error code.
        err: i32 = int,
    }
}
