//! What each client request does: reads run against the tree where the connection is, writes
//! become a [`warren_tree::Op`] for the log, and applied outcomes become reply frames.
//!
//! Twin of ZooKeeper's `FinalRequestProcessor` (reads and replies) and the request-to-txn
//! half of `PrepRequestProcessor`. ACLs, versions and sequence numbers are decided by the tree
//! at apply ("log the intent, decide at apply"); only checks that depend on this server's
//! configuration (TTL nodes disabled) are made here, before the log.

use std::sync::Arc;

use warren_proto::records::{
    ClientInfo, Create2Response, CreateResponse, ErrorResponse, ExistsResponse, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse, GetEphemeralsResponse,
    ReplyHeader, SetAclResponse, SetDataResponse, SyncResponse, WatcherEvent, WhoAmIResponse,
};
use warren_proto::request::{MultiOp, ReadOp, Request};
use warren_proto::response::{
    MultiResponse, OpResult, encode_error, encode_get_data_reply, encode_notification,
    encode_reply, encode_reply_header,
};
use warren_proto::{
    Acl, AddWatchMode, CreateMode, ErrorCode, EventType, Id, KeeperState, OpCode, SessionId, Stat,
    Xid, Zxid, perms,
};
use warren_tree::{DataTree, NodeRef, Op, Outcome};

use crate::conn::{ReadCtx, ReadFn, WriteKind};
use crate::watch::WatchSet;

/// Who is asking: the session and its identities at the time of the request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The session.
    pub session: SessionId,
    /// Identities (`ip:`, `digest:`, `super:`).
    pub auth: Arc<[Id]>,
}

/// What the connection does with a request.
pub enum Action {
    /// Run against the tree in FIFO order.
    Read(ReadFn),
    /// Propose to the log; the answer comes from apply.
    Write(Op, WriteKind),
    /// A linearizable barrier, then this answer (sync).
    Barrier(Vec<u8>),
    /// Answer at once, in FIFO order, optionally closing the connection.
    Answer(Vec<u8>, bool),
}

/// Server settings that change how requests are handled.
#[derive(Debug, Clone, Copy)]
pub struct RequestRules {
    /// `zookeeper.extendedTypesEnabled`: TTL nodes allowed.
    pub extended_types: bool,
    /// `Limits::path_bytes_max`: a longer path is BadArguments.
    pub path_bytes_max: usize,
    /// `Limits::multi_ops_max`: a longer multi or multiRead is MarshallingError.
    pub multi_ops_max: usize,
    /// `Limits::set_watches_paths_max`: a larger setWatches is MarshallingError.
    pub set_watches_paths_max: usize,
    /// `Limits::watches_per_session_max`: a read that would add more fails (ThrottledOp).
    pub watches_per_session_max: usize,
    /// `reconfigEnabled`: else reconfig is refused with ReconfigDisabled.
    pub reconfig_enabled: bool,
    /// An ensemble member (`server.N` lines): a standalone server with `reconfigEnabled`
    /// answers reconfig Unimplemented, as ZooKeeper's standalone server does.
    pub ensemble: bool,
}

impl RequestRules {
    /// The error for a request over one of the size bounds, if it is.
    fn oversize(&self, req: &Request) -> Option<ErrorCode> {
        if req.path().is_some_and(|p| p.len() > self.path_bytes_max) {
            return Some(ErrorCode::BadArguments);
        }
        let (ops, paths) = match req {
            Request::Multi(o) => (o.len(), 0),
            Request::MultiRead(o) => (o.len(), 0),
            Request::SetWatches(w) => (
                0,
                w.data_watches.len() + w.exist_watches.len() + w.child_watches.len(),
            ),
            Request::SetWatches2(w) => (
                0,
                w.data_watches.len()
                    + w.exist_watches.len()
                    + w.child_watches.len()
                    + w.persistent_watches.len()
                    + w.persistent_recursive_watches.len(),
            ),
            _ => (0, 0),
        };
        (ops > self.multi_ops_max || paths > self.set_watches_paths_max)
            .then_some(ErrorCode::MarshallingError)
    }
}

