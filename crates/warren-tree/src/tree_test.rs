//! Tests of the tree as a whole: cversion overflow, replay determinism and digest, snapshot
//! corruption, and a property test against a small reference model.

use std::collections::BTreeMap;

use proptest::prelude::*;
use warren_proto::{Acl, CreateMode, ErrorCode, SessionId, Xid};

use crate::{Command, DataTree, Op, Outcome, SnapshotError};

fn cmd(session: i64, time_ms: i64, op: Op) -> Command {
    Command {
        origin: 1,
        session: SessionId(session),
        xid: Xid(0),
        time_ms,
        auth: vec![],
        op,
    }
}

fn create(path: &str, data: &[u8], mode: CreateMode) -> Op {
    let ttl_ms = if mode.is_ttl() { 50 } else { Op::NO_TTL };
    Op::Create {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        mode,
        ttl_ms,
    }
}

fn session_op() -> Op {
    Op::CreateSession {
        timeout_ms: 10_000,
        password: [3; 16],
    }
}

#[test]
fn sequential_suffix_overflows_like_a_java_int() {
    // Phase 1: bring /q's stored cversion next to i32::MAX.
    let mut t = DataTree::new();
    t.apply(&cmd(1, 0, session_op()));
    t.apply(&cmd(1, 0, create("/q", b"", CreateMode::Persistent)));
    let pzxid = t.stat("/q").unwrap().pzxid;
    t.set_child_meta("/q", i32::MAX - 1, pzxid);
    t.check_invariants();

    // Phase 2: the suffix follows the stored value through the wrap, "%010d" style.
    let names: Vec<String> = (0..3)
        .map(|_| {
            match t
                .apply(&cmd(
                    1,
                    0,
                    create("/q/n-", b"", CreateMode::PersistentSequential),
                ))
                .outcome
            {
                Outcome::Created { path, .. } => path,
                o => panic!("{o:?}"),
            }
        })
        .collect();
    assert_eq!(
        names,
        ["/q/n-2147483646", "/q/n-2147483647", "/q/n--2147483648"]
    );
    // Stored is now i32::MIN + 1; the Stat value wraps the same way as Java's int.
    assert_eq!(
        t.stat("/q").unwrap().cversion,
        (i32::MIN + 1).wrapping_mul(2).wrapping_sub(3)
    );
    assert_eq!(format!("{:010}", -5), "-000000005");
    t.check_invariants();
}

/// A deterministic workload touching every kind of op.
fn workload() -> Vec<Command> {
    let mut v = vec![cmd(1, 10, session_op()), cmd(2, 10, session_op())];
    for i in 0..20i64 {
        let t = 100 + i * 10;
        let s = 1 + i % 2;
        v.push(cmd(
            s,
            t,
            create(&format!("/n{}", i % 5), b"d", CreateMode::Persistent),
        ));
        v.push(cmd(
            s,
            t,
            create(
                &format!("/n{}/s-", i % 5),
                &[i as u8; 3],
                CreateMode::EphemeralSequential,
            ),
        ));
        v.push(cmd(s, t, create("/c", b"", CreateMode::Container)));
        v.push(cmd(
            s,
            t,
            create("/c/k-", b"", CreateMode::PersistentSequential),
        ));
        v.push(cmd(
            s,
            t,
            create(
                &format!("/ttl{}", i % 3),
                b"",
                CreateMode::PersistentWithTtl,
            ),
        ));
        v.push(cmd(
            s,
            t,
            Op::SetData {
                path: format!("/n{}", i % 5),
                data: Some(vec![i as u8]),
                version: -1,
            },
        ));
        v.push(cmd(
            s,
            t,
            Op::Multi(vec![
                create(&format!("/m{i}"), b"x", CreateMode::Persistent),
                Op::Delete {
                    path: format!("/m{}", i.saturating_sub(1)),
                    version: -1,
                },
            ]),
        ));
        v.push(cmd(
            s,
            t,
            Op::SetAcl {
                path: format!("/m{i}"),
                acl: Acl::open_unsafe(),
                version: 0,
            },
        ));
        if i % 4 == 3 {
            v.push(cmd(0, t, Op::DeleteContainer { path: "/c".into() }));
            v.push(cmd(
                0,
                t + 1000,
                Op::DeleteTtl {
                    path: format!("/ttl{}", i % 3),
                },
            ));
        }
        if i == 12 {
            v.push(cmd(2, t, Op::CloseSession));
        }
    }
    v
}

