//! Three in-process servers forming an ensemble from zoo.cfg `server.N` lines, on free ports:
//! what a server cut off from its quorum does (read-only mode or refusal), and that it
//! serves read-write again once the quorum is back.

mod common;

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{RawClient, TestServer, write_frame};
use warren_proto::records::{
    ConnectRequest, ConnectResponse, CreateRequest, GetDataRequest, GetDataResponse,
    ReconfigRequest, SyncRequest,
};
use warren_proto::request::Request;
use warren_proto::{Acl, ErrorCode, Record, SessionId};
use warren_server::config::{ConfigOverrides, ServerConfig};

/// How long an ensemble may take to elect, replicate or notice a lost quorum.
const SETTLE: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One member's directory and ports, kept across restarts.
struct Member {
    id: u8,
    dir: tempfile::TempDir,
    client_port: u16,
}

/// An ensemble's members; servers are started and stopped one by one.
struct Ensemble {
    members: Vec<Member>,
    servers: Vec<Option<TestServer>>,
    extra: Vec<(String, String)>,
}

impl Ensemble {
    /// Writes each member's zoo.cfg (same `server.N` lines everywhere) and starts them all.
    fn start(size: u8, extra: &[(&str, &str)]) -> Ensemble {
        let members: Vec<Member> = (1..=size)
            .map(|id| Member {
                id,
                dir: tempfile::tempdir().unwrap(),
                client_port: free_port(),
            })
            .collect();
        let lines: String = members
            .iter()
            .map(|m| {
                format!(
                    "server.{}=127.0.0.1:{}:{};127.0.0.1:{}\n",
                    m.id,
                    free_port(),
                    free_port(),
                    m.client_port
                )
            })
            .collect();
        for m in &members {
            let cfg = format!("tickTime=100\ndataDir={}\n{lines}", m.dir.path().display());
            std::fs::write(m.dir.path().join("zoo.cfg"), cfg).unwrap();
            std::fs::write(m.dir.path().join("myid"), format!("{}\n", m.id)).unwrap();
        }
        let mut e = Ensemble {
            servers: members.iter().map(|_| None).collect(),
            members,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        // Start them together: the first waits for a quorum in the background.
        let handles: Vec<_> = (0..e.members.len())
            .map(|i| {
                let cfg = e.config(i);
                std::thread::spawn(move || TestServer::start_with(cfg))
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            e.servers[i] = Some(h.join().expect("server starts"));
        }
        e
    }

    fn config(&self, i: usize) -> ServerConfig {
        let m = &self.members[i];
        let mut properties = vec![("4lw.commands.whitelist".to_owned(), "*".to_owned())];
        properties.extend(self.extra.iter().cloned());
        let overrides = ConfigOverrides {
            config_file: Some(cfg_path(m.dir.path())),
            my_id: Some(m.id),
            properties,
            ..ConfigOverrides::default()
        };
        ServerConfig::load(overrides).expect("ensemble config").0
    }

    fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.members[i].client_port))
    }

    fn stop(&mut self, i: usize) {
        if let Some(s) = self.servers[i].take() {
            s.stop();
        }
    }

    fn restart(&mut self, i: usize) {
        assert!(self.servers[i].is_none(), "server {i} is running");
        self.servers[i] = Some(TestServer::start_with(self.config(i)));
    }

    fn four_letter_word(&self, i: usize, word: &str) -> String {
        self.servers[i]
            .as_ref()
            .expect("running")
            .four_letter_word(word)
    }
}

fn cfg_path(dir: &Path) -> PathBuf {
    dir.join("zoo.cfg")
}

/// Polls `f` every 50 ms until it returns `Some`, panicking with `what` after [`SETTLE`].
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {SETTLE:?}");
        sleep(Duration::from_millis(50));
    }
}

fn create(path: &str) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(b"v".to_vec()),
        acl: Acl::open_unsafe(),
        flags: 0,
    })
}

fn get(path: &str) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch: false,
    })
}