/// How many watches a read may add.
fn watches_added(req: &Request) -> usize {
    match req {
        Request::Exists(r) => r.watch.into(),
        Request::GetData(r) => r.watch.into(),
        Request::GetChildren(r) => r.watch.into(),
        Request::GetChildren2(r) => r.watch.into(),
        Request::AddWatch(_) => 1,
        Request::SetWatches(w) => {
            w.data_watches.len() + w.exist_watches.len() + w.child_watches.len()
        }
        Request::SetWatches2(w) => {
            w.data_watches.len()
                + w.exist_watches.len()
                + w.child_watches.len()
                + w.persistent_watches.len()
                + w.persistent_recursive_watches.len()
        }
        _ => 0,
    }
}

/// Decides what to do with a decoded request (not auth, ping or connect, which the
/// connection handles itself).
///
/// `zxid` is the last applied zxid, for answers given before the log.
pub fn plan(xid: Xid, zxid: Zxid, req: Request, caller: &Caller, rules: RequestRules) -> Action {
    if let Some(code) = rules.oversize(&req) {
        if req.is_write() {
            let kind = WriteKind::Request {
                op: req.op(),
                multi: Vec::new(),
            };
            return Action::Write(Op::Refused { code }, kind);
        }
        return Action::Answer(encode_error(xid, zxid, code), false);
    }
    let opcode = req.op();
    let multi = match &req {
        Request::Multi(ops) => ops.iter().map(MultiOp::op).collect(),
        _ => Vec::new(),
    };
    let req = match write_op(req, rules) {
        Routed::Write(op) => return Action::Write(op, WriteKind::Request { op: opcode, multi }),
        Routed::Other(req) => req,
    };
    match req {
        Request::Sync(r) => Action::Barrier(reply(xid, zxid, &SyncResponse { path: r.path })),
        Request::Sasl(_) => {
            Action::Answer(encode_error(xid, zxid, ErrorCode::Unimplemented), false)
        }
        // ZooKeeper's UnimplementedRequestProcessor, for opcodes it does not serve (and since
        // 3.9.3 for check outside multi, ZOOKEEPER-2623): zxid -1, then the connection closes.
        Request::Unknown(_) | Request::Check(_) => {
            Action::Answer(encode_error(xid, Zxid(-1), ErrorCode::Unimplemented), true)
        }
        read => {
            let caller = caller.clone();
            Action::Read(Box::new(move |ctx: &mut ReadCtx<'_>| {
                let zxid = ctx.tree.last_zxid();
                let room = rules.watches_per_session_max;
                let over = ctx.watches.session_watch_count(caller.session) + watches_added(&read);
                let frame = if over > room {
                    encode_error(xid, zxid, ErrorCode::ThrottledOp)
                } else {
                    run_read(xid, zxid, read, &caller, ctx)
                        .unwrap_or_else(|code| encode_error(xid, zxid, code))
                };
                ctx.outbox.send(frame);
            }))
        }
    }
}

/// The log op of a write whose body did not decode: like ZooKeeper, which reads a write's
/// body only after giving it a zxid, warren logs it as refused (MarshallingError).
pub fn undecodable_write(op: i32) -> Option<(Op, WriteKind)> {
    use OpCode::*;
    let code = OpCode::from_code(op)?;
    let write = matches!(
        code,
        Create
            | Create2
            | CreateContainer
            | CreateTtl
            | Delete
            | DeleteContainer
            | SetData
            | SetAcl
            | Multi
            | Reconfig
    );
    write.then(|| {
        let op_kind = WriteKind::Request {
            op,
            multi: Vec::new(),
        };
        (
            Op::Refused {
                code: ErrorCode::MarshallingError,
            },
            op_kind,
        )
    })
}

