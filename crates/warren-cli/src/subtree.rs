//! Whole subtrees: walking one, and writing many creates or deletes in `multi` batches that
//! each fit the server's packet limit.
//!
//! Sizes are computed from jute's encoding, as the server will read them: a `multi` frame
//! is a request header (8 bytes), then per operation a `MultiHeader` (type, done, err: 9
//! bytes) and the operation's record, then a closing `MultiHeader`.

use std::ops::Range;

use futures::StreamExt as _;
use indicatif::ProgressBar;
use zookeeper_client::{self as zk, Acl, Acls, CreateMode, MultiWriteError, Stat};

use crate::error::{Access, CliError, Result};

use crate::session::Limits;

/// Requests kept in flight while walking a tree.
const WALK_IN_FLIGHT: usize = 64;

/// Bytes of a request header (xid, type).
pub const REQUEST_HEADER_BYTES: usize = 8;
/// Bytes of one `MultiHeader`.
const MULTI_HEADER_BYTES: usize = 9;

/// One znode read while walking: its path, and data, ACL and stat if asked for.
#[derive(Clone, Debug)]
pub struct Node {
    /// Absolute path.
    pub path: String,
    /// Data (empty when not read).
    pub data: Vec<u8>,
    /// ACL (empty when not read).
    pub acl: Vec<Acl>,
    /// Stat.
    pub stat: Stat,
}

/// The paths of `root` and all its descendants, parents before children, children sorted.
/// Nodes deleted while walking are skipped.
pub async fn walk_paths(client: &zk::Client, root: &str) -> Result<Vec<String>> {
    client
        .check_stat(root)
        .await
        .map_err(|e| CliError::from_zk(e, Access::Read, root))?
        .ok_or_else(|| CliError::from_zk(zk::Error::NoNode, Access::Read, root))?;
    let mut out = Vec::new();
    let mut level = vec![root.to_owned()];
    // Each level is listed with requests in flight together; the result is then put in
    // pre-order below.
    let mut children_of = std::collections::HashMap::new();
    while !level.is_empty() {
        let listed: Vec<(String, Result<Vec<String>, zk::Error>)> = futures::stream::iter(level)
            .map(|p| async move {
                let r = client.list_children(&p).await;
                (p, r)
            })
            .buffered(WALK_IN_FLIGHT)
            .collect()
            .await;
        let mut next = Vec::new();
        for (parent, r) in listed {
            let mut kids = match r {
                Ok(k) => k,
                Err(zk::Error::NoNode) => continue,
                Err(e) => return Err(CliError::from_zk(e, Access::Read, &parent)),
            };
            kids.sort();
            let full: Vec<String> = kids.iter().map(|k| join(&parent, k)).collect();
            next.extend(full.iter().cloned());
            children_of.insert(parent, full);
        }
        level = next;
    }
    let mut stack = vec![root.to_owned()];
    while let Some(p) = stack.pop() {
        if let Some(kids) = children_of.get(&p) {
            stack.extend(kids.iter().rev().cloned());
        }
        out.push(p);
    }
    Ok(out)
}

/// Reads data, ACL and stat of every path (nodes gone meanwhile are skipped).
pub async fn read_nodes(
    client: &zk::Client,
    paths: Vec<String>,
    bar: &ProgressBar,
) -> Result<Vec<Node>> {
    let read: Vec<Result<Option<Node>>> = futures::stream::iter(paths)
        .map(|path| async move {
            let data = client.get_data(&path);
            let acl = client.get_acl(&path);
            let node = match (data.await, acl.await) {
                (Ok((data, stat)), Ok((acl, _))) => Some(Node {
                    path,
                    data,
                    acl,
                    stat,
                }),
                (Err(zk::Error::NoNode), _) | (_, Err(zk::Error::NoNode)) => None,
                (Err(e), _) | (_, Err(e)) => return Err(CliError::from_zk(e, Access::Read, &path)),
            };
            bar.inc(1);
            Ok(node)
        })
        .buffered(WALK_IN_FLIGHT)
        .collect()
        .await;
    let mut nodes = Vec::new();
    for r in read {
        nodes.extend(r?);
    }
    Ok(nodes)
}

/// `parent` + `/` + `child`, without doubling the root's slash.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// One write of a batch.
#[derive(Clone, Debug)]
pub enum WriteOp {
    /// Create a persistent node.
    Create {
        /// Path.
        path: String,
        /// Data.
        data: Vec<u8>,
        /// ACL.
        acl: Vec<Acl>,
    },
    /// Delete a node (`-1`: any version).
    Delete {
        /// Path.
        path: String,
        /// Expected version.
        version: i32,
    },
}

impl WriteOp {
    /// The path written.
    pub fn path(&self) -> &str {
        match self {
            WriteOp::Create { path, .. } | WriteOp::Delete { path, .. } => path,
        }
    }

    fn access(&self) -> Access {
        match self {
            WriteOp::Create { .. } => Access::Create,
            WriteOp::Delete { .. } => Access::Delete,
        }
    }

    /// Bytes of this operation inside a `multi`, header included.
    pub fn multi_bytes(&self) -> usize {
        MULTI_HEADER_BYTES
            + match self {
                WriteOp::Create { path, data, acl } => create_record_bytes(path, data.len(), acl),
                WriteOp::Delete { path, .. } => 4 + path.len() + 4,
            }
    }
}

