//! The peer network: how a node reaches its peers ([`PeerTransport`]: [`TcpTransport`], or
//! [`NoPeers`] for a standalone node) and openraft's `RaftNetworkFactory` over it.
//!
//! A transport only opens byte streams; everything on them (handshake, frames, messages) is
//! `wire`'s. Tests wrap a transport to inject faults (a partition is a wrapper that refuses
//! and cuts the streams between two sides).
//!
//! `PeerClient` sends openraft's RPCs to one peer over one Raft stream, one request at a
//! time: connected lazily, dropped on any error or timeout (a late reply must never be taken
//! for the next request's), reconnected by the next RPC. Append-entries go on an append
//! stream of their own, pipelined (`PeerClient::stream_append`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use openraft::OptionalSend;
use openraft::base::{BoxFuture, BoxStream};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::types::{PeerNode, Snapshot, TypeConfig, Vote};
use crate::wire::{self, Hello, RaftReply, SnapshotChunk, StreamKind};

/// Why a peer could not be reached or answered.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made (or this transport has no peers, or the peer refused).
    #[error("peer {target} at {addr} unreachable: {reason}")]
    Unreachable {
        /// The peer's node id.
        target: u64,
        /// The address tried.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The connection broke or timed out mid-call.
    #[error("peer {target}: {reason}")]
    Broken {
        /// The peer's node id.
        target: u64,
        /// Why.
        reason: String,
    },
}

/// A byte stream to a peer: anything readable and writable (a TCP stream, a test wrapper).
pub trait PeerIo: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}

impl<T> PeerIo for T where T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}

/// A connected stream to a peer.
pub type PeerStream = Box<dyn PeerIo>;

/// A boxed future returned by [`PeerTransport::connect`].
pub type ConnectFuture<'a> =
    Pin<Box<dyn Future<Output = Result<PeerStream, TransportError>> + Send + 'a>>;

/// How this node opens a stream to a peer. Callers bound the time a connect may take.
pub trait PeerTransport: Send + Sync + 'static {
    /// Opens a stream to node `target` at `addr` (`host:port`).
    fn connect<'a>(&'a self, target: u64, addr: &'a str) -> ConnectFuture<'a>;
}

/// The transport of a single-voter ensemble: every peer is unreachable.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPeers;

impl PeerTransport for NoPeers {
    fn connect<'a>(&'a self, target: u64, addr: &'a str) -> ConnectFuture<'a> {
        Box::pin(async move {
            Err(TransportError::Unreachable {
                target,
                addr: addr.to_string(),
                reason: "no peer transport configured (standalone node)".into(),
            })
        })
    }
}

/// Plain TCP, with Nagle off (frames are written whole; latency matters more than packets).
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpTransport;

impl PeerTransport for TcpTransport {
    fn connect<'a>(&'a self, target: u64, addr: &'a str) -> ConnectFuture<'a> {
        Box::pin(async move {
            let unreachable = |e: std::io::Error| TransportError::Unreachable {
                target,
                addr: addr.to_string(),
                reason: e.to_string(),
            };
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(unreachable)?;
            stream.set_nodelay(true).map_err(unreachable)?;
            Ok(Box::new(stream) as PeerStream)
        })
    }
}

/// Timing knobs of the peer network, from `RaftConfig`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NetTimes {
    /// No RPC is given less than this, whatever openraft's TTL: openraft allows an append
    /// only 3/4 of a heartbeat, which a follower's fsync under load can exceed.
    pub(crate) rpc_floor: Duration,
    /// How long the last snapshot chunk (install and restore) may take.
    pub(crate) snapshot_install: Duration,
}

/// Opens a stream to `target` and sends the handshake, within `ttl`.
pub(crate) async fn dial(
    transport: &dyn PeerTransport,
    hello: Hello,
    addr: &str,
    ttl: Duration,
) -> Result<PeerStream, TransportError> {
    let target = hello.to;
    let attempt = async {
        let mut s = transport.connect(target, addr).await?;
        s.write_all(&hello.encode())
            .await
            .map_err(|e| TransportError::Unreachable {
                target,
                addr: addr.to_string(),
                reason: format!("handshake: {e}"),
            })?;
        Ok(s)
    };
    match tokio::time::timeout(ttl, attempt).await {
        Ok(r) => r,
        Err(_) => Err(TransportError::Unreachable {
            target,
            addr: addr.to_string(),
            reason: format!("connect timed out after {ttl:?}"),
        }),
    }
}

