//! The peer wire format: the handshake, length-prefixed frames, and the messages of the two
//! kinds of peer stream. Encoded by hand, little-endian, like `codec` (whose entry, vote and
//! snapshot-metadata encodings it reuses). The format is documented in the crate root.
//!
//! Decoding never trusts a length: a frame longer than its stream's maximum is refused before
//! anything is allocated, and every count inside a frame is checked against the bytes left.
//! A frame that does not decode is a connection fault: the caller closes that connection only.

use std::io;

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, StreamAppendError, StreamAppendResult,
    TransferLeaderError, TransferLeaderRequest, VoteRequest, VoteResponse,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ProposeError;
use crate::codec::{
    self, DecodeError, Reader, put_bytes, put_len, put_opt_log_id, put_u32, put_u64, put_vote,
};
use crate::types::{Entry, LogId, SnapshotMeta, TypeConfig, Vote};

/// The first bytes of every peer connection.
pub(crate) const MAGIC: [u8; 4] = *b"WRNP";
/// The version of this wire format; a peer with another one is refused at the handshake.
/// Version 2 added the append stream (a version-1 node cannot replicate with it).
pub(crate) const WIRE_VERSION: u8 = 2;
/// Bytes of the handshake.
pub(crate) const HELLO_BYTES: usize = 32;
/// Largest frame accepted on a Raft stream (append-entries batches, snapshot chunks).
pub(crate) const RAFT_FRAME_BYTES_MAX: usize = 64 << 20;
/// Largest frame accepted on a client stream (forwarded payloads, application messages).
pub(crate) const CLIENT_FRAME_BYTES_MAX: usize = 16 << 20;
/// An append-entries frame stops taking entries at this size (it always takes one).
pub(crate) const APPEND_BATCH_BYTES: usize = 32 << 20;
/// Snapshot bytes sent per chunk frame.
pub(crate) const SNAPSHOT_CHUNK_BYTES: usize = 16 << 20;

/// The kinds of peer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// openraft's RPCs: one request, one reply, in turn.
    Raft = 1,
    /// Forwarded writes, read-index requests, application messages: pipelined, with ids.
    Client = 2,
    /// Append-entries only, pipelined: the leader sends each as soon as openraft makes it;
    /// the follower answers each, in order.
    Append = 3,
}

/// The handshake a dialer sends first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) kind: StreamKind,
    /// The dialing node.
    pub(crate) from: u64,
    /// The node the dialer believes it reaches (checked by the acceptor).
    pub(crate) to: u64,
    /// Client streams: grows with every new stream a node opens to a peer, so the leader can
    /// refuse forwards still buffered on a stream the follower has given up (see `peer_server`).
    pub(crate) epoch: u64,
}

impl Hello {
    pub(crate) fn encode(&self) -> [u8; HELLO_BYTES] {
        let mut out = Vec::with_capacity(HELLO_BYTES);
        out.extend_from_slice(&MAGIC);
        out.push(WIRE_VERSION);
        out.push(self.kind as u8);
        out.extend_from_slice(&[0, 0]);
        put_u64(&mut out, self.from);
        put_u64(&mut out, self.to);
        put_u64(&mut out, self.epoch);
        out.try_into().expect("the handshake is 32 bytes")
    }

