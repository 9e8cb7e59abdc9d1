//! The real stores of a data directory: warren-storage's `SegmentLog`, `MetaStore` and
//! `SnapshotStore` behind this crate's backend traits.
//!
//! Layout (warren-storage's `DataDir`): `VERSION`, `log/` (segments and the purge point),
//! `meta/` (vote, committed, purged log id), `snapshots/`.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use warren_storage::{
    DataDir, Disk, LogOptions, MetaStore, RealDisk, SegmentLog, SnapshotStore, StorageError,
};

use crate::backend::{
    BackendError, BackendResult, Backends, DiskWork, LogBackend, MetaBackend, SnapshotBackend,
    StoredSnapshot,
};

/// Bytes of record header warren-storage adds to each log record (counted in its batch limit).
const RECORD_HEADER_BYTES: usize = 16;

fn err(e: StorageError) -> BackendError {
    BackendError(e.to_string())
}

/// Opens (creating if needed) the stores on the real filesystem: the log under `log_dir`
/// when given, the rest under `data_dir`.
pub(crate) fn open(data_dir: &Path, log_dir: Option<&Path>) -> Result<Backends, crate::RaftError> {
    open_split_on(Arc::new(RealDisk::new()), data_dir, log_dir)
}

/// Opens the stores of `data_dir` on `disk` (the real one, or warren-storage's `FaultyDisk`).
pub fn open_on(disk: Arc<dyn Disk>, data_dir: &Path) -> Result<Backends, crate::RaftError> {
    open_split_on(disk, data_dir, None)
}

/// Opens the stores with the log under `log_dir` when given (ZooKeeper's `dataLogDir`, so
/// the log can have a disk of its own) and meta and snapshots under `data_dir` (ZooKeeper's
/// `dataDir`). Each directory is a `DataDir` with its own `VERSION`.
pub fn open_split_on(
    disk: Arc<dyn Disk>,
    data_dir: &Path,
    log_dir: Option<&Path>,
) -> Result<Backends, crate::RaftError> {
    let storage = |e: StorageError| crate::RaftError::Storage(e.to_string());
    let dir = DataDir::open(disk.clone(), data_dir).map_err(storage)?;
    let log_root = match log_dir {
        Some(l) if l != data_dir => DataDir::open(disk.clone(), l).map_err(storage)?,
        _ => dir.clone(),
    };
    let (log, report) = SegmentLog::open(disk.clone(), &log_root.log_dir(), LogOptions::default())
        .map_err(storage)?;
    if let Some(torn) = &report.torn_tail {
        tracing::warn!(
            file = %torn.file.display(),
            offset = torn.offset,
            bytes = torn.bytes_cut,
            reason = %torn.reason,
            "cut a torn tail of the log (a write interrupted by a crash)"
        );
    }
    let meta = MetaStore::open(disk.clone(), &dir.meta_dir()).map_err(storage)?;
    let snapshots = SnapshotStore::open(disk, &dir.snapshot_dir()).map_err(storage)?;
    Ok(Backends {
        log: Box::new(Log(log)),
        meta: Box::new(Meta(meta)),
        snapshots: Box::new(Snapshots(snapshots)),
    })
}

struct Log(SegmentLog);

impl LogBackend for Log {
    fn append(&mut self, records: &[(u64, &[u8])]) -> BackendResult<()> {
        // warren-storage refuses one call larger than its group-commit window: split the
        // batch (it fsyncs early between the parts if it must, never skips one).
        let max = self.0.options().batch_bytes_max as usize;
        let mut start = 0;
        while start < records.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < records.len()
                && (end == start || bytes + RECORD_HEADER_BYTES + records[end].1.len() <= max)
            {
                bytes += RECORD_HEADER_BYTES + records[end].1.len();
                end += 1;
            }
            self.0.append(&records[start..end]).map_err(err)?;
            start = end;
        }
        Ok(())
    }

    fn sync(&mut self) -> BackendResult<()> {
        self.0.sync().map_err(err)
    }

    fn read(&self, range: Range<u64>) -> BackendResult<Vec<(u64, Vec<u8>)>> {
        self.0.read(range).map_err(err)
    }

    fn truncate_from(&mut self, index: u64) -> BackendResult<()> {
        self.0.truncate_from(index).map_err(err)
    }

    fn purge_to(&mut self, index: u64) -> BackendResult<Option<DiskWork>> {
        let files = self.0.begin_purge(index).map_err(err)?;
        if files.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::new(move || files.run().map_err(err))))
    }

    fn background_work(&mut self) -> Option<DiskWork> {
        let fill = self.0.spare_work()?;
        Some(Box::new(move || fill.run().map_err(err)))
    }

    fn abandon_background_work(&mut self) {
        self.0.abandon_spare();
    }

    fn first_index(&self) -> Option<u64> {
        self.0.first_index()
    }

    fn last_index(&self) -> Option<u64> {
        self.0.last_index()
    }
}

struct Meta(MetaStore);

impl MetaBackend for Meta {
    fn load(&self) -> BackendResult<Option<Vec<u8>>> {
        self.0.load().map_err(err)
    }

    fn save(&mut self, blob: &[u8]) -> BackendResult<()> {
        self.0.save(blob).map_err(err)
    }
}

struct Snapshots(SnapshotStore);

impl SnapshotBackend for Snapshots {
    fn save(&mut self, index: u64, meta: &[u8], data: &[u8]) -> BackendResult<()> {
        self.0.save(index, meta, data).map_err(err)
    }

    fn save_owned(&mut self, index: u64, meta: &[u8], data: Vec<u8>) -> BackendResult<()> {
        self.0.save_owned(index, meta, data).map_err(err)
    }

    fn load_latest(&self) -> BackendResult<Option<StoredSnapshot>> {
        self.0.load_latest().map_err(err)
    }

    fn purge(&mut self, keep: usize) -> BackendResult<()> {
        self.0.purge(keep).map_err(err)
    }
}
