//! The scripted workload: every opcode a client may send, the errors included, over a few
//! connections. It is run once against each server; only the answers differ.
//!
//! Connections: `a` (session 1, handshake with the readOnly byte), `b` (session 2, an old
//! handshake without it), `a2` and `a3` (session 1 resumed elsewhere, for setWatches and
//! setWatches2), and short-lived ones for requests that end a connection.

use std::time::Duration;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

use crate::normalise::{EXISTS_WITHOUT_READ, STANDALONE_CHECK, STANDARD_TYPE_ON_PERSISTENT};
use crate::transcript::Recorder;
use warren_proto::records::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest, CreateRequest,
    CreateTtlRequest, DeleteRequest, GetAclRequest, GetAllChildrenNumberRequest,
    GetChildren2Request, GetChildrenRequest, GetDataRequest, GetEphemeralsRequest, MultiHeader,
    ReconfigRequest, RemoveWatchesRequest, SetAclRequest, SetDataRequest, SetWatches, SetWatches2,
    SyncRequest,
};
use warren_proto::request::{MultiOp, ReadOp, Request};
use warren_proto::{Acl, AddWatchMode, Id, Record, SessionId, WatcherType, Writer, Xid, perms};

const PERSISTENT: i32 = 0;
const EPHEMERAL: i32 = 1;
const SEQUENTIAL: i32 = 2;
const EPHEMERAL_SEQUENTIAL: i32 = 3;
const CONTAINER: i32 = 4;
const TTL: i32 = 5;
const TTL_SEQUENTIAL: i32 = 6;

/// `znode.container.checkIntervalMs`, the same on both servers.
pub const CONTAINER_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// A new session (id 0, zero password).
fn new_session() -> (SessionId, Vec<u8>) {
    (SessionId(0), vec![0; 16])
}

fn create_req(path: &str, data: &[u8], acl: Vec<Acl>, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        acl,
        flags,
    }
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(create_req(path, path.as_bytes(), Acl::open_unsafe(), flags))
}

fn create_acl(path: &str, acl: Vec<Acl>) -> Request {
    Request::Create(create_req(path, b"", acl, PERSISTENT))
}

fn create2(path: &str, flags: i32) -> Request {
    Request::Create2(create_req(path, b"c2", Acl::open_unsafe(), flags))
}

fn ttl_req(path: &str, flags: i32, ttl: i64) -> CreateTtlRequest {
    CreateTtlRequest {
        path: path.into(),
        data: Some(b"ttl".to_vec()),
        acl: Acl::open_unsafe(),
        flags,
        ttl,
    }
}

fn delete(path: &str, version: i32) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

fn set(path: &str, data: &[u8], version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        version,
    })
}

fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

fn exists(path: &str) -> Request {
    Request::Exists(warren_proto::records::ExistsRequest {
        path: path.into(),
        watch: false,
    })
}

fn exists_w(path: &str) -> Request {
    Request::Exists(warren_proto::records::ExistsRequest {
        path: path.into(),
        watch: true,
    })
}

fn children(path: &str, watch: bool) -> Request {
    Request::GetChildren(GetChildrenRequest {
        path: path.into(),
        watch,
    })
}

fn children2(path: &str, watch: bool) -> Request {
    Request::GetChildren2(GetChildren2Request {
        path: path.into(),
        watch,
    })
}

fn get_acl(path: &str) -> Request {
    Request::GetAcl(GetAclRequest { path: path.into() })
}

fn set_acl(path: &str, acl: Vec<Acl>, version: i32) -> Request {
    Request::SetAcl(SetAclRequest {
        path: path.into(),
        acl,
        version,
    })
}

fn ephemerals(prefix: &str) -> Request {
    Request::GetEphemerals(GetEphemeralsRequest {
        prefix_path: prefix.into(),
    })
}

fn count(path: &str) -> Request {
    Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: path.into() })
}

