//! One client connection: the handshake, the request loop, and the writer task.
//!
//! Twin of ZooKeeper's `NIOServerCnxn`/`NettyServerCnxn` plus the connect half of
//! `ZooKeeperServer.processConnectRequest`. The first four bytes of a connection are either a
//! four-letter word (answered and closed) or the length of a `ConnectRequest`. After the
//! handshake every frame is a `RequestHeader` and a body; see [`crate::requests`] for what each
//! request does. A malformed frame, an oversized length, or a body that does not decode
//! closes this connection only.

use std::sync::Arc;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tracing::{debug, info};
use warren_proto::frame::{FrameError, LEN_BYTES, check_frame_len, decode_len, four_letter_word};
use warren_proto::records::{ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader};
use warren_proto::request::{Request, decode_request};
use warren_proto::response::{encode_connect_response, encode_error, encode_reply_header};
use warren_proto::{DecodeError, ErrorCode, Id, OpCode, Record, SessionId, Xid, Zxid};
use warren_tree::Op;

use crate::auth::{AuthOutcome, authenticate};
use crate::conn::{Conn, ConnBounds, InFlight, OutMsg, OutboxReader, Pending, WriteKind, outbox};
use crate::core::proposal_failed;
use crate::requests::{Action, Caller, RequestRules, plan, undecodable_write};
use crate::sasl::DigestMd5Server;
use crate::server::ServerCtx;

/// Why a connection was closed by the server.
#[derive(Debug, Error)]
pub enum ConnError {
    /// The socket failed or the peer went away.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A length prefix out of bounds ("Len error" in ZooKeeper).
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    /// A record that does not decode.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// The client has seen a newer zxid than this server has applied.
    #[error("client has seen zxid {client:#x}, this server only {ours:#x}")]
    ZxidAhead {
        /// The client's last zxid.
        client: i64,
        /// This server's.
        ours: i64,
    },
    /// The handshake did not arrive in time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// Authentication failed (ZooKeeper closes after AuthFailed).
    #[error("authentication failed")]
    AuthFailed,
}

/// Serves one accepted connection until it closes.
pub async fn serve<S>(ctx: Arc<ServerCtx>, stream: S, peer: std::net::SocketAddr)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    serve_with_auth(ctx, stream, peer, Vec::new()).await;
}

/// Serves one accepted connection that starts with `ids` besides `ip:<peer>` (the `x509`
/// identity of a verified TLS client certificate).
pub async fn serve_with_auth<S>(
    ctx: Arc<ServerCtx>,
    stream: S,
    peer: std::net::SocketAddr,
    ids: Vec<Id>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let limits = &ctx.cfg.limits;
    let (tx, rx) = outbox(limits.outbox_bytes_max as usize);
    let bounds = ConnBounds {
        total: limits.connections_max as usize,
        per_ip: limits.connections_per_ip_max as usize,
        in_flight: limits.requests_in_flight_per_session_max as usize,
    };
    let registered = ctx.shared.conns.lock().register(peer, tx.clone(), bounds);
    let Some(conn) = registered else {
        info!(
            %peer,
            per_ip = limits.connections_per_ip_max,
            total = limits.connections_max,
            "connection refused: too many connections"
        );
        return;
    };
    let (reader, writer) = tokio::io::split(stream);
    let writer_task = tokio::spawn(write_loop(writer, rx));
    let result = read_loop(&ctx, &conn, reader, ids).await;
    match &result {
        Ok(()) => debug!(%peer, conn = conn.id, "connection closed"),
        Err(e) => debug!(%peer, conn = conn.id, error = %e, "connection closed"),
    }
    conn.outbox.close();
    // ZooKeeper keeps watches per connection: a client that reconnects re-registers them with
    // setWatches, and changes in between are replayed from its last zxid.
    let was_current = ctx.shared.conns.lock().unregister(&conn);
    if was_current {
        ctx.shared.watches.lock().remove_session(conn.session());
        if conn.read_only() {
            let now = ctx.shared.now_ms();
            ctx.quorum.local_sessions.lock().detach(conn.session(), now);
        }
    }
    let _ = writer_task.await;
}

