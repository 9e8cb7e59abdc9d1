//! A minimal pipelined ZooKeeper client connection over tokio TCP, on warren-proto's codec.
//!
//! Requests are appended to a write buffer ([`Connection::queue`] or
//! [`Connection::queue_frame`] for pre-encoded frames) and sent together by
//! [`Connection::flush`]; replies come back in request order (ZooKeeper answers a session's
//! requests in order), interleaved with notifications (xid -1), through
//! [`Connection::read_reply`], which is cancel-safe so a caller may `select!` on it.

use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_proto::frame::{LEN_BYTES, check_frame_len, decode_len};
use warren_proto::records::{ConnectRequest, ConnectResponse, ReplyHeader};
use warren_proto::request::{Request, encode_request};
use warren_proto::{
    DecodeError, ErrorCode, FrameError, PACKET_BYTES_MAX_DEFAULT, Reader, Record, SessionId, Xid,
    Zxid,
};

/// Why a connection failed; each variant is an error kind in the report.
#[derive(Debug, Error)]
pub enum ConnError {
    /// The TCP connect was refused.
    #[error("connection refused")]
    Refused,
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// Another socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// No reply within the reply timeout.
    #[error("timed out")]
    Timeout,
    /// The server refused the session (timeout 0 in the ConnectResponse).
    #[error("session refused")]
    SessionRefused,
    /// A frame that is not a valid reply.
    #[error("protocol: {0}")]
    Protocol(String),
}

impl ConnError {
    /// The error's kind as the report names it.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnError::Refused => "conn:refused",
            ConnError::Closed => "conn:closed",
            ConnError::Io(_) => "conn:io",
            ConnError::Timeout => "conn:timeout",
            ConnError::SessionRefused => "conn:session-refused",
            ConnError::Protocol(_) => "conn:protocol",
        }
    }
}

impl From<DecodeError> for ConnError {
    fn from(e: DecodeError) -> Self {
        ConnError::Protocol(e.to_string())
    }
}

impl From<FrameError> for ConnError {
    fn from(e: FrameError) -> Self {
        ConnError::Protocol(e.to_string())
    }
}

/// One reply (or notification) frame: its header and the body bytes after it.
#[derive(Debug)]
pub struct Reply {
    /// The reply header.
    pub header: ReplyHeader,
    /// The body (empty for errors and body-less replies).
    pub body: Vec<u8>,
}

/// An established session on one TCP connection.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    rbuf: Vec<u8>,
    /// Start of unparsed bytes in `rbuf`.
    rpos: usize,
    wbuf: Vec<u8>,
    next_xid: i32,
    session: SessionId,
    reply_timeout: Duration,
}

