//! RaftNode end to end on one voter: propose/apply, restart (with and without snapshots),
//! read barrier, storage failure, concurrent proposals and group commit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use warren_raft::{MemBackend, NoPeers, ProposeError, RaftConfig, RaftNode, Role};

mod common;

use common::{ListSm, batch_payload};

fn payload(i: usize) -> Vec<u8> {
    format!("entry-{i}").into_bytes()
}

fn payloads(list: &[(u64, Vec<u8>)]) -> Vec<Vec<u8>> {
    list.iter().map(|(_, p)| p.clone()).collect()
}

async fn start_disk(cfg: &RaftConfig, sm: &ListSm) -> RaftNode {
    RaftNode::start(cfg.clone(), Box::new(sm.clone()))
        .await
        .unwrap()
}

async fn start_mem(cfg: &RaftConfig, sm: &ListSm, mem: &MemBackend) -> RaftNode {
    RaftNode::start_with(
        cfg.clone(),
        Box::new(sm.clone()),
        mem.backends(),
        Arc::new(NoPeers),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_apply_in_order_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RaftConfig::standalone(dir.path());

    // A fresh directory forms a one-voter ensemble that leads at once.
    let sm = ListSm::default();
    let t = Instant::now();
    let node = start_disk(&cfg, &sm).await;
    println!("first start to leader: {:?}", t.elapsed());
    let st = node.status();
    assert_eq!(st.role, Role::Leader);
    assert_eq!(st.leader, Some(1));
    assert_eq!(
        st.members,
        BTreeMap::from([(1, "127.0.0.1:2888".to_string())])
    );

    // Each proposal returns its log index after it was applied, in order.
    let mut indexes = Vec::new();
    for i in 0..50 {
        indexes.push(node.propose(payload(i)).await.unwrap());
    }
    let list = sm.list();
    assert_eq!(payloads(&list), (0..50).map(payload).collect::<Vec<_>>());
    assert_eq!(list.iter().map(|(i, _)| *i).collect::<Vec<_>>(), indexes);
    assert!(indexes.windows(2).all(|w| w[0] < w[1]));
    node.shutdown().await;
    assert_eq!(node.status().role, Role::Shutdown);
    assert_eq!(
        node.propose(payload(0)).await,
        Err(ProposeError::ShuttingDown)
    );

    // A restart replays the log into an empty state machine: same entries, same indexes.
    let sm2 = ListSm::default();
    let t = Instant::now();
    let node = start_disk(&cfg, &sm2).await;
    println!("restart to leader: {:?}", t.elapsed());
    assert_eq!(sm2.list(), list);
    assert_eq!(node.status().role, Role::Leader);
    assert!(node.status().term >= 2);

    // It goes on from there.
    let next = node.propose(payload(50)).await.unwrap();
    assert!(next > *indexes.last().unwrap());
    assert_eq!(sm2.list().len(), 51);
    node.shutdown().await;
}

/// Proposes payloads 0, 1, ... (at least `at_least` of them) until a snapshot covers
/// `index`; returns how many were proposed. A snapshot due while the previous one is still
/// being built is skipped, so how many writes it takes depends on the disk's speed.
async fn propose_until_snapshot(node: &RaftNode, at_least: usize, index: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    while n < at_least || node.status().snapshot_index.is_none_or(|s| s < index) {
        assert!(
            Instant::now() < deadline,
            "no snapshot past {index} after {n} writes: {:?}",
            node.status()
        );
        node.propose(payload(n)).await.unwrap();
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_taken_purged_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RaftConfig::standalone(dir.path());
    cfg.snapshot_every_entries = 10;
    cfg.log_entries_kept_behind_snapshot = 3;
    cfg.snapshots_to_keep = 2;

    // Enough proposals for several snapshots (one due while the last is still being built
    // is skipped, as in ZooKeeper, so the writes go on until one covers index 40).
    let sm = ListSm::default();
    let node = start_disk(&cfg, &sm).await;
    let n = propose_until_snapshot(&node, 55, 40).await;
    let list = sm.list();
    node.shutdown().await;

    // Old snapshots are purged down to snapshots_to_keep.
    let snaps = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .count();
    assert!((1..=2).contains(&snaps), "{snaps} snapshot files");

    // A restart restores the newest snapshot, then re-applies the log after it.
    let sm2 = ListSm::default();
    let node = start_disk(&cfg, &sm2).await;
    assert_eq!(sm2.restores.load(Ordering::SeqCst), 1);
    assert_eq!(sm2.list(), list);
    let st = node.status();
    assert!(st.snapshot_index.is_some());
    node.propose(payload(n)).await.unwrap();
    assert_eq!(
        payloads(&sm2.list()),
        (0..=n).map(payload).collect::<Vec<_>>()
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn how_far_a_snapshot_is_behind_counts_writes_not_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RaftConfig::standalone(dir.path());
    cfg.snapshot_every_entries = 1_000_000;
    let sm = ListSm::default();
    let node = start_disk(&cfg, &sm).await;
    let wait = Duration::from_secs(10);
    // Two entries batching 600 writes each: 1,200 writes behind, though only two entries
    // (a load of multis left 558 entries holding ~500k creates, which a count of entries
    // took for "not behind", and the next start replayed them all).
    node.propose(batch_payload(600)).await.unwrap();
    let last = node.propose(batch_payload(600)).await.unwrap();
    let index = node
        .snapshot_if_behind(1_000, wait)
        .await
        .unwrap()
        .expect("1,200 writes behind");
    assert!(index >= last, "snapshot {index}, last write {last}");
    // Writes after it count from zero.
    node.propose(batch_payload(600)).await.unwrap();
    assert_eq!(node.snapshot_if_behind(1_000, wait).await, Ok(None));
    node.shutdown().await;

    // A restart counts what it replays after the snapshot it loaded: the 600 (and the new
    // term's blank entry, which counts one).
    let node = start_disk(&cfg, &ListSm::default()).await;
    assert_eq!(node.snapshot_if_behind(1_000, wait).await, Ok(None));
    assert!(node.snapshot_if_behind(600, wait).await.unwrap().is_some());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_on_request_covers_everything_applied_when_far_enough_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RaftConfig::standalone(dir.path());
    cfg.snapshot_every_entries = 1_000_000;
    let sm = ListSm::default();
    let node = start_disk(&cfg, &sm).await;
    let mut last = 0;
    for i in 0..30 {
        last = node.propose(payload(i)).await.unwrap();
    }
    let wait = Duration::from_secs(10);
    // Not far enough behind: nothing to do.
    assert_eq!(node.snapshot_if_behind(1_000, wait).await, Ok(None));
    assert_eq!(node.status().snapshot_index, None);
    // Far enough: a snapshot of everything applied, saved when this returns.
    let index = node
        .snapshot_if_behind(10, wait)
        .await
        .unwrap()
        .expect("a snapshot");
    assert!(index >= last, "snapshot {index}, last write {last}");
    assert!(node.status().snapshot_index >= Some(last));
    // Now it is not behind at all.
    assert_eq!(node.snapshot_if_behind(1, wait).await, Ok(None));
    node.shutdown().await;

    // The restart restores it and replays nothing before it.
    let sm2 = ListSm::default();
    let node = start_disk(&cfg, &sm2).await;
    assert_eq!(sm2.restores.load(Ordering::SeqCst), 1);
    assert_eq!(
        payloads(&sm2.list()),
        (0..30).map(payload).collect::<Vec<_>>()
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reads_the_newest_snapshot_once() {
    let mem = MemBackend::new();
    let mut cfg = RaftConfig::standalone("/unused");
    cfg.snapshot_every_entries = 10;
    cfg.log_entries_kept_behind_snapshot = 3;

    // Enough proposals for a snapshot, and a few after it.
    let sm = ListSm::default();
    let node = start_mem(&cfg, &sm, &mem).await;
    propose_until_snapshot(&node, 25, 10).await;
    let snapshot = node.status().snapshot_index;
    let list = sm.list();
    node.shutdown().await;

    // The restart restores from the snapshot and replays the tail, reading the file once
    // (openraft asks for the current snapshot again after installing it).
    let before = mem.snapshot_loads();
    let sm2 = ListSm::default();
    let node = start_mem(&cfg, &sm2, &mem).await;
    assert_eq!(sm2.restores.load(Ordering::SeqCst), 1);
    assert_eq!(sm2.list(), list);
    assert_eq!(
        mem.snapshot_loads() - before,
        1,
        "snapshot reads at restart"
    );
    assert!(node.status().snapshot_index >= snapshot);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_index_is_a_barrier_on_the_leader() {
    let mem = MemBackend::new();
    let cfg = RaftConfig::standalone("/unused");
    let sm = ListSm::default();
    let node = start_mem(&cfg, &sm, &mem).await;
    // The barrier succeeds on the leader, and what was committed before it is applied.
    let last = node.propose(payload(1)).await.unwrap();
    node.read_index().await.unwrap();
    assert_eq!(sm.list().last().map(|(i, _)| *i), Some(last));
    // Status is published asynchronously and catches up.
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.status().last_applied < Some(last) {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    node.shutdown().await;
    assert_eq!(node.read_index().await, Err(ProposeError::ShuttingDown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_the_node() {
    let mem = MemBackend::new();
    let cfg = RaftConfig::standalone("/unused");
    let sm = ListSm::default();
    let node = start_mem(&cfg, &sm, &mem).await;
    node.propose(payload(0)).await.unwrap();
    let applied_before = sm.list().len();

    // The disk starts failing fsyncs: the entry must not be applied, the node must stop.
    mem.fail_syncs(true);
    let err = tokio::time::timeout(Duration::from_secs(10), node.propose(payload(1)))
        .await
        .expect("a failed fsync must not hang the proposal");
    assert!(
        matches!(err, Err(ProposeError::Fatal(ref m)) if m.contains("fsync")),
        "{err:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), node.stopped())
        .await
        .expect("the node stops");
    assert_eq!(node.status().role, Role::Shutdown);
    assert!(node.failure().unwrap().contains("injected fsync failure"));
    assert_eq!(
        sm.list().len(),
        applied_before,
        "nothing applied past the failure"
    );

    // Even if the disk recovers, the node does not limp on.
    mem.fail_syncs(false);
    assert!(matches!(
        node.propose(payload(2)).await,
        Err(ProposeError::Fatal(_))
    ));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_get_distinct_indexes_and_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RaftConfig::standalone(dir.path());
    let sm = ListSm::default();
    let node = Arc::new(start_disk(&cfg, &sm).await);
    let before = node.io_stats();

    // 1000 proposals in flight at once from 1000 tasks.
    const N: usize = 1000;
    let t = Instant::now();
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let node = node.clone();
            tokio::spawn(async move { node.propose(payload(i)).await.unwrap() })
        })
        .collect();
    let mut indexes = Vec::new();
    for t in tasks {
        indexes.push(t.await.unwrap());
    }
    let elapsed = t.elapsed();
    let stats = node.io_stats();
    let fsyncs = stats.fsyncs - before.fsyncs;
    let entries = stats.entries - before.entries;
    println!(
        "{N} concurrent proposals: {elapsed:?}, {:.0}/s, {entries} entries in {fsyncs} fsyncs",
        N as f64 / elapsed.as_secs_f64()
    );

    // Every proposal got its own index and was applied exactly once.
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), N);
    let applied = sm.list();
    assert_eq!(applied.len(), N);
    let mut got: Vec<Vec<u8>> = payloads(&applied);
    got.sort();
    let mut want: Vec<Vec<u8>> = (0..N).map(payload).collect();
    want.sort();
    assert_eq!(got, want);

    // Group commit: many entries share each fsync.
    assert!(entries >= N as u64);
    assert!(
        fsyncs < entries / 2,
        "{fsyncs} fsyncs for {entries} entries"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_proposals_survive_a_crash_and_eio_stops_the_node() {
    use warren_storage::{Disk, FaultyDisk};
    let disk = FaultyDisk::new(7);
    let dyn_disk: Arc<dyn Disk> = Arc::new(disk.clone());
    let data = std::path::Path::new("/data");
    let cfg = RaftConfig::standalone(data);
    let open = |d: &Arc<dyn Disk>| warren_raft::storage::open_on(d.clone(), data).unwrap();

    // Twenty acknowledged proposals through the real stores.
    let sm = ListSm::default();
    let node = RaftNode::start_with(
        cfg.clone(),
        Box::new(sm.clone()),
        open(&dyn_disk),
        Arc::new(NoPeers),
    )
    .await
    .unwrap();
    for i in 0..20 {
        node.propose(payload(i)).await.unwrap();
    }
    let acked = sm.list();

    // The next disk operation fails: the proposal fails and the node stops.
    disk.inject_eio(1);
    let r = tokio::time::timeout(Duration::from_secs(10), node.propose(payload(20)))
        .await
        .expect("EIO must not hang a proposal");
    assert!(matches!(r, Err(ProposeError::Fatal(_))), "{r:?}");
    tokio::time::timeout(Duration::from_secs(10), node.stopped())
        .await
        .expect("the node stops");
    node.shutdown().await;

    // Power loss, torn writes included; what was acknowledged is still there, in order.
    disk.crash_torn();
    let sm2 = ListSm::default();
    let node = RaftNode::start_with(
        cfg.clone(),
        Box::new(sm2.clone()),
        open(&dyn_disk),
        Arc::new(NoPeers),
    )
    .await
    .unwrap();
    let recovered = sm2.list();
    assert!(recovered.len() <= acked.len() + 1);
    assert_eq!(recovered[..acked.len()], acked[..]);
    node.propose(payload(21)).await.unwrap();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_lives_in_its_own_directory_when_one_is_given() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let cfg = RaftConfig {
        log_dir: Some(logs.path().to_path_buf()),
        ..RaftConfig::standalone(data.path())
    };

    // Phase 1: entries go to the log directory; meta stays in the data directory.
    let sm = ListSm::default();
    let node = start_disk(&cfg, &sm).await;
    for i in 0..10 {
        node.propose(payload(i)).await.unwrap();
    }
    node.shutdown().await;
    let segments = |d: &std::path::Path| std::fs::read_dir(d.join("log")).map_or(0, |r| r.count());
    assert!(
        segments(logs.path()) > 0,
        "segments under the log directory"
    );
    assert_eq!(
        segments(data.path()),
        0,
        "no segments under the data directory"
    );
    assert!(data.path().join("meta").exists());

    // Phase 2: a restart with the same two directories replays everything.
    let sm2 = ListSm::default();
    let node = start_disk(&cfg, &sm2).await;
    assert_eq!(sm2.list(), sm.list());
    node.shutdown().await;
}