fn reconfig(joining: &str) -> Request {
    Request::Reconfig(ReconfigRequest {
        joining_servers: joining.into(),
        leaving_servers: String::new(),
        new_members: String::new(),
        cur_config_id: -1,
    })
}

fn connect_request(read_only: bool) -> ConnectRequest {
    ConnectRequest {
        timeout_ms: 10_000,
        passwd: vec![0; 16],
        read_only: Some(read_only),
        ..Default::default()
    }
}

/// What a server did with a handshake.
enum Handshake {
    /// A session, with the answer.
    Session(Box<RawClient>, ConnectResponse),
    /// An answer refusing the session (timeout 0).
    Refused,
    /// The connection closed without an answer.
    Closed,
    /// The connection could not be opened or nothing came within the read timeout.
    NoAnswer,
}

fn handshake(addr: SocketAddr, read_only: bool) -> Handshake {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return Handshake::NoAnswer;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write_frame(&mut stream, &connect_request(read_only).to_bytes());
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Handshake::Closed,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => return Handshake::Closed,
        Err(_) => return Handshake::NoAnswer,
    }
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    let resp = ConnectResponse::from_bytes(&body).expect("connect response decodes");
    if resp.timeout_ms == 0 {
        return Handshake::Refused;
    }
    stream.set_nodelay(true).unwrap();
    let client = RawClient::connect_with_stream(stream, &resp);
    Handshake::Session(Box::new(client), resp)
}

/// A read-write session on server `i`, once one is granted.
fn rw_client(e: &Ensemble, i: usize) -> RawClient {
    eventually("a read-write session", || {
        match handshake(e.addr(i), false) {
            Handshake::Session(c, _) => Some(*c),
            _ => None,
        }
    })
}

/// Writes `/path` through server `i`, retrying while the ensemble elects.
fn write_through(e: &Ensemble, i: usize, path: &str) {
    eventually("an acknowledged create", || {
        let mut c = rw_client(e, i);
        match c.call(&create(path)).0 {
            ErrorCode::Ok | ErrorCode::NodeExists => Some(()),
            _ => None,
        }
    });
}

/// Waits until server `i` has applied `/path`.
fn wait_applied(e: &Ensemble, i: usize, path: &str) {
    eventually("the write applied on the server", || {
        let mut c = rw_client(e, i);
        (c.call(&get(path)).0 == ErrorCode::Ok).then_some(())
    });
}

#[test]
fn a_minority_server_in_read_only_mode_serves_reads_and_refuses_writes() {
    // Phase 1: three servers with readonlymode.enabled; a write through server 1 reaches it.
    let mut e = Ensemble::start(3, &[("readonlymode.enabled", "true")]);
    write_through(&e, 0, "/before");
    wait_applied(&e, 0, "/before");
    assert_eq!(e.four_letter_word(0, "isro"), "rw");

    // Phase 2: servers 2 and 3 stop; server 1 is cut off and turns read-only.
    e.stop(1);
    e.stop(2);
    eventually("isro answers ro", || {
        (e.four_letter_word(0, "isro") == "ro").then_some(())
    });
    assert!(
        e.four_letter_word(0, "srvr").contains("Mode: read-only"),
        "srvr reports the read-only mode"
    );

    // Phase 3: a client not asking for read-only is closed without an answer.
    assert!(
        matches!(handshake(e.addr(0), false), Handshake::Closed),
        "a read-write client is refused"
    );

    // Phase 4: a read-only client gets a session flagged readOnly, reads the replicated data,
    // and every write (and sync) answers NotReadOnly.
    let Handshake::Session(mut ro, resp) = handshake(e.addr(0), true) else {
        panic!("a read-only client gets a session");
    };
    assert_eq!(resp.read_only, Some(true));
    assert_ne!(resp.session_id, SessionId(0));
    let data: GetDataResponse = ro.ok(&get("/before"));
    assert_eq!(data.data.as_deref(), Some(&b"v"[..]));
    assert_eq!(ro.call(&create("/during")).0, ErrorCode::NotReadOnly);
    let sync = Request::Sync(SyncRequest {
        path: "/before".into(),
    });
    assert_eq!(ro.call(&sync).0, ErrorCode::NotReadOnly);
    assert_eq!(ro.call(&get("/during")).0, ErrorCode::NoNode);
    // The read-only session resumes on the same server with its password.
    let resumed = ConnectRequest {
        session_id: resp.session_id,
        passwd: resp.passwd.clone(),
        ..connect_request(true)
    };
    let (again, answer) = RawClient::handshake(e.addr(0), &resumed);
    let answer = answer.expect("an answer to the resume");
    assert_eq!(
        (answer.session_id, answer.read_only),
        (resp.session_id, Some(true))
    );
    assert!(
        ro.is_closed(),
        "the resumed session's old connection closes"
    );
    let mut ro = again.expect("the session resumed");

    // Phase 5: the quorum comes back: the read-only connection is closed, isro answers rw,
    // and server 1 takes writes again; its read-only session is unknown to the ensemble.
    e.restart(1);
    e.restart(2);
    eventually("isro answers rw", || {
        (e.four_letter_word(0, "isro") == "rw").then_some(())
    });
    assert!(
        ro.is_closed(),
        "read-only clients are closed once the quorum is back"
    );
    write_through(&e, 0, "/after");
    let stale = ConnectRequest {
        session_id: resp.session_id,
        passwd: resp.passwd.clone(),
        ..connect_request(false)
    };
    let (client, answer) = RawClient::handshake(e.addr(0), &stale);
    assert!(
        client.is_none(),
        "a local session does not outlive read-only mode"
    );
    assert_eq!(answer.map(|a| a.timeout_ms), Some(0));
}

