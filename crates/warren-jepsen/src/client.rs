//! A raw ZooKeeper session on warren-proto's frames, built to report outcomes exactly.
//!
//! Why not a full client library: the checkers need to know, for every call, whether the
//! request left the process (a lost connection after that makes the outcome unknown, before
//! it makes it a definite failure), and the zxid of every reply header (the per-session zxid
//! order checker). Library clients retry and reconnect inside and hide both.
//!
//! A [`Session`] is one ZooKeeper session: it connects to one server of its list at a time,
//! one request in flight at a time. When the connection breaks it resumes the same session
//! (id, password and last zxid seen, as ZooKeeper's `ClientCnxn` does) on the next server
//! that accepts it; a server that refuses the resume with a zero timeout has expired it.
//! Every wait is bounded: TCP connects, handshakes and replies by
//! [`SessionConfig::reply_timeout`], a whole reconnection by
//! [`SessionConfig::connect_budget`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_proto::frame::{check_frame_len, decode_len, encode_frame};
use warren_proto::request::encode_request;
use warren_proto::{
    Acl, ConnectRequest, ConnectResponse, ErrorCode, GetChildrenRequest, GetChildrenResponse,
    GetDataRequest, GetDataResponse, Reader, Record, ReplyHeader, Request, SessionId, SyncRequest,
    Xid, Zxid,
};

use crate::dump::{Dump, Node};
use crate::history::{Outcome, SESSION_EXPIRED, Value};

/// The largest reply frame accepted (a whole-tree `getChildren` of many ids fits).
const FRAME_BYTES_MAX: usize = 64 << 20;
/// The most znodes a dump reads before it gives up.
pub const DUMP_NODES_MAX: usize = 500_000;

/// Where and how a session connects.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The ensemble's client addresses, tried in turn.
    pub servers: Vec<SocketAddr>,
    /// The session timeout asked for.
    pub timeout_ms: i32,
    /// Bound on a TCP connect, a handshake, and on each reply.
    pub reply_timeout: Duration,
    /// Bound on finding a server that takes the session, across the whole list.
    pub connect_budget: Duration,
}

/// Why a call has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The request never left: no server took the connection. Definitely not applied.
    NotSent(String),
    /// The request was sent and no answer came (connection lost, reply timed out, or the
    /// server answered ConnectionLoss): it may or may not be applied.
    Unknown(String),
    /// The session is gone: a server refused to resume it or answered SessionExpired.
    Expired,
}

/// A server's answer to one request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The reply header's zxid.
    pub zxid: i64,
    /// The reply header's error code.
    pub err: ErrorCode,
    /// The body after the header (empty for errors).
    pub body: Vec<u8>,
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    server: SocketAddr,
}

/// One ZooKeeper session (see the module docs).
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    id: SessionId,
    passwd: Vec<u8>,
    granted_timeout_ms: i32,
    last_zxid: i64,
    conn: Option<Conn>,
    next_server: usize,
    next_xid: i32,
    expired: bool,
}

/// Server error codes that leave the outcome unknown rather than definite.
fn is_indeterminate(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ConnectionLoss
            | ErrorCode::OperationTimeout
            | ErrorCode::RequestTimeout
            | ErrorCode::SystemError
            | ErrorCode::RuntimeInconsistency
    )
}

impl Session {
    /// Opens a new session on the first server of the list, from `start_at` on, that grants
    /// one within the connect budget.
    pub async fn open(cfg: SessionConfig, start_at: usize) -> Result<Session, CallError> {
        let mut s = Session {
            next_server: start_at % cfg.servers.len().max(1),
            cfg,
            id: SessionId(0),
            passwd: vec![0; 16],
            granted_timeout_ms: 0,
            last_zxid: 0,
            conn: None,
            next_xid: 1,
            expired: false,
        };
        s.ensure_connected().await?;
        Ok(s)
    }

    /// The session id (the process id in histories).
    pub fn id(&self) -> i64 {
        self.id.0
    }

    /// The session timeout the server granted.
    pub fn granted_timeout(&self) -> Duration {
        Duration::from_millis(self.granted_timeout_ms.max(0) as u64)
    }

    /// The server the session is connected to now, if any.
    pub fn server(&self) -> Option<SocketAddr> {
        self.conn.as_ref().map(|c| c.server)
    }

    /// Whether the session is known to be gone.
    pub fn is_expired(&self) -> bool {
        self.expired
    }

