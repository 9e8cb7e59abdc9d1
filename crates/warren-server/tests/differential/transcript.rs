//! The recorder: named connections to one server, and every frame each step received, in
//! order (handshake answers, replies, watch notifications, and the end of a connection).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::common::RawClient;
use warren_proto::records::{ConnectRequest, ConnectResponse, ReplyHeader, WatcherEvent};
use warren_proto::request::Request;
use warren_proto::{SessionId, Xid, Zxid};

/// How long a step waits for a connection to end (or for a frame that may not come).
const END_WAIT: Duration = Duration::from_millis(1500);

/// How long a step waits for a reply that must come.
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// One frame (or its absence) as received.
#[derive(Debug, Clone)]
pub enum Got {
    /// The handshake answer; `None` when the server closed without one.
    Connect(Option<ConnectResponse>),
    /// A reply, with the request it answers (`None` for a raw, undecodable request).
    Reply {
        header: ReplyHeader,
        request: Option<Request>,
        body: Vec<u8>,
    },
    /// A watch notification with its reply header.
    Event {
        header: ReplyHeader,
        event: WatcherEvent,
    },
    /// The server closed the connection.
    Closed,
    /// Nothing arrived within the wait and the connection is still open.
    Silent,
    /// The step was not run: its connection had already ended on this server.
    Gone,
}

/// One received frame, under the step that received it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Index into [`Transcript::steps`].
    pub step: usize,
    /// The connection's name in the script.
    pub conn: &'static str,
    pub got: Got,
}

/// Everything one server answered to the workload.
#[derive(Debug, Default)]
pub struct Transcript {
    /// Step labels, in script order.
    pub steps: Vec<String>,
    pub entries: Vec<Entry>,
}

/// Drives named connections to one server and records what they receive.
pub struct Recorder {
    addr: SocketAddr,
    conns: HashMap<&'static str, RawClient>,
    /// The zxid of the latest reply on each connection (for `lastZxidSeen`, relZxid).
    last_zxid: HashMap<&'static str, i64>,
    pub transcript: Transcript,
}

impl Recorder {
    pub fn new(addr: SocketAddr) -> Recorder {
        Recorder {
            addr,
            conns: HashMap::new(),
            last_zxid: HashMap::new(),
            transcript: Transcript::default(),
        }
    }

    fn step(&mut self, label: String) -> usize {
        self.transcript.steps.push(label);
        self.transcript.steps.len() - 1
    }

    fn record(&mut self, step: usize, conn: &'static str, got: Got) {
        self.transcript.entries.push(Entry { step, conn, got });
    }

    fn client(&mut self, conn: &'static str) -> &mut RawClient {
        self.conns
            .get_mut(conn)
            .expect("steps check that their connection is open")
    }

    /// The session id and password of `conn` (to resume its session elsewhere); a new
    /// session's if `conn` has ended.
    pub fn credentials(&self, conn: &'static str) -> (SessionId, Vec<u8>) {
        match self.conns.get(conn) {
            Some(c) => (c.session, c.passwd.clone()),
            None => (SessionId(0), vec![0; 16]),
        }
    }

    /// The zxid of the latest reply `conn` received.
    pub fn last_zxid(&self, conn: &'static str) -> i64 {
        self.last_zxid.get(conn).copied().unwrap_or(0)
    }