#[test]
fn without_read_only_mode_a_minority_server_refuses_every_new_session() {
    // Phase 1: three servers without readonlymode (nor reconfigEnabled); sessions are
    // granted on server 1, and reconfig is disabled.
    let mut e = Ensemble::start(3, &[]);
    write_through(&e, 0, "/x");
    let mut c = rw_client(&e, 0);
    assert_eq!(c.call(&reconfig("")).0, ErrorCode::ReconfigDisabled);
    drop(c);

    // Phase 2: two servers stop; server 1 soon closes every handshake unanswered, even
    // one asking for read-only.
    e.stop(1);
    e.stop(2);
    eventually("handshakes refused", || {
        matches!(handshake(e.addr(0), false), Handshake::Closed).then_some(())
    });
    assert!(matches!(handshake(e.addr(0), true), Handshake::Closed));
    // isro: "null", as a ZooKeeper peer that runs no server answers (kazoo looks for "rw").
    assert_eq!(e.four_letter_word(0, "isro"), "null");

    // Phase 3: one server back makes a quorum of two: sessions and writes again.
    e.restart(1);
    write_through(&e, 0, "/y");
    wait_applied(&e, 0, "/y");
    eventually("isro answers rw", || {
        (e.four_letter_word(0, "isro") == "rw").then_some(())
    });
}

#[test]
fn a_standalone_server_refuses_reconfig_as_zookeeper_does() {
    // ZooKeeper checks reconfigEnabled first (ReconfigDisabled), then needs a quorum peer:
    // its standalone server answers Unimplemented even with reconfig enabled.
    let joining = "server.2=127.0.0.1:1:2:participant;127.0.0.1:3";
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(common::test_config(dir.path(), &[]));
    let mut c = RawClient::connect(server.addr);
    assert_eq!(c.call(&reconfig(joining)).0, ErrorCode::ReconfigDisabled);
    drop((c, server));
    let dir = tempfile::tempdir().unwrap();
    let enabled = common::test_config(dir.path(), &[("reconfigEnabled", "true")]);
    let server = TestServer::start_with(enabled);
    let mut c = RawClient::connect(server.addr);
    assert_eq!(c.call(&reconfig(joining)).0, ErrorCode::Unimplemented);
    // The config node of a standalone server stays empty, as ZooKeeper's.
    let data: GetDataResponse = c.ok(&get("/zookeeper/config"));
    assert_eq!(data.data.as_deref(), Some(&b""[..]));
}