    pub(crate) fn decode(buf: &[u8; HELLO_BYTES]) -> Result<Hello, DecodeError> {
        let mut r = Reader::new("peer handshake", buf);
        if r.take(4)? != MAGIC {
            return Err(DecodeError::new("peer handshake", "bad magic"));
        }
        let version = r.u8()?;
        if version != WIRE_VERSION {
            return Err(DecodeError::new(
                "peer handshake",
                format!("wire version {version}, this node speaks {WIRE_VERSION}"),
            ));
        }
        let kind = match r.u8()? {
            1 => StreamKind::Raft,
            2 => StreamKind::Client,
            3 => StreamKind::Append,
            k => {
                return Err(DecodeError::new(
                    "peer handshake",
                    format!("stream kind {k}"),
                ));
            }
        };
        r.take(2)?;
        let hello = Hello {
            kind,
            from: r.u64()?,
            to: r.u64()?,
            epoch: r.u64()?,
        };
        r.finish()?;
        Ok(hello)
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// The connection failed or closed.
    #[error("peer i/o: {0}")]
    Io(#[from] io::Error),
    /// The length prefix exceeds the stream's maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge { len: usize, max: usize },
    /// The frame does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Reads one frame's body (the bytes after its length prefix), at most `max` bytes.
pub(crate) async fn read_frame<R>(r: &mut R, max: usize) -> Result<Vec<u8>, WireError>
where
    R: AsyncRead + Unpin,
{
    let len = r.read_u32_le().await? as usize;
    if len > max {
        return Err(WireError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(body)
}

/// Writes a frame built by [`FrameBuf`] (length prefix included).
pub(crate) async fn write_frame<W>(w: &mut W, frame: &[u8]) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    w.write_all(frame).await
}

/// A frame under construction: a length placeholder, the type byte, then the body.
struct FrameBuf(Vec<u8>);

impl FrameBuf {
    fn new(kind: u8, hint: usize) -> Self {
        let mut v = Vec::with_capacity(5 + hint);
        v.extend_from_slice(&[0; 4]);
        v.push(kind);
        FrameBuf(v)
    }

    fn seal(mut self) -> Vec<u8> {
        let n = u32::try_from(self.0.len() - 4).expect("frames are smaller than 4 GiB");
        self.0[..4].copy_from_slice(&n.to_le_bytes());
        self.0
    }
}

// Raft stream message types. Replies have the high bit set.
const T_APPEND: u8 = 1;
const T_VOTE: u8 = 2;
const T_PRE_VOTE: u8 = 3;
const T_SNAPSHOT_CHUNK: u8 = 4;
const T_TRANSFER_LEADER: u8 = 5;
const T_PROBE: u8 = 6;
const R_APPEND: u8 = 0x81;
const R_VOTE: u8 = 0x82;
const R_SNAPSHOT_CHUNK: u8 = 0x84;
const R_TRANSFER_LEADER: u8 = 0x85;
const R_PROBE: u8 = 0x86;
const R_STREAM_APPEND: u8 = 0x87;
const R_ERROR: u8 = 0xFF;

// Client stream message types.
const T_FORWARD: u8 = 10;
const T_READ_INDEX: u8 = 11;
const T_APP_SEND: u8 = 12;
const T_APP_CALL: u8 = 13;
const R_FORWARD: u8 = 0x8A;
const R_READ_INDEX: u8 = 0x8B;
const R_APP_CALL: u8 = 0x8D;

/// One piece of a snapshot; the last one carries the leader's vote and the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotChunk {
    /// Where `data` starts in the snapshot.
    pub(crate) offset: u64,
    /// Present on the last chunk: install with this vote and metadata.
    pub(crate) done: Option<(Vote, SnapshotMeta)>,
    pub(crate) data: Vec<u8>,
}

/// A request on a Raft stream.
#[derive(Debug)]
pub(crate) enum RaftRequest {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    SnapshotChunk(SnapshotChunk),
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// "Have you ever been part of an ensemble?" (formation, see `node`).
    Probe,
}

/// A reply on a Raft stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RaftReply {
    Append(AppendEntriesResponse<TypeConfig>),
    Vote(VoteResponse<TypeConfig>),
    /// `None`: chunk stored, send the next; `Some(vote)`: installed, the receiver's vote.
    SnapshotChunk(Option<Vote>),
    TransferLeader(Result<(), TransferLeaderError<TypeConfig>>),
    Probe {
        initialized: bool,
    },
    /// The receiver could not handle the request (stopping, or a fatal error).
    Error(String),
}

/// Encodes an append-entries request with as many entries as fit in [`APPEND_BATCH_BYTES`]
/// (at least one); returns the frame and how many entries it holds.
pub(crate) fn encode_append(req: &AppendEntriesRequest<TypeConfig>) -> (Vec<u8>, usize) {
    encode_append_part(
        &req.vote,
        req.prev_log_id.as_ref(),
        req.leader_commit.as_ref(),
        &req.entries,
    )
}

/// Encodes an append-entries request as frames of at most [`APPEND_BATCH_BYTES`] of entries
/// each (one frame when it fits): each frame is a request of its own, its `prev_log_id` the
/// last entry of the frame before, so the receiver answers each in turn.
pub(crate) fn encode_append_frames(req: &AppendEntriesRequest<TypeConfig>) -> Vec<Vec<u8>> {
    let mut frames = Vec::with_capacity(1);
    let mut prev = req.prev_log_id;
    let mut rest = &req.entries[..];
    loop {
        let (frame, n) =
            encode_append_part(&req.vote, prev.as_ref(), req.leader_commit.as_ref(), rest);
        frames.push(frame);
        if n >= rest.len() {
            return frames;
        }
        prev = Some(rest[n - 1].log_id);
        rest = &rest[n..];
    }
}

fn encode_append_part(
    vote: &Vote,
    prev_log_id: Option<&LogId>,
    leader_commit: Option<&LogId>,
    entries: &[Entry],
) -> (Vec<u8>, usize) {
    let mut f = FrameBuf::new(T_APPEND, 64);
    put_vote(&mut f.0, vote);
    put_opt_log_id(&mut f.0, prev_log_id);
    put_opt_log_id(&mut f.0, leader_commit);
    let count_at = f.0.len();
    put_u32(&mut f.0, 0);
    let mut n = 0usize;
    for entry in entries {
        let bytes = codec::encode_entry(entry);
        if n > 0 && f.0.len() + 4 + bytes.len() > APPEND_BATCH_BYTES {
            break;
        }
        put_bytes(&mut f.0, &bytes);
        n += 1;
    }
    let count = u32::try_from(n).expect("entry count fits u32");
    f.0[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    (f.seal(), n)
}

fn put_vote_request(out: &mut Vec<u8>, req: &VoteRequest<TypeConfig>) {
    put_vote(out, &req.vote);
    put_opt_log_id(out, req.last_log_id.as_ref());
    out.push(u8::from(req.leadership_transfer));
}

fn vote_request(r: &mut Reader<'_>) -> Result<VoteRequest<TypeConfig>, DecodeError> {
    let mut req = VoteRequest::new(r.vote()?, r.opt_log_id()?);
    req.leadership_transfer = r.flag()?;
    Ok(req)
}

/// Encodes a vote (or pre-vote) request.
pub(crate) fn encode_vote(req: &VoteRequest<TypeConfig>, pre_vote: bool) -> Vec<u8> {
    let mut f = FrameBuf::new(if pre_vote { T_PRE_VOTE } else { T_VOTE }, 40);
    put_vote_request(&mut f.0, req);
    f.seal()
}

/// Encodes a snapshot chunk.
pub(crate) fn encode_snapshot_chunk(c: &SnapshotChunk) -> Vec<u8> {
    let mut f = FrameBuf::new(T_SNAPSHOT_CHUNK, 64 + c.data.len());
    put_u64(&mut f.0, c.offset);
    match &c.done {
        None => f.0.push(0),
        Some((vote, meta)) => {
            f.0.push(1);
            put_vote(&mut f.0, vote);
            put_bytes(&mut f.0, &codec::encode_snapshot_meta(meta));
        }
    }
    f.0.extend_from_slice(&c.data);
    f.seal()
}

/// Encodes a transfer-leader request.
pub(crate) fn encode_transfer_leader(req: &TransferLeaderRequest<TypeConfig>) -> Vec<u8> {
    let mut f = FrameBuf::new(T_TRANSFER_LEADER, 48);
    put_vote(&mut f.0, req.from_leader());
    put_u64(&mut f.0, *req.to_node_id());
    put_opt_log_id(&mut f.0, req.last_log_id());
    f.seal()
}

/// Encodes a formation probe.
pub(crate) fn encode_probe() -> Vec<u8> {
    FrameBuf::new(T_PROBE, 0).seal()
}

/// Decodes a request read from a Raft stream.
pub(crate) fn decode_raft_request(body: &[u8]) -> Result<RaftRequest, DecodeError> {
    let mut r = Reader::new("raft request", body);
    let req = match r.u8()? {
        T_APPEND => {
            let vote = r.vote()?;
            let prev_log_id = r.opt_log_id()?;
            let leader_commit = r.opt_log_id()?;
            let n = r.count(4)?;
            let mut entries: Vec<Entry> = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push(codec::decode_entry(r.bytes()?)?);
            }
            RaftRequest::Append(AppendEntriesRequest {
                vote,
                prev_log_id,
                entries,
                leader_commit,
            })
        }
        T_VOTE => RaftRequest::Vote(vote_request(&mut r)?),
        T_PRE_VOTE => RaftRequest::PreVote(vote_request(&mut r)?),
        T_SNAPSHOT_CHUNK => {
            let offset = r.u64()?;
            let done = if r.flag()? {
                let vote = r.vote()?;
                let meta = codec::decode_snapshot_meta(r.bytes()?)?;
                Some((vote, meta))
            } else {
                None
            };
            let data = r.rest().to_vec();
            RaftRequest::SnapshotChunk(SnapshotChunk { offset, done, data })
        }
        T_TRANSFER_LEADER => {
            let from = r.vote()?;
            let to = r.u64()?;
            let last = r.opt_log_id()?;
            RaftRequest::TransferLeader(TransferLeaderRequest::new(from, to, last))
        }
        T_PROBE => RaftRequest::Probe,
        t => return Err(DecodeError::new("raft request", format!("type {t}"))),
    };
    r.finish()?;
    Ok(req)
}

/// Encodes a reply on a Raft stream.
pub(crate) fn encode_raft_reply(reply: &RaftReply) -> Vec<u8> {
    match reply {
        RaftReply::Append(resp) => {
            let mut f = FrameBuf::new(R_APPEND, 32);
            match resp {
                AppendEntriesResponse::Success => f.0.push(0),
                AppendEntriesResponse::PartialSuccess(l) => {
                    f.0.push(1);
                    put_opt_log_id(&mut f.0, l.as_ref());
                }
                AppendEntriesResponse::Conflict => f.0.push(2),
                AppendEntriesResponse::HigherVote(v) => {
                    f.0.push(3);
                    put_vote(&mut f.0, v);
                }
            }
            f.seal()
        }
        RaftReply::Vote(resp) => {
            let mut f = FrameBuf::new(R_VOTE, 40);
            put_vote(&mut f.0, &resp.vote);
            f.0.push(u8::from(resp.vote_granted));
            put_opt_log_id(&mut f.0, resp.last_log_id.as_ref());
            f.seal()
        }
        RaftReply::SnapshotChunk(vote) => {
            let mut f = FrameBuf::new(R_SNAPSHOT_CHUNK, 24);
            match vote {
                None => f.0.push(0),
                Some(v) => {
                    f.0.push(1);
                    put_vote(&mut f.0, v);
                }
            }
            f.seal()
        }
        RaftReply::TransferLeader(res) => {
            let mut f = FrameBuf::new(R_TRANSFER_LEADER, 64);
            match res {
                Ok(()) => f.0.push(0),
                Err(TransferLeaderError::VoteChanged { expected, actual }) => {
                    f.0.push(1);
                    put_vote(&mut f.0, expected);
                    put_vote(&mut f.0, actual);
                }
                Err(TransferLeaderError::LogNotFlushed { expected, actual }) => {
                    f.0.push(2);
                    put_opt_log_id(&mut f.0, expected.as_ref());
                    put_opt_log_id(&mut f.0, actual.as_ref());
                }
            }
            f.seal()
        }
        RaftReply::Probe { initialized } => {
            let mut f = FrameBuf::new(R_PROBE, 1);
            f.0.push(u8::from(*initialized));
            f.seal()
        }
        RaftReply::Error(msg) => {
            let mut f = FrameBuf::new(R_ERROR, msg.len() + 4);
            put_bytes(&mut f.0, msg.as_bytes());
            f.seal()
        }
    }
}

/// The answer to one request on an append stream: openraft's stream result, or why the
/// receiver could not handle it (it closes the stream after either error).
pub(crate) type AppendReply = Result<StreamAppendResult<TypeConfig>, String>;

/// Encodes a reply on an append stream.
pub(crate) fn encode_append_reply(reply: &AppendReply) -> Vec<u8> {
    match reply {
        Ok(result) => {
            let mut f = FrameBuf::new(R_STREAM_APPEND, 32);
            match result {
                Ok(matched) => {
                    f.0.push(0);
                    put_opt_log_id(&mut f.0, matched.as_ref());
                }
                Err(StreamAppendError::Conflict(at)) => {
                    f.0.push(1);
                    put_opt_log_id(&mut f.0, Some(at));
                }
                Err(StreamAppendError::HigherVote(v)) => {
                    f.0.push(2);
                    put_vote(&mut f.0, v);
                }
            }
            f.seal()
        }
        Err(reason) => encode_raft_reply(&RaftReply::Error(reason.clone())),
    }
}

/// Decodes a reply read from an append stream.
pub(crate) fn decode_append_reply(body: &[u8]) -> Result<AppendReply, DecodeError> {
    let mut r = Reader::new("append reply", body);
    let reply = match r.u8()? {
        R_STREAM_APPEND => Ok(match r.u8()? {
            0 => Ok(r.opt_log_id()?),
            1 => match r.opt_log_id()? {
                Some(at) => Err(StreamAppendError::Conflict(at)),
                None => {
                    return Err(DecodeError::new(
                        "append reply",
                        "conflict without a log id",
                    ));
                }
            },
            2 => Err(StreamAppendError::HigherVote(r.vote()?)),
            t => return Err(DecodeError::new("append reply", format!("tag {t}"))),
        }),
        R_ERROR => Err(r.string()?),
        t => return Err(DecodeError::new("append reply", format!("type {t}"))),
    };
    r.finish()?;
    Ok(reply)
}

/// Decodes a reply read from a Raft stream.
pub(crate) fn decode_raft_reply(body: &[u8]) -> Result<RaftReply, DecodeError> {
    let mut r = Reader::new("raft reply", body);
    let reply = match r.u8()? {
        R_APPEND => RaftReply::Append(match r.u8()? {
            0 => AppendEntriesResponse::Success,
            1 => AppendEntriesResponse::PartialSuccess(r.opt_log_id()?),
            2 => AppendEntriesResponse::Conflict,
            3 => AppendEntriesResponse::HigherVote(r.vote()?),
            t => return Err(DecodeError::new("raft reply", format!("append tag {t}"))),
        }),
        R_VOTE => {
            let vote = r.vote()?;
            let granted = r.flag()?;
            let last = r.opt_log_id()?;
            RaftReply::Vote(VoteResponse::new(vote, last, granted))
        }
        R_SNAPSHOT_CHUNK => {
            RaftReply::SnapshotChunk(if r.flag()? { Some(r.vote()?) } else { None })
        }
        R_TRANSFER_LEADER => RaftReply::TransferLeader(match r.u8()? {
            0 => Ok(()),
            1 => Err(TransferLeaderError::VoteChanged {
                expected: r.vote()?,
                actual: r.vote()?,
            }),
            2 => Err(TransferLeaderError::LogNotFlushed {
                expected: r.opt_log_id()?,
                actual: r.opt_log_id()?,
            }),
            t => return Err(DecodeError::new("raft reply", format!("transfer tag {t}"))),
        }),
        R_PROBE => RaftReply::Probe {
            initialized: r.flag()?,
        },
        R_ERROR => RaftReply::Error(r.string()?),
        t => return Err(DecodeError::new("raft reply", format!("type {t}"))),
    };
    r.finish()?;
    Ok(reply)
}

/// A request on a client stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientRequest {
    /// Propose `payload` on the follower's behalf, in arrival order.
    Forward { id: u64, payload: Vec<u8> },
    /// Confirm leadership and answer the read index.
    ReadIndex { id: u64 },
    /// An application message; no reply.
    AppSend { payload: Vec<u8> },
    /// An application call; the handler's bytes come back.
    AppCall { id: u64, payload: Vec<u8> },
}

/// A reply on a client stream (any order; matched by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientReply {
    /// The forwarded entry's log index once committed, or why not.
    Forward {
        id: u64,
        result: Result<u64, ProposeError>,
    },
    /// The read index, or why not.
    ReadIndex {
        id: u64,
        result: Result<u64, ProposeError>,
    },
    /// The handler's answer, or why there is none.
    AppCall {
        id: u64,
        result: Result<Vec<u8>, String>,
    },
}