#[test]
fn replay_from_log_bytes_gives_the_same_tree_digest_and_snapshot() {
    // Phase 1: the live tree applies the workload and logs its bytes.
    let mut live = DataTree::new();
    let mut swept = 0;
    let log: Vec<Vec<u8>> = workload()
        .iter()
        .map(|c| {
            let a = live.apply(c);
            if matches!(c.op, Op::DeleteContainer { .. } | Op::DeleteTtl { .. })
                && a.outcome == Outcome::Done
            {
                swept += 1;
            }
            c.encode()
        })
        .collect();
    // The workload must reach the sweeps, or this test proves less than it claims.
    assert!(swept >= 4, "only {swept} sweeps succeeded");
    assert!(live.ephemeral_count() > 0 && live.session_count() == 1);
    live.check_invariants();
    assert_eq!(live.digest(), live.compute_digest());

    // Phase 2: a replica replays the bytes; and another starts from a snapshot midway.
    let mut replica = DataTree::new();
    let mut from_snap = None;
    for (i, b) in log.iter().enumerate() {
        replica.apply(&Command::decode(b).unwrap());
        if i == log.len() / 2 {
            from_snap = Some((
                i,
                DataTree::decode_snapshot(&replica.encode_snapshot()).unwrap(),
            ));
        }
    }
    let (i, mut restored) = from_snap.unwrap();
    for b in &log[i + 1..] {
        restored.apply(&Command::decode(b).unwrap());
    }
    for t in [&replica, &restored] {
        assert!(*t == live);
        assert_eq!(t.digest(), live.digest());
        assert_eq!(t.encode_snapshot(), live.encode_snapshot());
    }
}

#[test]
fn a_freeze_copied_between_applies_encodes_the_tree_as_it_began() {
    // Why: the server freezes the tree for a snapshot a chunk at a time while commands go
    // on applying; every node changed, created or deleted meanwhile must appear in the view
    // as it was when the freeze began.
    let commands = workload();
    for chunk in [1, 3, 50, usize::MAX] {
        let (first, rest) = commands.split_at(commands.len() / 2);
        let mut t = DataTree::new();
        for c in first {
            t.apply(c);
        }
        let expected = t.encode_snapshot();
        t.begin_freeze();
        assert!(t.freezing());
        let mut view = None;
        let mut changed = 0;
        for c in rest {
            if view.is_none() {
                view = t.freeze_some(chunk);
            }
            if !t.apply(c).triggers.is_empty() {
                changed += 1;
            }
        }
        let view = view.or_else(|| t.freeze_some(usize::MAX)).unwrap();
        assert!(!t.freezing() && t.freeze_some(chunk).is_none());
        assert!(changed > 10, "only {changed} changes during the freeze");
        assert_ne!(t.encode_snapshot(), expected);
        assert_eq!(view.encode(), expected, "chunk {chunk}");
        let mut replica = DataTree::decode_snapshot(&view.encode()).unwrap();
        for c in rest {
            replica.apply(c);
        }
        assert!(replica == t);
    }
}

#[test]
fn a_restore_during_a_freeze_hands_over_the_finished_view() {
    let commands = workload();
    let mut t = DataTree::new();
    for c in &commands {
        t.apply(c);
    }
    let expected = t.encode_snapshot();
    t.begin_freeze();
    assert!(t.freeze_some(2).is_none());
    t.replace_with(DataTree::new());
    assert_eq!(t.node_count(), DataTree::new().node_count());
    assert_eq!(t.freeze_some(2).unwrap().encode(), expected);
}

#[test]
fn snapshot_rejects_damage() {
    let mut t = DataTree::new();
    for c in workload() {
        t.apply(&c);
    }
    let good = t.encode_snapshot();
    assert!(DataTree::decode_snapshot(&good).unwrap() == t);

    // Phase 1: any flipped byte or cut is caught by the CRC (or the length check).
    for i in [0, 5, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        assert!(matches!(
            DataTree::decode_snapshot(&bad),
            Err(SnapshotError::Checksum { .. })
        ));
    }
    assert!(DataTree::decode_snapshot(&good[..good.len() - 1]).is_err());
    assert!(matches!(
        DataTree::decode_snapshot(&good[..3]),
        Err(SnapshotError::Truncated(3))
    ));

    // Phase 2: with a valid CRC, a wrong stored digest, magic or version is still caught.
    let reseal = |mut body: Vec<u8>| {
        body.truncate(body.len() - 4);
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_be_bytes());
        body
    };
    let mut bad = good.clone();
    let d = bad.len() - 5;
    bad[d] ^= 1;
    assert!(matches!(
        DataTree::decode_snapshot(&reseal(bad)),
        Err(SnapshotError::Digest { .. })
    ));
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(matches!(
        DataTree::decode_snapshot(&reseal(bad)),
        Err(SnapshotError::BadMagic)
    ));
    let mut bad = good.clone();
    bad[7] = 9;
    assert!(matches!(
        DataTree::decode_snapshot(&reseal(bad)),
        Err(SnapshotError::UnknownVersion(9))
    ));
}

