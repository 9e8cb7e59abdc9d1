//! The peer network: openraft's `RaftNetworkFactory` over a [`PeerTransport`].
//!
//! A standalone server is a one-voter ensemble and never sends an RPC, so the only transport
//! today is [`NoPeers`], which reports every peer unreachable. The ensemble issue adds a TCP
//! transport (length-prefixed frames, bounded, with timeouts) and the RPC codec for
//! append-entries, vote and snapshot; `PeerClient` is where both plug in, and nothing else
//! in the crate changes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use openraft::OptionalSend;
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};

use crate::types::{PeerNode, Snapshot, TypeConfig, Vote};

/// Why a frame could not be exchanged with a peer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made (or this transport has no peers).
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

/// A boxed future returned by [`PeerTransport::call`].
pub type CallFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<u8>, TransportError>> + Send + 'a>>;

/// How this node exchanges one request frame for one reply frame with a peer.
///
/// Implementations bound frame sizes and time out; the bytes are opaque to them.
pub trait PeerTransport: Send + Sync + 'static {
    /// Sends `frame` to node `target` at `addr` and returns its reply.
    fn call<'a>(&'a self, target: u64, addr: &'a str, frame: Vec<u8>) -> CallFuture<'a>;
}

/// The transport of a single-voter ensemble: every peer is unreachable.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPeers;

impl PeerTransport for NoPeers {
    fn call<'a>(&'a self, target: u64, addr: &'a str, _frame: Vec<u8>) -> CallFuture<'a> {
        Box::pin(async move {
            Err(TransportError::Unreachable {
                target,
                addr: addr.to_string(),
                reason: "no peer transport configured (standalone node)".into(),
            })
        })
    }
}

/// openraft's network factory: one [`PeerClient`] per peer.
#[derive(Clone)]
pub(crate) struct Network {
    transport: Arc<dyn PeerTransport>,
}

impl Network {
    pub(crate) fn new(transport: Arc<dyn PeerTransport>) -> Self {
        Network { transport }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &PeerNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            transport: self.transport.clone(),
        }
    }
}

/// Sends Raft RPCs to one peer.
pub(crate) struct PeerClient {
    target: u64,
    addr: String,
    transport: Arc<dyn PeerTransport>,
}

impl PeerClient {
    /// Exchanges one frame. The RPC codec (ensemble issue) encodes requests into `frame` and
    /// decodes replies; until it exists no request is sent and the peer reads as unreachable.
    async fn exchange(&self, rpc: &'static str) -> Result<Vec<u8>, TransportError> {
        tracing::debug!(target = self.target, rpc, "peer RPC without a codec");
        self.transport
            .call(self.target, &self.addr, Vec::new())
            .await
    }
}

fn rpc_error(e: TransportError) -> RPCError<TypeConfig> {
    match e {
        TransportError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
        TransportError::Broken { .. } => RPCError::Network(NetworkError::new(&e)),
    }
}

fn codec_missing(target: u64) -> TransportError {
    TransportError::Unreachable {
        target,
        addr: String::new(),
        reason: "peer RPC codec not implemented yet (ensemble issue)".into(),
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.exchange("append_entries").await.map_err(rpc_error)?;
        Err(rpc_error(codec_missing(self.target)))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.exchange("vote").await.map_err(rpc_error)?;
        Err(rpc_error(codec_missing(self.target)))
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let e = match self.exchange("full_snapshot").await {
            Err(e) => e,
            Ok(_) => codec_missing(self.target),
        };
        Err(StreamingError::Unreachable(Unreachable::new(&e)))
    }
}
