//! Sample values shared by the round-trip and fuzz-replay tests.

#![allow(dead_code)]

use warren_proto::*;

pub fn stat(n: i64) -> Stat {
    Stat {
        czxid: n,
        mzxid: n + 1,
        ctime: 1_700_000_000_000 + n,
        mtime: 1_700_000_000_001 + n,
        version: 2,
        cversion: -3,
        aversion: 4,
        ephemeral_owner: 0x0100_0000_0000_0001,
        data_length: 5,
        num_children: 6,
        pzxid: n + 2,
    }
}

pub fn acl() -> Vec<Acl> {
    vec![
        Acl {
            perms: perms::ALL,
            id: Id::anyone(),
        },
        Acl {
            perms: perms::READ,
            id: Id::new("digest", "u:h"),
        },
    ]
}

pub fn create(path: &str, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(b"data".to_vec()),
        acl: acl(),
        flags,
    }
}

pub fn create_ttl() -> CreateTtlRequest {
    CreateTtlRequest {
        path: "/t".into(),
        data: Some(vec![0, 255]),
        acl: acl(),
        flags: 5,
        ttl: 60_000,
    }
}

/// One request of every variant, with an xid suitable for it.
pub fn sample_requests() -> Vec<(Xid, Request)> {
    let s = |p: &str| p.to_string();
    let v = |p: &[&str]| p.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        (Xid(1), Request::Create(create("/a", 0))),
        (Xid(2), Request::Create2(create("/a/b-", 3))),
        (Xid(3), Request::CreateContainer(create("/c", 4))),
        (Xid(4), Request::CreateTtl(create_ttl())),
        (
            Xid(5),
            Request::Delete(DeleteRequest {
                path: s("/a"),
                version: -1,
            }),
        ),
        (
            Xid(6),
            Request::Exists(ExistsRequest {
                path: s("/a"),
                watch: true,
            }),
        ),
        (
            Xid(7),
            Request::GetData(GetDataRequest {
                path: s("/a"),
                watch: false,
            }),
        ),
        (
            Xid(8),
            Request::SetData(SetDataRequest {
                path: s("/a"),
                data: Some(b"x".to_vec()),
                version: 3,
            }),
        ),
        (Xid(9), Request::GetAcl(GetAclRequest { path: s("/a") })),
        (
            Xid(10),
            Request::SetAcl(SetAclRequest {
                path: s("/a"),
                acl: acl(),
                version: 0,
            }),
        ),
        (
            Xid(11),
            Request::GetChildren(GetChildrenRequest {
                path: s("/"),
                watch: true,
            }),
        ),
        (
            Xid(12),
            Request::GetChildren2(GetChildren2Request {
                path: s("/"),
                watch: false,
            }),
        ),
        (Xid(13), Request::Sync(SyncRequest { path: s("/") })),
        (
            Xid(14),
            Request::Check(CheckVersionRequest {
                path: s("/a"),
                version: 1,
            }),
        ),
        (
            Xid(15),
            Request::Multi(vec![
                MultiOp::Create(create("/m", 0)),
                MultiOp::Create2(create("/m2", 1)),
                MultiOp::CreateContainer(create("/m3", 4)),
                MultiOp::CreateTtl(create_ttl()),
                MultiOp::Delete(DeleteRequest {
                    path: s("/m"),
                    version: -1,
                }),
                MultiOp::SetData(SetDataRequest {
                    path: s("/m2"),
                    data: Some(vec![]),
                    version: -1,
                }),
                MultiOp::Check(CheckVersionRequest {
                    path: s("/m2"),
                    version: 0,
                }),
            ]),
        ),
        (Xid(16), Request::Multi(vec![])),
        (
            Xid(17),
            Request::MultiRead(vec![
                ReadOp::GetChildren(GetChildrenRequest {
                    path: s("/"),
                    watch: false,
                }),
                ReadOp::GetData(GetDataRequest {
                    path: s("/a"),
                    watch: false,
                }),
            ]),
        ),
        (Xid::PING, Request::Ping),
        (Xid(18), Request::CloseSession),
        (
            Xid::AUTH,
            Request::Auth(AuthPacket {
                kind: 0,
                scheme: s("digest"),
                auth: b"u:p".to_vec(),
            }),
        ),
        (
            Xid::SET_WATCHES,
            Request::SetWatches(SetWatches {
                relative_zxid: 7,
                data_watches: v(&["/a"]),
                exist_watches: v(&["/b", "/c"]),
                child_watches: vec![],
            }),
        ),
        (
            Xid::SET_WATCHES,
            Request::SetWatches2(SetWatches2 {
                relative_zxid: 7,
                data_watches: v(&["/a"]),
                exist_watches: vec![],
                child_watches: v(&["/"]),
                persistent_watches: v(&["/p"]),
                persistent_recursive_watches: v(&["/r"]),
            }),
        ),
        (
            Xid(19),
            Request::AddWatch(AddWatchRequest {
                path: s("/a"),
                mode: AddWatchMode::PersistentRecursive,
            }),
        ),
        (
            Xid(20),
            Request::CheckWatches(CheckWatchesRequest {
                path: s("/a"),
                kind: WatcherType::Data,
            }),
        ),
        (
            Xid(21),
            Request::RemoveWatches(RemoveWatchesRequest {
                path: s("/a"),
                kind: WatcherType::Any,
            }),
        ),
        (
            Xid(22),
            Request::GetEphemerals(GetEphemeralsRequest {
                prefix_path: s("/e"),
            }),
        ),
        (
            Xid(23),
            Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: s("/") }),
        ),
        (Xid(24), Request::WhoAmI),
        (
            Xid(25),
            Request::Reconfig(ReconfigRequest {
                joining_servers: s("server.4=h:2888:3888;2181"),
                leaving_servers: s("2"),
                new_members: s(""),
                cur_config_id: -1,
            }),
        ),
        (
            Xid(26),
            Request::Sasl(GetSaslRequest {
                token: vec![1, 2, 3],
            }),
        ),
        (Xid(27), Request::Unknown(999)),
        (
            Xid(28),
            Request::DeleteContainer(DeleteContainerRequest { path: s("/c") }),
        ),
    ]
}

/// A valid handshake, with and without the readOnly byte.
pub fn connect(read_only: Option<bool>) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: Zxid(0x1_0000_0005),
        timeout_ms: 30_000,
        session_id: SessionId(0),
        passwd: vec![0; 16],
        read_only,
    }
}
