//! A standalone server over real sockets: requests, ordering promises, sessions, restarts and
//! bad input, checked with a raw client.

mod common;

use std::io::Write;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{Frame, RawClient, TestServer, is_closed, read_frame, test_config, write_frame};
use warren_proto::records::{
    AuthPacket, CheckVersionRequest, ConnectRequest, CreateRequest, CreateResponse, DeleteRequest,
    ExistsRequest, GetAclRequest, GetAclResponse, GetChildrenRequest, GetChildrenResponse,
    GetDataRequest, GetDataResponse, SetDataRequest, SetDataResponse,
};
use warren_proto::request::{MultiOp, Request};
use warren_proto::response::{MultiResponse, OpResult};
use warren_proto::{Acl, ErrorCode, EventType, Id, Record, SessionId, Xid, Zxid, perms};

fn create(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        flags,
    })
}

fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

fn set(path: &str, data: &[u8], version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        version,
    })
}

fn delete(path: &str, version: i32) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

fn exists(path: &str, watch: bool) -> Request {
    Request::Exists(ExistsRequest {
        path: path.into(),
        watch,
    })
}

fn children(path: &str, watch: bool) -> Request {
    Request::GetChildren(GetChildrenRequest {
        path: path.into(),
        watch,
    })
}

fn expect_event(c: &mut RawClient, path: &str, kind: EventType) {
    match c.next() {
        Frame::Event(e) => {
            assert_eq!((e.path.as_str(), e.kind), (path, kind));
        }
        Frame::Reply(h, _) => panic!("expected {kind:?} on {path}, got reply {h:?}"),
    }
}

#[test]
fn crud_with_zookeepers_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut c = RawClient::connect(server.addr);

    // Phase 1: create, read back, and the errors for existing and missing nodes.
    let r: CreateResponse = c.ok(&create("/a", b"one", 0));
    assert_eq!(r.path, "/a");
    assert_eq!(c.call(&create("/a", b"", 0)).0, ErrorCode::NodeExists);
    assert_eq!(c.call(&create("/x/y", b"", 0)).0, ErrorCode::NoNode);
    let d: GetDataResponse = c.ok(&get("/a", false));
    assert_eq!(
        (d.data.as_deref(), d.stat.version),
        (Some(b"one".as_slice()), 0)
    );

    // Phase 2: versioned writes.
    let s: SetDataResponse = c.ok(&set("/a", b"two", 0));
    assert_eq!(s.stat.version, 1);
    assert_eq!(c.call(&set("/a", b"three", 0)).0, ErrorCode::BadVersion);
    c.ok::<CreateResponse>(&create("/a/child", b"", 0));
    assert_eq!(c.call(&delete("/a", -1)).0, ErrorCode::NotEmpty);
    assert_eq!(c.call(&delete("/a/child", 5)).0, ErrorCode::BadVersion);
    assert_eq!(c.call(&delete("/a/child", 0)).0, ErrorCode::Ok);
    let kids: GetChildrenResponse = c.ok(&children("/", false));
    assert_eq!(
        kids.children,
        vec!["a".to_string(), "zookeeper".to_string()]
    );

    // Phase 3: a failed multi changes nothing and reports ZooKeeper's per-op codes.
    let multi = Request::Multi(vec![
        MultiOp::Create(CreateRequest {
            path: "/m".into(),
            data: Some(vec![]),
            acl: Acl::open_unsafe(),
            flags: 0,
        }),
        MultiOp::Check(CheckVersionRequest {
            path: "/a".into(),
            version: 7,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        }),
    ]);
    let m: MultiResponse = c.ok(&multi);
    let codes: Vec<_> = m
        .results
        .iter()
        .map(|r| match r {
            OpResult::Error(e) => *e,
            _ => ErrorCode::Ok,
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::Ok,
            ErrorCode::BadVersion,
            ErrorCode::RuntimeInconsistency
        ]
    );
    assert_eq!(c.call(&exists("/m", false)).0, ErrorCode::NoNode);
}