/// Bytes of a `CreateRequest` record (path, data, ACL vector, flags).
pub fn create_record_bytes(path: &str, data_len: usize, acl: &[Acl]) -> usize {
    let acl_bytes: usize = acl
        .iter()
        .map(|a| 4 + 4 + a.scheme().len() + 4 + a.id().len())
        .sum();
    4 + path.len() + 4 + data_len + 4 + acl_bytes + 4
}

/// Splits `ops` into consecutive batches, each one `multi` within `limits`.
pub fn plan_batches(ops: &[WriteOp], limits: &Limits) -> Vec<Range<usize>> {
    let budget = limits.packet_bytes_max as usize;
    let max_ops = limits.multi_ops_max.map_or(usize::MAX, |n| n as usize);
    let empty = REQUEST_HEADER_BYTES + MULTI_HEADER_BYTES;
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, empty);
    for (i, op) in ops.iter().enumerate() {
        let b = op.multi_bytes();
        if i > start && (bytes + b > budget || i - start >= max_ops) {
            batches.push(start..i);
            start = i;
            bytes = empty;
        }
        bytes += b;
    }
    if start < ops.len() {
        batches.push(start..ops.len());
    }
    batches
}

/// Bytes of one `multi` carrying all of `ops`.
pub fn multi_bytes(ops: &[WriteOp]) -> usize {
    REQUEST_HEADER_BYTES + MULTI_HEADER_BYTES + ops.iter().map(WriteOp::multi_bytes).sum::<usize>()
}

/// Commits `ops` as one `multi`: all happen or none.
pub async fn commit(
    client: &zk::Client,
    ops: &[WriteOp],
) -> std::result::Result<(), (usize, zk::Error)> {
    let mut multi = client.new_multi_writer();
    for (i, op) in ops.iter().enumerate() {
        let added = match op {
            WriteOp::Create { path, data, acl } => multi.add_create(
                path,
                data,
                &CreateMode::Persistent.with_acls(Acls::new(acl)),
            ),
            WriteOp::Delete { path, version } => multi.add_delete(path, Some(*version)),
        };
        added.map_err(|e| (i, e))?;
    }
    match multi.commit().await {
        Ok(_) => Ok(()),
        Err(MultiWriteError::OperationFailed { index, source }) => Err((index, source)),
        Err(MultiWriteError::RequestFailed { source }) => Err((0, source)),
    }
}

/// Words for a failed `multi`: the failing operation's error, on its path.
pub fn multi_error(ops: &[WriteOp], (index, err): (usize, zk::Error)) -> CliError {
    match ops.get(index) {
        Some(op) => CliError::from_zk(err, op.access(), op.path()),
        None => CliError::from_zk(err, Access::Write, "(multi)"),
    }
}

/// Runs `ops` in the planned batches, one `multi` each, in order. With `tolerate_gone`, a
/// batch that fails because a node to delete is already gone is redone one delete at a
/// time, skipping the missing nodes.
pub async fn run_batches(
    client: &zk::Client,
    ops: &[WriteOp],
    batches: &[Range<usize>],
    bar: &ProgressBar,
    tolerate_gone: bool,
) -> Result<()> {
    for range in batches {
        let batch = &ops[range.clone()];
        match commit(client, batch).await {
            Ok(()) => {}
            Err((i, zk::Error::NoNode))
                if tolerate_gone && matches!(batch[i], WriteOp::Delete { .. }) =>
            {
                one_by_one(client, batch).await?;
            }
            Err(e) => return Err(multi_error(batch, e)),
        }
        bar.inc(batch.len() as u64);
    }
    Ok(())
}

async fn one_by_one(client: &zk::Client, batch: &[WriteOp]) -> Result<()> {
    for op in batch {
        let r = match op {
            WriteOp::Delete { path, version } => match client.delete(path, Some(*version)).await {
                Err(zk::Error::NoNode) => Ok(()),
                r => r,
            },
            WriteOp::Create { path, data, acl } => client
                .create(
                    path,
                    data,
                    &CreateMode::Persistent.with_acls(Acls::new(acl)),
                )
                .await
                .map(|_| ()),
        };
        r.map_err(|e| CliError::from_zk(e, op.access(), op.path()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::LimitSource;

    fn limits(bytes: u32, ops: Option<u32>) -> Limits {
        Limits {
            packet_bytes_max: bytes,
            source: LimitSource::Flag,
            multi_ops_max: ops,
        }
    }

    #[test]
    fn batches_fit_the_packet_limit() {
        let ops: Vec<WriteOp> = (0..10)
            .map(|i| WriteOp::Delete {
                path: format!("/n{i}"),
                version: -1,
            })
            .collect();
        // Each delete of `/nI` is 9 + 4 + 3 + 4 = 20 bytes; the empty multi 17.
        assert_eq!(ops[0].multi_bytes(), 20);
        assert_eq!(multi_bytes(&ops), 217);
        assert_eq!(plan_batches(&ops, &limits(217, None)), vec![0..10]);
        assert_eq!(plan_batches(&ops, &limits(216, None)), vec![0..9, 9..10]);
        assert_eq!(
            plan_batches(&ops, &limits(77, None)),
            vec![0..3, 3..6, 6..9, 9..10]
        );
        assert_eq!(
            plan_batches(&ops, &limits(10_000, Some(4))),
            vec![0..4, 4..8, 8..10]
        );
        // An operation larger than the budget still gets a batch of its own.
        assert_eq!(plan_batches(&ops[..2], &limits(5, None)), vec![0..1, 1..2]);
    }

    #[test]
    fn join_does_not_double_the_root() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
