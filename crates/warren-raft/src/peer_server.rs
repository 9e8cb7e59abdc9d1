//! The peer server: accepts peer connections on this node's peer address and serves them.
//!
//! - A **Raft stream** carries openraft's RPCs, one request then its reply; each is handed to
//!   the local `Raft` (`append_entries`, `vote`, `pre_vote`, `install_full_snapshot` once the
//!   last chunk arrived, `handle_transfer_leader`).
//! - An **append stream** carries only append-entries, pipelined: each request goes into the
//!   local `Raft::stream_append` as it arrives (at most [`APPEND_QUEUE`] read ahead), and the
//!   answers go back in order as openraft gives them (each once the entries are durable here).
//!   After an error answer (conflict, higher vote, node stopping) the stream is closed.
//! - A **client stream** carries a follower's forwarded writes, read-index requests and
//!   application messages, pipelined. Forwards are enqueued into the Raft core in arrival
//!   order, each awaited before the next frame is read; their outcomes are written back as
//!   they complete, in any order, matched by id. At most [`CLIENT_INFLIGHT_MAX`] requests of
//!   one stream are in flight; past that the stream is not read (TCP pushes back).
//!
//! A frame that is too long or does not decode closes that connection only (debug trace).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use futures_util::StreamExt;
use openraft::raft::AppendEntriesRequest;

use crate::core::Core;
use crate::types::{Snapshot, TypeConfig};
use crate::wire::{
    self, ClientReply, ClientRequest, HELLO_BYTES, Hello, RaftReply, RaftRequest, SnapshotChunk,
    StreamKind, WireError,
};

/// Peer connections served at once, at most; more are refused.
const PEER_CONNECTIONS_MAX: usize = 256;
/// Requests of one client stream in flight at once, at most.
pub(crate) const CLIENT_INFLIGHT_MAX: usize = 4096;
/// Replies queued for one client stream's writer, at most.
const REPLY_QUEUE: usize = 1024;
/// Append requests read ahead of openraft on one append stream, at most (openraft's own
/// pipeline holds 64 more); past that the stream is not read (TCP pushes back).
const APPEND_QUEUE: usize = 64;
/// How long a new connection may take to send its handshake.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts peer connections until the returned task is aborted (which drops the listener and
/// every connection task with it).
pub(crate) fn spawn(listener: TcpListener, core: Arc<Core>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            while conns.try_join_next().is_some() {}
            if conns.len() >= PEER_CONNECTIONS_MAX {
                tracing::warn!(%peer, "too many peer connections; refusing one");
                continue;
            }
            let _ = stream.set_nodelay(true);
            let core = core.clone();
            conns.spawn(async move {
                if let Err(e) = serve(stream, core).await {
                    tracing::debug!(%peer, error = %e, "peer connection closed");
                }
            });
        }
    })
}

async fn serve(mut stream: TcpStream, core: Arc<Core>) -> Result<(), WireError> {
    let mut hello = [0u8; HELLO_BYTES];
    tokio::time::timeout(HELLO_TIMEOUT, stream.read_exact(&mut hello))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no handshake"))??;
    let hello = Hello::decode(&hello)?;
    if hello.to != core.id {
        return Err(crate::codec::DecodeError::new(
            "peer handshake",
            format!(
                "node {} dialed node {} but reached node {}",
                hello.from, hello.to, core.id
            ),
        )
        .into());
    }
    match hello.kind {
        StreamKind::Raft => serve_raft(stream, core).await,
        StreamKind::Client => serve_client(stream, core, hello).await,
        StreamKind::Append => serve_append(stream, core).await,
    }
}

async fn serve_append(stream: TcpStream, core: Arc<Core>) -> Result<(), WireError> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let (tx, rx) = mpsc::channel::<AppendEntriesRequest<TypeConfig>>(APPEND_QUEUE);
    let input =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|req| (req, rx)) },
        );
    let replies = core.raft.stream_append(input);
    let mut writer = tokio::spawn(async move {
        let mut replies = std::pin::pin!(replies);
        while let Some(reply) = replies.next().await {
            let reply: wire::AppendReply = reply.map_err(|fatal| fatal.to_string());
            let last = !matches!(reply, Ok(Ok(_)));
            if wr
                .write_all(&wire::encode_append_reply(&reply))
                .await
                .is_err()
                || last
            {
                return;
            }
        }
    });
    let read = async {
        loop {
            let body = wire::read_frame(&mut rd, wire::RAFT_FRAME_BYTES_MAX).await?;
            let req = match wire::decode_raft_request(&body)? {
                RaftRequest::Append(req) => req,
                // Named, not printed: a snapshot chunk's debug form holds all its bytes.
                _ => {
                    return Err(WireError::Decode(crate::codec::DecodeError::new(
                        "append stream",
                        "a request other than append-entries",
                    )));
                }
            };
            drop(body);
            if tx.send(req).await.is_err() {
                return Ok(());
            }
        }
    };
    // Either side ending ends the stream: the writer after an error answer (or when the
    // answers stop), the reader when the leader closes or sends something bad.
    let result = tokio::select! {
        r = read => r,
        _ = &mut writer => Ok(()),
    };
    writer.abort();
    result
}

/// A snapshot being received, chunk by chunk.
#[derive(Default)]
struct Incoming {
    data: Vec<u8>,
}

async fn serve_raft(stream: TcpStream, core: Arc<Core>) -> Result<(), WireError> {
    let mut stream = BufReader::new(stream);
    let mut incoming = Incoming::default();
    loop {
        let body = wire::read_frame(&mut stream, wire::RAFT_FRAME_BYTES_MAX).await?;
        let req = wire::decode_raft_request(&body)?;
        drop(body);
        let reply = handle_raft(&core, req, &mut incoming).await;
        wire::write_frame(&mut stream, &wire::encode_raft_reply(&reply)).await?;
    }
}

