//! The znodes a run works on ([`Layout`]), their setup and teardown, and the generator of
//! each session's requests ([`OpGen`]).
//!
//! Layout under the run's base directory `<prefix>/<workload>-<pid>`:
//! ```text
//! keys/k000000 ..   the pool (set, get, exists, mixed, multi), `--value-size` bytes each
//! children/c000000 .. the node read by `children`, with `--children` empty children
//! s<i>/<n>          create and load: session i's n-th znode
//! w<i>              watch: pair i's node
//! ```

use warren_proto::records::{
    CreateRequest, DeleteRequest, ExistsRequest, GetChildrenRequest, GetDataRequest, SetDataRequest,
};
use warren_proto::request::{MultiOp, Request, encode_request};
use warren_proto::{Acl, CreateMode, ErrorCode, MultiResponse, OpResult, Reader, Record, Xid};

use crate::args::{BenchArgs, Workload};
use crate::conn::{ConnError, Connection};

/// Requests kept in flight by setup and teardown.
const ADMIN_WINDOW: usize = 512;

/// Where a run's znodes live.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The run's directory.
    pub base: String,
}

impl Layout {
    /// The layout of a run of `args` by this process.
    pub fn new(args: &BenchArgs) -> Layout {
        let prefix = args.prefix.trim_end_matches('/');
        let name = format!("{:?}", args.workload).to_lowercase();
        Layout {
            base: format!("{prefix}/{name}-{}", std::process::id()),
        }
    }

    /// Key `i` of the pool.
    pub fn key(&self, i: u32) -> String {
        format!("{}/keys/k{i:06}", self.base)
    }

    /// The node read by `children`.
    pub fn children_node(&self) -> String {
        format!("{}/children", self.base)
    }

    /// Session `i`'s directory (create, load).
    pub fn session_dir(&self, i: u32) -> String {
        format!("{}/s{i}", self.base)
    }

    /// Pair `i`'s node (watch).
    pub fn watch_node(&self, i: u32) -> String {
        format!("{}/w{i}", self.base)
    }
}

fn create_req(path: String, data: Option<Vec<u8>>) -> CreateRequest {
    CreateRequest {
        path,
        data,
        acl: Acl::open_unsafe(),
        flags: CreateMode::Persistent.code(),
    }
}

/// Runs `reqs` on `conn` with up to 512 in flight; every reply's code must be
/// `Ok` or one of `allowed`. Returns how many were not `Ok`.
pub async fn pipelined<I>(
    conn: &mut Connection,
    reqs: I,
    allowed: &[ErrorCode],
) -> Result<u64, anyhow::Error>
where
    I: IntoIterator<Item = Request>,
{
    let mut reqs = reqs.into_iter().peekable();
    let mut inflight = std::collections::VecDeque::new();
    let mut not_ok = 0;
    while reqs.peek().is_some() || !inflight.is_empty() {
        while inflight.len() < ADMIN_WINDOW {
            let Some(r) = reqs.next() else { break };
            let desc = format!("{:?} {}", r.op(), r.path().unwrap_or(""));
            inflight.push_back((conn.queue(&r), desc));
        }
        conn.flush().await?;
        let reply = conn.read_reply_timed().await?;
        if reply.header.xid == Xid::NOTIFICATION {
            continue;
        }
        let (xid, desc) = inflight
            .pop_front()
            .expect("a reply implies a request in flight");
        anyhow::ensure!(reply.header.xid == xid, "reply out of order");
        let err = reply.header.err;
        if err != ErrorCode::Ok {
            anyhow::ensure!(allowed.contains(&err), "{desc}: {err:?}");
            not_ok += 1;
        }
    }
    Ok(not_ok)
}

