//! Test support: an in-process server on a free port with a temporary data directory, and a
//! raw ZooKeeper client over `warren-proto` that gives byte-level control (pipelining, bad
//! frames, old handshakes).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use warren_proto::records::{ConnectRequest, ConnectResponse, ReplyHeader, WatcherEvent};
use warren_proto::request::{Request, encode_request};
use warren_proto::{ErrorCode, Reader, Record, SessionId, Xid, Zxid};
use warren_server::config::{ConfigOverrides, ServerConfig};
use warren_server::server::Server;

/// A server on its own runtime, stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    server: Option<Server>,
    rt: tokio::runtime::Runtime,
}

/// Settings for tests: fast ticks (so session timeouts can be short), every 4lw enabled.
pub fn test_config(dir: &Path, extra: &[(&str, &str)]) -> ServerConfig {
    let mut properties = vec![
        ("4lw.commands.whitelist".to_owned(), "*".to_owned()),
        ("tickTime".to_owned(), "50".to_owned()),
    ];
    properties.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let overrides = ConfigOverrides {
        client_port: Some(0),
        client_port_address: Some("127.0.0.1".to_owned()),
        data_dir: Some(dir.to_path_buf()),
        properties,
        ..ConfigOverrides::default()
    };
    ServerConfig::load(overrides)
        .expect("test config is valid")
        .0
}

impl TestServer {
    /// Starts a server over `dir`.
    pub fn start(dir: &Path) -> TestServer {
        Self::start_with(test_config(dir, &[]))
    }

    /// Starts a server with `cfg`.
    pub fn start_with(cfg: ServerConfig) -> TestServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(Server::start(cfg)).expect("server starts");
        TestServer {
            addr: server.local_addr(),
            server: Some(server),
            rt,
        }
    }

    /// Stops gracefully (as on SIGTERM).
    pub fn stop(mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown(Duration::from_secs(2)));
        }
    }

    /// Sends a four-letter word and returns the answer.
    pub fn four_letter_word(&self, word: &str) -> String {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(word.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown(Duration::from_millis(200)));
        }
    }
}

/// One frame from the server, decoded by kind.
#[derive(Debug)]
pub enum Frame {
    /// A reply: header and body bytes.
    Reply(ReplyHeader, Vec<u8>),
    /// A watch notification.
    Event(WatcherEvent),
}

/// A raw client connection.
pub struct RawClient {
    pub stream: TcpStream,
    pub session: SessionId,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    next_xid: i32,
}

impl RawClient {
    /// A TCP connection without a handshake.
    pub fn tcp(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// Connects with a new session.
    pub fn connect(addr: SocketAddr) -> RawClient {
        Self::connect_with(addr, 10_000, SessionId(0), vec![0; 16]).expect("session granted")
    }

    /// Connects with `timeout_ms`, resuming `session` if non-zero. `None` if the server
    /// refused (timeout 0 in the answer).
    pub fn connect_with(
        addr: SocketAddr,
        timeout_ms: i32,
        session: SessionId,
        passwd: Vec<u8>,
    ) -> Option<RawClient> {
        let mut stream = Self::tcp(addr);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: Zxid(0),
            timeout_ms,
            session_id: session,
            passwd,
            read_only: Some(false),
        };
        write_frame(&mut stream, &req.to_bytes());
        let body = read_frame(&mut stream).expect("connect response");
        let resp = ConnectResponse::from_bytes(&body).expect("connect response decodes");
        if resp.timeout_ms == 0 {
            return None;
        }
        Some(RawClient {
            stream,
            session: resp.session_id,
            passwd: resp.passwd,
            timeout_ms: resp.timeout_ms,
            next_xid: 1,
        })
    }

    /// A client over `stream`, whose handshake was answered with `resp`.
    pub fn connect_with_stream(stream: TcpStream, resp: &ConnectResponse) -> RawClient {
        RawClient {
            stream,
            session: resp.session_id,
            passwd: resp.passwd.clone(),
            timeout_ms: resp.timeout_ms,
            next_xid: 1,
        }
    }

    /// Sends a request without waiting; returns its xid.
    pub fn send(&mut self, req: &Request) -> Xid {
        let xid = Xid(self.next_xid);
        self.next_xid += 1;
        self.send_xid(xid, req);
        xid
    }

    /// Sends a request with a chosen xid.
    pub fn send_xid(&mut self, xid: Xid, req: &Request) {
        let frame = encode_request(xid, req);
        self.stream.write_all(&frame).unwrap();
    }