fn reply<R: warren_proto::Record>(xid: Xid, zxid: Zxid, body: &R) -> Vec<u8> {
    encode_reply(&ReplyHeader::new(xid, zxid, ErrorCode::Ok), Some(body))
}

/// The log op of a write request, or the request back if it is not a write. A write this
/// server refuses before the log becomes `Op::Refused`: ZooKeeper gives such a write a zxid
/// and logs an error txn.
fn write_op(req: Request, rules: RequestRules) -> Routed {
    let single = |op: MultiOp| multi_op(op, rules);
    Routed::Write(match req {
        Request::Create(r) => single(MultiOp::Create(r)),
        Request::Create2(r) => single(MultiOp::Create2(r)),
        Request::CreateContainer(r) => single(MultiOp::CreateContainer(r)),
        Request::CreateTtl(r) => single(MultiOp::CreateTtl(r)),
        Request::Delete(r) => single(MultiOp::Delete(r)),
        Request::SetData(r) => single(MultiOp::SetData(r)),
        Request::SetAcl(r) => Op::SetAcl {
            path: r.path,
            acl: r.acl,
            version: r.version,
        },
        Request::CloseSession => Op::CloseSession,
        Request::Multi(ops) => Op::Multi(ops.into_iter().map(single).collect()),
        // Reconfig is a write in ZooKeeper too; disabled (or standalone) it is refused with a
        // zxid, in ZooKeeper's order: ReconfigDisabled, then Unimplemented standalone.
        Request::Reconfig(_) if !rules.reconfig_enabled => Op::Refused {
            code: ErrorCode::ReconfigDisabled,
        },
        Request::Reconfig(_) if !rules.ensemble => Op::Refused {
            code: ErrorCode::Unimplemented,
        },
        Request::Reconfig(r) => crate::reconfig::reconfig_op(&r, Vec::new()),
        // ZooKeeper accepts deleteContainer from clients; 3.9 then deletes any node that is
        // not ephemeral, without an ACL check. warren deletes only what its own container
        // sweep would, answering BadVersion for anything else.
        Request::DeleteContainer(r) => Op::DeleteContainer { path: r.path },
        other => return Routed::Other(other),
    })
}

/// A request split into writes (with their log op) and the rest.
enum Routed {
    Write(Op),
    Other(Request),
}

/// The log op of one write, inside a multi or alone. The node's kind follows the opcode, as
/// in ZooKeeper's `DataTree.processTxn`: a create with the container flag makes a plain
/// node, and createContainer makes a container whatever (valid) flag it carries.
fn multi_op(op: MultiOp, rules: RequestRules) -> Op {
    match op {
        MultiOp::Create(r) | MultiOp::Create2(r) => create(
            r.path,
            r.data,
            r.acl,
            r.flags,
            Op::NO_TTL,
            Kind::Plain,
            rules,
        ),
        MultiOp::CreateContainer(r) => create(
            r.path,
            r.data,
            r.acl,
            r.flags,
            Op::NO_TTL,
            Kind::Container,
            rules,
        ),
        MultiOp::CreateTtl(r) => create(r.path, r.data, r.acl, r.flags, r.ttl, Kind::Plain, rules),
        MultiOp::Delete(r) => Op::Delete {
            path: r.path,
            version: r.version,
        },
        MultiOp::SetData(r) => Op::SetData {
            path: r.path,
            data: r.data,
            version: r.version,
        },
        MultiOp::Check(r) => Op::Check {
            path: r.path,
            version: r.version,
        },
    }
}

/// What the opcode says the node is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// create, create2, createTTL: the flag decides (but a container flag makes a plain node).
    Plain,
    /// createContainer: a container, whatever valid flag it carries.
    Container,
}

