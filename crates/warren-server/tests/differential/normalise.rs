//! Normalisation of a transcript into comparable text, the table of intended deltas between
//! ZooKeeper 3.8 and warren (which follows 3.9), and the known differences still to fix.
//!
//! What is normalised, on both sides alike:
//! - a zxid becomes `@N`, "the zxid first seen in a reply header at step N" (a write's own
//!   zxid, or the last processed zxid a read reports), or `@N+k` for one k past it; 0 and -1
//!   stay. So a write that takes a zxid on one server and not on the other differs at that
//!   step only, instead of shifting every later zxid.
//! - ctime and mtime become `T` (0 stays 0).
//! - session ids (and `ephemeralOwner`) become `S1`, `S2`, ... in order of first appearance;
//!   passwords are reduced to their length.
//! - child lists, getEphemerals and whoAmI lists are sorted (ZooKeeper's order is a hash
//!   order).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::transcript::{Entry, Got, Transcript};
use warren_proto::records::{
    Create2Response, CreateResponse, ErrorResponse, ExistsResponse, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse, GetDataResponse,
    GetEphemeralsResponse, SetAclResponse, SetDataResponse, SyncResponse, WhoAmIResponse,
};
use warren_proto::request::{MultiOp, Request};
use warren_proto::response::{MultiResponse, OpResult};
use warren_proto::{Acl, ErrorCode, Reader, Record, Stat};

/// One normalised frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NFrame {
    /// The handshake answer: timeout, session, password length, readOnly byte.
    Connect(Option<(i32, String, usize, Option<bool>)>),
    Reply {
        xid: i32,
        zxid: String,
        err: ErrorCode,
        body: NBody,
    },
    Event {
        zxid: String,
        /// True when a setWatches/setWatches2 request fired it.
        by_set_watches: bool,
        text: String,
    },
    Closed,
    Silent,
    Gone,
}

/// A normalised reply body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NBody {
    Empty,
    Text(String),
    /// One result per op, with the op's request opcode.
    Multi(Vec<(i32, String)>),
    /// Bytes that do not decode as the request's reply record.
    Undecoded(String),
}

/// The frames of one step, each with its connection's name.
pub type StepFrames = Vec<(&'static str, NFrame)>;

impl fmt::Display for NFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NFrame::Connect(None) => write!(f, "connect: closed without an answer"),
            NFrame::Connect(Some((t, s, p, ro))) => {
                write!(
                    f,
                    "connect: timeout={t} session={s} passwd={p}B readOnly={ro:?}"
                )
            }
            NFrame::Reply {
                xid,
                zxid,
                err,
                body,
            } => {
                write!(f, "reply xid={xid} zxid={zxid} err={err:?}")?;
                match body {
                    NBody::Empty => Ok(()),
                    NBody::Text(t) => write!(f, " {t}"),
                    NBody::Undecoded(h) => write!(f, " undecoded[{h}]"),
                    NBody::Multi(results) => {
                        let r: Vec<&str> = results.iter().map(|(_, t)| t.as_str()).collect();
                        write!(f, " [{}]", r.join("; "))
                    }
                }
            }
            NFrame::Event { zxid, text, .. } => write!(f, "event zxid={zxid} {text}"),
            NFrame::Closed => write!(f, "closed by the server"),
            NFrame::Silent => write!(f, "nothing (connection still open)"),
            NFrame::Gone => write!(f, "not run: the connection had ended"),
        }
    }
}

/// The names that replace session ids, zxids and times.
struct Context {
    sessions: HashMap<i64, String>,
    /// zxid -> the step whose reply header first carried it.
    origin: BTreeMap<i64, usize>,
}

impl Context {
    fn of(t: &Transcript) -> Context {
        let mut sessions = HashMap::new();
        let mut origin = BTreeMap::new();
        for e in &t.entries {
            match &e.got {
                Got::Connect(Some(c)) if c.session_id.0 != 0 => {
                    let n = sessions.len() + 1;
                    sessions
                        .entry(c.session_id.0)
                        .or_insert_with(|| format!("S{n}"));
                }
                Got::Reply { header, .. } if header.zxid.0 > 0 => {
                    origin.entry(header.zxid.0).or_insert(e.step);
                }
                _ => {}
            }
        }
        Context { sessions, origin }
    }