impl Connection {
    /// Connects and performs the handshake, asking for a session of `timeout_ms`.
    pub async fn connect(
        addr: &str,
        timeout_ms: i32,
        reply_timeout: Duration,
    ) -> Result<Connection, ConnError> {
        let stream = match tokio::time::timeout(reply_timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(ConnError::Timeout),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(ConnError::Refused);
            }
            Ok(r) => r?,
        };
        stream.set_nodelay(true)?;
        let mut conn = Connection {
            stream,
            rbuf: Vec::with_capacity(64 << 10),
            rpos: 0,
            wbuf: Vec::with_capacity(16 << 10),
            next_xid: 1,
            session: SessionId(0),
            reply_timeout,
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: Zxid(0),
            timeout_ms,
            session_id: SessionId(0),
            passwd: vec![0; 16],
            read_only: Some(false),
        };
        let frame = warren_proto::frame::encode_frame(|w| req.encode(w));
        conn.wbuf.extend_from_slice(&frame);
        conn.flush().await?;
        let body = conn.read_frame_timed().await?;
        let resp = ConnectResponse::decode(&mut Reader::new(&body))?;
        if resp.timeout_ms <= 0 {
            return Err(ConnError::SessionRefused);
        }
        conn.session = resp.session_id;
        Ok(conn)
    }

    /// The session the server granted.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Takes the next xid (positive, wrapping before `i32::MAX`).
    fn take_xid(&mut self) -> Xid {
        let xid = self.next_xid;
        self.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
        Xid(xid)
    }

    /// Encodes `req` into the write buffer with a fresh xid, which it returns.
    pub fn queue(&mut self, req: &Request) -> Xid {
        let xid = match req {
            Request::Ping => Xid::PING,
            _ => self.take_xid(),
        };
        self.wbuf.extend_from_slice(&encode_request(xid, req));
        xid
    }

    /// Appends a pre-encoded request frame (length prefix included), writing a fresh xid
    /// into bytes 4..8, and returns the xid.
    pub fn queue_frame(&mut self, frame: &[u8]) -> Xid {
        let xid = self.take_xid();
        let at = self.wbuf.len();
        self.wbuf.extend_from_slice(frame);
        self.wbuf[at + LEN_BYTES..at + LEN_BYTES + 4].copy_from_slice(&xid.0.to_be_bytes());
        xid
    }

    /// Whether requests wait in the write buffer.
    pub fn has_queued(&self) -> bool {
        !self.wbuf.is_empty()
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> Result<(), ConnError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.wbuf).await?;
        self.wbuf.clear();
        Ok(())
    }

    /// The next complete frame already buffered, if any (no I/O).
    fn buffered_frame(&mut self) -> Result<Option<Vec<u8>>, ConnError> {
        let avail = &self.rbuf[self.rpos..];
        if avail.len() < LEN_BYTES {
            return Ok(None);
        }
        let len = decode_len([avail[0], avail[1], avail[2], avail[3]]);
        let n = check_frame_len(len, PACKET_BYTES_MAX_DEFAULT.max(64 << 20))?;
        if avail.len() < LEN_BYTES + n {
            return Ok(None);
        }
        let body = avail[LEN_BYTES..LEN_BYTES + n].to_vec();
        self.rpos += LEN_BYTES + n;
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
        Ok(Some(body))
    }

    /// Reads one frame body. Cancel-safe: bytes read are kept in the buffer.
    async fn read_frame(&mut self) -> Result<Vec<u8>, ConnError> {
        loop {
            if let Some(f) = self.buffered_frame()? {
                return Ok(f);
            }
            if self.rpos > 0 {
                self.rbuf.drain(..self.rpos);
                self.rpos = 0;
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(ConnError::Closed);
            }
        }
    }

    async fn read_frame_timed(&mut self) -> Result<Vec<u8>, ConnError> {
        match tokio::time::timeout(self.reply_timeout, self.read_frame()).await {
            Ok(r) => r,
            Err(_) => Err(ConnError::Timeout),
        }
    }

    /// Whether a whole reply is buffered, so [`Connection::read_reply`] will not wait.
    pub fn reply_buffered(&self) -> bool {
        let avail = &self.rbuf[self.rpos..];
        avail.len() >= LEN_BYTES
            && usize::try_from(decode_len([avail[0], avail[1], avail[2], avail[3]]))
                .is_ok_and(|n| avail.len() >= LEN_BYTES + n)
    }

    /// Reads the next reply or notification, without a timeout. Cancel-safe.
    pub async fn read_reply(&mut self) -> Result<Reply, ConnError> {
        let frame = self.read_frame().await?;
        let mut r = Reader::new(&frame);
        let header = ReplyHeader::decode(&mut r)?;
        let at = r.position();
        let mut body = frame;
        body.drain(..at);
        Ok(Reply { header, body })
    }

    /// Reads the next reply or notification within the reply timeout.
    pub async fn read_reply_timed(&mut self) -> Result<Reply, ConnError> {
        match tokio::time::timeout(self.reply_timeout, self.read_reply()).await {
            Ok(r) => r,
            Err(_) => Err(ConnError::Timeout),
        }
    }

    /// Sends one request and waits for its reply, skipping notifications.
    pub async fn call(&mut self, req: &Request) -> Result<Reply, ConnError> {
        let xid = self.queue(req);
        self.flush().await?;
        loop {
            let reply = self.read_reply_timed().await?;
            if reply.header.xid == xid {
                return Ok(reply);
            }
            if reply.header.xid != Xid::NOTIFICATION && reply.header.xid != Xid::PING {
                return Err(ConnError::Protocol(format!(
                    "reply xid {} while waiting for {}",
                    reply.header.xid.0, xid.0
                )));
            }
        }
    }

    /// Closes the session (closeSession, then its reply) and the connection.
    pub async fn close(mut self) -> Result<(), ConnError> {
        let reply = self.call(&Request::CloseSession).await?;
        if reply.header.err != ErrorCode::Ok {
            return Err(ConnError::Protocol(format!(
                "closeSession answered {:?}",
                reply.header.err
            )));
        }
        Ok(())
    }
}