/// Sends queued frames, batching whatever is queued into one write.
async fn write_loop<W>(writer: W, mut rx: OutboxReader) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut w = BufWriter::with_capacity(64 * 1024, writer);
    while let Some(msg) = rx.recv().await {
        let mut next = Some(msg);
        while let Some(m) = next {
            match m {
                OutMsg::Frame(f) => w.write_all(&f).await?,
                OutMsg::Close => {
                    w.flush().await?;
                    return w.shutdown().await;
                }
            }
            next = rx.try_recv();
        }
        w.flush().await?;
    }
    Ok(())
}

async fn read_len<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<usize, ConnError> {
    let mut len = [0u8; LEN_BYTES];
    r.read_exact(&mut len).await?;
    Ok(check_frame_len(decode_len(len), max)?)
}

async fn read_body<R: AsyncRead + Unpin>(r: &mut R, len: usize) -> Result<Vec<u8>, ConnError> {
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(body)
}

/// Bytes read from a client socket at once (requests are parsed out of this buffer).
const READ_BUFFER_BYTES: usize = 16 * 1024;

async fn read_loop<R>(
    ctx: &Arc<ServerCtx>,
    conn: &Arc<Conn>,
    r: R,
    ids: Vec<Id>,
) -> Result<(), ConnError>
where
    R: AsyncRead + Unpin,
{
    // One `recv` brings in every request the client pipelined (a closed-loop client sends
    // its whole window at once); unbuffered, each request cost two `recv`s (length, body).
    let mut r = BufReader::with_capacity(READ_BUFFER_BYTES, r);
    let max = ctx.cfg.limits.packet_bytes_max as usize;
    let handshake = std::time::Duration::from_millis(ctx.cfg.limits.handshake_timeout_ms.into());
    let mut first = [0u8; LEN_BYTES];
    tokio::time::timeout(handshake, r.read_exact(&mut first))
        .await
        .map_err(|_| ConnError::HandshakeTimeout)??;
    if let Some(word) = four_letter_word(first) {
        let text = ctx.four_letter_word(word.as_str());
        conn.outbox.send(text.into_bytes());
        return Ok(());
    }
    let len = check_frame_len(decode_len(first), max)?;
    let body = tokio::time::timeout(handshake, read_body(&mut r, len))
        .await
        .map_err(|_| ConnError::HandshakeTimeout)??;
    let req = ConnectRequest::decode(&mut warren_proto::Reader::new(&body))?;
    let Some(mut session) = connect(ctx, conn, &req)? else {
        return Ok(());
    };
    let mut auth: Vec<Id> = vec![Id::new("ip", conn.peer.ip().to_string())];
    auth.extend(ids);
    // The identities as every request's caller sees them: shared, rebuilt only when `auth`
    // changes (addauth, sasl), not cloned per request.
    let mut caller_auth: Arc<[Id]> = auth.clone().into();
    let mut sasl = DigestMd5Server::new(ctx.sasl_users.clone());
    loop {
        // Each request read holds an in-flight permit until it is answered; with none free
        // this connection is not read (backpressure instead of an unbounded queue).
        let permit = InFlight::acquire(&ctx.shared.in_flight, &conn.in_flight).await;
        let len = read_len(&mut r, max).await?;
        let body = read_body(&mut r, len).await?;
        conn.state.lock().permits.push_back(permit);
        ctx.stats.packet_received();
        let mut rd = warren_proto::Reader::new(&body);
        let header = RequestHeader::decode(&mut rd)?;
        let rest = &body[rd.position()..];
        ctx.touch(session);
        let request = match decode_request(&header, rest) {
            Ok(req) => req,
            // ZooKeeper closes on an auth or sasl body that does not parse and answers
            // MarshallingError to any other.
            Err(e) if header.op == OpCode::Auth.code() || header.op == OpCode::Sasl.code() => {
                return Err(e.into());
            }
            Err(e) => {
                debug!(conn = conn.id, error = %e, "request body does not decode");
                // A write's body is read after it has a zxid in ZooKeeper: it is refused
                // through the log. Any other gets MarshallingError at once.
                if conn.read_only() && undecodable_write(header.op).is_some() {
                    not_read_only(ctx, conn, header.xid);
                } else if let Some((op, kind)) = undecodable_write(header.op) {
                    conn.state.lock().push_write(header.xid, kind);
                    ctx.propose(conn.clone(), header.xid, session, auth.clone(), op);
                } else {
                    let zxid = ctx.shared.tree.read().last_zxid();
                    let frame = encode_error(header.xid, zxid, ErrorCode::MarshallingError);
                    answer(ctx, conn, frame, false);
                }
                continue;
            }
        };
        match request {
            Request::Auth(p) => {
                match authenticate(&p.scheme, &p.auth, ctx.cfg.super_digest.as_deref()) {
                    AuthOutcome::Added(ids) => {
                        for id in ids {
                            if !auth.contains(&id) {
                                auth.push(id);
                            }
                        }
                        caller_auth = auth.clone().into();
                        // In FIFO order, like sasl: a client may send addauth right behind
                        // the handshake, whose answer must come first. The answer echoes
                        // the request's xid as ZooKeeper's does: the Java client sends -4,
                        // others (zookeeper-client) an ordinary xid and match on it.
                        let ok = ReplyHeader::new(header.xid, Zxid(0), ErrorCode::Ok);
                        answer(ctx, conn, encode_reply_header(&ok), false);
                    }
                    AuthOutcome::Failed => {
                        let frame = encode_error(header.xid, Zxid(0), ErrorCode::AuthFailed);
                        answer(ctx, conn, frame, true);
                        wait_closed(conn, handshake).await;
                        return Err(ConnError::AuthFailed);
                    }
                }
            }
            Request::Sasl(r) => {
                // In FIFO order: clients pipeline the first token behind the handshake, and
                // ZooKeeper reads nothing more until the handshake is answered.
                let reply = crate::sasl::answer(&mut sasl, header.xid, &r.token);
                answer(ctx, conn, reply.frame, reply.failed);
                if reply.failed {
                    wait_closed(conn, handshake).await;
                    return Err(ConnError::AuthFailed);
                }
                auth.extend(reply.identity.filter(|id| !auth.contains(id)));
                caller_auth = auth.clone().into();
            }
            request => {
                let caller = Caller {
                    session,
                    auth: caller_auth.clone(),
                };
                dispatch(ctx, conn, header.xid, request, &caller);
            }
        }
        if conn.outbox.is_closed() {
            return Ok(());
        }
        session = conn.session();
    }
}