/// openraft's network factory: one [`PeerClient`] per peer and purpose.
#[derive(Clone)]
pub(crate) struct Network {
    me: u64,
    transport: Arc<dyn PeerTransport>,
    times: NetTimes,
}

impl Network {
    pub(crate) fn new(me: u64, transport: Arc<dyn PeerTransport>, times: NetTimes) -> Self {
        Network {
            me,
            transport,
            times,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &PeerNode) -> PeerClient {
        PeerClient::new(
            self.me,
            target,
            node.addr.clone(),
            self.transport.clone(),
            self.times,
        )
    }
}

/// Sends Raft RPCs to one peer over one Raft stream.
pub(crate) struct PeerClient {
    me: u64,
    target: u64,
    addr: String,
    transport: Arc<dyn PeerTransport>,
    times: NetTimes,
    conn: Option<BufReader<PeerStream>>,
    /// The append stream, between two `stream_append` calls that both ended cleanly.
    append: Option<AppendConn>,
}

/// An idle append stream: every request written on it was answered.
struct AppendConn {
    rd: BufReader<ReadHalf<PeerStream>>,
    wr: BufWriter<WriteHalf<PeerStream>>,
}

/// The task writing one `stream_append`'s requests; aborted if the reply stream is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The reply side of one `stream_append`, the state of its `unfold`.
struct AppendReplies<'s> {
    target: u64,
    addr: String,
    ttl: Duration,
    rd: BufReader<ReadHalf<PeerStream>>,
    /// Frames written per request, in order (a request too large for one frame takes more).
    frames: mpsc::UnboundedReceiver<usize>,
    writer: Option<AbortOnDrop<std::io::Result<BufWriter<WriteHalf<PeerStream>>>>>,
    /// Where the stream goes back once every request was answered.
    slot: &'s mut Option<AppendConn>,
}

type AppendItem = Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

impl PeerClient {
    pub(crate) fn new(
        me: u64,
        target: u64,
        addr: String,
        transport: Arc<dyn PeerTransport>,
        times: NetTimes,
    ) -> Self {
        PeerClient {
            me,
            target,
            addr,
            transport,
            times,
            conn: None,
            append: None,
        }
    }

    /// Opens a stream of `kind` to the peer and sends the handshake, within `ttl`.
    async fn open(&self, kind: StreamKind, ttl: Duration) -> Result<PeerStream, TransportError> {
        let hello = Hello {
            kind,
            from: self.me,
            to: self.target,
            epoch: 0,
        };
        dial(&*self.transport, hello, &self.addr, ttl).await
    }

    /// Opens an append stream within `ttl`.
    async fn open_append(&self, ttl: Duration) -> Result<AppendConn, TransportError> {
        let (rd, wr) = tokio::io::split(self.open(StreamKind::Append, ttl).await?);
        Ok(AppendConn {
            rd: BufReader::new(rd),
            wr: BufWriter::new(wr),
        })
    }