#[test]
fn null_data_stays_apart_from_empty_data() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut c = RawClient::connect(server.addr);
    // Phase 1: created with null data, read back as null (length -1), dataLength 0.
    let req = Request::Create(CreateRequest {
        path: "/n".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 0,
    });
    c.ok::<CreateResponse>(&req);
    let d: GetDataResponse = c.ok(&get("/n", false));
    assert_eq!((d.data, d.stat.data_length), (None, 0));
    // Phase 2: set to empty, then back to null.
    c.ok::<SetDataResponse>(&set("/n", b"", -1));
    assert_eq!(
        c.ok::<GetDataResponse>(&get("/n", false)).data,
        Some(vec![])
    );
    let req = Request::SetData(SetDataRequest {
        path: "/n".into(),
        data: None,
        version: -1,
    });
    c.ok::<SetDataResponse>(&req);
    assert_eq!(c.ok::<GetDataResponse>(&get("/n", false)).data, None);
}

#[test]
fn a_watch_event_reaches_the_client_before_the_reply_that_follows_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut a = RawClient::connect(server.addr);
    let mut b = RawClient::connect(server.addr);
    a.ok::<CreateResponse>(&create("/w", b"v0", 0));

    // Phase 1: the changing client's own watch fires before its own write's reply.
    a.ok::<GetDataResponse>(&get("/w", true));
    let xid = a.send(&set("/w", b"v1", -1));
    expect_event(&mut a, "/w", EventType::NodeDataChanged);
    assert_eq!(a.reply(xid).0, ErrorCode::Ok);

    // Phase 2: another client that reads after the change sees the event first.
    b.ok::<GetDataResponse>(&get("/w", true));
    b.ok::<GetChildrenResponse>(&children("/", true));
    a.ok::<SetDataResponse>(&set("/w", b"v2", -1));
    let xid = b.send(&get("/w", false));
    expect_event(&mut b, "/w", EventType::NodeDataChanged);
    let (_, body) = b.reply(xid);
    assert_eq!(
        GetDataResponse::from_bytes(&body).unwrap().data.unwrap(),
        b"v2"
    );

    // Phase 3: one-shot: a second change fires nothing; a delete fires NodeDeleted to an
    // exists watch and NodeChildrenChanged to the parent's child watch.
    a.ok::<SetDataResponse>(&set("/w", b"v3", -1));
    b.ok::<Acl0>(&exists("/w", true));
    assert_eq!(a.call(&delete("/w", -1)).0, ErrorCode::Ok);
    let xid = b.send(&exists("/w", false));
    let mut seen = vec![];
    for _ in 0..2 {
        match b.next() {
            Frame::Event(e) => seen.push((e.path, e.kind)),
            Frame::Reply(h, _) => panic!("reply {h:?} before the events"),
        }
    }
    seen.sort_by_key(|(p, _)| p.clone());
    assert_eq!(
        seen,
        vec![
            ("/".into(), EventType::NodeChildrenChanged),
            ("/w".into(), EventType::NodeDeleted)
        ]
    );
    assert_eq!(b.reply(xid).0, ErrorCode::NoNode);
}

/// Any body: for requests whose reply body the test ignores.
struct Acl0;
impl Record for Acl0 {
    fn encode(&self, _: &mut warren_proto::Writer) {}
    fn decode(r: &mut warren_proto::Reader<'_>) -> Result<Self, warren_proto::DecodeError> {
        while r.remaining() > 0 {
            r.boolean()?;
        }
        Ok(Acl0)
    }
}

#[test]
fn pipelined_requests_are_answered_in_order_and_reads_see_earlier_writes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut c = RawClient::connect(server.addr);

    // Phase 1: send 50 writes and reads without waiting; each read follows the write it
    // must observe.
    let mut xids = Vec::new();
    for i in 0..50 {
        xids.push(c.send(&create(&format!("/p{i}"), format!("{i}").as_bytes(), 0)));
        xids.push(c.send(&get(&format!("/p{i}"), false)));
    }
    // Phase 2: replies come in the sent order, and every read found its node.
    for (n, xid) in xids.into_iter().enumerate() {
        let (err, body) = c.reply(xid);
        assert_eq!(err, ErrorCode::Ok);
        if n % 2 == 1 {
            let d = GetDataResponse::from_bytes(&body).unwrap();
            assert_eq!(d.data, Some(format!("{}", n / 2).into_bytes()));
        }
    }
}