// ---- property test against a reference model --------------------------------------------

/// The model: persistent nodes only, path → (data, version).
type Model = BTreeMap<String, (Vec<u8>, i32)>;

#[derive(Debug, Clone)]
enum MOp {
    Create(String, Vec<u8>),
    Delete(String, i32),
    Set(String, Vec<u8>, i32),
}

fn parent(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => p[..i].into(),
        None => unreachable!(),
    }
}

fn model_apply(m: &mut Model, op: &MOp) -> Result<(), ErrorCode> {
    match op {
        MOp::Create(p, d) => {
            if !m.contains_key(&parent(p)) {
                return Err(ErrorCode::NoNode);
            }
            if m.contains_key(p) {
                return Err(ErrorCode::NodeExists);
            }
            m.insert(p.clone(), (d.clone(), 0));
        }
        MOp::Delete(p, v) => {
            let (_, ver) = m.get(p).ok_or(ErrorCode::NoNode)?;
            if *v != -1 && v != ver {
                return Err(ErrorCode::BadVersion);
            }
            if m.keys().any(|k| k != p && parent(k) == *p) {
                return Err(ErrorCode::NotEmpty);
            }
            m.remove(p);
        }
        MOp::Set(p, d, v) => {
            let (data, ver) = m.get_mut(p).ok_or(ErrorCode::NoNode)?;
            if *v != -1 && v != ver {
                return Err(ErrorCode::BadVersion);
            }
            *data = d.clone();
            *ver += 1;
        }
    }
    Ok(())
}

fn to_op(op: &MOp) -> Op {
    match op {
        MOp::Create(p, d) => create(p, d, CreateMode::Persistent),
        MOp::Delete(p, v) => Op::Delete {
            path: p.clone(),
            version: *v,
        },
        MOp::Set(p, d, v) => Op::SetData {
            path: p.clone(),
            data: Some(d.clone()),
            version: *v,
        },
    }
}

fn arb_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "a-1", "c0"]), 1..4)
        .prop_map(|parts| format!("/{}", parts.join("/")))
}

fn arb_mop() -> impl Strategy<Value = MOp> {
    let data = prop::collection::vec(any::<u8>(), 0..4);
    prop_oneof![
        (arb_path(), data.clone()).prop_map(|(p, d)| MOp::Create(p, d)),
        (arb_path(), -1..2i32).prop_map(|(p, v)| MOp::Delete(p, v)),
        (arb_path(), data, -1..2i32).prop_map(|(p, d, v)| MOp::Set(p, d, v)),
    ]
}

fn arb_step() -> impl Strategy<Value = Vec<MOp>> {
    // One op alone, or several as a multi.
    prop::collection::vec(arb_mop(), 1..4)
}