/// Encodes a client-stream request.
pub(crate) fn encode_client_request(req: &ClientRequest) -> Vec<u8> {
    match req {
        ClientRequest::Forward { id, payload } => {
            let mut f = FrameBuf::new(T_FORWARD, 8 + payload.len());
            put_u64(&mut f.0, *id);
            f.0.extend_from_slice(payload);
            f.seal()
        }
        ClientRequest::ReadIndex { id } => {
            let mut f = FrameBuf::new(T_READ_INDEX, 8);
            put_u64(&mut f.0, *id);
            f.seal()
        }
        ClientRequest::AppSend { payload } => {
            let mut f = FrameBuf::new(T_APP_SEND, payload.len());
            f.0.extend_from_slice(payload);
            f.seal()
        }
        ClientRequest::AppCall { id, payload } => {
            let mut f = FrameBuf::new(T_APP_CALL, 8 + payload.len());
            put_u64(&mut f.0, *id);
            f.0.extend_from_slice(payload);
            f.seal()
        }
    }
}

/// Decodes a client-stream request.
pub(crate) fn decode_client_request(body: &[u8]) -> Result<ClientRequest, DecodeError> {
    let mut r = Reader::new("client request", body);
    let req = match r.u8()? {
        T_FORWARD => ClientRequest::Forward {
            id: r.u64()?,
            payload: r.rest().to_vec(),
        },
        T_READ_INDEX => ClientRequest::ReadIndex { id: r.u64()? },
        T_APP_SEND => ClientRequest::AppSend {
            payload: r.rest().to_vec(),
        },
        T_APP_CALL => ClientRequest::AppCall {
            id: r.u64()?,
            payload: r.rest().to_vec(),
        },
        t => return Err(DecodeError::new("client request", format!("type {t}"))),
    };
    r.finish()?;
    Ok(req)
}