#[test]
fn sessions_resume_with_their_password_and_keep_their_ephemerals() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut c = RawClient::connect(server.addr);
    c.ok::<CreateResponse>(&create("/eph", b"", 1));
    let (session, passwd) = (c.session, c.passwd.clone());

    // Phase 1: the TCP connection drops; the session lives on.
    drop(c);
    let mut c2 =
        RawClient::connect_with(server.addr, 10_000, session, passwd.clone()).expect("resumed");
    assert_eq!(c2.session, session);
    let d: GetDataResponse = c2.ok(&get("/eph", false));
    assert_eq!(d.stat.ephemeral_owner, session.0);

    // Phase 2: a wrong password is refused (timeout 0, session 0) and the connection closes.
    let mut wrong = passwd.clone();
    wrong[0] ^= 1;
    assert!(RawClient::connect_with(server.addr, 10_000, session, wrong).is_none());

    // Phase 3: closeSession removes the ephemeral and closes the connection after its reply.
    assert_eq!(c2.call(&Request::CloseSession).0, ErrorCode::Ok);
    assert!(c2.is_closed());
    let mut other = RawClient::connect(server.addr);
    assert_eq!(other.call(&exists("/eph", false)).0, ErrorCode::NoNode);
    assert!(RawClient::connect_with(server.addr, 10_000, session, passwd).is_none());
}

#[test]
fn a_silent_session_expires_and_its_ephemerals_go_with_a_watch_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut watcher = RawClient::connect(server.addr);
    // tickTime is 50 ms, so the minimum session timeout is 100 ms.
    let mut quiet = RawClient::connect_with(server.addr, 100, SessionId(0), vec![0; 16]).unwrap();
    assert_eq!(quiet.timeout_ms, 100);
    quiet.ok::<CreateResponse>(&create("/lease", b"", 1));
    watcher.ok::<Acl0>(&exists("/lease", true));

    // Phase 1: the quiet client sends nothing; the server expires it and closes its socket.
    let start = Instant::now();
    expect_event(&mut watcher, "/lease", EventType::NodeDeleted);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(quiet.is_closed());
    // Phase 2: resuming the expired session is refused.
    assert!(
        RawClient::connect_with(server.addr, 100, quiet.session, quiet.passwd.clone()).is_none()
    );
}

#[test]
fn pings_keep_a_session_alive() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut c = RawClient::connect_with(server.addr, 200, SessionId(0), vec![0; 16]).unwrap();
    c.ok::<CreateResponse>(&create("/alive", b"", 1));
    // Phase 1: ping every 50 ms for well past the 200 ms timeout.
    for _ in 0..20 {
        c.send_xid(Xid::PING, &Request::Ping);
        assert_eq!(c.reply(Xid::PING).0, ErrorCode::Ok);
        sleep(Duration::from_millis(50));
    }
    // Phase 2: the session and its ephemeral are still there.
    assert_eq!(c.call(&exists("/alive", false)).0, ErrorCode::Ok);
}

#[test]
fn data_and_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (session, passwd);
    {
        // Phase 1: write, then stop gracefully.
        let server = TestServer::start(dir.path());
        let mut c = RawClient::connect(server.addr);
        for i in 0..20 {
            c.ok::<CreateResponse>(&create(&format!("/r{i}"), b"x", 0));
        }
        c.ok::<CreateResponse>(&create("/r-eph", b"", 1));
        (session, passwd) = (c.session, c.passwd.clone());
        server.stop();
    }
    // Phase 2: a new process over the same directory has the data and the session.
    let server = TestServer::start(dir.path());
    let mut c =
        RawClient::connect_with(server.addr, 10_000, session, passwd).expect("session survived");
    let kids: GetChildrenResponse = c.ok(&children("/", false));
    assert_eq!(
        kids.children.len(),
        22,
        "20 nodes, the ephemeral and /zookeeper"
    );
    assert_eq!(c.call(&exists("/r-eph", false)).0, ErrorCode::Ok);
}