async fn handle_raft(core: &Core, req: RaftRequest, incoming: &mut Incoming) -> RaftReply {
    let err = |e: &dyn std::fmt::Display| RaftReply::Error(e.to_string());
    if core.stopping() {
        return RaftReply::Error("node shutting down".into());
    }
    match req {
        RaftRequest::Append(req) => match core.raft.append_entries(req).await {
            Ok(resp) => RaftReply::Append(resp),
            Err(e) => err(&e),
        },
        RaftRequest::Vote(req) => match core.raft.vote(req).await {
            Ok(resp) => RaftReply::Vote(resp),
            Err(e) => err(&e),
        },
        RaftRequest::PreVote(req) => match core.raft.pre_vote(req).await {
            Ok(resp) => RaftReply::Vote(resp),
            Err(e) => err(&e),
        },
        RaftRequest::SnapshotChunk(chunk) => snapshot_chunk(core, chunk, incoming).await,
        RaftRequest::TransferLeader(req) => match core.raft.handle_transfer_leader(req).await {
            Ok(resp) => RaftReply::TransferLeader(resp),
            Err(e) => err(&e),
        },
        RaftRequest::Probe => match core.raft.is_initialized().await {
            Ok(initialized) => RaftReply::Probe { initialized },
            Err(e) => err(&e),
        },
    }
}

async fn snapshot_chunk(core: &Core, chunk: SnapshotChunk, incoming: &mut Incoming) -> RaftReply {
    if chunk.offset == 0 {
        incoming.data = Vec::new();
    }
    if chunk.offset != incoming.data.len() as u64 {
        let reply = RaftReply::Error(format!(
            "snapshot chunk at {} but {} bytes received",
            chunk.offset,
            incoming.data.len()
        ));
        incoming.data = Vec::new();
        return reply;
    }
    let total = incoming.data.len() as u64 + chunk.data.len() as u64;
    if total > core.snapshot_bytes_max {
        incoming.data = Vec::new();
        return RaftReply::Error(format!(
            "snapshot larger than {} bytes",
            core.snapshot_bytes_max
        ));
    }
    incoming.data.extend_from_slice(&chunk.data);
    let Some((vote, meta)) = chunk.done else {
        return RaftReply::SnapshotChunk(None);
    };
    let data = std::mem::take(&mut incoming.data);
    tracing::info!(
        index = ?meta.last_log_id.map(|l| l.index),
        bytes = data.len(),
        "installing a snapshot from the leader"
    );
    let snapshot = Snapshot {
        meta,
        snapshot: data,
    };
    match core.raft.install_full_snapshot(vote, snapshot).await {
        Ok(resp) => RaftReply::SnapshotChunk(Some(resp.vote)),
        Err(e) => RaftReply::Error(e.to_string()),
    }
}

async fn serve_client(stream: TcpStream, core: Arc<Core>, hello: Hello) -> Result<(), WireError> {
    if !core.open_client_stream(hello.from, hello.epoch).await {
        tracing::debug!(from = hello.from, "refusing a stale client stream");
        return Ok(());
    }
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(REPLY_QUEUE);
    let writer = tokio::spawn(write_replies(BufWriter::new(wr), rx));
    let inflight = Arc::new(Semaphore::new(CLIENT_INFLIGHT_MAX));
    let mut tasks = JoinSet::new();
    let result = async {
        loop {
            let body = wire::read_frame(&mut rd, wire::CLIENT_FRAME_BYTES_MAX).await?;
            let req = wire::decode_client_request(&body)?;
            drop(body);
            while tasks.try_join_next().is_some() {}
            let permit = inflight
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let tx = tx.clone();
            match req {
                ClientRequest::Forward { id, payload } => {
                    let enqueued = core
                        .submit_forwarded(hello.from, hello.epoch, payload)
                        .await;
                    tasks.spawn(async move {
                        let result = match enqueued {
                            Ok(outcome) => outcome.await,
                            Err(e) => Err(e),
                        };
                        let reply = ClientReply::Forward { id, result };
                        let _ = tx.send(wire::encode_client_reply(&reply)).await;
                        drop(permit);
                    });
                }
                ClientRequest::ReadIndex { id } => {
                    let core = core.clone();
                    tasks.spawn(async move {
                        let result = core.leader_read_index().await;
                        let reply = ClientReply::ReadIndex { id, result };
                        let _ = tx.send(wire::encode_client_reply(&reply)).await;
                        drop(permit);
                    });
                }
                ClientRequest::AppSend { payload } => {
                    let handler = core.app_handler.read().expect("handler lock").clone();
                    match handler {
                        Some(h) => h(hello.from, payload),
                        None => tracing::debug!(from = hello.from, "app message without handler"),
                    }
                }
                ClientRequest::AppCall { id, payload } => {
                    let handler = core.call_handler.read().expect("handler lock").clone();
                    let from = hello.from;
                    tasks.spawn(async move {
                        let result = match handler {
                            Some(h) => Ok(h(from, payload)),
                            None => Err("no call handler on this node".to_string()),
                        };
                        let reply = ClientReply::AppCall { id, result };
                        let _ = tx.send(wire::encode_client_reply(&reply)).await;
                        drop(permit);
                    });
                }
            }
        }
    }
    .await;
    drop(tasks);
    writer.abort();
    result
}

/// Writes queued reply frames, flushing whenever the queue runs dry (one write for a burst).
async fn write_replies(
    mut wr: BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    while let Some(frame) = rx.recv().await {
        if wr.write_all(&frame).await.is_err() {
            return;
        }
        if rx.is_empty() && wr.flush().await.is_err() {
            return;
        }
    }
}