fn create(
    path: String,
    data: Option<Vec<u8>>,
    acl: Vec<Acl>,
    flags: i32,
    ttl_ms: i64,
    kind: Kind,
    rules: RequestRules,
) -> Op {
    let Some(mode) = CreateMode::from_code(flags) else {
        return Op::Refused {
            code: ErrorCode::BadArguments,
        };
    };
    if mode.is_ttl() && !rules.extended_types {
        return Op::Refused {
            code: ErrorCode::Unimplemented,
        };
    }
    let mode = match (kind, mode) {
        (Kind::Container, _) => CreateMode::Container,
        (Kind::Plain, CreateMode::Container) => CreateMode::Persistent,
        (Kind::Plain, m) => m,
    };
    Op::Create {
        path,
        data,
        acl,
        mode,
        ttl_ms,
    }
}

/// Runs a read; `Err` is answered as an error reply.
fn run_read(
    xid: Xid,
    zxid: Zxid,
    req: Request,
    caller: &Caller,
    ctx: &mut ReadCtx<'_>,
) -> Result<Vec<u8>, ErrorCode> {
    let tree = ctx.tree;
    let s = caller.session;
    Ok(match req {
        Request::Exists(r) => {
            // A missing node still gets its watch (it fires on creation); NoAuth does not.
            let stat = match readable(tree, &r.path, caller, |n| n.stat()) {
                Ok(stat) => Some(stat),
                Err(ErrorCode::NoNode) => None,
                Err(e) => return Err(e),
            };
            if r.watch {
                ctx.watches.add_standard(s, &r.path, WatchSet::Data);
            }
            let stat = stat.ok_or(ErrorCode::NoNode)?;
            reply(xid, zxid, &ExistsResponse { stat })
        }
        Request::GetData(r) => {
            let (data, stat) = readable(tree, &r.path, caller, data_and_stat)?;
            if r.watch {
                ctx.watches.add_standard(s, &r.path, WatchSet::Data);
            }
            encode_get_data_reply(xid, zxid, data, &stat)
        }
        Request::GetChildren(r) => {
            let children = readable(tree, &r.path, caller, child_names)?;
            if r.watch {
                ctx.watches.add_standard(s, &r.path, WatchSet::Child);
            }
            reply(xid, zxid, &GetChildrenResponse { children })
        }
        Request::GetChildren2(r) => {
            let (children, stat) = readable(tree, &r.path, caller, |n| (child_names(n), n.stat()))?;
            if r.watch {
                ctx.watches.add_standard(s, &r.path, WatchSet::Child);
            }
            reply(xid, zxid, &GetChildren2Response { children, stat })
        }
        Request::GetAcl(r) => {
            let (acl, stat) = tree.acl(&r.path).ok_or(ErrorCode::NoNode)?;
            check(tree, &r.path, perms::READ | perms::ADMIN, caller)?;
            let acl = if check(tree, &r.path, perms::ADMIN, caller).is_ok() {
                acl.to_vec()
            } else {
                mask_digests(acl)
            };
            reply(xid, zxid, &GetAclResponse { acl, stat })
        }
        Request::GetAllChildrenNumber(r) => {
            readable(tree, &r.path, caller, |_| ())?;
            let total_number = tree.all_children_number(&r.path).ok_or(ErrorCode::NoNode)?;
            reply(xid, zxid, &GetAllChildrenNumberResponse { total_number })
        }
        Request::GetEphemerals(r) => {
            let ephemerals = tree.ephemerals(s, &r.prefix_path);
            reply(xid, zxid, &GetEphemeralsResponse { ephemerals })
        }
        Request::MultiRead(ops) => {
            let results = ops
                .into_iter()
                .map(|op| read_op(tree, op, caller))
                .collect();
            reply(xid, zxid, &MultiResponse { results })
        }
        Request::AddWatch(r) => {
            ctx.watches
                .add_persistent(s, &r.path, r.mode == AddWatchMode::PersistentRecursive);
            reply(xid, zxid, &ErrorResponse { err: 0 })
        }
        Request::CheckWatches(r) => {
            if !ctx.watches.contains(s, &r.path, r.kind) {
                return Err(ErrorCode::NoWatcher);
            }
            encode_reply_header(&ReplyHeader::new(xid, zxid, ErrorCode::Ok))
        }
        Request::RemoveWatches(r) => {
            if !ctx.watches.remove(s, &r.path, r.kind) {
                return Err(ErrorCode::NoWatcher);
            }
            encode_reply_header(&ReplyHeader::new(xid, zxid, ErrorCode::Ok))
        }
        Request::SetWatches(r) => {
            let w = Rewatch {
                relative_zxid: r.relative_zxid,
                data: &r.data_watches,
                exist: &r.exist_watches,
                child: &r.child_watches,
                persistent: &[],
                recursive: &[],
            };
            set_watches(w, s, ctx);
            encode_reply_header(&ReplyHeader::new(xid, zxid, ErrorCode::Ok))
        }
        Request::SetWatches2(r) => {
            let w = Rewatch {
                relative_zxid: r.relative_zxid,
                data: &r.data_watches,
                exist: &r.exist_watches,
                child: &r.child_watches,
                persistent: &r.persistent_watches,
                recursive: &r.persistent_recursive_watches,
            };
            set_watches(w, s, ctx);
            encode_reply_header(&ReplyHeader::new(xid, zxid, ErrorCode::Ok))
        }
        Request::WhoAmI => {
            let client_info = caller.auth.iter().filter_map(client_info).collect();
            reply(xid, zxid, &WhoAmIResponse { client_info })
        }
        Request::Ping => encode_reply_header(&ReplyHeader::new(Xid::PING, zxid, ErrorCode::Ok)),
        other => unreachable!("plan() routes {} elsewhere", other.op()),
    })
}