#[test]
fn bad_frames_close_only_their_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut good = RawClient::connect(server.addr);

    // Phase 1: an oversized length prefix on a fresh connection.
    let mut s = RawClient::tcp(server.addr);
    s.write_all(&(0x7fff_ffffi32).to_be_bytes()).unwrap();
    assert!(is_closed(&mut s));
    // Phase 2: a negative length after a good handshake.
    let mut c = RawClient::connect(server.addr);
    c.stream.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(c.is_closed());
    // Phase 3: a frame too short to hold a request header.
    let mut c = RawClient::connect(server.addr);
    write_frame(&mut c.stream, &[1, 2, 3]);
    assert!(c.is_closed());
    // Phase 4: garbage instead of a handshake.
    let mut s = RawClient::tcp(server.addr);
    write_frame(&mut s, b"not a connect request");
    assert!(is_closed(&mut s));
    // Phase 5: a body that does not decode is answered MarshallingError; the connection stays.
    let mut c = RawClient::connect(server.addr);
    let mut frame = Vec::new();
    frame.extend_from_slice(&7i32.to_be_bytes());
    frame.extend_from_slice(&4i32.to_be_bytes()); // getData
    frame.extend_from_slice(&[0, 0, 0, 100]); // a path longer than the frame
    write_frame(&mut c.stream, &frame);
    assert_eq!(c.reply(Xid(7)).0, ErrorCode::MarshallingError);
    assert_eq!(c.call(&exists("/", false)).0, ErrorCode::Ok);
    // Phase 6: an unknown opcode: Unimplemented, then closed.
    let mut frame = Vec::new();
    frame.extend_from_slice(&9i32.to_be_bytes());
    frame.extend_from_slice(&999i32.to_be_bytes());
    write_frame(&mut c.stream, &frame);
    assert_eq!(c.reply(Xid(9)).0, ErrorCode::Unimplemented);
    assert!(c.is_closed());
    // Phase 7: the well-behaved client was never disturbed.
    assert_eq!(good.call(&exists("/", false)).0, ErrorCode::Ok);
}

#[test]
fn old_clients_get_a_handshake_without_the_read_only_byte() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut s = RawClient::tcp(server.addr);
    let req = ConnectRequest {
        timeout_ms: 10_000,
        passwd: vec![0; 16],
        read_only: None,
        ..Default::default()
    };
    let bytes = req.to_bytes();
    assert_eq!(bytes.len(), 44);
    write_frame(&mut s, &bytes);
    assert_eq!(read_frame(&mut s).unwrap().len(), 36);
}

#[test]
fn a_client_that_has_seen_a_newer_zxid_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut s = RawClient::tcp(server.addr);
    let req = ConnectRequest {
        last_zxid_seen: Zxid(1_000_000),
        timeout_ms: 10_000,
        passwd: vec![0; 16],
        read_only: Some(false),
        ..Default::default()
    };
    write_frame(&mut s, &req.to_bytes());
    assert!(read_frame(&mut s).is_none(), "closed without an answer");
}

#[test]
fn digest_auth_and_acls() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut owner = RawClient::connect(server.addr);
    let mut stranger = RawClient::connect(server.addr);

    // Phase 1: the owner authenticates and creates a node only it may read.
    owner.send_xid(
        Xid::AUTH,
        &Request::Auth(AuthPacket {
            kind: 0,
            scheme: "digest".into(),
            auth: b"alice:secret".to_vec(),
        }),
    );
    assert_eq!(owner.reply(Xid::AUTH).0, ErrorCode::Ok);
    let acl = vec![Acl {
        perms: perms::ALL,
        id: Id::new("auth", ""),
    }];
    let req = Request::Create(CreateRequest {
        path: "/private".into(),
        data: Some(b"s".to_vec()),
        acl,
        flags: 0,
    });
    owner.ok::<CreateResponse>(&req);
    assert_eq!(
        owner.ok::<GetDataResponse>(&get("/private", false)).data,
        Some(b"s".to_vec())
    );

    // Phase 2: a stranger is refused, and sees the digest masked in getACL (no ADMIN).
    assert_eq!(stranger.call(&get("/private", false)).0, ErrorCode::NoAuth);
    assert_eq!(
        stranger.call(&set("/private", b"", -1)).0,
        ErrorCode::NoAuth
    );
    assert_eq!(
        stranger
            .call(&Request::GetAcl(GetAclRequest {
                path: "/private".into()
            }))
            .0,
        ErrorCode::NoAuth
    );
    let a: GetAclResponse = owner.ok(&Request::GetAcl(GetAclRequest {
        path: "/private".into(),
    }));
    assert_eq!(a.acl[0].id.scheme, "digest");
    assert!(a.acl[0].id.id.starts_with("alice:"));

    // Phase 3: an unknown scheme fails authentication and closes the connection.
    stranger.send_xid(
        Xid::AUTH,
        &Request::Auth(AuthPacket {
            kind: 0,
            scheme: "nope".into(),
            auth: vec![],
        }),
    );
    assert_eq!(stranger.reply(Xid::AUTH).0, ErrorCode::AuthFailed);
    assert!(stranger.is_closed());
}