    /// A handshake; `read_only` `None` leaves the byte off (a client of 3.3 or older).
    pub fn connect(
        &mut self,
        conn: &'static str,
        label: &str,
        session: (SessionId, Vec<u8>),
        read_only: Option<bool>,
    ) {
        let step = self.step(format!("{conn}: {label}"));
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: Zxid(self.last_zxid(conn)),
            timeout_ms: 10_000,
            session_id: session.0,
            passwd: session.1,
            read_only,
        };
        let (client, answer) = RawClient::handshake(self.addr, &req);
        self.record(step, conn, Got::Connect(answer));
        if let Some(c) = client {
            self.conns.insert(conn, c);
        }
    }

    /// Sends `req` with the next xid and records frames up to its reply.
    pub fn call(&mut self, conn: &'static str, label: &str, req: Request) {
        let Some(c) = self.conns.get_mut(conn) else {
            return self.gone(conn, label);
        };
        let xid = c.send(&req);
        self.await_reply(conn, label, xid, Some(req));
    }

    /// Sends `req` with a reserved xid (auth -4, setWatches -8, ping -2), as the Java client
    /// does, and records frames up to its reply.
    pub fn call_xid(&mut self, conn: &'static str, label: &str, xid: Xid, req: Request) {
        let Some(c) = self.conns.get_mut(conn) else {
            return self.gone(conn, label);
        };
        c.send_xid(xid, &req);
        self.await_reply(conn, label, xid, Some(req));
    }

    /// Sends opcode `op` with a raw body and records frames up to its reply.
    pub fn call_raw(&mut self, conn: &'static str, label: &str, op: i32, body: &[u8]) {
        let Some(c) = self.conns.get_mut(conn) else {
            return self.gone(conn, label);
        };
        let xid = c.send_raw(op, body);
        self.await_reply(conn, label, xid, None);
    }

    /// Sends `req` and records what arrives until the connection ends or stays silent:
    /// for a request that may get no reply at all.
    pub fn send_and_listen(&mut self, conn: &'static str, label: &str, req: Request) {
        let Some(c) = self.conns.get_mut(conn) else {
            return self.gone(conn, label);
        };
        let xid = c.send(&req);
        let step = self.step(format!("{conn}: {label}"));
        self.listen(step, conn, HashMap::from([(xid, req)]));
    }

    /// Lets the servers' own timers act (no step, no frames).
    pub fn pause(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    /// A ping (xid -2): records the events queued before its reply.
    pub fn drain(&mut self, conn: &'static str, label: &str) {
        self.call_xid(conn, &format!("{label} (ping)"), Xid::PING, Request::Ping);
    }

    /// Records what arrives until the connection ends, or `Silent` if it stays open.
    pub fn expect_end(&mut self, conn: &'static str, label: &str) {
        if !self.conns.contains_key(conn) {
            return self.gone(conn, label);
        }
        let step = self.step(format!("{conn}: {label}"));
        self.listen(step, conn, HashMap::new());
    }

    /// Records frames until the connection ends or nothing arrives within [`END_WAIT`].
    fn listen(&mut self, step: usize, conn: &'static str, mut requests: HashMap<Xid, Request>) {
        self.client(conn)
            .stream
            .set_read_timeout(Some(END_WAIT))
            .unwrap();
        loop {
            let got = self.read_one(conn, &mut requests);
            let end = matches!(got, Got::Closed | Got::Silent);
            self.record(step, conn, got);
            if end {
                break;
            }
        }
        self.close_if_ended(step, conn);
    }

    /// Records a step that could not run because `conn` had ended.
    fn gone(&mut self, conn: &'static str, label: &str) {
        let step = self.step(format!("{conn}: {label}"));
        self.record(step, conn, Got::Gone);
    }

    fn await_reply(&mut self, conn: &'static str, label: &str, xid: Xid, req: Option<Request>) {
        let step = self.step(format!("{conn}: {label}"));
        let mut requests = HashMap::new();
        if let Some(r) = req {
            requests.insert(xid, r);
        }
        self.read_until(step, conn, xid, &mut requests);
    }

    /// Records frames until the reply to `until`; stops early if the connection ends.
    fn read_until(
        &mut self,
        step: usize,
        conn: &'static str,
        until: Xid,
        requests: &mut HashMap<Xid, Request>,
    ) {
        self.client(conn)
            .stream
            .set_read_timeout(Some(REPLY_WAIT))
            .unwrap();
        loop {
            let got = self.read_one(conn, requests);
            let done = match &got {
                Got::Reply { header, .. } => header.xid == until,
                Got::Closed | Got::Silent => true,
                _ => false,
            };
            self.record(step, conn, got);
            if done {
                break;
            }
        }
        self.close_if_ended(step, conn);
    }

    /// Forgets a connection whose last recorded frame says it ended.
    fn close_if_ended(&mut self, step: usize, conn: &'static str) {
        let ended = self
            .transcript
            .entries
            .last()
            .is_some_and(|e| e.step == step && matches!(e.got, Got::Closed));
        if ended {
            self.conns.remove(conn);
        }
    }

    fn read_one(&mut self, conn: &'static str, requests: &mut HashMap<Xid, Request>) -> Got {
        let c = self.client(conn);
        let mut probe = [0u8; 1];
        match c.stream.peek(&mut probe) {
            Ok(0) => return Got::Closed,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Got::Silent;
            }
            Err(_) => return Got::Closed,
        }
        let Some((header, event, body)) = c.try_next_raw() else {
            return Got::Closed;
        };
        if let Some(event) = event {
            return Got::Event { header, event };
        }
        if header.zxid.0 > 0 {
            self.last_zxid.insert(conn, header.zxid.0);
        }
        Got::Reply {
            header,
            request: requests.remove(&header.xid),
            body,
        }
    }
}