/// The node's ACL must grant `perm` (any of its bits) to the caller; NoNode if it is gone.
fn check(tree: &DataTree, path: &str, perm: i32, caller: &Caller) -> Result<(), ErrorCode> {
    tree.check_acl(path, perm, &caller.auth)
}

/// Looks the node up once, checks READ, then reads it.
fn readable<'t, T>(
    tree: &'t DataTree,
    path: &str,
    caller: &Caller,
    read: impl FnOnce(NodeRef<'t>) -> T,
) -> Result<T, ErrorCode> {
    tree.read(path, perms::READ, &caller.auth).map(read)
}

fn data_and_stat(n: NodeRef<'_>) -> (Option<&[u8]>, Stat) {
    (n.data(), n.stat())
}

fn child_names(n: NodeRef<'_>) -> Vec<String> {
    n.children().map(str::to_owned).collect()
}

fn read_op(tree: &DataTree, op: ReadOp, caller: &Caller) -> OpResult {
    let result = match op {
        ReadOp::GetChildren(r) => readable(tree, &r.path, caller, child_names)
            .map(|children| OpResult::GetChildren { children }),
        ReadOp::GetData(r) => {
            readable(tree, &r.path, caller, data_and_stat).map(|(data, stat)| OpResult::GetData {
                data: data.map(<[u8]>::to_vec),
                stat,
            })
        }
    };
    result.unwrap_or_else(OpResult::Error)
}

/// ZooKeeper hides digest hashes from callers without ADMIN: `user:x`.
fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            let mut a = a.clone();
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or_default();
                a.id.id = format!("{user}:x");
            }
            a
        })
        .collect()
}

/// `AuthUtil.getClientInfos`: the user of each identity (`super` is not reported).
fn client_info(id: &Id) -> Option<ClientInfo> {
    let user = match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or_default().to_owned(),
        "super" => return None,
        _ => id.id.clone(),
    };
    Some(ClientInfo {
        auth_scheme: id.scheme.clone(),
        user,
    })
}

/// The watches of a `setWatches`/`setWatches2` request.
struct Rewatch<'a> {
    relative_zxid: i64,
    data: &'a [String],
    exist: &'a [String],
    child: &'a [String],
    persistent: &'a [String],
    recursive: &'a [String],
}