    /// The next frame.
    pub fn next(&mut self) -> Frame {
        let body = read_frame(&mut self.stream).expect("a frame");
        let mut r = Reader::new(&body);
        let header = ReplyHeader::decode(&mut r).expect("reply header");
        let rest = body[r.position()..].to_vec();
        if header.xid == Xid::NOTIFICATION {
            Frame::Event(WatcherEvent::from_bytes(&rest).expect("event decodes"))
        } else {
            Frame::Reply(header, rest)
        }
    }

    /// The next reply, which must be for `xid` (no event in between).
    pub fn reply(&mut self, xid: Xid) -> (ErrorCode, Vec<u8>) {
        match self.next() {
            Frame::Reply(h, body) => {
                assert_eq!(h.xid, xid, "replies come in request order");
                (h.err, body)
            }
            Frame::Event(e) => panic!("expected the reply to {xid:?}, got event {e:?}"),
        }
    }

    /// Sends and waits for the reply.
    pub fn call(&mut self, req: &Request) -> (ErrorCode, Vec<u8>) {
        let xid = self.send(req);
        self.reply(xid)
    }

    /// Sends and decodes a successful reply's body.
    pub fn ok<R: Record>(&mut self, req: &Request) -> R {
        let (err, body) = self.call(req);
        assert_eq!(err, ErrorCode::Ok, "request {req:?} failed");
        R::from_bytes(&body).expect("reply body decodes")
    }

    /// True once the server has closed the connection (reads EOF or reset).
    pub fn is_closed(&mut self) -> bool {
        is_closed(&mut self.stream)
    }
}

/// True once the peer closed `s` (EOF or reset within the read timeout).
pub fn is_closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Writes a length-prefixed frame.
pub fn write_frame(s: &mut TcpStream, body: &[u8]) {
    s.write_all(&(body.len() as i32).to_be_bytes()).unwrap();
    s.write_all(body).unwrap();
}

/// Reads a length-prefixed frame; `None` on EOF.
pub fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

// ---------------------------------------------------------------------------------------
// Additions for the differential test (`tests/differential.rs`): handshakes with any
// `ConnectRequest` (old clients without the readOnly byte, refused sessions), frames that
// may not arrive, and raw request bodies.

impl RawClient {
    /// Sends `req` as the handshake and returns the server's answer, with the connection
    /// when the server granted a session (timeout not 0). `None` for the answer when the
    /// server closed the connection without one.
    pub fn handshake(
        addr: SocketAddr,
        req: &ConnectRequest,
    ) -> (Option<RawClient>, Option<ConnectResponse>) {
        let mut stream = Self::tcp(addr);
        write_frame(&mut stream, &req.to_bytes());
        let Some(body) = read_frame(&mut stream) else {
            return (None, None);
        };
        let resp = ConnectResponse::from_bytes(&body).expect("connect response decodes");
        if resp.timeout_ms == 0 {
            return (None, Some(resp));
        }
        let client = RawClient {
            stream,
            session: resp.session_id,
            passwd: resp.passwd.clone(),
            timeout_ms: resp.timeout_ms,
            next_xid: 1,
        };
        (Some(client), Some(resp))
    }

    /// The next frame with its reply header (a notification's header carries a zxid since
    /// ZooKeeper 3.9): `(header, None, body)` for a reply, `(header, Some(event), [])` for
    /// an event; `None` once the server has closed the connection or sent nothing within
    /// the read timeout.
    pub fn try_next_raw(&mut self) -> Option<(ReplyHeader, Option<WatcherEvent>, Vec<u8>)> {
        let body = read_frame(&mut self.stream)?;
        let mut r = Reader::new(&body);
        let header = ReplyHeader::decode(&mut r).expect("reply header");
        let rest = body[r.position()..].to_vec();
        if header.xid == Xid::NOTIFICATION {
            let event = WatcherEvent::from_bytes(&rest).expect("event decodes");
            Some((header, Some(event), Vec::new()))
        } else {
            Some((header, None, rest))
        }
    }

    /// Sends a request frame with opcode `op` and the raw `body` (which need not decode);
    /// returns its xid.
    pub fn send_raw(&mut self, op: i32, body: &[u8]) -> Xid {
        let xid = Xid(self.next_xid);
        self.next_xid += 1;
        let mut frame = Vec::with_capacity(8 + body.len());
        frame.extend_from_slice(&xid.0.to_be_bytes());
        frame.extend_from_slice(&op.to_be_bytes());
        frame.extend_from_slice(body);
        write_frame(&mut self.stream, &frame);
        xid
    }
}
