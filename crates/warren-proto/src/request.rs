//! A decoded client request: [`decode_request`] turns a [`RequestHeader`] and the bytes
//! after it into a [`Request`]; [`encode_request`] is its inverse (for clients and tests).
//!
//! Twin of the request-reading parts of ZooKeeper's `ZooKeeperServer.processPacket`,
//! `PrepRequestProcessor`, `FinalRequestProcessor` and `MultiOperationRecord`. What
//! ZooKeeper does with a body that does not parse, and how we differ:
//!
//! - ZooKeeper decodes the header eagerly and the body lazily, inside its processors. A
//!   header that does not parse closes the connection. An `auth` or `sasl` body that does not
//!   parse closes it too (`processPacket` throws). Any other body that does not parse is
//!   answered with `MarshallingError` (-5) and the connection stays up
//!   (`catch (Exception e)` in both processors). Here every such body is a
//!   [`DecodeError`]; the server chooses between those two answers by opcode.
//! - Bytes after the body are ignored, as Java's `BinaryInputArchive` ignores them.
//! - A multi op of a type ZooKeeper does not allow there, a create op in a multi with an
//!   unknown `CreateMode` flag, and a write op inside multiRead (or a read op inside multi)
//!   are [`DecodeError`]s: ZooKeeper throws `IOException` while reading the multi, which
//!   becomes `MarshallingError`.
//! - An opcode a client may not send is [`Request::Unknown`], not an error.

use crate::jute::{DecodeError, Reader, Record, Writer};
use crate::records::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest, ConnectRequest,
    CreateRequest, CreateTtlRequest, DeleteContainerRequest, DeleteRequest, ExistsRequest,
    GetAclRequest, GetAllChildrenNumberRequest, GetChildren2Request, GetChildrenRequest,
    GetDataRequest, GetEphemeralsRequest, GetSaslRequest, MultiHeader, ReconfigRequest,
    RemoveWatchesRequest, RequestHeader, SetAclRequest, SetDataRequest, SetWatches, SetWatches2,
    SyncRequest,
};
use crate::types::{CreateMode, OpCode, Xid};

/// One client request after the handshake, one variant per opcode a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create (1): answered with a `CreateResponse`.
    Create(CreateRequest),
    /// create2 (15): answered with a `Create2Response`.
    Create2(CreateRequest),
    /// createContainer (19): answered with a `Create2Response`.
    CreateContainer(CreateRequest),
    /// createTTL (21): answered with a `Create2Response`.
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(DeleteRequest),
    /// exists (3).
    Exists(ExistsRequest),
    /// getData (4).
    GetData(GetDataRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// getACL (6).
    GetAcl(GetAclRequest),
    /// setACL (7).
    SetAcl(SetAclRequest),
    /// getChildren (8).
    GetChildren(GetChildrenRequest),
    /// getChildren2 (12).
    GetChildren2(GetChildren2Request),
    /// sync (9).
    Sync(SyncRequest),
    /// check (13) outside a multi. ZooKeeper 3.9.3+ answers Unimplemented (ZOOKEEPER-2623).
    Check(CheckVersionRequest),
    /// multi (14): atomic writes.
    Multi(Vec<MultiOp>),
    /// multiRead (22): independent reads.
    MultiRead(Vec<ReadOp>),
    /// ping (11, xid -2).
    Ping,
    /// closeSession (-11).
    CloseSession,
    /// auth (100, xid -4).
    Auth(AuthPacket),
    /// setWatches (101, xid -8).
    SetWatches(SetWatches),
    /// setWatches2 (105).
    SetWatches2(SetWatches2),
    /// addWatch (106).
    AddWatch(AddWatchRequest),
    /// checkWatches (17).
    CheckWatches(CheckWatchesRequest),
    /// removeWatches (18).
    RemoveWatches(RemoveWatchesRequest),
    /// getEphemerals (103).
    GetEphemerals(GetEphemeralsRequest),
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    /// whoAmI (107).
    WhoAmI,
    /// reconfig (16).
    Reconfig(ReconfigRequest),
    /// deleteContainer (20): ZooKeeper accepts it from clients too (a write).
    DeleteContainer(DeleteContainerRequest),
    /// sasl (102).
    Sasl(GetSaslRequest),
    /// An opcode a client may not send: undefined, or one ZooKeeper reserves for itself
    /// (notification 0, error -1, createSession -10). The body is not
    /// read. ZooKeeper answers `Unimplemented` (-6) with the request's xid and then closes
    /// the connection (`UnimplementedRequestProcessor` calls `sendCloseSession`).
    Unknown(i32),
}

