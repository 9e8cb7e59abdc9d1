//! The state machine: apply (create, setData) into a tree of 100k znodes, and snapshot
//! encoding and decoding of that tree (decoding is most of warren's restart time).
//!
//! `cargo bench -p warren-tree --bench tree`; `-- --test` runs each once (CI smoke test).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use warren_proto::{Acl, CreateMode, SessionId, Xid};
use warren_tree::{Command, DataTree, Op, Outcome};

/// Znodes in the tree the benches work on: 100 directories of 1,000 znodes of 100 bytes.
const NODES: u32 = 100_000;
const DIRS: u32 = 100;

fn command(op: Op) -> Command {
    Command {
        origin: 1,
        session: SessionId(1),
        xid: Xid(1),
        time_ms: 1_700_000_000_000,
        auth: vec![],
        op,
    }
}

fn create(path: String) -> Command {
    command(Op::Create {
        path,
        data: Some(vec![7; 100]),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: Op::NO_TTL,
    })
}

fn node_path(i: u32) -> String {
    format!("/bench/d{:03}/n{i:07}", i % DIRS)
}

fn tree_of_100k() -> DataTree {
    let mut t = DataTree::new();
    t.apply(&command(Op::CreateSession {
        timeout_ms: 30_000,
        password: [0; 16],
    }));
    t.apply(&create("/bench".to_owned()));
    for d in 0..DIRS {
        t.apply(&create(format!("/bench/d{d:03}")));
    }
    for i in 0..NODES {
        let applied = t.apply(&create(node_path(i)));
        assert!(matches!(applied.outcome, Outcome::Created { .. }));
    }
    t
}

fn apply(c: &mut Criterion) {
    let mut tree = tree_of_100k();
    let mut g = c.benchmark_group("apply_100k");
    let mut next = NODES;
    g.bench_function("create", |b| {
        b.iter_batched(
            || {
                next += 1;
                create(node_path(next))
            },
            |cmd| black_box(tree.apply(&cmd)),
            BatchSize::SmallInput,
        )
    });
    let mut k = 0u32;
    g.bench_function("setData", |b| {
        b.iter_batched(
            || {
                k = (k + 7919) % NODES;
                command(Op::SetData {
                    path: node_path(k),
                    data: Some(vec![9; 100]),
                    version: -1,
                })
            },
            |cmd| black_box(tree.apply(&cmd)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn snapshot(c: &mut Criterion) {
    let tree = tree_of_100k();
    let bytes = tree.encode_snapshot();
    let mut g = c.benchmark_group("snapshot_100k");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode", |b| b.iter(|| black_box(tree.encode_snapshot())));
    // A snapshot freezes the tree in chunks between applies; this is one whole freeze.
    g.bench_function("freeze", |b| {
        b.iter_batched_ref(
            || tree.clone(),
            |t| {
                t.begin_freeze();
                black_box(t.freeze_some(usize::MAX))
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("decode", |b| {
        b.iter(|| DataTree::decode_snapshot(black_box(&bytes)).expect("a valid snapshot"))
    });
    g.finish();
}

criterion_group!(benches, apply, snapshot);
criterion_main!(benches);