    fn zxid(&self, z: i64) -> String {
        if z <= 0 {
            return z.to_string();
        }
        match self.origin.range(..=z).next_back() {
            Some((&known, step)) if known == z => format!("@{step}"),
            Some((&known, step)) => format!("@{step}+{}", z - known),
            None => format!("@?{z}"),
        }
    }

    fn session(&self, id: i64) -> String {
        self.sessions
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("{id:#x}"))
    }

    fn time(t: i64) -> &'static str {
        if t == 0 { "0" } else { "T" }
    }

    fn stat(&self, s: &Stat) -> String {
        format!(
            "stat{{cz={} mz={} pz={} ct={} mt={} v={} cv={} av={} eo={} dl={} nc={}}}",
            self.zxid(s.czxid),
            self.zxid(s.mzxid),
            self.zxid(s.pzxid),
            Self::time(s.ctime),
            Self::time(s.mtime),
            s.version,
            s.cversion,
            s.aversion,
            if s.ephemeral_owner == 0 {
                "0".to_owned()
            } else {
                self.session(s.ephemeral_owner)
            },
            s.data_length,
            s.num_children,
        )
    }
}

/// Normalises every frame of `t`, grouped by step.
pub fn normalise(t: &Transcript) -> Vec<StepFrames> {
    let cx = Context::of(t);
    let set_watches_steps: HashSet<usize> = t
        .entries
        .iter()
        .filter(|e| {
            matches!(
                &e.got,
                Got::Reply {
                    request: Some(Request::SetWatches(_) | Request::SetWatches2(_)),
                    ..
                }
            )
        })
        .map(|e| e.step)
        .collect();
    let mut steps: Vec<StepFrames> = vec![Vec::new(); t.steps.len()];
    for e in &t.entries {
        let f = frame(&cx, e, set_watches_steps.contains(&e.step));
        steps[e.step].push((e.conn, f));
    }
    steps
}

fn frame(cx: &Context, e: &Entry, in_set_watches: bool) -> NFrame {
    match &e.got {
        Got::Connect(None) => NFrame::Connect(None),
        Got::Connect(Some(c)) => NFrame::Connect(Some((
            c.timeout_ms,
            if c.session_id.0 == 0 {
                "0".to_owned()
            } else {
                cx.session(c.session_id.0)
            },
            c.passwd.len(),
            c.read_only,
        ))),
        Got::Reply {
            header,
            request,
            body,
        } => NFrame::Reply {
            xid: header.xid.0,
            zxid: cx.zxid(header.zxid.0),
            err: header.err,
            body: reply_body(cx, request.as_ref(), body),
        },
        Got::Event { header, event } => NFrame::Event {
            zxid: cx.zxid(header.zxid.0),
            by_set_watches: in_set_watches,
            text: format!("{:?} {:?} {}", event.kind, event.state, event.path),
        },
        Got::Closed => NFrame::Closed,
        Got::Silent => NFrame::Silent,
        Got::Gone => NFrame::Gone,
    }
}

/// Decodes `body` as record `R`, which must use every byte.
fn dec<R: Record>(body: &[u8]) -> Option<R> {
    let mut r = Reader::new(body);
    let rec = R::decode(&mut r).ok()?;
    r.finish().ok()?;
    Some(rec)
}

fn sorted(mut v: Vec<String>) -> String {
    v.sort();
    format!("{v:?}")
}

