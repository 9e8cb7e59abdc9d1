//! Resident memory per znode, the benchmark issue's measure: 1M znodes of 100 bytes.
//! Ignored by default (it takes seconds and reads Linux's `/proc`); run it with
//! `cargo test --release -p warren-tree resident_bytes_per_znode -- --ignored --nocapture`.

use warren_proto::{Acl, CreateMode, SessionId, Xid};

use crate::{Command, DataTree, Op};

fn rss_kb() -> i64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = s
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .expect("VmRSS line");
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in kB")
}

fn create(path: String, data: Vec<u8>) -> Command {
    let op = Op::Create {
        path,
        data: Some(data),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: Op::NO_TTL,
    };
    Command {
        origin: 1,
        session: SessionId(1),
        xid: Xid(0),
        time_ms: 0,
        auth: vec![],
        op,
    }
}

#[test]
#[ignore]
fn resident_bytes_per_znode() {
    let mut t = DataTree::new();
    let session = Op::CreateSession {
        timeout_ms: 1,
        password: [0; 16],
    };
    t.apply(&Command {
        op: session,
        ..create(String::new(), vec![])
    });
    // The layout of `warren bench --workload load --sessions 4`: 29-byte paths.
    t.apply(&create("/load".into(), vec![]));
    t.apply(&create("/load/load-12345".into(), vec![]));
    for i in 0..4 {
        t.apply(&create(format!("/load/load-12345/s{i}"), vec![]));
    }
    let before = rss_kb();
    let n = 1_000_000;
    for i in 0..n {
        t.apply(&create(
            format!("/load/load-12345/s{}/{i:08}", i % 4),
            vec![7; 100],
        ));
    }
    let per_znode = (rss_kb() - before) * 1024 / n;
    eprintln!("resident bytes per znode (100-byte data, 29-byte path): {per_znode}");
    assert_eq!(t.node_count(), 4 + 6 + n as usize);
}