/// One op of a multi request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create (1).
    Create(CreateRequest),
    /// create2 (15).
    Create2(CreateRequest),
    /// createContainer (19).
    CreateContainer(CreateRequest),
    /// createTTL (21).
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(DeleteRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// check (13).
    Check(CheckVersionRequest),
}

/// One op of a multiRead request. The watch flag is sent but ZooKeeper ignores it here
/// (`Op.getChildren(path)` / `Op.getData(path)` drop it), so no watch is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// getChildren (8).
    GetChildren(GetChildrenRequest),
    /// getData (4).
    GetData(GetDataRequest),
}

impl Request {
    /// The opcode this request was (or will be) sent with.
    pub fn op(&self) -> i32 {
        let code = match self {
            Request::Create(_) => OpCode::Create,
            Request::Create2(_) => OpCode::Create2,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Sync(_) => OpCode::Sync,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Ping => OpCode::Ping,
            Request::CloseSession => OpCode::CloseSession,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::DeleteContainer(_) => OpCode::DeleteContainer,
            Request::Sasl(_) => OpCode::Sasl,
            Request::Unknown(op) => return *op,
        };
        code.code()
    }

    /// The path the request names, for requests that name exactly one (for traces and
    /// per-path accounting); `None` for multi, session, auth and watch-set requests.
    pub fn path(&self) -> Option<&str> {
        Some(match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => &r.path,
            Request::CreateTtl(r) => &r.path,
            Request::Delete(r) => &r.path,
            Request::Exists(r) => &r.path,
            Request::GetData(r) => &r.path,
            Request::SetData(r) => &r.path,
            Request::GetAcl(r) => &r.path,
            Request::SetAcl(r) => &r.path,
            Request::GetChildren(r) => &r.path,
            Request::GetChildren2(r) => &r.path,
            Request::Sync(r) => &r.path,
            Request::Check(r) => &r.path,
            Request::AddWatch(r) => &r.path,
            Request::CheckWatches(r) => &r.path,
            Request::RemoveWatches(r) => &r.path,
            Request::GetEphemerals(r) => &r.prefix_path,
            Request::GetAllChildrenNumber(r) => &r.path,
            Request::DeleteContainer(r) => &r.path,
            Request::Multi(_)
            | Request::MultiRead(_)
            | Request::Ping
            | Request::CloseSession
            | Request::Auth(_)
            | Request::SetWatches(_)
            | Request::SetWatches2(_)
            | Request::WhoAmI
            | Request::Reconfig(_)
            | Request::Sasl(_)
            | Request::Unknown(_) => return None,
        })
    }

    /// True for requests that change replicated state and so go through consensus:
    /// creates, delete, setData, setACL, multi, reconfig and closeSession.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create(_)
                | Request::Create2(_)
                | Request::CreateContainer(_)
                | Request::CreateTtl(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::DeleteContainer(_)
                | Request::CloseSession
        )
    }

    /// Appends the body (everything after the header).
    pub fn encode_body(&self, w: &mut Writer) {
        match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => r.encode(w),
            Request::CreateTtl(r) => r.encode(w),
            Request::Delete(r) => r.encode(w),
            Request::Exists(r) => r.encode(w),
            Request::GetData(r) => r.encode(w),
            Request::SetData(r) => r.encode(w),
            Request::GetAcl(r) => r.encode(w),
            Request::SetAcl(r) => r.encode(w),
            Request::GetChildren(r) => r.encode(w),
            Request::GetChildren2(r) => r.encode(w),
            Request::Sync(r) => r.encode(w),
            Request::Check(r) => r.encode(w),
            Request::Multi(ops) => encode_multi(w, ops, MultiOp::op, MultiOp::encode_body),
            Request::MultiRead(ops) => encode_multi(w, ops, ReadOp::op, ReadOp::encode_body),
            Request::Ping | Request::CloseSession | Request::WhoAmI | Request::Unknown(_) => {}
            Request::Auth(r) => r.encode(w),
            Request::SetWatches(r) => r.encode(w),
            Request::SetWatches2(r) => r.encode(w),
            Request::AddWatch(r) => r.encode(w),
            Request::CheckWatches(r) => r.encode(w),
            Request::RemoveWatches(r) => r.encode(w),
            Request::GetEphemerals(r) => r.encode(w),
            Request::GetAllChildrenNumber(r) => r.encode(w),
            Request::Reconfig(r) => r.encode(w),
            Request::DeleteContainer(r) => r.encode(w),
            Request::Sasl(r) => r.encode(w),
        }
    }
}