fn put_index_result(out: &mut Vec<u8>, result: &Result<u64, ProposeError>) {
    let put_leader = |out: &mut Vec<u8>, leader: &Option<(u64, String)>| match leader {
        None => out.push(0),
        Some((id, addr)) => {
            out.push(1);
            put_u64(out, *id);
            put_bytes(out, addr.as_bytes());
        }
    };
    match result {
        Ok(index) => {
            out.push(0);
            put_u64(out, *index);
        }
        Err(ProposeError::NotLeader { leader }) => {
            out.push(1);
            put_leader(out, leader);
        }
        // The leader's own failures are the follower's uncertainty, never its fatal error.
        Err(ProposeError::Indeterminate { leader }) => {
            out.push(2);
            put_leader(out, leader);
        }
        Err(ProposeError::Fatal(_) | ProposeError::Rejected(_)) => {
            out.push(2);
            put_leader(out, &None);
        }
        Err(ProposeError::ShuttingDown) => {
            out.push(1);
            put_leader(out, &None);
        }
    }
}

fn index_result(r: &mut Reader<'_>) -> Result<Result<u64, ProposeError>, DecodeError> {
    let tag = r.u8()?;
    if tag == 0 {
        return Ok(Ok(r.u64()?));
    }
    let leader = if r.flag()? {
        Some((r.u64()?, r.string()?))
    } else {
        None
    };
    match tag {
        1 => Ok(Err(ProposeError::NotLeader { leader })),
        2 => Ok(Err(ProposeError::Indeterminate { leader })),
        t => Err(DecodeError::new("client reply", format!("result tag {t}"))),
    }
}