    /// Drops the connection without closing the session: the server will expire it after
    /// its timeout, unless it is resumed.
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    async fn handshake(&self, server: SocketAddr) -> Result<(Conn, ConnectResponse), String> {
        let t = self.cfg.reply_timeout;
        let stream = match tokio::time::timeout(t, TcpStream::connect(server)).await {
            Err(_) => return Err(format!("connect to {server} timed out")),
            Ok(Err(e)) => return Err(format!("connect to {server}: {e}")),
            Ok(Ok(s)) => s,
        };
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut conn = Conn { stream, server };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: Zxid(self.last_zxid),
            timeout_ms: self.cfg.timeout_ms,
            session_id: self.id,
            passwd: self.passwd.clone(),
            read_only: Some(false),
        };
        let frame = encode_frame(|w| req.encode(w));
        let body = tokio::time::timeout(t, async {
            conn.stream.write_all(&frame).await?;
            read_frame(&mut conn.stream).await
        })
        .await
        .map_err(|_| format!("handshake with {server} timed out"))?
        .map_err(|e| format!("handshake with {server}: {e}"))?;
        let resp = ConnectResponse::decode(&mut Reader::new(&body))
            .map_err(|e| format!("handshake with {server}: {e}"))?;
        Ok((conn, resp))
    }

    /// Connects (a new session, or resuming this one) unless connected.
    async fn ensure_connected(&mut self) -> Result<(), CallError> {
        if self.expired {
            return Err(CallError::Expired);
        }
        if self.conn.is_some() {
            return Ok(());
        }
        let n = self.cfg.servers.len();
        let deadline = Instant::now() + self.cfg.connect_budget;
        let mut last_error = String::from("no server to try");
        let mut tried = 0usize;
        while Instant::now() < deadline {
            let server = self.cfg.servers[self.next_server % n];
            self.next_server = (self.next_server + 1) % n;
            tried += 1;
            match self.handshake(server).await {
                Ok((_, resp)) if resp.timeout_ms <= 0 && self.id.0 != 0 => {
                    self.expired = true;
                    return Err(CallError::Expired);
                }
                Ok((_, resp)) if resp.timeout_ms <= 0 => {
                    last_error = format!("{server} refused a new session");
                }
                Ok((conn, resp)) => {
                    if self.id.0 != 0 && resp.session_id != self.id {
                        last_error = format!("{server} answered another session id");
                        continue;
                    }
                    self.id = resp.session_id;
                    self.passwd = resp.passwd;
                    self.granted_timeout_ms = resp.timeout_ms;
                    self.conn = Some(conn);
                    return Ok(());
                }
                Err(e) => last_error = e,
            }
            if tried.is_multiple_of(n) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Err(CallError::NotSent(last_error))
    }

    /// Sends one request and waits for its answer (see [`CallError`] for what an error
    /// means about the request's fate).
    pub async fn call(&mut self, req: &Request) -> Result<Answer, CallError> {
        self.ensure_connected().await?;
        let xid = match req {
            Request::Ping => Xid::PING,
            _ => {
                let x = self.next_xid;
                self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
                Xid(x)
            }
        };
        let frame = encode_request(xid, req);
        let result = {
            let conn = self.conn.as_mut().expect("connected just above");
            tokio::time::timeout(self.cfg.reply_timeout, exchange(conn, &frame, xid)).await
        };
        let answer = match result {
            Err(_) => Err("no reply within the reply timeout".to_string()),
            Ok(r) => r,
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                self.conn = None;
                return Err(CallError::Unknown(e));
            }
        };
        if answer.zxid > 0 {
            self.last_zxid = self.last_zxid.max(answer.zxid);
        }
        if answer.err == ErrorCode::SessionExpired {
            self.expired = true;
            self.conn = None;
        }
        if is_indeterminate(answer.err) {
            return Err(CallError::Unknown(format!(
                "server answered {:?}",
                answer.err
            )));
        }
        Ok(answer)
    }

    /// A ping: keeps the session alive while idle.
    pub async fn ping(&mut self) -> Result<(), CallError> {
        self.call(&Request::Ping).await.map(|_| ())
    }

    /// closeSession; the connection is dropped whatever the answer.
    pub async fn close(&mut self) -> Result<Answer, CallError> {
        let r = self.call(&Request::CloseSession).await;
        if matches!(&r, Ok(a) if a.err == ErrorCode::Ok) {
            self.expired = true;
        }
        self.conn = None;
        r
    }

    /// sync: a barrier; a read queued behind it on this session sees every write committed
    /// before the sync began (warren's sync is a Raft read index).
    pub async fn sync(&mut self, path: &str) -> Result<Answer, CallError> {
        self.call(&Request::Sync(SyncRequest { path: path.into() }))
            .await
    }

    /// sync, then getData: a linearizable read (see [`Session::sync`]). An answer to the sync
    /// other than OK is returned as the read's answer (the read was not sent).
    pub async fn synced_get_data(&mut self, path: &str) -> Result<Answer, CallError> {
        let sync = self.sync(path).await?;
        if sync.err != ErrorCode::Ok {
            return Ok(sync);
        }
        self.get_data(path).await
    }

    /// getData.
    pub async fn get_data(&mut self, path: &str) -> Result<Answer, CallError> {
        let req = Request::GetData(GetDataRequest {
            path: path.into(),
            watch: false,
        });
        self.call(&req).await
    }

    /// Reads the whole tree through the connected server, after a `sync` so that server
    /// has applied everything committed before the read.
    pub async fn dump(&mut self) -> Result<Dump, String> {
        let sync = self.sync("/").await.map_err(|e| format!("sync: {e:?}"))?;
        if sync.err != ErrorCode::Ok {
            return Err(format!("sync: {:?}", sync.err));
        }
        let mut dump = Dump::new();
        let mut todo = vec!["/".to_string()];
        while let Some(path) = todo.pop() {
            if dump.len() >= DUMP_NODES_MAX {
                return Err(format!("more than {DUMP_NODES_MAX} znodes"));
            }
            let data = self.checked(self.get_data_req(&path)).await?;
            let GetDataResponse { data, stat } = decode(&data.body)?;
            let req = Request::GetChildren(GetChildrenRequest {
                path: path.clone(),
                watch: false,
            });
            let kids = self.checked(req).await?;
            let GetChildrenResponse { children } = decode(&kids.body)?;
            for child in children {
                todo.push(if path == "/" {
                    format!("/{child}")
                } else {
                    format!("{path}/{child}")
                });
            }
            dump.insert(path, Node { data, stat });
        }
        Ok(dump)
    }

    fn get_data_req(&self, path: &str) -> Request {
        Request::GetData(GetDataRequest {
            path: path.into(),
            watch: false,
        })
    }

    async fn checked(&mut self, req: Request) -> Result<Answer, String> {
        let a = self
            .call(&req)
            .await
            .map_err(|e| format!("{:?} {:?}: {e:?}", req.op(), req.path()))?;
        if a.err != ErrorCode::Ok {
            return Err(format!("{:?}: {:?}", req.path(), a.err));
        }
        Ok(a)
    }
}