impl MultiOp {
    /// The op's opcode.
    pub fn op(&self) -> i32 {
        let code = match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
        };
        code.code()
    }

    /// The path the op acts on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
        }
    }

    fn encode_body(&self, w: &mut Writer) {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => r.encode(w),
            MultiOp::CreateTtl(r) => r.encode(w),
            MultiOp::Delete(r) => r.encode(w),
            MultiOp::SetData(r) => r.encode(w),
            MultiOp::Check(r) => r.encode(w),
        }
    }

    fn decode(op: i32, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bad = || DecodeError::BadValue {
            field: "MultiHeader.type",
            value: i64::from(op),
        };
        let op = OpCode::from_code(op).ok_or_else(bad)?;
        Ok(match op {
            OpCode::Create => MultiOp::Create(decode_create(r)?),
            OpCode::Create2 => MultiOp::Create2(decode_create(r)?),
            OpCode::CreateContainer => MultiOp::CreateContainer(decode_create(r)?),
            OpCode::CreateTtl => MultiOp::CreateTtl(CreateTtlRequest::decode(r)?),
            OpCode::Delete => MultiOp::Delete(DeleteRequest::decode(r)?),
            OpCode::SetData => MultiOp::SetData(SetDataRequest::decode(r)?),
            OpCode::Check => MultiOp::Check(CheckVersionRequest::decode(r)?),
            _ => return Err(bad()),
        })
    }
}

impl ReadOp {
    /// The op's opcode.
    pub fn op(&self) -> i32 {
        match self {
            ReadOp::GetChildren(_) => OpCode::GetChildren.code(),
            ReadOp::GetData(_) => OpCode::GetData.code(),
        }
    }

    /// The path the op reads.
    pub fn path(&self) -> &str {
        match self {
            ReadOp::GetChildren(r) => &r.path,
            ReadOp::GetData(r) => &r.path,
        }
    }

    fn encode_body(&self, w: &mut Writer) {
        match self {
            ReadOp::GetChildren(r) => r.encode(w),
            ReadOp::GetData(r) => r.encode(w),
        }
    }

    fn decode(op: i32, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match OpCode::from_code(op) {
            Some(OpCode::GetChildren) => Ok(ReadOp::GetChildren(GetChildrenRequest::decode(r)?)),
            Some(OpCode::GetData) => Ok(ReadOp::GetData(GetDataRequest::decode(r)?)),
            _ => Err(DecodeError::BadValue {
                field: "MultiHeader.type",
                value: i64::from(op),
            }),
        }
    }
}

/// A create op inside a multi: ZooKeeper's `MultiOperationRecord` refuses an unknown
/// `CreateMode` flag while reading (a standalone create gets BadArguments later instead).
fn decode_create(r: &mut Reader<'_>) -> Result<CreateRequest, DecodeError> {
    let req = CreateRequest::decode(r)?;
    if CreateMode::from_code(req.flags).is_none() {
        return Err(DecodeError::BadValue {
            field: "CreateRequest.flags",
            value: i64::from(req.flags),
        });
    }
    Ok(req)
}

/// Reads `MultiHeader` + op pairs until the header with `done` set (its type and err are not
/// looked at, as in ZooKeeper). Every op costs at least 9 header bytes, so the list cannot
/// outgrow the frame.
fn decode_multi<T>(
    r: &mut Reader<'_>,
    mut op: impl FnMut(i32, &mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::decode(r)?;
        if h.done {
            return Ok(ops);
        }
        ops.push(op(h.kind, r)?);
    }
}

fn encode_multi<T>(
    w: &mut Writer,
    ops: &[T],
    op: impl Fn(&T) -> i32,
    body: impl Fn(&T, &mut Writer),
) {
    for o in ops {
        MultiHeader {
            kind: op(o),
            done: false,
            err: -1,
        }
        .encode(w);
        body(o, w);
    }
    MultiHeader::DONE.encode(w);
}

