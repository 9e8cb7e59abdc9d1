//! Golden reply frames captured from Apache ZooKeeper 3.8.0 (see tests/golden/README.md):
//! each is decoded with our codec, checked, re-encoded from the decoded values with our
//! reply functions and compared byte for byte.

use std::fmt::Debug;

use warren_proto::response::{
    encode_connect_response, encode_error, encode_notification, encode_reply, encode_reply_header,
};
use warren_proto::*;

fn golden(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/golden/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let hex: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    assert_eq!(hex.len() % 2, 0, "{name}: odd hex length");
    let frame: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let len = i32::from_be_bytes(frame[..4].try_into().unwrap());
    assert_eq!(len as usize, frame.len() - 4, "{name}: length prefix");
    frame
}

/// A reply with a body of type `R`: decoded, then re-encoded identically.
fn reply<R: Record + Debug>(name: &str) -> (ReplyHeader, R) {
    let frame = golden(name);
    let mut r = Reader::new(&frame[4..]);
    let header = ReplyHeader::decode(&mut r).unwrap();
    let body = R::decode(&mut r).unwrap();
    r.finish().unwrap();
    assert_eq!(
        encode_reply(&header, Some(&body)),
        frame,
        "{name}: re-encoding differs"
    );
    (header, body)
}

/// A reply that is the header alone.
fn header_only(name: &str) -> ReplyHeader {
    let frame = golden(name);
    let header = ReplyHeader::from_bytes(&frame[4..]).unwrap();
    assert_eq!(
        encode_reply_header(&header),
        frame,
        "{name}: re-encoding differs"
    );
    assert_eq!(frame.len(), 20);
    header
}

fn notification(name: &str) -> (ReplyHeader, WatcherEvent) {
    let frame = golden(name);
    let (header, event) = reply::<WatcherEvent>(name);
    assert_eq!(header.xid, Xid::NOTIFICATION);
    assert_eq!(header.err, ErrorCode::Ok);
    assert_eq!(encode_notification(header.zxid, &event), frame);
    (header, event)
}

#[test]
fn connect_response_with_and_without_the_read_only_byte() {
    // A 3.4+ client sends the readOnly byte and gets it back: 37-byte frame.
    let frame = golden("connect_response");
    assert_eq!(frame.len(), 4 + 37);
    let resp = ConnectResponse::from_bytes(&frame[4..]).unwrap();
    assert_eq!(resp.protocol_version, 0);
    assert_eq!(resp.timeout_ms, 30000);
    assert_eq!(resp.passwd.len(), 16);
    assert_eq!(resp.read_only, Some(false));
    assert_ne!(resp.session_id, SessionId(0));
    assert_eq!(encode_connect_response(&resp), frame);

    // An old client omits it and the server omits it too: 36-byte frame.
    let frame = golden("connect_response_old_client");
    assert_eq!(frame.len(), 4 + 36);
    let resp = ConnectResponse::from_bytes(&frame[4..]).unwrap();
    assert_eq!(resp.read_only, None);
    assert_eq!(resp.passwd.len(), 16);
    assert_eq!(encode_connect_response(&resp), frame);
}

#[test]
fn create_and_create2_replies() {
    let (h, r) = reply::<CreateResponse>("create_reply");
    assert_eq!((h.xid, h.err), (Xid(1), ErrorCode::Ok));
    assert_eq!(r.path, "/golden");

    let (h, r) = reply::<Create2Response>("create2_reply");
    assert_eq!(h.xid, Xid(2));
    assert_eq!(r.path, "/golden/c1");
    // An ephemeral: its owner is the session, and the write's zxid is the reply's zxid.
    assert_ne!(r.stat.ephemeral_owner, 0);
    assert_eq!(r.stat.czxid, h.zxid.0);
    assert_eq!(r.stat.data_length, 1);

    let (h, r) = reply::<CreateResponse>("create_watched_reply");
    assert_eq!((h.xid, r.path.as_str()), (Xid(6), "/watched"));
}

#[test]
fn get_data_exists_set_data_and_get_acl_replies_carry_a_stat() {
    let (h, r) = reply::<GetDataResponse>("get_data_reply");
    assert_eq!(h.xid, Xid(3));
    assert_eq!(r.data.as_deref(), Some(&b"hello"[..]));
    assert_eq!(
        (r.stat.version, r.stat.data_length, r.stat.num_children),
        (0, 5, 1)
    );
    assert_eq!(r.stat.cversion, 1);

    let (_, r) = reply::<ExistsResponse>("exists_reply");
    assert_eq!(r.stat.data_length, 5);

    let (h, r) = reply::<SetDataResponse>("set_data_reply");
    assert_eq!(h.xid, Xid(9));
    assert_eq!(
        (r.stat.version, r.stat.data_length, r.stat.mzxid),
        (1, 5, h.zxid.0)
    );

    let (_, r) = reply::<GetAclResponse>("get_acl_reply");
    assert_eq!(r.acl, Acl::open_unsafe());
    assert_eq!(r.stat.version, 1);
}