/// Waits, at most `limit`, until everything queued before the close has been handed to the
/// writer (ZooKeeper stops reading from a connection it is about to close).
async fn wait_closed(conn: &Conn, limit: std::time::Duration) {
    let closed = async {
        while !conn.outbox.is_closed() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    let _ = tokio::time::timeout(limit, closed).await;
}

/// Queues an immediate answer in FIFO order.
fn answer(ctx: &ServerCtx, conn: &Conn, frame: Vec<u8>, close: bool) {
    ctx.shared
        .finish(conn, |st| st.push_ready(vec![frame], close));
}

/// Routes one request: reads run (or queue), writes are proposed, barriers wait.
fn dispatch(ctx: &Arc<ServerCtx>, conn: &Arc<Conn>, xid: Xid, req: Request, caller: &Caller) {
    let limits = &ctx.cfg.limits;
    let rules = RequestRules {
        extended_types: ctx.cfg.extended_types_enabled,
        path_bytes_max: limits.path_bytes_max as usize,
        multi_ops_max: limits.multi_ops_max as usize,
        set_watches_paths_max: limits.set_watches_paths_max as usize,
        watches_per_session_max: limits.watches_per_session_max as usize,
        reconfig_enabled: ctx.cfg.reconfig_enabled,
        ensemble: !ctx.cfg.servers.is_empty(),
    };
    let zxid = ctx.shared.tree.read().last_zxid();
    let action = plan(xid, zxid, req, caller, rules);
    if conn.read_only() {
        return dispatch_read_only(ctx, conn, xid, action, caller);
    }
    match action {
        Action::Read(run) => {
            ctx.shared
                .finish(conn, |st| st.queue.push_back(Pending::Read(run)));
        }
        Action::Answer(frame, close) => answer(ctx, conn, frame, close),
        Action::Write(mut op, kind) => {
            conn.state.lock().push_write(xid, kind);
            if let Op::Reconfig { initial, .. } = &mut op {
                *initial = crate::reconfig::initial_config(&ctx.cfg.servers);
            }
            let mut auth = caller.auth.to_vec();
            // zookeeper.skipACL: "reconfig operation will skip ACL checks" (the only ACL
            // check the server skips so far).
            if ctx.cfg.skip_acl && matches!(op, Op::Reconfig { .. }) {
                auth.push(Id::new("super", ""));
            }
            ctx.propose(conn.clone(), xid, caller.session, auth, op);
        }
        Action::Barrier(frame) => {
            let token = conn.state.lock().push_waiting();
            let ctx = ctx.clone();
            let conn = conn.clone();
            tokio::spawn(async move {
                let result = ctx.raft.read_index().await;
                ctx.shared.finish(&conn, |st| match result {
                    Ok(()) => st.finish(token, vec![frame], false),
                    Err(_) => {
                        let err = encode_error(xid, zxid, ErrorCode::ConnectionLoss);
                        st.finish(token, vec![err], true)
                    }
                });
            });
        }
    }
}

/// [`dispatch`] on a read-only client's connection (ZooKeeper's `ReadOnlyRequestProcessor`):
/// reads as usual; writes and `sync` answer NotReadOnly; closeSession forgets a local
/// session and closes (nothing is logged: a session from the tree expires on the leader).
fn dispatch_read_only(
    ctx: &Arc<ServerCtx>,
    conn: &Arc<Conn>,
    xid: Xid,
    action: Action,
    caller: &Caller,
) {
    match action {
        Action::Read(run) => {
            ctx.shared
                .finish(conn, |st| st.queue.push_back(Pending::Read(run)));
        }
        Action::Answer(frame, close) => answer(ctx, conn, frame, close),
        Action::Write(Op::CloseSession, _) => {
            ctx.quorum.local_sessions.lock().remove(caller.session);
            let zxid = ctx.shared.tree.read().last_zxid();
            let ok = ReplyHeader::new(xid, zxid, ErrorCode::Ok);
            answer(ctx, conn, encode_reply_header(&ok), true);
        }
        Action::Write(..) | Action::Barrier(_) => not_read_only(ctx, conn, xid),
    }
}

/// Answers a write on a read-only connection with NotReadOnly (-119).
fn not_read_only(ctx: &ServerCtx, conn: &Conn, xid: Xid) {
    let zxid = ctx.shared.tree.read().last_zxid();
    answer(
        ctx,
        conn,
        encode_error(xid, zxid, ErrorCode::NotReadOnly),
        false,
    );
}

/// The handshake. Returns the session, or `None` when the connection closes after an answer.
fn connect(
    ctx: &Arc<ServerCtx>,
    conn: &Arc<Conn>,
    req: &ConnectRequest,
) -> Result<Option<SessionId>, ConnError> {
    let ours = ctx.shared.tree.read().last_zxid();
    if req.last_zxid_seen > ours {
        // ZooKeeper: "Refusing session request for client as it has seen zxid ... client
        // must try another server". No answer; the client moves on.
        return Err(ConnError::ZxidAhead {
            client: req.last_zxid_seen.0,
            ours: ours.0,
        });
    }
    let read_only_byte = req.read_only.is_some();
    let timeout_ms = ctx.cfg.limits.negotiate_session_timeout_ms(req.timeout_ms);
    if ctx.quorum.cut_off() {
        // ZooKeeper's peer without a leader runs no ZooKeeperServer, or a read-only one
        // that refuses clients not asking for read-only: the connection closes unanswered
        // and the client tries another server.
        if req.read_only == Some(true) && ctx.quorum.read_only() {
            return Ok(connect_read_only(ctx, conn, req, timeout_ms));
        }
        info!(
            peer = %conn.peer,
            read_only_client = req.read_only == Some(true),
            read_only_mode = ctx.cfg.read_only_mode_enabled,
            "session refused: cut off from the quorum"
        );
        return Ok(None);
    }
    if req.session_id.0 == 0 {
        let session = ctx.new_session_id();
        let password = ctx.new_password();
        *conn.session.lock() = session;
        conn.state.lock().push_write(
            CONNECT_XID,
            WriteKind::Connect {
                timeout_ms,
                read_only_byte,
            },
        );
        let op = Op::CreateSession {
            timeout_ms,
            password,
        };
        ctx.propose(conn.clone(), CONNECT_XID, session, Vec::new(), op);
        return Ok(Some(session));
    }
    let known = ctx
        .shared
        .tree
        .read()
        .session(req.session_id)
        .map(|s| s.password);
    let valid = known.is_some_and(|p| p.as_slice() == req.passwd.as_slice());
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout_ms: if valid { timeout_ms } else { 0 },
        session_id: if valid { req.session_id } else { SessionId(0) },
        passwd: if valid {
            req.passwd.clone()
        } else {
            vec![0; 16]
        },
        read_only: read_only_byte.then_some(false),
    };
    answer(ctx, conn, encode_connect_response(&resp), !valid);
    if !valid {
        return Ok(None);
    }
    // The old connection's watches go with it; the client re-registers what it wants.
    ctx.shared.watches.lock().remove_session(req.session_id);
    let old = ctx.shared.conns.lock().attach(req.session_id, conn);
    if let Some(old) = old {
        old.outbox.close();
    }
    ctx.touch(req.session_id);
    Ok(Some(req.session_id))
}