/// Decodes the body of a request whose header is `header`. `body` is the frame after the
/// 8-byte header; bytes after the request's record are ignored, as in ZooKeeper.
pub fn decode_request(header: &RequestHeader, body: &[u8]) -> Result<Request, DecodeError> {
    let Some(op) = OpCode::from_code(header.op) else {
        return Ok(Request::Unknown(header.op));
    };
    let r = &mut Reader::new(body);
    Ok(match op {
        OpCode::Create => Request::Create(CreateRequest::decode(r)?),
        OpCode::Create2 => Request::Create2(CreateRequest::decode(r)?),
        OpCode::CreateContainer => Request::CreateContainer(CreateRequest::decode(r)?),
        OpCode::CreateTtl => Request::CreateTtl(CreateTtlRequest::decode(r)?),
        OpCode::Delete => Request::Delete(DeleteRequest::decode(r)?),
        OpCode::Exists => Request::Exists(ExistsRequest::decode(r)?),
        OpCode::GetData => Request::GetData(GetDataRequest::decode(r)?),
        OpCode::SetData => Request::SetData(SetDataRequest::decode(r)?),
        OpCode::GetAcl => Request::GetAcl(GetAclRequest::decode(r)?),
        OpCode::SetAcl => Request::SetAcl(SetAclRequest::decode(r)?),
        OpCode::GetChildren => Request::GetChildren(GetChildrenRequest::decode(r)?),
        OpCode::GetChildren2 => Request::GetChildren2(GetChildren2Request::decode(r)?),
        OpCode::Sync => Request::Sync(SyncRequest::decode(r)?),
        OpCode::Check => Request::Check(CheckVersionRequest::decode(r)?),
        OpCode::Multi => Request::Multi(decode_multi(r, MultiOp::decode)?),
        OpCode::MultiRead => Request::MultiRead(decode_multi(r, ReadOp::decode)?),
        OpCode::Ping => Request::Ping,
        OpCode::CloseSession => Request::CloseSession,
        OpCode::Auth => Request::Auth(AuthPacket::decode(r)?),
        OpCode::SetWatches => Request::SetWatches(SetWatches::decode(r)?),
        OpCode::SetWatches2 => Request::SetWatches2(SetWatches2::decode(r)?),
        OpCode::AddWatch => Request::AddWatch(AddWatchRequest::decode(r)?),
        OpCode::CheckWatches => Request::CheckWatches(CheckWatchesRequest::decode(r)?),
        OpCode::RemoveWatches => Request::RemoveWatches(RemoveWatchesRequest::decode(r)?),
        OpCode::GetEphemerals => Request::GetEphemerals(GetEphemeralsRequest::decode(r)?),
        OpCode::GetAllChildrenNumber => {
            Request::GetAllChildrenNumber(GetAllChildrenNumberRequest::decode(r)?)
        }
        OpCode::WhoAmI => Request::WhoAmI,
        OpCode::Reconfig => Request::Reconfig(ReconfigRequest::decode(r)?),
        OpCode::Sasl => Request::Sasl(GetSaslRequest::decode(r)?),
        OpCode::DeleteContainer => Request::DeleteContainer(DeleteContainerRequest::decode(r)?),
        OpCode::Notification | OpCode::Error | OpCode::CreateSession => Request::Unknown(header.op),
    })
}

/// Decodes the handshake frame (without its length prefix). The readOnly byte is optional
/// (see [`ConnectRequest`]) and bytes after the record are ignored, as in ZooKeeper.
pub fn decode_connect(frame: &[u8]) -> Result<ConnectRequest, DecodeError> {
    ConnectRequest::decode(&mut Reader::new(frame))
}

/// Decodes a whole frame body (header and request), without the length prefix.
pub fn decode_frame(frame: &[u8]) -> Result<(RequestHeader, Request), DecodeError> {
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r)?;
    let request = decode_request(&header, &frame[r.position()..])?;
    Ok((header, request))
}

/// Encodes a complete request frame: length prefix, header (`xid`, the request's opcode)
/// and body.
pub fn encode_request(xid: Xid, request: &Request) -> Vec<u8> {
    crate::frame::encode_frame(|w| {
        RequestHeader {
            xid,
            op: request.op(),
        }
        .encode(w);
        request.encode_body(w);
    })
}