/// ZooKeeper's `DataTree.setWatches`: re-registers a reconnecting client's watches, firing
/// at once those whose node changed after the client's last zxid. Persistent watches are
/// re-added without replaying changes (ZOOKEEPER-4698).
fn set_watches(w: Rewatch<'_>, s: SessionId, ctx: &mut ReadCtx<'_>) {
    let fire = |ctx: &mut ReadCtx<'_>, path: &str, event| {
        ctx.outbox.send(notification(Zxid(-1), path, event));
    };
    for p in w.data {
        match ctx.tree.stat(p) {
            None => fire(ctx, p, EventType::NodeDeleted),
            Some(st) if st.mzxid > w.relative_zxid => fire(ctx, p, EventType::NodeDataChanged),
            Some(_) => ctx.watches.add_standard(s, p, WatchSet::Data),
        }
    }
    for p in w.exist {
        match ctx.tree.stat(p) {
            Some(_) => fire(ctx, p, EventType::NodeCreated),
            None => ctx.watches.add_standard(s, p, WatchSet::Data),
        }
    }
    for p in w.child {
        match ctx.tree.stat(p) {
            None => fire(ctx, p, EventType::NodeDeleted),
            Some(st) if st.pzxid > w.relative_zxid => fire(ctx, p, EventType::NodeChildrenChanged),
            Some(_) => ctx.watches.add_standard(s, p, WatchSet::Child),
        }
    }
    for p in w.persistent {
        ctx.watches.add_persistent(s, p, false);
    }
    for p in w.recursive {
        ctx.watches.add_persistent(s, p, true);
    }
}

/// A watch notification frame (xid -1). ZooKeeper 3.9 fills in the zxid of the change
/// (ZOOKEEPER-4655); events fired by setWatches carry -1, as there.
pub fn notification(zxid: Zxid, path: &str, event: EventType) -> Vec<u8> {
    let ev = WatcherEvent {
        kind: event,
        state: KeeperState::SyncConnected,
        path: path.to_owned(),
    };
    encode_notification(zxid, &ev)
}

/// The reply frame of an applied write, shaped by the request's opcode.
pub fn write_reply(xid: Xid, zxid: Zxid, op: i32, multi: &[i32], outcome: &Outcome) -> Vec<u8> {
    let op = OpCode::from_code(op);
    match outcome {
        Outcome::Error(code) => encode_error(xid, zxid, *code),
        Outcome::Created { path, stat } => match op {
            Some(OpCode::Create) => reply(xid, zxid, &CreateResponse { path: path.clone() }),
            _ => reply(
                xid,
                zxid,
                &Create2Response {
                    path: path.clone(),
                    stat: *stat,
                },
            ),
        },
        Outcome::Stat(stat) => match op {
            Some(OpCode::SetAcl) => reply(xid, zxid, &SetAclResponse { stat: *stat }),
            _ => reply(xid, zxid, &SetDataResponse { stat: *stat }),
        },
        Outcome::Data { data, stat } => encode_get_data_reply(xid, zxid, Some(data), stat),
        Outcome::Done => encode_reply_header(&ReplyHeader::new(xid, zxid, ErrorCode::Ok)),
        Outcome::Multi(outcomes) => {
            let results = outcomes
                .iter()
                .zip(multi)
                .map(|(o, op)| multi_result(*op, o))
                .collect();
            reply(xid, zxid, &MultiResponse { results })
        }
        Outcome::MultiFailed(codes) => reply(xid, zxid, &MultiResponse::failed(codes)),
    }
}

fn multi_result(op: i32, outcome: &Outcome) -> OpResult {
    match (OpCode::from_code(op), outcome) {
        (_, Outcome::Error(code)) => OpResult::Error(*code),
        (Some(OpCode::Create), Outcome::Created { path, .. }) => {
            OpResult::Create { path: path.clone() }
        }
        (_, Outcome::Created { path, stat }) => OpResult::Create2 {
            path: path.clone(),
            stat: *stat,
        },
        (_, Outcome::Stat(stat)) => OpResult::SetData { stat: *stat },
        (Some(OpCode::Check), _) => OpResult::Check,
        _ => OpResult::Delete,
    }
}