fn data(d: &Option<Vec<u8>>) -> String {
    let Some(d) = d else {
        return "null".to_owned();
    };
    match std::str::from_utf8(d) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
        _ => hex(d),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn acls(acl: &[Acl]) -> String {
    let a: Vec<String> = acl
        .iter()
        .map(|a| format!("{}:{}:{}", a.perms, a.id.scheme, a.id.id))
        .collect();
    format!("{a:?}")
}

fn reply_body(cx: &Context, req: Option<&Request>, body: &[u8]) -> NBody {
    if body.is_empty() {
        return NBody::Empty;
    }
    let text = req.and_then(|req| body_text(cx, req, body));
    match (text, req) {
        (Some(t), _) => NBody::Text(t),
        (None, Some(Request::Multi(ops))) => match dec::<MultiResponse>(body) {
            Some(m) => NBody::Multi(multi(
                cx,
                &ops.iter().map(MultiOp::op).collect::<Vec<_>>(),
                &m,
            )),
            None => NBody::Undecoded(hex(body)),
        },
        (None, Some(Request::MultiRead(ops))) => match dec::<MultiResponse>(body) {
            Some(m) => {
                let kinds: Vec<i32> = ops.iter().map(|o| o.op()).collect();
                NBody::Multi(multi(cx, &kinds, &m))
            }
            None => NBody::Undecoded(hex(body)),
        },
        (None, _) => NBody::Undecoded(hex(body)),
    }
}

/// The body of a single-op reply, or `None` when it does not decode (or is a multi).
fn body_text(cx: &Context, req: &Request, body: &[u8]) -> Option<String> {
    Some(match req {
        Request::Create(_) => dec::<CreateResponse>(body)?.path,
        Request::Create2(_) | Request::CreateContainer(_) | Request::CreateTtl(_) => {
            let r = dec::<Create2Response>(body)?;
            format!("{} {}", r.path, cx.stat(&r.stat))
        }
        Request::Exists(_) => cx.stat(&dec::<ExistsResponse>(body)?.stat),
        Request::GetData(_) | Request::Reconfig(_) => {
            let r = dec::<GetDataResponse>(body)?;
            format!("{} {}", data(&r.data), cx.stat(&r.stat))
        }
        Request::SetData(_) | Request::Check(_) => cx.stat(&dec::<SetDataResponse>(body)?.stat),
        Request::SetAcl(_) => cx.stat(&dec::<SetAclResponse>(body)?.stat),
        Request::GetAcl(_) => {
            let r = dec::<GetAclResponse>(body)?;
            format!("{} {}", acls(&r.acl), cx.stat(&r.stat))
        }
        Request::GetChildren(_) => sorted(dec::<GetChildrenResponse>(body)?.children),
        Request::GetChildren2(_) => {
            let r = dec::<GetChildren2Response>(body)?;
            format!("{} {}", sorted(r.children), cx.stat(&r.stat))
        }
        Request::Sync(_) => dec::<SyncResponse>(body)?.path,
        Request::GetEphemerals(_) => sorted(dec::<GetEphemeralsResponse>(body)?.ephemerals),
        Request::GetAllChildrenNumber(_) => dec::<GetAllChildrenNumberResponse>(body)?
            .total_number
            .to_string(),
        Request::WhoAmI => {
            let r = dec::<WhoAmIResponse>(body)?;
            let ids = r
                .client_info
                .iter()
                .map(|c| format!("{}:{}", c.auth_scheme, c.user))
                .collect();
            sorted(ids)
        }
        Request::AddWatch(_) => format!("ErrorResponse{{{}}}", dec::<ErrorResponse>(body)?.err),
        _ => return None,
    })
}

fn multi(cx: &Context, ops: &[i32], m: &MultiResponse) -> Vec<(i32, String)> {
    m.results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let text = match r {
                OpResult::Create { path } => format!("create {path}"),
                OpResult::Create2 { path, stat } => format!("create2 {path} {}", cx.stat(stat)),
                OpResult::Delete => "delete".to_owned(),
                OpResult::SetData { stat } => format!("setData {}", cx.stat(stat)),
                OpResult::Check => "check".to_owned(),
                OpResult::GetChildren { children } => {
                    format!("getChildren {}", sorted(children.clone()))
                }
                OpResult::GetData { data: d, stat } => {
                    format!("getData {} {}", data(d), cx.stat(stat))
                }
                OpResult::Error(e) => format!("error {e:?}"),
            };
            (ops.get(i).copied().unwrap_or(-1), text)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Intended deltas: ZooKeeper 3.8.0 versus 3.9 (which warren follows).

/// Marks a step whose label carries it as an `exists` on a node the caller may not read.
pub const EXISTS_WITHOUT_READ: &str = "[exists without READ]";

/// Marks a checkWatches/removeWatches of a standard type on a path with only a persistent
/// watch.
pub const STANDARD_TYPE_ON_PERSISTENT: &str = "[standard type, persistent watch]";

/// Marks the step that sends `check` outside a multi and then listens.
pub const STANDALONE_CHECK: &str = "[check outside multi]";

/// One intended difference, applied as a normalisation to both transcripts.
pub struct Delta {
    pub name: &'static str,
    pub zookeeper_3_8: &'static str,
    pub warren_3_9: &'static str,
    pub why: &'static str,
    /// Rewrites the frames of one step (label, frames) of either server into the common
    /// form; true if it changed them.
    pub apply: fn(&str, &mut StepFrames) -> bool,
}

/// THE table of intended deltas. Nothing else is skipped or rewritten.
pub const DELTAS: &[Delta] = &[
    Delta {
        name: "notification zxid",
        zookeeper_3_8: "every notification header carries zxid -1",
        warren_3_9: "the zxid of the change that fired the watch (events fired by \
                     setWatches/setWatches2 still carry -1, as in 3.9's DataTree.setWatches)",
        why: "ZOOKEEPER-4655 (3.9.0): NIOServerCnxn.process sends event.getZxid(). Both \
              become `<change>`; a 0 or -1 from warren outside setWatches stays and differs",
        apply: notification_zxid,
    },
    Delta {
        name: "create2 inside multi",
        zookeeper_3_8: "result type 1 (create) with the path only",
        warren_3_9: "result type 15 (create2) with the path and the new node's stat",
        why: "ZOOKEEPER-4026 (3.9.0): 3.8's PrepRequestProcessor turns a create2 op into a \
              create txn, so FinalRequestProcessor answers CreateResult(path). Both become \
              `create <path>` (the stat is not compared)",
        apply: create2_in_multi,
    },
    Delta {
        name: "exists needs READ",
        zookeeper_3_8: "exists on a node without READ permission answers its Stat",
        warren_3_9: "NoAuth, no body",
        why: "ZOOKEEPER-2590 (3.8.4, 3.9.2): FinalRequestProcessor checks READ for exists. \
              ZooKeeper's Ok+Stat becomes NoAuth in steps marked [exists without READ]",
        apply: exists_needs_read,
    },
    Delta {
        name: "watch types are matched exactly",
        zookeeper_3_8: "checkWatches/removeWatches of type Data or Children also match a \
                        persistent watch on the path (Ok)",
        warren_3_9: "they match standard watches only (NoWatcher)",
        why: "ZOOKEEPER-4471 (3.9.0): WatchManager.containsWatcher takes the watcher mode. \
              ZooKeeper's Ok becomes NoWatcher in steps marked [standard type, persistent \
              watch]",
        apply: standard_type_on_persistent,
    },
    Delta {
        name: "check outside multi",
        zookeeper_3_8: "no reply at all (FinalRequestProcessor answers \
                        SetDataResponse(rc.stat) with a null stat, and nothing is sent); the \
                        connection stays open",
        warren_3_9: "Unimplemented with zxid -1, then the connection is closed",
        why: "ZOOKEEPER-2623 (3.9.3): Request.isValid(check) is false, so \
              UnimplementedRequestProcessor answers and calls sendCloseSession. ZooKeeper's \
              silence becomes those two frames in the step marked [check outside multi]",
        apply: standalone_check,
    },
    Delta {
        name: "deleteContainer body",
        zookeeper_3_8: "BadArguments: 3.8 reads the path from the raw packet bytes, so any \
                        path it gets is invalid",
        warren_3_9: "the body is a DeleteContainerRequest; the raw bytes sent here do not \
                     decode, so MarshallingError (with a zxid: it is a write)",
        why: "3.9 reads deleteContainer with readRequestRecord(DeleteContainerRequest::new), \
              and a write's body that does not decode fails with MarshallingError. \
              ZooKeeper's BadArguments becomes MarshallingError in the step marked \
              [3.8 deleteContainer body]",
        apply: delete_container_body,
    },
];

/// Marks the step that sends opcode 20 with the raw path, as 3.8 reads it.
pub const RAW_DELETE_CONTAINER: &str = "[3.8 deleteContainer body]";

/// In the marked step, BadArguments becomes MarshallingError.
fn delete_container_body(label: &str, frames: &mut StepFrames) -> bool {
    if !label.contains(RAW_DELETE_CONTAINER) {
        return false;
    }
    let mut changed = false;
    for (_, f) in frames.iter_mut() {
        if let NFrame::Reply { err, .. } = f
            && *err == ErrorCode::BadArguments
        {
            *err = ErrorCode::MarshallingError;
            changed = true;
        }
    }
    changed
}

/// ZooKeeper 3.8's -1 and a positive zxid both become `<change>`, except for events fired
/// by setWatches, which carry -1 in both versions.
fn notification_zxid(_: &str, frames: &mut StepFrames) -> bool {
    let mut changed = false;
    for (_, f) in frames.iter_mut() {
        let NFrame::Event {
            zxid,
            by_set_watches: false,
            ..
        } = f
        else {
            continue;
        };
        if zxid == "-1" || zxid.starts_with('@') {
            *zxid = "<change>".to_owned();
            changed = true;
        }
    }
    changed
}

/// The result of a create2 op becomes `create <path>`.
fn create2_in_multi(_: &str, frames: &mut StepFrames) -> bool {
    let mut changed = false;
    for (_, f) in frames.iter_mut() {
        let NFrame::Reply {
            body: NBody::Multi(results),
            ..
        } = f
        else {
            continue;
        };
        for (op, text) in results.iter_mut() {
            if *op == 15 && text.starts_with("create2 ") {
                let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
                *text = format!("create {path}");
                changed = true;
            }
        }
    }
    changed
}

/// In a marked step, a successful reply becomes NoAuth without a body.
fn exists_needs_read(label: &str, frames: &mut StepFrames) -> bool {
    if !label.contains(EXISTS_WITHOUT_READ) {
        return false;
    }
    rewrite_ok_reply(frames, ErrorCode::NoAuth)
}

/// In a marked step, a successful reply becomes NoWatcher.
fn standard_type_on_persistent(label: &str, frames: &mut StepFrames) -> bool {
    if !label.contains(STANDARD_TYPE_ON_PERSISTENT) {
        return false;
    }
    rewrite_ok_reply(frames, ErrorCode::NoWatcher)
}

fn rewrite_ok_reply(frames: &mut [(&'static str, NFrame)], to: ErrorCode) -> bool {
    let mut changed = false;
    for (_, f) in frames.iter_mut() {
        if let NFrame::Reply { err, body, .. } = f
            && *err == ErrorCode::Ok
        {
            *err = to;
            *body = NBody::Empty;
            changed = true;
        }
    }
    changed
}

/// In the marked step, silence becomes `Unimplemented` (zxid -1) and the end of the
/// connection.
fn standalone_check(label: &str, frames: &mut StepFrames) -> bool {
    if !label.contains(STANDALONE_CHECK) {
        return false;
    }
    let [(conn, NFrame::Silent)] = frames.as_slice() else {
        return false;
    };
    let conn = *conn;
    *frames = vec![
        (
            conn,
            NFrame::Reply {
                xid: 1,
                zxid: "-1".to_owned(),
                err: ErrorCode::Unimplemented,
                body: NBody::Empty,
            },
        ),
        (conn, NFrame::Closed),
    ];
    true
}

/// Applies every delta to every step of `steps` (labels) and `frames`; returns how often
/// each delta changed a step.
pub fn apply_deltas(labels: &[String], frames: &mut [StepFrames]) -> Vec<usize> {
    DELTAS
        .iter()
        .map(|d| {
            let mut fired = 0;
            for (label, step) in labels.iter().zip(frames.iter_mut()) {
                if (d.apply)(label, step) {
                    fired += 1;
                }
            }
            fired
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Known differences: real behaviour differences warren should fix, listed in the report of
// the differential-test task. Each lets exactly one step differ in exactly this way; once
// warren answers like ZooKeeper the entry must go (the test then fails to say so).

/// A real difference not yet fixed in warren.
pub struct Known {
    pub id: &'static str,
    /// The step label, as printed by the test.
    pub step: &'static str,
    /// ZooKeeper's normalised frames for the step, one per line.
    pub zookeeper: &'static str,
    /// warren's normalised frames for the step, one per line.
    pub warren: &'static str,
}

/// Real differences found and not yet fixed, each matching one step's exact frames on both
/// servers (the test fails, naming the entry, once warren answers like ZooKeeper). Empty
/// now: the five found when this test was written (a write refused before the log took no
/// zxid; createContainer with another flag; create with the container flag; check outside
/// multi; deleteContainer from a client) were fixed in warren.
pub const KNOWN_DIFFERENCES: &[Known] = &[];
