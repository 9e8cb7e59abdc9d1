//! The durable files warren-raft writes through, as three small traits.
//!
//! They mirror warren-storage's `SegmentLog`, `MetaStore` and `SnapshotStore` one call for
//! one call, so the real implementation (`storage.rs`) is a thin adapter, and tests can run the
//! same Raft code over [`MemBackend`], an in-memory twin that counts fsyncs and can be told
//! to fail.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A storage failure, already rendered for the operator; the node stops on any of them.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// Shorthand for backend results.
pub type BackendResult<T> = Result<T, BackendError>;

/// Disk work the log's I/O thread hands off: a purge's (see [`LogBackend::purge_to`]), run in
/// order on the disk-work thread, or a spare segment's (see [`LogBackend::background_work`]),
/// run on a thread of its own.
pub type DiskWork = Box<dyn FnOnce() -> BackendResult<()> + Send>;

/// The Raft log: `(index, bytes)` records with contiguous indexes.
pub trait LogBackend: Send + 'static {
    /// Appends records; their indexes continue the log (or start it after a purge).
    fn append(&mut self, records: &[(u64, &[u8])]) -> BackendResult<()>;
    /// Makes every appended record durable.
    fn sync(&mut self) -> BackendResult<()>;
    /// Reads the records whose index is in `range` (those the log holds).
    fn read(&self, range: Range<u64>) -> BackendResult<Vec<(u64, Vec<u8>)>>;
    /// Removes the records with index `>= index` (durably).
    fn truncate_from(&mut self, index: u64) -> BackendResult<()>;
    /// Removes the records with index `<= index` at once (reads, `first_index` and appends
    /// see them gone). The disk work that makes it durable and frees the space, if any, is
    /// returned for the caller to run off its I/O thread, in purge order, before the log is
    /// opened again; until it has run, a crash leaves the records on disk (the meta's purge
    /// point, saved first, says they are to be cut again).
    fn purge_to(&mut self, index: u64) -> BackendResult<Option<DiskWork>>;
    /// Disk work that makes later writes cheaper, when some is due (the real log: filling
    /// the zero-filled spare its next segment will be made from, at the pace of the log's
    /// writes, so it may last long). The caller runs it on a thread of its own, not behind
    /// or ahead of purges, and calls [`LogBackend::abandon_background_work`] before waiting
    /// for it; a failure is a failed write of the log.
    fn background_work(&mut self) -> Option<DiskWork> {
        None
    }
    /// The log is stopping: background work under way may stop early.
    fn abandon_background_work(&mut self) {}
    /// The first index held, if any.
    fn first_index(&self) -> Option<u64>;
    /// The last index held, if any.
    fn last_index(&self) -> Option<u64>;
}

/// One small blob replaced atomically (Raft's vote, committed and purged log ids).
pub trait MetaBackend: Send + 'static {
    /// The last blob saved, if any.
    fn load(&self) -> BackendResult<Option<Vec<u8>>>;
    /// Replaces the blob, durably, before returning.
    fn save(&mut self, blob: &[u8]) -> BackendResult<()>;
}

/// A snapshot as stored: the last index it covers, its metadata and its data.
pub type StoredSnapshot = (u64, Vec<u8>, Vec<u8>);

/// Snapshot files.
pub trait SnapshotBackend: Send + 'static {
    /// Saves a snapshot durably.
    fn save(&mut self, index: u64, meta: &[u8], data: &[u8]) -> BackendResult<()>;
    /// [`SnapshotBackend::save`] of owned data, which the store may release as soon as it
    /// is written, before the data is durable.
    fn save_owned(&mut self, index: u64, meta: &[u8], data: Vec<u8>) -> BackendResult<()> {
        self.save(index, meta, &data)
    }
    /// The snapshot with the greatest index, if any.
    fn load_latest(&self) -> BackendResult<Option<StoredSnapshot>>;
    /// Keeps the newest `keep` snapshots and removes the rest.
    fn purge(&mut self, keep: usize) -> BackendResult<()>;
}

/// The three stores of one data directory.
pub struct Backends {
    /// The log.
    pub log: Box<dyn LogBackend>,
    /// The meta blob.
    pub meta: Box<dyn MetaBackend>,
    /// The snapshots.
    pub snapshots: Box<dyn SnapshotBackend>,
}

/// What survives a "crash" of [`MemBackend`]: only what was synced.
#[derive(Default)]
struct MemDisk {
    /// Durable log records.
    log: BTreeMap<u64, Vec<u8>>,
    meta: Option<Vec<u8>>,
    snapshots: BTreeMap<u64, (Vec<u8>, Vec<u8>)>,
}