#[test]
fn four_letter_words_answer_and_respect_the_whitelist() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    assert_eq!(server.four_letter_word("ruok"), "imok");
    assert!(server.four_letter_word("srvr").contains("Mode: standalone"));
    assert!(server.four_letter_word("mntr").contains("zk_znode_count"));
    drop(server);

    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(test_config(
        dir.path(),
        &[("4lw.commands.whitelist", "srvr")],
    ));
    assert_eq!(
        server.four_letter_word("ruok"),
        "ruok is not executed because it is not in the whitelist.\n"
    );
}

#[test]
fn every_bound_answers_or_closes_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(
        dir.path(),
        &[
            ("warren.connections_max", "3"),
            ("warren.watches_per_session_max", "2"),
            ("warren.multi_ops_max", "2"),
            ("warren.path_bytes_max", "16"),
            ("warren.requests_in_flight_per_session_max", "1"),
        ],
    );
    let server = TestServer::start_with(cfg);
    let mut c = RawClient::connect(server.addr);

    // Phase 1: one request in flight per connection: a pipelined burst is read one at a
    // time and still answered, in order.
    let xids: Vec<_> = (0..20)
        .map(|i| c.send(&create(&format!("/b{i}"), b"", 0)))
        .collect();
    for xid in xids {
        assert_eq!(c.reply(xid).0, ErrorCode::Ok);
    }
    // Phase 2: a path over 16 bytes is BadArguments, through the log (the zxid moves on).
    let (err, _) = c.call(&create("/a-very-long-path-name", b"", 0));
    assert_eq!(err, ErrorCode::BadArguments);
    // Phase 3: a multi of 3 ops is refused.
    let op = |p: &str| {
        MultiOp::Delete(DeleteRequest {
            path: p.into(),
            version: -1,
        })
    };
    let (err, _) = c.call(&Request::Multi(vec![op("/b0"), op("/b1"), op("/b2")]));
    assert_eq!(err, ErrorCode::MarshallingError);
    assert_eq!(
        c.call(&exists("/b0", false)).0,
        ErrorCode::Ok,
        "nothing was deleted"
    );
    // Phase 4: the third watch of the session is refused; reads without a watch go on.
    assert_eq!(c.call(&exists("/b0", true)).0, ErrorCode::Ok);
    assert_eq!(c.call(&exists("/b1", true)).0, ErrorCode::Ok);
    assert_eq!(c.call(&exists("/b2", true)).0, ErrorCode::ThrottledOp);
    assert_eq!(c.call(&exists("/b2", false)).0, ErrorCode::Ok);
    // Phase 5: three connections in all; a fourth is closed at once.
    let _c2 = RawClient::connect(server.addr);
    let _c3 = RawClient::connect(server.addr);
    let mut s = RawClient::tcp(server.addr);
    assert!(is_closed(&mut s));
    assert_eq!(c.call(&exists("/", false)).0, ErrorCode::Ok);
}

#[test]
fn watches_go_with_their_connection_and_come_back_only_by_set_watches() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut a = RawClient::connect(server.addr);
    let mut b = RawClient::connect(server.addr);
    a.ok::<CreateResponse>(&create("/gap", b"", 0));
    let add = Request::AddWatch(warren_proto::records::AddWatchRequest {
        path: "/gap".into(),
        mode: warren_proto::AddWatchMode::PersistentRecursive,
    });
    assert_eq!(a.call(&add).0, ErrorCode::Ok);
    let (session, passwd) = (a.session, a.passwd.clone());

    // Phase 1: the connection drops; the session resumes on a new one without re-adding the
    // watch. A change under /gap reaches nobody (as in ZooKeeper 3.8, checked there).
    drop(a);
    let mut a2 = RawClient::connect_with(server.addr, 10_000, session, passwd).unwrap();
    b.ok::<CreateResponse>(&create("/gap/child", b"", 0));
    // A round trip after the change: had an event been queued, it would come first.
    assert_eq!(a2.call(&exists("/", false)).0, ErrorCode::Ok);

    // Phase 2: setWatches2 with the persistent recursive watch brings it back.
    let sw = Request::SetWatches2(warren_proto::records::SetWatches2 {
        relative_zxid: 0,
        persistent_recursive_watches: vec!["/gap".into()],
        ..Default::default()
    });
    assert_eq!(a2.call(&sw).0, ErrorCode::Ok);
    b.ok::<CreateResponse>(&create("/gap/child2", b"", 0));
    expect_event(&mut a2, "/gap/child2", EventType::NodeCreated);
}
