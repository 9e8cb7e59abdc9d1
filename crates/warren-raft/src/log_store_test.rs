//! The I/O thread on its own: group commit across separate `append` calls, completion only
//! after the covering fsync, reads of unsynced entries, truncate and purge, reopen.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
use openraft::type_config::TypeConfigExt;

use super::{IoCounters, LogStore};
use crate::backend::{BackendResult, DiskWork, LogBackend, MemBackend};
use crate::types::{Entry, EntryPayload, Payload, TypeConfig, log_id};

/// A log whose fsync is slow and which publishes how far it has synced and how many append
/// calls (writes) it had.
struct SlowLog {
    inner: Box<dyn LogBackend>,
    last_written: u64,
    synced_upto: Arc<AtomicU64>,
    writes: Arc<AtomicU64>,
}

impl LogBackend for SlowLog {
    fn append(&mut self, records: &[(u64, &[u8])]) -> BackendResult<()> {
        self.last_written = records.last().map_or(self.last_written, |r| r.0);
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.append(records)
    }
    fn sync(&mut self) -> BackendResult<()> {
        std::thread::sleep(Duration::from_millis(5));
        self.inner.sync()?;
        self.synced_upto.store(self.last_written, Ordering::SeqCst);
        Ok(())
    }
    fn read(&self, range: Range<u64>) -> BackendResult<Vec<(u64, Vec<u8>)>> {
        self.inner.read(range)
    }
    fn truncate_from(&mut self, index: u64) -> BackendResult<()> {
        self.inner.truncate_from(index)
    }
    fn purge_to(&mut self, index: u64) -> BackendResult<Option<DiskWork>> {
        self.inner.purge_to(index)
    }
    fn first_index(&self) -> Option<u64> {
        self.inner.first_index()
    }
    fn last_index(&self) -> Option<u64> {
        self.inner.last_index()
    }
}

fn entry(index: u64) -> Entry {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(Payload(Bytes::from(format!("e{index}")))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_complete_only_after_their_fsync_and_share_it_and_their_write() {
    let mem = MemBackend::new();
    let synced_upto = Arc::new(AtomicU64::new(0));
    let writes = Arc::new(AtomicU64::new(0));
    let b = mem.backends();
    let log = SlowLog {
        inner: b.log,
        last_written: 0,
        synced_upto: synced_upto.clone(),
        writes: writes.clone(),
    };
    let counters = Arc::new(IoCounters::default());
    let (mut store, io) = LogStore::open(Box::new(log), b.meta, counters.clone()).unwrap();

    // 200 separate appends, one entry each, issued without waiting for the disk.
    let n = 200u64;
    let violations = Arc::new(Mutex::new(Vec::new()));
    let mut waits = Vec::new();
    for i in 1..=n {
        let (tx, rx) = TypeConfig::oneshot();
        store
            .append([entry(i)], IOFlushed::signal(tx))
            .await
            .unwrap();
        // Readable at once, before any fsync.
        assert_eq!(
            store.try_get_log_entries(i..i + 1).await.unwrap(),
            vec![entry(i)]
        );
        let synced = synced_upto.clone();
        let violations = violations.clone();
        waits.push(tokio::spawn(async move {
            rx.await.unwrap().unwrap();
            // Told durable: the fsync covering it must already have returned.
            if synced.load(Ordering::SeqCst) < i {
                violations.lock().unwrap().push(i);
            }
        }));
    }
    for w in waits {
        w.await.unwrap();
    }
    assert!(
        violations.lock().unwrap().is_empty(),
        "{:?}",
        violations.lock().unwrap()
    );
    let fsyncs = counters.fsyncs.load(Ordering::SeqCst);
    assert!(fsyncs < n / 2, "{fsyncs} fsyncs for {n} appends");
    // The appends queued behind one fsync are written by one call, not one call each.
    let writes = writes.load(Ordering::SeqCst);
    assert!(writes < n / 2, "{writes} writes for {n} appends");

    // Truncate and purge go through the same queue, in order.
    store.truncate_after(Some(log_id(1, 150))).await.unwrap();
    store.purge(log_id(1, 10)).await.unwrap();
    let all = store.try_get_log_entries(0..1000).await.unwrap();
    assert_eq!(all.first().map(|e| e.log_id.index), Some(11));
    assert_eq!(all.last().map(|e| e.log_id.index), Some(150));
    io.stop().await.unwrap();
    drop(store);

    // Reopen: the same log, the purge point remembered.
    let b = mem.backends();
    let (mut store, io) = LogStore::open(b.log, b.meta, Arc::new(IoCounters::default())).unwrap();
    let st = store.get_log_state().await.unwrap();
    assert_eq!(st.last_purged_log_id, Some(log_id(1, 10)));
    assert_eq!(st.last_log_id, Some(log_id(1, 150)));
    let all = store.try_get_log_entries(0..1000).await.unwrap();
    assert_eq!(all.len(), 140);
    assert_eq!(all[0], entry(11));
    io.stop().await.unwrap();
}

/// Appends these entries one at a time, each waited for until durable.
async fn append_durably(store: &mut LogStore, indexes: std::ops::RangeInclusive<u64>) {
    for i in indexes {
        let (tx, rx) = TypeConfig::oneshot();
        store
            .append([entry(i)], IOFlushed::signal(tx))
            .await
            .unwrap();
        rx.await.unwrap().unwrap();
    }
}

/// The committed log id is a hint for the next start: commits wake the I/O thread for it at
/// most once per `COMMITTED_SAVE_INTERVAL`, yet every meta save (here a purge's) and the
/// stop write the newest id the log holds durably.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_meta_save_and_the_stop_write_the_newest_committed_id() {
    let mem = MemBackend::new();
    let saved = || {
        mem.backends()
            .meta
            .load()
            .unwrap()
            .and_then(|b| crate::codec::decode_hard_state(&b).unwrap().committed)
    };
    let b = mem.backends();
    let (mut store, io) = LogStore::open(b.log, b.meta, Arc::new(IoCounters::default())).unwrap();
    append_durably(&mut store, 1..=10).await;
    // The first wakes the I/O thread, the next ones come within the interval and do not.
    for i in [3, 5] {
        store.save_committed(Some(log_id(1, i))).await.unwrap();
    }
    store.purge(log_id(1, 2)).await.unwrap();
    assert_eq!(saved(), Some(log_id(1, 5)), "a purge saves the newest id");
    // Committed past what this log holds (a leader whose followers have entries it has not
    // written yet): not saved until the log holds it, or a restart could not re-apply it.
    store.save_committed(Some(log_id(1, 12))).await.unwrap();
    store.purge(log_id(1, 3)).await.unwrap();
    assert_eq!(
        saved(),
        Some(log_id(1, 5)),
        "never past the log's durable end"
    );
    append_durably(&mut store, 11..=12).await;
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 12)));
    io.stop().await.unwrap();
    assert_eq!(saved(), Some(log_id(1, 12)), "the stop saves the newest id");
    drop(store);

    let b = mem.backends();
    let (mut store, io) = LogStore::open(b.log, b.meta, Arc::new(IoCounters::default())).unwrap();
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 12)));
    io.stop().await.unwrap();
}