fn auth(scheme: &str, credentials: &str) -> Request {
    Request::Auth(AuthPacket {
        kind: 0,
        scheme: scheme.into(),
        auth: credentials.as_bytes().to_vec(),
    })
}

fn add_watch(path: &str, mode: AddWatchMode) -> Request {
    Request::AddWatch(AddWatchRequest {
        path: path.into(),
        mode,
    })
}

fn check_watches(path: &str, kind: WatcherType) -> Request {
    Request::CheckWatches(CheckWatchesRequest {
        path: path.into(),
        kind,
    })
}

fn remove_watches(path: &str, kind: WatcherType) -> Request {
    Request::RemoveWatches(RemoveWatchesRequest {
        path: path.into(),
        kind,
    })
}

fn check(path: &str, version: i32) -> CheckVersionRequest {
    CheckVersionRequest {
        path: path.into(),
        version,
    }
}

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id::new(scheme, id),
    }
}

/// `user:base64(sha1("user:password"))`, computed here rather than by the server's code.
fn digest(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap();
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Runs the whole workload against the server at `addr`.
pub fn run(r: &mut Recorder) {
    sessions(r);
    create_modes(r);
    reads(r);
    one_shot_watches(r);
    deletes(r);
    acls(r);
    multis(r);
    persistent_watches(r);
    resumed_watches(r);
    odd_requests(r);
    connection_enders(r);
    container_sweep(r);
    close_sessions(r);
}

fn sessions(r: &mut Recorder) {
    // Two sessions: one handshake with the readOnly byte, one without (the answer must then
    // leave it off too), and a read-only client, which a read-write server accepts.
    r.connect("a", "connect, readOnly=false", new_session(), Some(false));
    r.connect(
        "b",
        "connect without the readOnly byte",
        new_session(),
        None,
    );
    r.connect("ro", "connect, readOnly=true", new_session(), Some(true));
    r.call("ro", "closeSession", Request::CloseSession);
    r.expect_end("ro", "the server closes after closeSession");
}

fn create_modes(r: &mut Recorder) {
    // Every create mode and opcode, with the path and flag errors.
    r.call("a", "create /p", create("/p", PERSISTENT));
    r.call("a", "create /p again", create("/p", PERSISTENT));
    r.call(
        "a",
        "create under a missing parent",
        create("/nope/x", PERSISTENT),
    );
    for bad in ["p", "/p/", "/p//q", "/p/./q", "/p/../q", "", "/p/\u{0}x"] {
        r.call(
            "a",
            &format!("create bad path {bad:?}"),
            create(bad, PERSISTENT),
        );
    }
    r.call("a", "create with flags 99", create("/p/f", 99));
    r.call("a", "create /p/e ephemeral", create("/p/e", EPHEMERAL));
    r.call("a", "child of an ephemeral", create("/p/e/c", PERSISTENT));
    for i in 0..3 {
        r.call("a", &format!("sequential {i}"), create("/p/s-", SEQUENTIAL));
    }
    r.call(
        "a",
        "delete the middle sequential",
        delete("/p/s-0000000002", -1),
    );
    r.call(
        "a",
        "sequential after a delete",
        create("/p/s-", SEQUENTIAL),
    );
    r.call(
        "a",
        "ephemeral sequential",
        create("/p/es-", EPHEMERAL_SEQUENTIAL),
    );
    r.call("a", "create2 /p/c2", create2("/p/c2", PERSISTENT));
    r.call("a", "create2 ephemeral", create2("/p/e2", EPHEMERAL));
    let container = create_req("/cont", b"", Acl::open_unsafe(), CONTAINER);
    r.call(
        "a",
        "createContainer /cont",
        Request::CreateContainer(container),
    );
    r.call(
        "a",
        "create under the container",
        create("/cont/kid", PERSISTENT),
    );
    r.call(
        "a",
        "container flag via create",
        create("/cont2", CONTAINER),
    );
    // ZooKeeper decides the node type by opcode and ignores a createContainer's flag; the
    // path exists so that no node is created on one server only.
    let plain = create_req("/cont", b"", Acl::open_unsafe(), PERSISTENT);
    r.call(
        "a",
        "createContainer, persistent flag",
        Request::CreateContainer(plain),
    );
    r.call(
        "a",
        "createTTL",
        Request::CreateTtl(ttl_req("/ttl", TTL, 60_000)),
    );
    let seq = ttl_req("/ttl-s-", TTL_SEQUENTIAL, 60_000);
    r.call("a", "createTTL sequential", Request::CreateTtl(seq));
    let bad_modes = [
        (
            "createTTL, persistent flag",
            ttl_req("/ttlp", PERSISTENT, 5_000),
        ),
        ("createTTL, ttl 0", ttl_req("/ttl0", TTL, 0)),
        ("createTTL, ttl -5", ttl_req("/ttlm", TTL, -5)),
        ("createTTL, ephemeral", ttl_req("/ttle", EPHEMERAL, 5_000)),
    ];
    for (label, req) in bad_modes {
        r.call("a", label, Request::CreateTtl(req));
    }
    r.call("a", "TTL flag via create2 (no ttl)", create2("/ttl2", TTL));
    r.call("a", "TTL flag via create", create("/ttl3", TTL));
    r.call("a", "create with no ACL", create_acl("/acl0", vec![]));
    let bad_acls = [
        (
            "digest ACL without a colon",
            acl(perms::ALL, "digest", "bad"),
        ),
        ("auth ACL, no auth yet", acl(perms::ALL, "auth", "")),
        ("unknown ACL scheme", acl(perms::ALL, "foo", "bar")),
        ("ip ACL, bad address", acl(perms::ALL, "ip", "not-an-ip")),
        ("world ACL, other id", acl(perms::ALL, "world", "someone")),
    ];
    for (label, bad) in bad_acls {
        r.call("a", label, create_acl("/acl1", vec![bad]));
    }
    r.call(
        "a",
        "create under /zookeeper",
        create("/zookeeper/x", PERSISTENT),
    );
}

fn reads(r: &mut Recorder) {
    // Every read, on present and missing nodes.
    r.call("a", "exists /p", exists("/p"));
    r.call("a", "exists missing", exists("/missing"));
    r.call("a", "getData /p", get("/p", false));
    r.call("a", "getData container", get("/cont", false));
    r.call("a", "getData TTL node", get("/ttl", false));
    r.call("a", "getData ephemeral", get("/p/e", false));
    r.call("a", "getData missing", get("/missing", false));
    r.call(
        "a",
        "getData /zookeeper/quota",
        get("/zookeeper/quota", false),
    );
    r.call("a", "getChildren /p", children("/p", false));
    r.call("a", "getChildren /", children("/", false));
    r.call("a", "getChildren missing", children("/missing", false));
    r.call("a", "getChildren2 /p", children2("/p", false));
    r.call("a", "getChildren2 missing", children2("/missing", false));
    r.call("a", "getAllChildrenNumber /", count("/"));
    r.call("a", "getAllChildrenNumber /p", count("/p"));
    r.call("a", "getAllChildrenNumber missing", count("/missing"));
    r.call("a", "getEphemerals /", ephemerals("/"));
    r.call(
        "a",
        "getEphemerals /p/e (a string prefix)",
        ephemerals("/p/e"),
    );
    r.call("a", "getEphemerals /zz", ephemerals("/zz"));
    r.call("b", "getEphemerals of a session with none", ephemerals("/"));
    r.call(
        "a",
        "sync /p",
        Request::Sync(SyncRequest { path: "/p".into() }),
    );
    let missing = SyncRequest {
        path: "/missing".into(),
    };
    r.call("a", "sync missing", Request::Sync(missing));
    r.call("a", "getACL /p", get_acl("/p"));
    r.call("a", "getACL missing", get_acl("/missing"));
    r.call("a", "whoAmI", Request::WhoAmI);
    r.call("a", "getData bad path", get("p", false));
    r.call("a", "exists bad path", exists("/p/"));
    r.call("a", "getChildren bad path", children("//", false));
}

fn one_shot_watches(r: &mut Recorder) {
    // Watches set by `a`, fired by writes from `b`; `a` sees them when it next reads.
    r.call("a", "getData /p, watch", get("/p", true));
    r.call("a", "exists /p/new, watch", exists_w("/p/new"));
    r.call("a", "getChildren /p, watch", children("/p", true));
    r.call("a", "getChildren2 /cont, watch", children2("/cont", true));
    r.call("a", "exists /p/c2, watch", exists_w("/p/c2"));
    r.call("a", "getData /p/c2, watch", get("/p/c2", true));
    r.call("b", "setData /p", set("/p", b"v1", 0));
    r.call("b", "setData /p, stale version", set("/p", b"v2", 0));
    r.call("b", "setData missing", set("/missing", b"", -1));
    r.drain("a", "a sees NodeDataChanged /p");
    r.call("b", "create /p/new", create("/p/new", PERSISTENT));
    r.drain("a", "a sees NodeCreated and NodeChildrenChanged");
    r.call("b", "create /cont/kid2", create("/cont/kid2", PERSISTENT));
    r.call("b", "delete /p/c2", delete("/p/c2", 0));
    r.drain("a", "a sees the container's and /p/c2's events");
    r.call(
        "b",
        "setData /p again (watch already fired)",
        set("/p", b"v3", -1),
    );
    r.drain("a", "no event: one-shot watches");
    r.call("a", "getData /p, watch, then own write", get("/p", true));
    r.call("a", "setData /p by the watcher", set("/p", b"v4", 2));
}

fn deletes(r: &mut Recorder) {
    // Versioned deletes and the delete errors.
    r.call("a", "delete /p/new, wrong version", delete("/p/new", 3));
    r.call("a", "delete /p/new, right version", delete("/p/new", 0));
    r.call("a", "delete /p/new again", delete("/p/new", -1));
    r.call("a", "delete non-empty /p", delete("/p", -1));
    r.call("a", "delete /", delete("/", -1));
    r.call("a", "delete /zookeeper", delete("/zookeeper", -1));
    r.call("a", "delete bad path", delete("/p/", -1));
}

fn acls(r: &mut Recorder) {
    // Digest auth, the `auth` scheme, masked digests for a non-admin, NoAuth and setACL.
    let alice = digest("alice:secret");
    r.call_xid(
        "a",
        "addauth digest alice",
        Xid::AUTH,
        auth("digest", "alice:secret"),
    );
    r.call("a", "whoAmI after addauth", Request::WhoAmI);
    let digest_acl = vec![
        acl(perms::ALL, "digest", &alice),
        acl(perms::READ, "world", "anyone"),
    ];
    r.call(
        "a",
        "create /acl (digest + world read)",
        create_acl("/acl", digest_acl),
    );
    let auth_acl = vec![acl(perms::ALL, "auth", "")];
    r.call(
        "a",
        "create /acl-auth (auth scheme)",
        create_acl("/acl-auth", auth_acl),
    );
    let admin_only = vec![
        acl(perms::ADMIN, "digest", &alice),
        acl(perms::READ | perms::WRITE, "world", "anyone"),
    ];
    r.call(
        "a",
        "create /acl-admin",
        create_acl("/acl-admin", admin_only),
    );
    r.call("a", "getACL /acl as the owner", get_acl("/acl"));
    r.call("a", "getACL /acl-auth as the owner", get_acl("/acl-auth"));
    r.call("b", "getACL /acl as another session", get_acl("/acl"));
    r.call("b", "getACL /acl-auth (no READ)", get_acl("/acl-auth"));
    r.call(
        "b",
        "getACL /acl-admin (READ, no ADMIN)",
        get_acl("/acl-admin"),
    );
    r.call("b", "getData /acl (world READ)", get("/acl", false));
    r.call("b", "setData /acl (no WRITE)", set("/acl", b"x", -1));
    r.call("b", "getData /acl-auth (no READ)", get("/acl-auth", false));
    let label = format!("exists /acl-auth (no READ) {EXISTS_WITHOUT_READ}");
    r.call("b", &label, exists("/acl-auth"));
    r.call(
        "b",
        "getChildren /acl-auth (no READ)",
        children("/acl-auth", false),
    );
    r.call(
        "b",
        "create under /acl-auth (no CREATE)",
        create("/acl-auth/x", 0),
    );
    r.call(
        "b",
        "delete /acl-auth (parent allows)",
        delete("/acl-auth", -1),
    );
    r.call(
        "b",
        "setACL /acl (no ADMIN)",
        set_acl("/acl", Acl::open_unsafe(), -1),
    );
    r.call(
        "a",
        "setACL, wrong version",
        set_acl("/acl", Acl::open_unsafe(), 4),
    );
    r.call("a", "setACL, bad ACL", set_acl("/acl", vec![], -1));
    r.call(
        "a",
        "setACL missing",
        set_acl("/missing", Acl::open_unsafe(), -1),
    );
    r.call(
        "a",
        "setACL /acl to open",
        set_acl("/acl", Acl::open_unsafe(), 0),
    );
    r.call("b", "setData /acl now open", set("/acl", b"x", -1));
    r.call("b", "getACL /acl now open", get_acl("/acl"));
    r.call_xid(
        "b",
        "addauth digest bob",
        Xid::AUTH,
        auth("digest", "bob:pw"),
    );
    r.call_xid(
        "b",
        "addauth digest bob again",
        Xid::AUTH,
        auth("digest", "bob:pw"),
    );
    r.call("b", "whoAmI with two ids", Request::WhoAmI);
    r.call("b", "getACL /acl-admin as bob", get_acl("/acl-admin"));
}

fn multis(r: &mut Recorder) {
    // multi: success with every op kind, failure with per-op codes, empty, undecodable ops;
    // multiRead with a missing node.
    r.call_raw("a", "multi holding a getData op", 14, &multi_with_read());
    let ok = vec![
        MultiOp::Create(create_req("/m1", b"m1", Acl::open_unsafe(), PERSISTENT)),
        MultiOp::Create2(create_req("/m2", b"m2", Acl::open_unsafe(), PERSISTENT)),
        MultiOp::CreateContainer(create_req("/mc", b"", Acl::open_unsafe(), CONTAINER)),
        MultiOp::CreateTtl(ttl_req("/mt", TTL, 60_000)),
        MultiOp::Create(create_req("/m1/s-", b"", Acl::open_unsafe(), SEQUENTIAL)),
        MultiOp::Create(create_req("/m1/e", b"", Acl::open_unsafe(), EPHEMERAL)),
        MultiOp::SetData(SetDataRequest {
            path: "/m1".into(),
            data: Some(b"m1b".to_vec()),
            version: 0,
        }),
        MultiOp::Check(check("/m1", 1)),
        MultiOp::Delete(DeleteRequest {
            path: "/m2".into(),
            version: 0,
        }),
    ];
    r.call("a", "multi, every op kind", Request::Multi(ok));
    let failing = vec![
        MultiOp::Create(create_req("/m3", b"", Acl::open_unsafe(), PERSISTENT)),
        MultiOp::Check(check("/p", 99)),
        MultiOp::SetData(SetDataRequest {
            path: "/m1".into(),
            data: Some(vec![]),
            version: -1,
        }),
    ];
    r.call("a", "multi failing at a check", Request::Multi(failing));
    let missing = vec![
        MultiOp::Delete(DeleteRequest {
            path: "/m1/e".into(),
            version: -1,
        }),
        MultiOp::Create(create_req("/x/y", b"", Acl::open_unsafe(), PERSISTENT)),
    ];
    r.call("a", "multi failing at a create", Request::Multi(missing));
    let bad = vec![MultiOp::Create(create_req(
        "bad",
        b"",
        Acl::open_unsafe(),
        PERSISTENT,
    ))];
    r.call("a", "multi with a bad path", Request::Multi(bad));
    let noauth = vec![MultiOp::Create(create_req(
        "/acl-admin/x",
        b"",
        Acl::open_unsafe(),
        PERSISTENT,
    ))];
    r.call("b", "multi without permission", Request::Multi(noauth));
    r.call("a", "multi, empty", Request::Multi(vec![]));
    r.call("a", "exists /m3 (not created)", exists("/m3"));
    let reads = vec![
        ReadOp::GetChildren(GetChildrenRequest {
            path: "/m1".into(),
            watch: false,
        }),
        ReadOp::GetData(GetDataRequest {
            path: "/m1".into(),
            watch: false,
        }),
        ReadOp::GetData(GetDataRequest {
            path: "/missing".into(),
            watch: false,
        }),
        ReadOp::GetChildren(GetChildrenRequest {
            path: "/acl-auth".into(),
            watch: false,
        }),
    ];
    r.call("a", "multiRead", Request::MultiRead(reads));
    r.call("a", "multiRead, empty", Request::MultiRead(vec![]));
}

/// A multi whose one op is a getData: ZooKeeper refuses it while decoding.
fn multi_with_read() -> Vec<u8> {
    let mut w = Writer::new();
    MultiHeader {
        kind: 4,
        done: false,
        err: -1,
    }
    .encode(&mut w);
    GetDataRequest {
        path: "/m1".into(),
        watch: false,
    }
    .encode(&mut w);
    MultiHeader::DONE.encode(&mut w);
    w.into_vec()
}

fn persistent_watches(r: &mut Recorder) {
    // addWatch in both modes; the watches survive firing; checkWatches and removeWatches.
    r.call(
        "a",
        "addWatch /w persistent",
        add_watch("/w", AddWatchMode::Persistent),
    );
    let recursive = AddWatchMode::PersistentRecursive;
    r.call("a", "addWatch /r recursive", add_watch("/r", recursive));
    r.call("a", "addWatch bad path", add_watch("/r/", recursive));
    r.call("b", "create /w", create("/w", PERSISTENT));
    r.call("b", "create /w/x", create("/w/x", PERSISTENT));
    r.call("b", "setData /w", set("/w", b"w", -1));
    r.call("b", "setData /w again", set("/w", b"w2", -1));
    r.call("b", "create /r", create("/r", PERSISTENT));
    r.call("b", "create /r/x", create("/r/x", PERSISTENT));
    r.call("b", "create /r/x/y", create("/r/x/y", PERSISTENT));
    r.call("b", "setData /r/x", set("/r/x", b"x", -1));
    r.call("b", "delete /r/x/y", delete("/r/x/y", -1));
    r.drain("a", "a sees persistent and recursive events");
    r.call(
        "a",
        "checkWatches /w Any",
        check_watches("/w", WatcherType::Any),
    );
    r.call(
        "a",
        &format!("checkWatches /w Data {STANDARD_TYPE_ON_PERSISTENT}"),
        check_watches("/w", WatcherType::Data),
    );
    r.call(
        "a",
        "checkWatches /r Any",
        check_watches("/r", WatcherType::Any),
    );
    r.call(
        "a",
        "checkWatches unwatched",
        check_watches("/p", WatcherType::Data),
    );
    r.call("a", "getData /m1, watch", get("/m1", true));
    r.call(
        "a",
        "checkWatches /m1 Data",
        check_watches("/m1", WatcherType::Data),
    );
    r.call(
        "a",
        "checkWatches /m1 Children",
        check_watches("/m1", WatcherType::Children),
    );
    r.call(
        "a",
        "removeWatches /m1 Data",
        remove_watches("/m1", WatcherType::Data),
    );
    r.call(
        "a",
        "removeWatches /m1 again",
        remove_watches("/m1", WatcherType::Data),
    );
    r.call(
        "a",
        "removeWatches /w Any",
        remove_watches("/w", WatcherType::Any),
    );
    r.call(
        "a",
        "removeWatches /w again",
        remove_watches("/w", WatcherType::Any),
    );
    r.call(
        "a",
        "removeWatches /r Any",
        remove_watches("/r", WatcherType::Any),
    );
    r.call(
        "b",
        "setData /w, /m1 and /r (no watches left)",
        set("/w", b"w3", -1),
    );
    r.call("b", "setData /m1", set("/m1", b"m", -1));
    r.call("b", "setData /r", set("/r", b"r", -1));
    r.drain("a", "no events after removal");
}

fn resumed_watches(r: &mut Recorder) {
    // Session 1 moves to a new connection and re-registers watches with a relZxid behind
    // changes made meanwhile, so the server fires them at once; then with setWatches2.
    let since = r.last_zxid("a");
    r.call("b", "create /sw (after relZxid)", create("/sw", PERSISTENT));
    r.call("b", "setData /m1 (after relZxid)", set("/m1", b"sw", -1));
    r.call("b", "delete /cont2 (after relZxid)", delete("/cont2", -1));
    r.call(
        "b",
        "create /p/sw (after relZxid)",
        create("/p/sw", PERSISTENT),
    );
    let session = r.credentials("a");
    r.connect("a2", "resume session 1", session.clone(), Some(false));
    r.expect_end("a", "the old connection of session 1");
    let watches = SetWatches {
        relative_zxid: since,
        data_watches: vec!["/m1".into(), "/cont2".into(), "/p".into()],
        exist_watches: vec!["/sw".into(), "/never".into()],
        child_watches: vec!["/p".into(), "/missing".into()],
    };
    r.call_xid(
        "a2",
        "setWatches",
        Xid::SET_WATCHES,
        Request::SetWatches(watches),
    );
    r.call("b", "create /never", create("/never", PERSISTENT));
    r.call("b", "setData /p", set("/p", b"p", -1));
    r.drain("a2", "the re-registered watches fire once more");
    let since = r.last_zxid("a2");
    r.call("b", "create /w/y", create("/w/y", PERSISTENT));
    r.call("b", "setData /never", set("/never", b"n", -1));
    r.connect("a3", "resume session 1 again", session, Some(false));
    r.expect_end("a2", "the old connection of session 1");
    let watches = SetWatches2 {
        relative_zxid: since,
        data_watches: vec!["/never".into()],
        exist_watches: vec![],
        child_watches: vec![],
        persistent_watches: vec!["/w".into()],
        persistent_recursive_watches: vec!["/r".into()],
    };
    let req = Request::SetWatches2(watches);
    r.call_xid("a3", "setWatches2", Xid::SET_WATCHES, req);
    r.call("b", "create /r/z", create("/r/z", PERSISTENT));
    r.call("b", "create /w/z", create("/w/z", PERSISTENT));
    r.drain("a3", "persistent watches from setWatches2 fire");
}

fn odd_requests(r: &mut Recorder) {
    // reconfig on a standalone server, check outside a multi, bodies that do not decode.
    let reconfig = ReconfigRequest {
        joining_servers: "server.2=127.0.0.1:2888:3888;2181".into(),
        leaving_servers: String::new(),
        new_members: String::new(),
        cur_config_id: -1,
    };
    // Each refused write is followed by a write, so that a zxid taken on one server only
    // shows in that step alone.
    r.call("a3", "reconfig", Request::Reconfig(reconfig));
    r.call("a3", "a write after it", set("/p", b"1", -1));
    r.call_raw("a3", "create with a truncated body", 1, &[0, 0, 0]);
    r.call("a3", "a write after it", set("/p", b"2", -1));
    let body = [0, 0, 0, 9, b'/'];
    r.call_raw("a3", "getData with a truncated body", 4, &body);
    r.call_raw("a3", "setData with no body", 5, &[]);
    r.call("a3", "a write after it", set("/p", b"3", -1));
    r.drain("a3", "the connection is still up");
    r.connect("k", "connect for check", new_session(), Some(false));
    let label = format!("check outside a multi {STANDALONE_CHECK}");
    r.send_and_listen("k", &label, Request::Check(check("/p", -1)));
}

fn connection_enders(r: &mut Recorder) {
    // Requests that end the connection: an unknown scheme's auth and an unknown opcode.
    r.connect("x", "connect for a bad auth", new_session(), Some(false));
    r.call_xid(
        "x",
        "auth with an unknown scheme",
        Xid::AUTH,
        auth("nope", "a:b"),
    );
    r.expect_end("x", "after AuthFailed");
    r.connect(
        "u",
        "connect for an unknown opcode",
        new_session(),
        Some(false),
    );
    r.call_raw("u", "opcode 999", 999, &[]);
    r.expect_end("u", "after Unimplemented");
    r.connect(
        "v",
        "connect for a reserved opcode",
        new_session(),
        Some(false),
    );
    // The body as 3.8 reads it: the path's bytes (3.9 reads a DeleteContainerRequest).
    r.call_raw(
        "v",
        "opcode 20 (deleteContainer) on /acl [3.8 deleteContainer body]",
        20,
        b"/acl",
    );
    r.expect_end("v", "after a reserved opcode");
}

fn container_sweep(r: &mut Recorder) {
    // Both servers sweep empty containers every CONTAINER_CHECK_INTERVAL_MS. A node made by
    // `create` with the container flag is a plain node in ZooKeeper (its DataTree picks the
    // node type by the txn's opcode), so only the real container goes.
    let container = create_req("/sweep", b"", Acl::open_unsafe(), CONTAINER);
    r.call(
        "b",
        "createContainer /sweep",
        Request::CreateContainer(container),
    );
    r.call("b", "create /sweep/k", create("/sweep/k", PERSISTENT));
    r.call("b", "delete /sweep/k", delete("/sweep/k", -1));
    r.call(
        "b",
        "create /notc, container flag",
        create("/notc", CONTAINER),
    );
    r.call("b", "create /notc/k", create("/notc/k", PERSISTENT));
    r.call("b", "delete /notc/k", delete("/notc/k", -1));
    r.pause(4 * CONTAINER_CHECK_INTERVAL);
    r.call("b", "exists /sweep after the sweep", exists("/sweep"));
    r.call("b", "exists /notc after the sweep", exists("/notc"));
    r.call("b", "delete /notc, if still there", delete("/notc", -1));
}

fn close_sessions(r: &mut Recorder) {
    // b's ephemerals vanish with its session and fire a3's watches; b cannot come back.
    r.call("b", "create /b-eph", create("/b-eph", EPHEMERAL));
    r.call("a3", "exists /b-eph, watch", exists_w("/b-eph"));
    r.call("a3", "getChildren /, watch", children("/", true));
    let b = r.credentials("b");
    r.call("b", "closeSession", Request::CloseSession);
    r.expect_end("b", "after closeSession");
    r.drain("a3", "a3 sees b's ephemeral go");
    r.call("a3", "getEphemerals / after b closed", ephemerals("/"));
    r.connect("b2", "resume the closed session", b, Some(false));
    r.call("a3", "getAllChildrenNumber /", count("/"));
    r.call("a3", "closeSession", Request::CloseSession);
    r.expect_end("a3", "after closeSession");
    r.connect("c", "a new session", new_session(), Some(false));
    r.call("c", "getEphemerals / (session 1 gone)", ephemerals("/"));
    r.call("c", "getChildren /p", children("/p", false));
}
