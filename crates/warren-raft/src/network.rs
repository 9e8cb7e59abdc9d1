//! The peer network: how a node reaches its peers ([`PeerTransport`]: [`TcpTransport`], or
//! [`NoPeers`] for a standalone node) and openraft's `RaftNetworkFactory` over it.
//!
//! A transport only opens byte streams; everything on them (handshake, frames, messages) is
//! `wire`'s. Tests wrap a transport to inject faults (a partition is a wrapper that refuses
//! and cuts the streams between two sides).
//!
//! `PeerClient` sends openraft's RPCs to one peer over one Raft stream, one request at a
//! time: connected lazily, dropped on any error or timeout (a late reply must never be taken
//! for the next request's), reconnected by the next RPC.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openraft::OptionalSend;
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

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
}

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
        }
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
                let hello = Hello {
                    kind: StreamKind::Raft,
                    from: self.me,
                    to: self.target,
                    epoch: 0,
                };
                let s = dial(&*self.transport, hello, &self.addr, ttl).await?;
                conn = Some(BufReader::new(s));
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

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = Vec<u8>;

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