/// Creates the run's znodes: the prefix's ancestors (if missing), the base and what the
/// workload reads or writes.
pub async fn setup(conn: &mut Connection, args: &BenchArgs, layout: &Layout) -> anyhow::Result<()> {
    let mut dirs = Vec::new();
    let mut at = String::new();
    for part in layout.base.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        dirs.push(Request::Create(create_req(at.clone(), None)));
    }
    pipelined(conn, dirs, &[ErrorCode::NodeExists]).await?;
    let value = vec![b'v'; args.value_size];
    let mut reqs = Vec::new();
    match args.workload {
        w if w.uses_pool() => {
            reqs.push(create_req(format!("{}/keys", layout.base), None));
            reqs.extend((0..args.keys).map(|i| create_req(layout.key(i), Some(value.clone()))));
        }
        Workload::Children => {
            let node = layout.children_node();
            reqs.push(create_req(node.clone(), None));
            reqs.extend(
                (0..args.children).map(|i| create_req(format!("{node}/c{i:06}"), Some(vec![]))),
            );
        }
        Workload::Create | Workload::Load => {
            reqs.extend((0..args.sessions).map(|i| create_req(layout.session_dir(i), None)));
        }
        Workload::Watch => {
            reqs.extend(
                (0..args.sessions / 2).map(|i| create_req(layout.watch_node(i), Some(vec![]))),
            );
        }
        _ => {}
    }
    pipelined(conn, reqs.into_iter().map(Request::Create), &[]).await?;
    Ok(())
}

/// Deletes `path` and everything under it. Children are listed one directory at a time, so
/// no reply grows beyond one directory's names.
pub async fn delete_tree(conn: &mut Connection, path: &str) -> anyhow::Result<()> {
    let reply = conn
        .call(&Request::GetChildren(GetChildrenRequest {
            path: path.to_owned(),
            watch: false,
        }))
        .await?;
    if reply.header.err == ErrorCode::NoNode {
        return Ok(());
    }
    anyhow::ensure!(
        reply.header.err == ErrorCode::Ok,
        "getChildren {path}: {:?}",
        reply.header.err
    );
    let children = warren_proto::GetChildrenResponse::decode(&mut Reader::new(&reply.body))?;
    let mut leaves = Vec::new();
    for c in children.children {
        let child = format!("{path}/{c}");
        // Only the layout's directories have children; everything else is a leaf.
        if is_dir_name(&c) {
            Box::pin(delete_tree(conn, &child)).await?;
        } else {
            leaves.push(child);
        }
    }
    let deletes = leaves.into_iter().map(|p| {
        Request::Delete(DeleteRequest {
            path: p,
            version: -1,
        })
    });
    pipelined(conn, deletes, &[ErrorCode::NoNode, ErrorCode::NotEmpty]).await?;
    let last = Request::Delete(DeleteRequest {
        path: path.to_owned(),
        version: -1,
    });
    pipelined(conn, [last], &[ErrorCode::NoNode]).await?;
    Ok(())
}

fn is_dir_name(name: &str) -> bool {
    name == "keys"
        || name == "children"
        || (name.starts_with('s') && name[1..].bytes().all(|b| b.is_ascii_digit()))
}

/// What kind of request an in-flight entry is, to read its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A plain request: the header's code is the outcome.
    Plain,
    /// A multi: the body's results carry the outcome.
    Multi,
    /// A ping: not recorded.
    Ping,
}

/// A small deterministic generator (xorshift64*), one per session.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for stream `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Builds one session's requests.
#[derive(Debug)]
pub struct OpGen {
    workload: Workload,
    layout: Layout,
    session: u32,
    rng: Rng,
    value: Vec<u8>,
    read_ratio: f64,
    multi_ops: u32,
    keys: u32,
    /// Pre-encoded getData (get, mixed) or exists frames, one per key, xid to be patched.
    read_frames: Vec<Vec<u8>>,
    children_frame: Vec<u8>,
    /// Znodes this session has asked to create (create, load).
    pub created: u64,
}