    /// Sends one request frame and reads its reply, within `ttl` (connecting first if need
    /// be). Any failure drops the connection.
    pub(crate) async fn call(
        &mut self,
        frame: &[u8],
        ttl: Duration,
    ) -> Result<RaftReply, TransportError> {
        let ttl = ttl.max(self.times.rpc_floor);
        let target = self.target;
        let broken = |reason: String| TransportError::Broken { target, reason };
        // The stream is out of `self` while in use: if openraft drops this call midway, the
        // half-used stream goes with it and can never hand a late reply to the next call.
        let mut conn = self.conn.take();
        let exchange = async {
            if conn.is_none() {
                conn = Some(BufReader::new(self.open(StreamKind::Raft, ttl).await?));
            }
            let conn = conn.as_mut().expect("connected just above");
            wire::write_frame(conn, frame)
                .await
                .map_err(|e| broken(format!("send: {e}")))?;
            let body = wire::read_frame(conn, wire::RAFT_FRAME_BYTES_MAX)
                .await
                .map_err(|e| match e {
                    wire::WireError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        TransportError::Unreachable {
                            target,
                            addr: self.addr.clone(),
                            reason: "the peer closed the connection".into(),
                        }
                    }
                    e => broken(format!("reply: {e}")),
                })?;
            wire::decode_raft_reply(&body).map_err(|e| broken(e.to_string()))
        };
        let result = match tokio::time::timeout(ttl, exchange).await {
            Ok(Ok(RaftReply::Error(reason))) => Err(TransportError::Unreachable {
                target,
                addr: self.addr.clone(),
                reason: format!("the peer refused: {reason}"),
            }),
            Ok(r) => r,
            Err(_) => Err(broken(format!("no reply within {ttl:?}"))),
        };
        if result.is_ok() {
            self.conn = conn;
        }
        result
    }

    fn unexpected(&self, reply: RaftReply) -> TransportError {
        TransportError::Broken {
            target: self.target,
            reason: format!("unexpected reply {reply:?}"),
        }
    }

    async fn vote_call(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
        pre_vote: bool,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let frame = wire::encode_vote(&rpc, pre_vote);
        match self.call(&frame, option.soft_ttl()).await {
            Ok(RaftReply::Vote(resp)) => Ok(resp),
            Ok(other) => Err(rpc_error(self.unexpected(other))),
            Err(e) => Err(rpc_error(e)),
        }
    }

    async fn send_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        ttl: Duration,
    ) -> Result<Vote, TransportError> {
        let Snapshot { meta, snapshot } = snapshot;
        let mut offset = 0usize;
        let mut done = Some((vote, meta));
        loop {
            let end = (offset + wire::SNAPSHOT_CHUNK_BYTES).min(snapshot.len());
            let last = end == snapshot.len();
            let chunk = SnapshotChunk {
                offset: offset as u64,
                done: if last { done.take() } else { None },
                data: snapshot[offset..end].to_vec(),
            };
            let ttl = if last {
                ttl.max(self.times.snapshot_install)
            } else {
                ttl
            };
            match self.call(&wire::encode_snapshot_chunk(&chunk), ttl).await? {
                RaftReply::SnapshotChunk(Some(v)) if last => return Ok(v),
                RaftReply::SnapshotChunk(None) if !last => offset = end,
                other => return Err(self.unexpected(other)),
            }
        }
    }
}

fn rpc_error(e: TransportError) -> RPCError<TypeConfig> {
    match e {
        TransportError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
        TransportError::Broken { .. } => RPCError::Network(NetworkError::new(&e)),
    }
}

/// Writes each request `input` yields as soon as it yields it (flushed at once: openraft
/// makes a request only when it has entries or a commit to send), telling the reply side how
/// many frames each took. Returns the write half once `input` ends.
async fn write_appends<S>(
    mut wr: BufWriter<WriteHalf<PeerStream>>,
    mut input: S,
    frames: mpsc::UnboundedSender<usize>,
) -> std::io::Result<BufWriter<WriteHalf<PeerStream>>>
where
    S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Unpin,
{
    while let Some(req) = input.next().await {
        let encoded = wire::encode_append_frames(&req);
        if frames.send(encoded.len()).is_err() {
            // The reply side is gone: this stream is being dropped.
            return Err(std::io::Error::other("append replies no longer read"));
        }
        for frame in &encoded {
            wr.write_all(frame).await?;
        }
        wr.flush().await?;
    }
    Ok(wr)
}

/// The next reply of a `stream_append`: the answer to the oldest unanswered request; at the
/// end of the input, the stream goes back to the client for the next call.
async fn next_append_reply(mut st: AppendReplies<'_>) -> Option<(AppendItem, AppendReplies<'_>)> {
    let target = st.target;
    let broken = |reason: String| {
        RPCError::Network(NetworkError::new(&TransportError::Broken {
            target,
            reason,
        }))
    };
    let Some(count) = st.frames.recv().await else {
        // The writer is done: every request it wrote was answered.
        let mut writer = st.writer.take()?;
        return match (&mut writer.0).await {
            Ok(Ok(wr)) => {
                *st.slot = Some(AppendConn { rd: st.rd, wr });
                None
            }
            Ok(Err(e)) => Some((Err(broken(format!("send: {e}"))), st.ended())),
            Err(e) => Some((Err(broken(format!("append writer: {e}"))), st.ended())),
        };
    };
    let mut last = None;
    for _ in 0..count {
        let body = match tokio::time::timeout(
            st.ttl,
            wire::read_frame(&mut st.rd, wire::RAFT_FRAME_BYTES_MAX),
        )
        .await
        {
            Ok(Ok(body)) => body,
            Ok(Err(wire::WireError::Io(e))) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                let e = TransportError::Unreachable {
                    target,
                    addr: st.addr.clone(),
                    reason: "the peer closed the connection".into(),
                };
                return Some((Err(rpc_error(e)), st.ended()));
            }
            Ok(Err(e)) => return Some((Err(broken(format!("reply: {e}"))), st.ended())),
            Err(_) => {
                let ttl = st.ttl;
                return Some((Err(broken(format!("no reply within {ttl:?}"))), st.ended()));
            }
        };
        match wire::decode_append_reply(&body) {
            Ok(Ok(Ok(matched))) => last = Some(matched),
            // The receiver ends its stream after an error: the rest go unanswered.
            Ok(Ok(Err(refused))) => return Some((Ok(Err(refused)), st.ended())),
            Ok(Err(reason)) => {
                let e = TransportError::Unreachable {
                    target,
                    addr: st.addr.clone(),
                    reason: format!("the peer refused: {reason}"),
                };
                return Some((Err(rpc_error(e)), st.ended()));
            }
            Err(e) => return Some((Err(broken(e.to_string())), st.ended())),
        }
    }
    let matched = last.expect("every request takes at least one frame");
    Some((Ok(Ok(matched)), st))
}