#[test]
fn children_replies() {
    let (h, r) = reply::<GetChildren2Response>("get_children2_reply");
    assert_eq!(h.xid, Xid(7));
    assert_eq!(r.children, ["c1"]);
    assert_eq!(r.stat.num_children, 1);

    let (_, r) = reply::<GetChildrenResponse>("get_children_reply");
    let mut names = r.children.clone();
    names.sort();
    assert_eq!(names, ["golden", "watched", "zookeeper"]);

    let (_, r) = reply::<GetAllChildrenNumberResponse>("get_all_children_number_reply");
    assert!(r.total_number > 0);

    let (_, r) = reply::<GetEphemeralsResponse>("get_ephemerals_reply");
    assert_eq!(r.ephemerals, ["/golden/c1"]);
}

#[test]
fn error_replies_are_a_bare_header() {
    for (name, xid, err) in [
        ("error_no_node_reply", 4, ErrorCode::NoNode),
        ("exists_missing_reply", 5, ErrorCode::NoNode),
        ("delete_no_node_reply", 19, ErrorCode::NoNode),
        ("marshalling_error_reply", 21, ErrorCode::MarshallingError),
        ("unimplemented_reply", 1, ErrorCode::Unimplemented),
    ] {
        let h = header_only(name);
        assert_eq!((h.xid, h.err), (Xid(xid), err), "{name}");
        assert_eq!(encode_error(h.xid, h.zxid, h.err), golden(name));
    }
    // ZooKeeper answers an undefined opcode before the request reaches its pipeline, so the
    // reply carries zxid -1 (the server must copy this, then close the connection).
    assert_eq!(header_only("unimplemented_reply").zxid, Zxid(-1));
}

#[test]
fn replies_without_a_body_for_special_xids() {
    let h = header_only("ping_reply");
    assert_eq!((h.xid, h.err), (Xid::PING, ErrorCode::Ok));
    let h = header_only("auth_reply");
    assert_eq!((h.xid, h.zxid, h.err), (Xid::AUTH, Zxid(0), ErrorCode::Ok));
    let h = header_only("set_watches_reply");
    assert_eq!(h.xid, Xid::SET_WATCHES);
    // addWatch is the odd one: ZooKeeper answers it with an `ErrorResponse{0}` body.
    let (h, r) = reply::<ErrorResponse>("add_watch_reply");
    assert_eq!((h.xid, h.err, r.err), (Xid(20), ErrorCode::Ok, 0));
    let h = header_only("close_session_reply");
    assert_eq!((h.xid, h.err), (Xid(22), ErrorCode::Ok));
}

#[test]
fn other_read_replies() {
    let (h, r) = reply::<SyncResponse>("sync_reply");
    assert_eq!((h.xid, r.path.as_str()), (Xid(15), "/golden"));

    let (_, r) = reply::<WhoAmIResponse>("who_am_i_reply");
    assert_eq!(
        r.client_info,
        [ClientInfo {
            auth_scheme: "ip".into(),
            user: "127.0.0.1".into()
        }]
    );
}

#[test]
fn notification_frames() {
    // 3.8 sends zxid -1 in notifications.
    let (h, e) = notification("notification");
    assert_eq!(h.zxid, Zxid(-1));
    assert_eq!(
        e,
        WatcherEvent {
            kind: EventType::NodeCreated,
            state: KeeperState::SyncConnected,
            path: "/watched".into()
        }
    );

    let (_, e) = notification("set_watches_notification");
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventType::NodeDataChanged, "/golden")
    );

    let (_, e) = notification("close_session_notification");
    assert_eq!(
        (e.kind, e.path.as_str()),
        (EventType::NodeDeleted, "/golden/c1")
    );
}

#[test]
fn multi_success() {
    let (h, r) = reply::<MultiResponse>("multi_success_reply");
    assert_eq!((h.xid, h.err), (Xid(12), ErrorCode::Ok));
    let [
        OpResult::Create { path: p1 },
        OpResult::SetData { stat },
        OpResult::Check,
        OpResult::Delete,
        OpResult::Create { path: p2 },
    ] = r.results.as_slice()
    else {
        panic!("unexpected results {:?}", r.results);
    };
    assert_eq!((p1.as_str(), p2.as_str()), ("/m1", "/m2"));
    // Every op of a multi shares the multi's zxid.
    assert_eq!(stat.mzxid, h.zxid.0);
}

#[test]
fn multi_failure() {
    // The header's err stays 0; every result has type -1 with ZooKeeper's per-op codes.
    let (h, r) = reply::<MultiResponse>("multi_failure_reply");
    assert_eq!((h.xid, h.err), (Xid(13), ErrorCode::Ok));
    let codes = [
        ErrorCode::Ok,
        ErrorCode::NoNode,
        ErrorCode::RuntimeInconsistency,
    ];
    assert_eq!(r, MultiResponse::failed(&codes));
    assert_eq!(
        encode_reply(&h, Some(&MultiResponse::failed(&codes))),
        golden("multi_failure_reply")
    );
}

#[test]
fn multi_read() {
    let (h, r) = reply::<MultiResponse>("multi_read_reply");
    assert_eq!((h.xid, h.err), (Xid(14), ErrorCode::Ok));
    let [
        OpResult::GetChildren { children },
        OpResult::GetData { data, stat },
        OpResult::Error(ErrorCode::NoNode),
    ] = r.results.as_slice()
    else {
        panic!("unexpected results {:?}", r.results);
    };
    assert_eq!(children, &["c1"]);
    assert_eq!((data.as_deref(), stat.version), (Some(&b"m"[..]), 2));
}