fn user_view(t: &DataTree) -> Model {
    let mut out = Model::new();
    let mut stack = vec!["/".to_owned()];
    while let Some(p) = stack.pop() {
        if !p.starts_with("/zookeeper") {
            let (d, s) = t.get_data(&p).unwrap();
            out.insert(p.clone(), (d.unwrap_or_default().to_vec(), s.version));
        }
        for c in t.children(&p).unwrap() {
            stack.push(if p == "/" {
                format!("/{c}")
            } else {
                format!("{p}/{c}")
            });
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn tree_matches_reference_model(steps in prop::collection::vec(arb_step(), 1..40)) {
        let mut t = DataTree::new();
        t.apply(&cmd(1, 0, session_op()));
        let mut m = Model::new();
        m.insert("/".into(), (vec![], 0));
        for (i, step) in steps.iter().enumerate() {
            let multi = step.len() > 1;
            let op = if multi { Op::Multi(step.iter().map(to_op).collect()) } else { to_op(&step[0]) };
            let applied = t.apply(&cmd(1, i as i64, op));
            prop_assert_eq!(applied.zxid.0, i as i64 + 2);
            // The model runs the ops on a copy and keeps it only if all succeed.
            let mut scratch = m.clone();
            let mut codes = Vec::new();
            for op in step {
                match model_apply(&mut scratch, op) {
                    Ok(()) => codes.push(ErrorCode::Ok),
                    Err(c) => { codes.push(c); break; }
                }
            }
            let failed = codes.last() != Some(&ErrorCode::Ok);
            if !failed {
                m = scratch;
            }
            match (&applied.outcome, multi, failed) {
                (Outcome::Error(c), false, true) => prop_assert_eq!(*c, codes[0]),
                (Outcome::MultiFailed(got), true, true) => {
                    prop_assert_eq!(&got[..codes.len()], &codes[..]);
                    prop_assert!(got[codes.len()..].iter().all(|c| *c == ErrorCode::RuntimeInconsistency));
                }
                (Outcome::Multi(v), true, false) => prop_assert_eq!(v.len(), step.len()),
                (Outcome::Created { .. } | Outcome::Done | Outcome::Stat(_), false, false) => {}
                (o, _, _) => prop_assert!(false, "outcome {:?} vs model {:?}", o, codes),
            }
            // Every successful op here fires something; a failure fires nothing.
            prop_assert_eq!(applied.triggers.is_empty(), failed);
            prop_assert_eq!(user_view(&t), m.clone());
            t.check_invariants();
        }
        let back = DataTree::decode_snapshot(&t.encode_snapshot()).unwrap();
        prop_assert!(back == t);
    }
}

#[test]
fn a_refused_write_takes_a_zxid_and_changes_nothing_else() {
    // ZooKeeper logs an error txn for a write its prep stage refuses: the zxid moves on.
    let mut t = DataTree::new();
    t.apply(&cmd(1, 1, session_op()));
    let before = (t.last_zxid(), t.digest());
    let a = t.apply(&cmd(
        1,
        2,
        Op::Refused {
            code: ErrorCode::ReconfigDisabled,
        },
    ));
    assert_eq!(a.outcome, Outcome::Error(ErrorCode::ReconfigDisabled));
    assert_eq!(a.zxid.0, before.0.0 + 1);
    assert_eq!(t.digest(), before.1);
    assert!(a.triggers.is_empty());

    // Inside a multi it fails its op with ZooKeeper's per-op codes and undoes the others.
    let multi = Op::Multi(vec![
        create("/m1", b"", CreateMode::Persistent),
        Op::Refused {
            code: ErrorCode::Unimplemented,
        },
        create("/m2", b"", CreateMode::Persistent),
    ]);
    let a = t.apply(&cmd(1, 3, multi));
    assert_eq!(
        a.outcome,
        Outcome::MultiFailed(vec![
            ErrorCode::Ok,
            ErrorCode::Unimplemented,
            ErrorCode::RuntimeInconsistency
        ])
    );
    assert!(t.stat("/m1").is_none());

    // The op survives the log's byte form.
    let c = cmd(
        1,
        4,
        Op::Refused {
            code: ErrorCode::MarshallingError,
        },
    );
    assert_eq!(Command::decode(&c.encode()).unwrap(), c);
}

#[test]
fn snapshot_and_children_across_interleaved_siblings() {
    // Byte order puts `/a-1` and its subtree between `/a` and `/a/x`: the snapshot decoder
    // must find `/a/x`'s parent although it left its ancestor stack, and child listings
    // must skip subtrees without losing siblings.
    let mut t = DataTree::new();
    t.apply(&cmd(1, 0, session_op()));
    for p in [
        "/a", "/a-1", "/a-1/x", "/a/x", "/a/x/y", "/a/z", "/a.b", "/b",
    ] {
        let out = t.apply(&cmd(1, 0, create(p, b"d", CreateMode::Persistent)));
        assert!(matches!(out.outcome, Outcome::Created { .. }), "{p}");
    }
    assert_eq!(t.children("/a").unwrap(), ["x", "z"]);
    assert_eq!(
        t.children("/").unwrap(),
        ["a", "a-1", "a.b", "b", "zookeeper"]
    );
    let back = DataTree::decode_snapshot(&t.encode_snapshot()).unwrap();
    assert!(back == t);
    back.check_invariants();
    assert_eq!(back.stat("/a").unwrap().num_children, 2);
    assert_eq!(back.stat("/a/x").unwrap().num_children, 1);
}

fn server(id: u64, role: &str) -> crate::config::ConfigServer {
    crate::config::ConfigServer {
        id,
        spec: format!(
            "127.0.0.1:{}:{}:{role};127.0.0.1:{}",
            2000 + id,
            3000 + id,
            4000 + id
        ),
    }
}

fn reconfig(from_config: i64, joining: Vec<crate::config::ConfigServer>, leaving: Vec<u64>) -> Op {
    Op::Reconfig {
        from_config,
        malformed: false,
        joining,
        leaving,
        new_members: None,
        initial: vec![],
    }
}

fn as_super(mut c: Command) -> Command {
    c.auth = vec![warren_proto::Id::new("super", "")];
    c
}

#[test]
fn reconfig_checks_version_arguments_and_acl_then_rewrites_the_config_node() {
    // Phase 1: the leader seeds the configuration once; a second seed changes nothing.
    let mut t = DataTree::new();
    t.apply(&cmd(1, 1, session_op()));
    let seed = Op::SetConfig {
        servers: vec![server(1, "participant"), server(2, "participant")],
    };
    let seeded = t.apply(&cmd(0, 2, seed.clone()));
    let Outcome::Data { data, stat } = seeded.outcome else {
        panic!("seeding answers the data: {:?}", seeded.outcome);
    };
    let (members, version) = crate::config::parse_config(&data);
    assert_eq!((members.len(), version), (2, seeded.zxid.0));
    assert_eq!((stat.mzxid, stat.version), (seeded.zxid.0, -1));
    assert_eq!(
        t.apply(&cmd(0, 3, seed)).outcome,
        Outcome::Error(ErrorCode::NodeExists)
    );

    // Phase 2: refusals in ZooKeeper's order: version, then arguments, then the ACL.
    let join = vec![server(3, "observer")];
    let stale = t.apply(&as_super(cmd(1, 4, reconfig(version + 1, vec![], vec![]))));
    assert_eq!(stale.outcome, Outcome::Error(ErrorCode::BadVersion));
    let mut bad = reconfig(-1, vec![], vec![]);
    if let Op::Reconfig { malformed, .. } = &mut bad {
        *malformed = true;
    }
    assert_eq!(
        t.apply(&as_super(cmd(1, 5, bad))).outcome,
        Outcome::Error(ErrorCode::BadArguments)
    );
    let alone = t.apply(&as_super(cmd(1, 6, reconfig(-1, vec![], vec![2]))));
    assert_eq!(alone.outcome, Outcome::Error(ErrorCode::BadArguments));
    let no_auth = t.apply(&cmd(1, 7, reconfig(version, join.clone(), vec![])));
    assert_eq!(no_auth.outcome, Outcome::Error(ErrorCode::NoAuth));

    // Phase 3: the super user adds an observer: new data, version = its zxid, an event.
    let added = t.apply(&as_super(cmd(1, 8, reconfig(version, join, vec![]))));
    let Outcome::Data { data, .. } = &added.outcome else {
        panic!("reconfig answers the data: {:?}", added.outcome);
    };
    let (members, version) = crate::config::parse_config(data);
    assert_eq!(members.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(version, added.zxid.0);
    assert_eq!(added.triggers.len(), 1);
    let removed = t.apply(&as_super(cmd(1, 9, reconfig(version, vec![], vec![3]))));
    assert!(matches!(removed.outcome, Outcome::Data { .. }));
    t.check_invariants();

    // Before the leader wrote zoo.cfg's members, a reconfig starts from those it carries.
    let mut fresh = DataTree::new();
    fresh.apply(&cmd(1, 1, session_op()));
    let mut early = reconfig(-1, vec![server(3, "observer")], vec![]);
    if let Op::Reconfig { initial, .. } = &mut early {
        *initial = vec![server(1, "participant"), server(2, "participant")];
    }
    let a = fresh.apply(&as_super(cmd(1, 2, early)));
    let Outcome::Data { data, .. } = &a.outcome else {
        panic!("an early reconfig answers the data: {:?}", a.outcome);
    };
    assert_eq!(crate::config::parse_config(data).0.len(), 3);

    // The ops survive the log's byte form.
    let c = cmd(
        1,
        10,
        Op::Reconfig {
            from_config: 7,
            malformed: true,
            joining: vec![server(4, "participant")],
            leaving: vec![1, 2],
            new_members: Some(vec![server(5, "observer")]),
            initial: vec![server(1, "participant")],
        },
    );
    assert_eq!(Command::decode(&c.encode()).unwrap(), c);
}