/// Encodes a client-stream reply.
pub(crate) fn encode_client_reply(reply: &ClientReply) -> Vec<u8> {
    match reply {
        ClientReply::Forward { id, result } | ClientReply::ReadIndex { id, result } => {
            let kind = if matches!(reply, ClientReply::Forward { .. }) {
                R_FORWARD
            } else {
                R_READ_INDEX
            };
            let mut f = FrameBuf::new(kind, 32);
            put_u64(&mut f.0, *id);
            put_index_result(&mut f.0, result);
            f.seal()
        }
        ClientReply::AppCall { id, result } => {
            let hint = result.as_ref().map_or(64, Vec::len);
            let mut f = FrameBuf::new(R_APP_CALL, 16 + hint);
            put_u64(&mut f.0, *id);
            match result {
                Ok(bytes) => {
                    f.0.push(0);
                    f.0.extend_from_slice(bytes);
                }
                Err(msg) => {
                    f.0.push(1);
                    put_len(&mut f.0, msg.len());
                    f.0.extend_from_slice(msg.as_bytes());
                }
            }
            f.seal()
        }
    }
}

/// Decodes a client-stream reply.
pub(crate) fn decode_client_reply(body: &[u8]) -> Result<ClientReply, DecodeError> {
    let mut r = Reader::new("client reply", body);
    let reply = match r.u8()? {
        R_FORWARD => ClientReply::Forward {
            id: r.u64()?,
            result: index_result(&mut r)?,
        },
        R_READ_INDEX => ClientReply::ReadIndex {
            id: r.u64()?,
            result: index_result(&mut r)?,
        },
        R_APP_CALL => {
            let id = r.u64()?;
            let result = if r.flag()? {
                Err(r.string()?)
            } else {
                Ok(r.rest().to_vec())
            };
            ClientReply::AppCall { id, result }
        }
        t => return Err(DecodeError::new("client reply", format!("type {t}"))),
    };
    r.finish()?;
    Ok(reply)
}

#[cfg(test)]
#[path = "wire_test.rs"]
mod tests;