impl<'s> AppendReplies<'s> {
    /// After an error: the stream yields nothing more, and its connection is dropped.
    fn ended(mut self) -> Self {
        self.writer = None;
        self.frames.close();
        while self.frames.try_recv().is_ok() {}
        self
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = Vec<u8>;

    /// Pipelined: every request openraft makes is written at once on the append stream,
    /// without waiting for the answers to those before it (which come back in order). A
    /// request is still answered only once the follower has made its entries durable, so
    /// nothing commits sooner than Raft allows; what goes is the wait for the previous
    /// round trip (ZooKeeper's leader streams its proposals to followers the same way).
    /// Timeouts: connecting and each reply within openraft's soft TTL (never under
    /// `rpc_timeout_min_ms`); an idle stream waits for input as long as openraft likes.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, AppendItem>, RPCError<TypeConfig>>>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        Box::pin(async move {
            let ttl = option.soft_ttl().max(self.times.rpc_floor);
            let conn = match self.append.take() {
                Some(conn) => conn,
                None => self.open_append(ttl).await.map_err(rpc_error)?,
            };
            let (frames_tx, frames) = mpsc::unbounded_channel();
            let writer = AbortOnDrop(tokio::spawn(write_appends(conn.wr, input, frames_tx)));
            let replies = AppendReplies {
                target: self.target,
                addr: self.addr.clone(),
                ttl,
                rd: conn.rd,
                frames,
                writer: Some(writer),
                slot: &mut self.append,
            };
            let stream: BoxStream<'s, AppendItem> =
                Box::pin(futures_util::stream::unfold(replies, next_append_reply));
            Ok(stream)
        })
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let (frame, sent) = wire::encode_append(&rpc);
        let resp = match self.call(&frame, option.soft_ttl()).await {
            Ok(RaftReply::Append(resp)) => resp,
            Ok(other) => return Err(rpc_error(self.unexpected(other))),
            Err(e) => return Err(rpc_error(e)),
        };
        // A batch too large for one frame went out in part: say how far it got, and openraft
        // sends the rest.
        if sent < rpc.entries.len() && resp == AppendEntriesResponse::Success {
            let last = rpc.entries[..sent].last().map(|e| e.log_id);
            return Ok(AppendEntriesResponse::PartialSuccess(
                last.or(rpc.prev_log_id),
            ));
        }
        Ok(resp)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.vote_call(rpc, option, false).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.vote_call(rpc, option, true).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let index = snapshot.meta.last_log_id.map(|l| l.index);
        let bytes = snapshot.snapshot.len();
        tracing::info!(target = self.target, ?index, bytes, "sending a snapshot");
        let send = self.send_snapshot(vote, snapshot, option.soft_ttl());
        let result = tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = send => r.map_err(|e| match e {
                TransportError::Unreachable { .. } => StreamingError::Unreachable(Unreachable::new(&e)),
                TransportError::Broken { .. } => StreamingError::Network(NetworkError::new(&e)),
            }),
        };
        if result.is_err() {
            // A chunk may be half written: never reuse the stream.
            self.conn = None;
        }
        result.map(SnapshotResponse::new)
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let frame = wire::encode_transfer_leader(&req);
        match self.call(&frame, option.soft_ttl()).await {
            Ok(RaftReply::TransferLeader(resp)) => Ok(resp),
            Ok(other) => Err(rpc_error(self.unexpected(other))),
            Err(e) => Err(rpc_error(e)),
        }
    }
}