/// An in-memory data directory for tests: log appends become durable only at `sync`, the
/// meta blob and snapshots at once. Clone it to "restart" on the same durable state.
#[derive(Clone, Default)]
pub struct MemBackend {
    disk: Arc<Mutex<MemDisk>>,
    fsyncs: Arc<AtomicU64>,
    snapshot_loads: Arc<AtomicU64>,
    fail_sync: Arc<AtomicBool>,
}

impl MemBackend {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many log fsyncs have been done.
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::SeqCst)
    }

    /// How many times a snapshot has been loaded (read whole) from this directory.
    pub fn snapshot_loads(&self) -> u64 {
        self.snapshot_loads.load(Ordering::SeqCst)
    }

    /// From now on every log `sync` fails (an EIO from the disk).
    pub fn fail_syncs(&self, fail: bool) {
        self.fail_sync.store(fail, Ordering::SeqCst);
    }

    /// The three stores over this directory.
    pub fn backends(&self) -> Backends {
        let durable = lock(&self.disk).log.clone();
        Backends {
            log: Box::new(MemLog {
                owner: self.clone(),
                records: durable,
                unsynced_from: None,
            }),
            meta: Box::new(MemMeta(self.clone())),
            snapshots: Box::new(MemSnapshots(self.clone())),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().expect("a MemBackend lock holder never panics")
}

struct MemLog {
    owner: MemBackend,
    /// What a reader sees: durable records plus unsynced appends.
    records: BTreeMap<u64, Vec<u8>>,
    /// The first index appended since the last sync.
    unsynced_from: Option<u64>,
}

impl LogBackend for MemLog {
    fn append(&mut self, records: &[(u64, &[u8])]) -> BackendResult<()> {
        for (index, bytes) in records {
            if let Some(last) = self.last_index()
                && *index != last + 1
            {
                return Err(BackendError(format!("append of {index} after {last}")));
            }
            self.records.insert(*index, bytes.to_vec());
            self.unsynced_from.get_or_insert(*index);
        }
        Ok(())
    }

    fn sync(&mut self) -> BackendResult<()> {
        if self.owner.fail_sync.load(Ordering::SeqCst) {
            return Err(BackendError("injected fsync failure".into()));
        }
        self.owner.fsyncs.fetch_add(1, Ordering::SeqCst);
        if let Some(from) = self.unsynced_from.take() {
            let mut disk = lock(&self.owner.disk);
            for (i, b) in self.records.range(from..) {
                disk.log.insert(*i, b.clone());
            }
        }
        Ok(())
    }

    fn read(&self, range: Range<u64>) -> BackendResult<Vec<(u64, Vec<u8>)>> {
        Ok(self
            .records
            .range(range)
            .map(|(i, b)| (*i, b.clone()))
            .collect())
    }

    fn truncate_from(&mut self, index: u64) -> BackendResult<()> {
        self.records.split_off(&index);
        lock(&self.owner.disk).log.split_off(&index);
        if self.unsynced_from.is_some_and(|u| u >= index) {
            self.unsynced_from = None;
        }
        Ok(())
    }

    fn purge_to(&mut self, index: u64) -> BackendResult<Option<DiskWork>> {
        self.records = self.records.split_off(&(index + 1));
        let mut disk = lock(&self.owner.disk);
        disk.log = disk.log.split_off(&(index + 1));
        Ok(None)
    }

    fn first_index(&self) -> Option<u64> {
        self.records.keys().next().copied()
    }

    fn last_index(&self) -> Option<u64> {
        self.records.keys().next_back().copied()
    }
}

struct MemMeta(MemBackend);

impl MetaBackend for MemMeta {
    fn load(&self) -> BackendResult<Option<Vec<u8>>> {
        Ok(lock(&self.0.disk).meta.clone())
    }

    fn save(&mut self, blob: &[u8]) -> BackendResult<()> {
        lock(&self.0.disk).meta = Some(blob.to_vec());
        Ok(())
    }
}

struct MemSnapshots(MemBackend);

impl SnapshotBackend for MemSnapshots {
    fn save(&mut self, index: u64, meta: &[u8], data: &[u8]) -> BackendResult<()> {
        lock(&self.0.disk)
            .snapshots
            .insert(index, (meta.to_vec(), data.to_vec()));
        Ok(())
    }

    fn load_latest(&self) -> BackendResult<Option<StoredSnapshot>> {
        let disk = lock(&self.0.disk);
        if !disk.snapshots.is_empty() {
            self.0.snapshot_loads.fetch_add(1, Ordering::SeqCst);
        }
        Ok(disk
            .snapshots
            .iter()
            .next_back()
            .map(|(i, (m, d))| (*i, m.clone(), d.clone())))
    }

    fn purge(&mut self, keep: usize) -> BackendResult<()> {
        let mut disk = lock(&self.0.disk);
        while disk.snapshots.len() > keep {
            disk.snapshots.pop_first();
        }
        Ok(())
    }
}