/// The handshake of a read-only client on a server cut off from its quorum: a new local
/// session, or a local or tree session resumed with its password, answered `readOnly=true`.
fn connect_read_only(
    ctx: &Arc<ServerCtx>,
    conn: &Arc<Conn>,
    req: &ConnectRequest,
    timeout_ms: i32,
) -> Option<SessionId> {
    let session = if req.session_id.0 == 0 {
        let id = ctx.new_session_id();
        let password = ctx.new_password();
        ctx.quorum
            .local_sessions
            .lock()
            .insert(id, password, timeout_ms);
        Some((id, password.to_vec()))
    } else {
        let local = ctx
            .quorum
            .local_sessions
            .lock()
            .resume(req.session_id, &req.passwd)
            .is_some();
        let global = || {
            ctx.shared
                .tree
                .read()
                .session(req.session_id)
                .is_some_and(|s| s.password.as_slice() == req.passwd.as_slice())
        };
        (local || global()).then(|| (req.session_id, req.passwd.clone()))
    };
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout_ms: session.as_ref().map_or(0, |_| timeout_ms),
        session_id: session.as_ref().map_or(SessionId(0), |s| s.0),
        passwd: session
            .as_ref()
            .map_or_else(|| vec![0; 16], |s| s.1.clone()),
        read_only: Some(true),
    };
    answer(ctx, conn, encode_connect_response(&resp), session.is_none());
    let (id, _) = session?;
    conn.set_read_only();
    debug!(session = format_args!("{:#x}", id.0), "read-only session");
    ctx.shared.watches.lock().remove_session(id);
    let old = ctx.shared.conns.lock().attach(id, conn);
    if let Some(old) = old {
        old.outbox.close();
    }
    Some(id)
}

/// The xid under which a new session's handshake waits in the queue (negative xids are the
/// server's; clients never send this one).
const CONNECT_XID: Xid = Xid(-10);

/// A failed proposal's answer goes out in FIFO order.
pub fn fail_write(ctx: &ServerCtx, conn: &Conn, xid: Xid, code: ErrorCode) {
    let zxid = ctx.shared.tree.read().last_zxid();
    ctx.shared.finish(conn, |st| {
        st.write_applied(xid, |kind| proposal_failed(xid, zxid, kind, code));
    });
}
