//! Round trips for every record and every request, and the decoding rules that are ours to
//! state (optional handshake byte, lenient strings, multi framing, unknown opcodes).

mod common;

use common::*;
use warren_proto::jute::decode_string_lossy;
use warren_proto::request::{decode_frame, encode_request};
use warren_proto::response::encode_notification;
use warren_proto::*;

/// `v` survives encode/decode, and every strict prefix of its encoding is refused (every
/// field is mandatory, so a cut frame can never pass for a shorter record).
fn check_record<R>(v: R)
where
    R: Record + PartialEq + std::fmt::Debug,
{
    let bytes = v.to_bytes();
    assert_eq!(R::from_bytes(&bytes).as_ref(), Ok(&v));
    for cut in 0..bytes.len() {
        assert!(
            R::from_bytes(&bytes[..cut]).is_err(),
            "{v:?} decoded from {cut} bytes"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(R::from_bytes(&longer), Err(DecodeError::Trailing(1)));
}

macro_rules! roundtrip {
    ($($v:expr),* $(,)?) => { $( check_record($v); )* };
}

#[test]
fn every_record_round_trips() {
    let s = |p: &str| p.to_string();
    roundtrip!(
        RequestHeader { xid: Xid(7), op: 4 },
        ReplyHeader::new(Xid(7), Zxid(0x1_0000_0002), ErrorCode::NoNode),
        WatcherEvent {
            kind: EventType::NodeChildrenChanged,
            state: KeeperState::SyncConnected,
            path: s("/a")
        },
        create("/a", 0),
        create_ttl(),
        CreateResponse {
            path: s("/a0000000001")
        },
        Create2Response {
            path: s("/a"),
            stat: stat(1)
        },
        DeleteRequest {
            path: s("/a"),
            version: -1
        },
        ExistsRequest {
            path: s("/a"),
            watch: true
        },
        ExistsResponse { stat: stat(2) },
        GetDataRequest {
            path: s("/a"),
            watch: true
        },
        GetDataResponse {
            data: Some(vec![1, 2, 3]),
            stat: stat(3)
        },
        SetDataRequest {
            path: s("/a"),
            data: Some(vec![]),
            version: 9
        },
        SetDataResponse { stat: stat(4) },
        GetAclRequest { path: s("/a") },
        GetAclResponse {
            acl: acl(),
            stat: stat(5)
        },
        SetAclRequest {
            path: s("/a"),
            acl: acl(),
            version: 2
        },
        SetAclResponse { stat: stat(6) },
        GetChildrenRequest {
            path: s("/"),
            watch: false
        },
        GetChildrenResponse {
            children: vec![s("a"), s("b")]
        },
        GetChildren2Request {
            path: s("/"),
            watch: true
        },
        GetChildren2Response {
            children: vec![s("z")],
            stat: stat(7)
        },
        SyncRequest { path: s("/a") },
        SyncResponse { path: s("/a") },
        CheckVersionRequest {
            path: s("/a"),
            version: 4
        },
        ErrorResponse { err: -101 },
        MultiHeader {
            kind: 1,
            done: false,
            err: -1
        },
        MultiHeader::DONE,
        SetWatches {
            relative_zxid: 3,
            data_watches: vec![s("/a")],
            exist_watches: vec![],
            child_watches: vec![s("/b")]
        },
        SetWatches2 {
            relative_zxid: 3,
            data_watches: vec![],
            exist_watches: vec![s("/x")],
            child_watches: vec![],
            persistent_watches: vec![s("/p")],
            persistent_recursive_watches: vec![s("/r"), s("/s")]
        },
        AddWatchRequest {
            path: s("/a"),
            mode: AddWatchMode::Persistent
        },
        CheckWatchesRequest {
            path: s("/a"),
            kind: WatcherType::Children
        },
        RemoveWatchesRequest {
            path: s("/a"),
            kind: WatcherType::PersistentRecursive
        },
        AuthPacket {
            kind: 0,
            scheme: s("digest"),
            auth: b"user:pw".to_vec()
        },
        GetSaslRequest { token: vec![9; 20] },
        SetSaslResponse { token: vec![] },
        GetEphemeralsRequest {
            prefix_path: s("/e")
        },
        GetEphemeralsResponse {
            ephemerals: vec![s("/e1"), s("/e2")]
        },
        GetAllChildrenNumberRequest { path: s("/") },
        GetAllChildrenNumberResponse { total_number: 42 },
        ClientInfo {
            auth_scheme: s("ip"),
            user: s("127.0.0.1")
        },
        WhoAmIResponse {
            client_info: vec![
                ClientInfo {
                    auth_scheme: s("ip"),
                    user: s("127.0.0.1")
                },
                ClientInfo {
                    auth_scheme: s("digest"),
                    user: s("u")
                },
            ]
        },
        ReconfigRequest {
            joining_servers: s("server.5=h:1:2;3"),
            leaving_servers: s(""),
            new_members: s(""),
            cur_config_id: 0x1_0000_0000
        },
        MultiResponse {
            results: vec![
                OpResult::Create { path: s("/a") },
                OpResult::Create2 {
                    path: s("/b"),
                    stat: stat(8)
                },
                OpResult::Delete,
                OpResult::SetData { stat: stat(9) },
                OpResult::Check,
                OpResult::GetChildren {
                    children: vec![s("c")]
                },
                OpResult::GetData {
                    data: Some(b"d".to_vec()),
                    stat: stat(10)
                },
                OpResult::Error(ErrorCode::BadVersion),
            ]
        },
        MultiResponse::failed(&[ErrorCode::Ok, ErrorCode::NodeExists]),
        MultiResponse::default(),
        stat(11),
        Acl {
            perms: perms::ADMIN,
            id: Id::new("ip", "10.0.0.0/8")
        },
    );
}

#[test]
fn fixed_sizes_match_zookeeper() {
    // Why: these sizes are the protocol's (facts §1.2, §1.4); a field in the wrong width
    // would still round-trip, so pin them.
    assert_eq!(RequestHeader::default().to_bytes().len(), 8);
    assert_eq!(
        ReplyHeader::new(Xid(0), Zxid(0), ErrorCode::Ok)
            .to_bytes()
            .len(),
        16
    );
    assert_eq!(
        MultiHeader::DONE.to_bytes(),
        [0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(stat(0).to_bytes().len(), 68);
    assert_eq!(connect(None).to_bytes().len(), 44);
    assert_eq!(connect(Some(true)).to_bytes().len(), 45);
    let resp = |read_only| ConnectResponse {
        protocol_version: 0,
        timeout_ms: 4000,
        session_id: SessionId(1),
        passwd: vec![7; 16],
        read_only,
    };
    assert_eq!(resp(None).to_bytes().len(), 36);
    assert_eq!(resp(Some(false)).to_bytes().len(), 37);
}

#[test]
fn connect_request_remembers_whether_read_only_was_sent() {
    for ro in [None, Some(false), Some(true)] {
        let c = connect(ro);
        let bytes = c.to_bytes();
        assert_eq!(decode_connect(&bytes), Ok(c.clone()));
        assert_eq!(ConnectRequest::from_bytes(&bytes), Ok(c));
    }
    // Bytes after the readOnly byte are ignored, as ZooKeeper ignores them.
    let mut bytes = connect(Some(true)).to_bytes();
    bytes.extend_from_slice(b"junk");
    assert_eq!(decode_connect(&bytes).unwrap().read_only, Some(true));
    // Anything shorter than the 44 mandatory bytes is refused.
    assert!(decode_connect(&connect(None).to_bytes()[..43]).is_err());
}

#[test]
fn every_request_round_trips_through_a_frame() {
    for (xid, req) in sample_requests() {
        let frame = encode_request(xid, &req);
        assert_eq!(
            i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
            frame.len() - 4
        );
        let (h, got) = decode_frame(&frame[4..]).unwrap();
        assert_eq!((h.xid, h.op), (xid, req.op()));
        assert_eq!(got, req);
    }
}

#[test]
fn opcodes_a_client_may_not_send_are_unknown_and_their_body_is_not_read() {
    for op in [999, 10, 23, -2, 0, -1, -10] {
        let h = RequestHeader { xid: Xid(1), op };
        assert_eq!(
            decode_request(&h, b"\xff\xff"),
            Ok(Request::Unknown(op)),
            "op {op}"
        );
    }
}

#[test]
fn bodies_that_do_not_parse_are_errors() {
    let h = |op: OpCode| RequestHeader {
        xid: Xid(1),
        op: op.code(),
    };
    // Truncated.
    let body = GetDataRequest {
        path: "/a".into(),
        watch: true,
    }
    .to_bytes();
    assert!(matches!(
        decode_request(&h(OpCode::GetData), &body[..body.len() - 1]),
        Err(DecodeError::Truncated { .. })
    ));
    // A string longer than the frame.
    assert!(matches!(
        decode_request(&h(OpCode::Sync), &[0, 0, 0, 50, b'/']),
        Err(DecodeError::BadLength { len: 50, .. })
    ));
    // A forged vector count cannot reserve memory the frame cannot fill.
    let mut body = Writer::new();
    body.ustring("/a").buffer(b"").int(i32::MAX);
    assert!(matches!(
        decode_request(&h(OpCode::Create), &body.into_vec()),
        Err(DecodeError::BadLength { .. })
    ));
    // An unknown watch mode.
    let mut body = Writer::new();
    body.ustring("/a").int(2);
    assert!(matches!(
        decode_request(&h(OpCode::AddWatch), &body.into_vec()),
        Err(DecodeError::BadValue { .. })
    ));
    // No body where one is needed.
    assert!(decode_request(&h(OpCode::Auth), &[]).is_err());
}

#[test]
fn trailing_bytes_after_a_request_are_ignored_as_in_zookeeper() {
    let mut body = SyncRequest { path: "/a".into() }.to_bytes();
    body.extend_from_slice(b"xyz");
    let h = RequestHeader {
        xid: Xid(1),
        op: OpCode::Sync.code(),
    };
    assert_eq!(
        decode_request(&h, &body),
        Ok(Request::Sync(SyncRequest { path: "/a".into() }))
    );
    let h = RequestHeader {
        xid: Xid::PING,
        op: OpCode::Ping.code(),
    };
    assert_eq!(decode_request(&h, b"xyz"), Ok(Request::Ping));
}

fn multi_body(ops: &[(i32, Vec<u8>)], done: bool) -> Vec<u8> {
    let mut w = Writer::new();
    for (op, body) in ops {
        MultiHeader {
            kind: *op,
            done: false,
            err: -1,
        }
        .encode(&mut w);
        w.raw(body);
    }
    if done {
        // The terminator's type and err are not looked at, only `done`.
        MultiHeader {
            kind: 77,
            done: true,
            err: 5,
        }
        .encode(&mut w);
    }
    w.into_vec()
}

#[test]
fn multi_framing_rules() {
    let multi = RequestHeader {
        xid: Xid(1),
        op: OpCode::Multi.code(),
    };
    let multi_read = RequestHeader {
        xid: Xid(1),
        op: OpCode::MultiRead.code(),
    };
    let del = DeleteRequest {
        path: "/a".into(),
        version: -1,
    }
    .to_bytes();
    let get = GetDataRequest {
        path: "/a".into(),
        watch: false,
    }
    .to_bytes();

    // Why: the terminator is recognised by its done flag alone.
    let body = multi_body(&[(2, del.clone())], true);
    let Ok(Request::Multi(ops)) = decode_request(&multi, &body) else {
        panic!()
    };
    assert_eq!(ops.len(), 1);

    // Why: a list without its terminator is a truncated frame.
    assert!(decode_request(&multi, &multi_body(&[(2, del.clone())], false)).is_err());

    // Why: ZooKeeper refuses these while reading the multi (MultiOperationRecord).
    for (hdr, op, body) in [
        (&multi, 4, get.clone()),                // a read inside multi
        (&multi, 3, get.clone()),                // exists: never allowed
        (&multi, 999, vec![]),                   // undefined
        (&multi_read, 2, del.clone()),           // a write inside multiRead
        (&multi, 1, create("/a", 9).to_bytes()), // create with an unknown CreateMode flag
    ] {
        let got = decode_request(hdr, &multi_body(&[(op, body)], true));
        assert!(
            matches!(got, Err(DecodeError::BadValue { .. })),
            "op {op}: {got:?}"
        );
    }

    // Why: a standalone create keeps an unknown flag; the server answers BadArguments.
    let h = RequestHeader {
        xid: Xid(1),
        op: OpCode::Create.code(),
    };
    assert!(decode_request(&h, &create("/a", 9).to_bytes()).is_ok());
}

#[test]
fn strings_decode_like_java_sends_them() {
    // A Java client sends U+1F600 as a CESU-8 surrogate pair.
    let cesu = [b'/', 0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80];
    assert_eq!(decode_string_lossy(&cesu), "/\u{1F600}");
    // Standard UTF-8 is unchanged.
    assert_eq!(decode_string_lossy("/é\u{1F600}".as_bytes()), "/é\u{1F600}");
    // Invalid bytes become U+FFFD, one per maximal invalid sequence.
    assert_eq!(decode_string_lossy(b"/a\xffb\xc3"), "/a\u{FFFD}b\u{FFFD}");
    // A lone surrogate is not a character.
    assert_eq!(
        decode_string_lossy(&[0xED, 0xA0, 0xBD, b'x']),
        "\u{FFFD}\u{FFFD}\u{FFFD}x"
    );
    // A high surrogate followed by a non-low one.
    let bad_pair = [0xED, 0xA0, 0xBD, 0xED, 0xA0, 0xBD];
    assert_eq!(
        decode_string_lossy(&bad_pair)
            .chars()
            .filter(|c| *c == '\u{FFFD}')
            .count(),
        6
    );
    // Through a record: a null string decodes as empty.
    let mut w = Writer::new();
    w.int(-1);
    assert_eq!(
        SyncRequest::from_bytes(&w.into_vec()),
        Ok(SyncRequest {
            path: String::new()
        })
    );
    let mut w = Writer::new();
    w.buffer(&cesu);
    assert_eq!(
        SyncRequest::from_bytes(&w.into_vec()).unwrap().path,
        "/\u{1F600}"
    );
}

#[test]
fn notification_frame_layout() {
    let ev = WatcherEvent {
        kind: EventType::NodeDeleted,
        state: KeeperState::SyncConnected,
        path: "/a".into(),
    };
    let f = encode_notification(Zxid(-1), &ev);
    let mut want = vec![0, 0, 0, 30];
    want.extend_from_slice(&[0xff; 12]); // xid -1, zxid -1
    want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2, b'/', b'a']);
    assert_eq!(f, want);
}