impl OpGen {
    /// The generator of session `session` of a run of `args`.
    pub fn new(session: u32, args: &BenchArgs, layout: &Layout) -> OpGen {
        let read = |path: String| match args.workload {
            Workload::Exists => Request::Exists(ExistsRequest { path, watch: false }),
            _ => Request::GetData(GetDataRequest { path, watch: false }),
        };
        let read_frames = if matches!(
            args.workload,
            Workload::Get | Workload::Exists | Workload::Mixed
        ) {
            (0..args.keys)
                .map(|i| encode_request(Xid(0), &read(layout.key(i))))
                .collect()
        } else {
            Vec::new()
        };
        let children_frame = encode_request(
            Xid(0),
            &Request::GetChildren(GetChildrenRequest {
                path: layout.children_node(),
                watch: false,
            }),
        );
        OpGen {
            workload: args.workload,
            layout: layout.clone(),
            session,
            rng: Rng::new(u64::from(session) + 1),
            value: vec![b'w'; args.value_size],
            read_ratio: args.read_ratio,
            multi_ops: args.multi_ops,
            keys: args.keys,
            read_frames,
            children_frame,
            created: 0,
        }
    }

    fn set(&mut self, key: u32) -> SetDataRequest {
        SetDataRequest {
            path: self.layout.key(key),
            data: Some(self.value.clone()),
            version: -1,
        }
    }

    fn create(&mut self) -> CreateRequest {
        let path = format!(
            "{}/{:08}",
            self.layout.session_dir(self.session),
            self.created
        );
        self.created += 1;
        create_req(path, Some(self.value.clone()))
    }

    /// Queues the next request on `conn`; `units` is how many op units it carries (the
    /// znodes of a `load` multi, else 1). Returns its xid and kind.
    pub fn queue_next(&mut self, conn: &mut Connection, units: u64) -> (Xid, OpKind) {
        match self.workload {
            Workload::Get | Workload::Exists => {
                let k = self.rng.below(self.keys) as usize;
                (conn.queue_frame(&self.read_frames[k]), OpKind::Plain)
            }
            Workload::Mixed => {
                let k = self.rng.below(self.keys);
                if self.rng.unit() < self.read_ratio {
                    (
                        conn.queue_frame(&self.read_frames[k as usize]),
                        OpKind::Plain,
                    )
                } else {
                    let r = Request::SetData(self.set(k));
                    (conn.queue(&r), OpKind::Plain)
                }
            }
            Workload::Set => {
                let k = self.rng.below(self.keys);
                let r = Request::SetData(self.set(k));
                (conn.queue(&r), OpKind::Plain)
            }
            Workload::Children => (conn.queue_frame(&self.children_frame), OpKind::Plain),
            Workload::Create => {
                let r = Request::Create(self.create());
                (conn.queue(&r), OpKind::Plain)
            }
            Workload::Multi => {
                // Distinct consecutive keys from a random start: one op per key.
                let start = self.rng.below(self.keys);
                let ops = (0..self.multi_ops)
                    .map(|j| MultiOp::SetData(self.set((start + j) % self.keys)))
                    .collect();
                (conn.queue(&Request::Multi(ops)), OpKind::Multi)
            }
            Workload::Load => {
                let ops = (0..units).map(|_| MultiOp::Create(self.create())).collect();
                (conn.queue(&Request::Multi(ops)), OpKind::Multi)
            }
            Workload::Watch | Workload::Session | Workload::Ready => {
                unreachable!("watch, session and ready have their own loops")
            }
        }
    }
}

/// The outcome of a reply to a request of `kind`: `Ok(Err(code))` for a ZooKeeper error (for
/// a multi, the code of the op that failed it); `Err` for a body that does not decode.
pub fn outcome(
    kind: OpKind,
    header_err: ErrorCode,
    body: &[u8],
) -> Result<Result<(), ErrorCode>, ConnError> {
    if header_err != ErrorCode::Ok {
        return Ok(Err(header_err));
    }
    if kind != OpKind::Multi {
        return Ok(Ok(()));
    }
    let m = MultiResponse::decode(&mut Reader::new(body))?;
    for r in m.results {
        if let OpResult::Error(code) = r
            && code != ErrorCode::Ok
            && code != ErrorCode::RuntimeInconsistency
        {
            return Ok(Err(code));
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_stays_in_range_and_spreads() {
        let mut r = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[r.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        let u = r.unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn directory_names_are_recognised() {
        assert!(is_dir_name("keys"));
        assert!(is_dir_name("s12"));
        assert!(!is_dir_name("k000001"));
        assert!(!is_dir_name("00000001"));
        assert!(!is_dir_name("w3"));
    }
}