/// Writes one request frame and reads until its reply, skipping notifications and pings.
async fn exchange(conn: &mut Conn, frame: &[u8], xid: Xid) -> Result<Answer, String> {
    conn.stream
        .write_all(frame)
        .await
        .map_err(|e| format!("send to {}: {e}", conn.server))?;
    loop {
        let body = read_frame(&mut conn.stream)
            .await
            .map_err(|e| format!("reply from {}: {e}", conn.server))?;
        let mut r = Reader::new(&body);
        let header = ReplyHeader::decode(&mut r).map_err(|e| e.to_string())?;
        if header.xid == xid {
            let at = r.position();
            return Ok(Answer {
                zxid: header.zxid.0,
                err: header.err,
                body: body[at..].to_vec(),
            });
        }
        if header.xid != Xid::NOTIFICATION && header.xid != Xid::PING {
            return Err(format!(
                "reply xid {} while waiting for {}",
                header.xid.0, xid.0
            ));
        }
    }
}

async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let n = check_frame_len(decode_len(len), FRAME_BYTES_MAX)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let mut body = vec![0; n];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// Decodes a reply body.
pub fn decode<R: Record>(body: &[u8]) -> Result<R, String> {
    R::decode(&mut Reader::new(body)).map_err(|e| e.to_string())
}

/// `world:anyone` with every permission, the ACL of every znode the workloads create.
pub fn open_acl() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// A history outcome from a call's result: OK answers become `Ok(value(body))` (an
/// undecodable body makes the outcome unknown), error codes become `Fail(name)`, a request
/// never sent `Fail`, a lost one `Info`. Returns the reply zxid too.
pub fn outcome(
    result: Result<Answer, CallError>,
    value: impl FnOnce(&[u8]) -> Result<Value, String>,
) -> (Outcome, Option<i64>) {
    match result {
        Ok(a) if a.err == ErrorCode::Ok => match value(&a.body) {
            Ok(v) => (Outcome::Ok(v), Some(a.zxid)),
            Err(e) => (Outcome::Info(format!("undecodable reply: {e}")), None),
        },
        Ok(a) => (Outcome::Fail(format!("{:?}", a.err)), Some(a.zxid)),
        Err(CallError::NotSent(why)) => (Outcome::Fail(format!("not sent: {why}")), None),
        Err(CallError::Expired) => (Outcome::Fail(SESSION_EXPIRED.into()), None),
        Err(CallError::Unknown(why)) => (Outcome::Info(why), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_match_the_checkers_constants() {
        let a = Answer {
            zxid: 3,
            err: ErrorCode::BadVersion,
            body: vec![],
        };
        assert_eq!(
            outcome(Ok(a), |_| Ok(Value::None)).0,
            Outcome::Fail(crate::history::BAD_VERSION.into())
        );
        let a = Answer {
            zxid: 3,
            err: ErrorCode::SessionExpired,
            body: vec![],
        };
        assert_eq!(
            outcome(Ok(a), |_| Ok(Value::None)).0,
            Outcome::Fail(SESSION_EXPIRED.into())
        );
        assert!(matches!(
            outcome(Err(CallError::Unknown("x".into())), |_| Ok(Value::None)).0,
            Outcome::Info(_)
        ));
    }
}
