//! `SnapshotStore`: state-machine snapshots, one file each, saved atomically.
//!
//! File `snap-<index, 20 digits>.snap` (little-endian):
//! ```text
//! header (40 bytes): magic b"WRNSNAP\0" | format_version u32 | data_version u32 | index u64
//!                    | meta_len u32 | data_len u64 | crc32c u32 over the first 36 bytes
//! body:              meta | data | crc32c u32 over (meta ++ data)
//! ```
//! Saving writes `<name>.tmp`, fsyncs it, renames it and fsyncs the directory; a leftover temp
//! file (a save interrupted by a crash) is never read and is removed at open.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blob::{self, TMP_SUFFIX, u32_at, u64_at};
use crate::crc::{crc32c, crc32c_append};
use crate::disk::{Disk, read_all};
use crate::error::{Result, StorageError, corrupt, io_err};
use crate::remove::remove_gradually;
use crate::{DATA_VERSION, FORMAT_VERSION};

const MAGIC: &[u8; 8] = b"WRNSNAP\0";
const HEADER_BYTES: usize = 40;
const PREFIX: &str = "snap-";
/// A snapshot is fsynced every this many bytes while it is written (`blob::write_tmp_paced`):
/// the log's fsyncs never queue behind more than this much of it.
const SYNC_EVERY_BYTES: usize = 8 << 20;
const SUFFIX: &str = ".snap";

/// ZooKeeper's `autopurge.snapRetainCount` default: how many snapshots `purge` keeps.
pub const SNAPSHOTS_KEPT_DEFAULT: usize = 3;

/// A loaded snapshot: the index it was named by, its metadata and its data.
pub type Snapshot = (u64, Vec<u8>, Vec<u8>);

/// Snapshot files in one directory.
#[derive(Debug)]
pub struct SnapshotStore {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
}

impl SnapshotStore {
    /// Opens the store in `dir` (created if missing), removing temp files of interrupted saves.
    pub fn open(disk: Arc<dyn Disk>, dir: &Path) -> Result<SnapshotStore> {
        disk.create_dir_all(dir)
            .map_err(io_err(dir, "create dir"))?;
        blob::remove_tmp_files(disk.as_ref(), dir)?;
        Ok(SnapshotStore {
            disk,
            dir: dir.to_path_buf(),
        })
    }

    /// Saves a snapshot named by `name_index` (replacing one of the same index); durable and
    /// complete when this returns, invisible if it does not.
    ///
    /// The file is written from its parts (header, meta, data, checksum): the data, which
    /// may be hundreds of MB, is never copied.
    pub fn save(&mut self, name_index: u64, meta: &[u8], data: &[u8]) -> Result<()> {
        let (path, header, trailer) = self.prepare(name_index, meta, data)?;
        let parts = [&header[..], meta, data, &trailer];
        let file = blob::write_tmp_paced(self.disk.as_ref(), &path, &parts, SYNC_EVERY_BYTES)?;
        blob::finish_tmp(self.disk.as_ref(), &path, file)?;
        tracing::info!(file = %path.display(), index = name_index, bytes = data.len(), "snapshot saved");
        Ok(())
    }

    /// [`SnapshotStore::save`] of owned data, released as soon as it is written to the
    /// file, before the fsync (which, for a large snapshot on a busy disk, can take
    /// seconds): the process does not hold the snapshot's memory while the disk catches up.
    pub fn save_owned(&mut self, name_index: u64, meta: &[u8], data: Vec<u8>) -> Result<()> {
        let (path, header, trailer) = self.prepare(name_index, meta, &data)?;
        let parts = [&header[..], meta, &data, &trailer];
        let file = blob::write_tmp_paced(self.disk.as_ref(), &path, &parts, SYNC_EVERY_BYTES)?;
        let bytes = data.len();
        drop(data);
        blob::finish_tmp(self.disk.as_ref(), &path, file)?;
        tracing::info!(file = %path.display(), index = name_index, bytes, "snapshot saved");
        Ok(())
    }

    /// The path, header and trailer of a snapshot file, checked.
    fn prepare(
        &self,
        name_index: u64,
        meta: &[u8],
        data: &[u8],
    ) -> Result<(PathBuf, Vec<u8>, [u8; 4])> {
        let path = self.path_of(name_index);
        let (header, trailer) = encode(name_index, meta, data)?;
        // The write half of the checksum pair: the header must read back as what we are
        // about to write, and the checksum must cover meta and data as a reader takes them.
        let total = (header.len() + meta.len() + data.len() + trailer.len()) as u64;
        let (index, meta_len, data_len) = decode_header(&path, &header, total)?;
        assert!(
            index == name_index && meta_len == meta.len() && data_len == data.len(),
            "encoded snapshot header {name_index} does not re-read"
        );
        assert_eq!(
            trailer,
            crc32c_append(crc32c(meta), data).to_le_bytes(),
            "snapshot {name_index} checksum"
        );
        Ok((path, header, trailer))
    }

    /// The snapshot with the highest index, checked, or `None` if there is none. A damaged
    /// newest snapshot is an error, not a reason to fall back silently to an older one.
    pub fn load_latest(&self) -> Result<Option<Snapshot>> {
        let Some(&index) = self.indexes()?.last() else {
            return Ok(None);
        };
        self.load(index).map(Some)
    }

    /// The snapshot named by `index`, checked.
    pub fn load(&self, index: u64) -> Result<Snapshot> {
        let path = self.path_of(index);
        let file = self.disk.open(&path).map_err(io_err(&path, "open"))?;
        let bytes = read_all(file.as_ref()).map_err(io_err(&path, "read"))?;
        let (found, meta, data) = decode(&path, bytes)?;
        if found != index {
            return Err(corrupt(
                &path,
                16,
                format!("header says index {found}, file name says {index}"),
            ));
        }
        Ok((index, meta, data))
    }

    /// Indexes of the snapshots present, ascending.
    pub fn indexes(&self) -> Result<Vec<u64>> {
        let names = self
            .disk
            .list_dir(&self.dir)
            .map_err(io_err(&self.dir, "list"))?;
        let mut out: Vec<u64> = names.iter().filter_map(|n| parse_name(n)).collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Removes all but the newest `keep` snapshots (at least one is always kept).
    pub fn purge(&mut self, keep: usize) -> Result<()> {
        let indexes = self.indexes()?;
        let keep = keep.max(1);
        if indexes.len() <= keep {
            return Ok(());
        }
        let doomed = &indexes[..indexes.len() - keep];
        let paths: Vec<PathBuf> = doomed.iter().map(|&i| self.path_of(i)).collect();
        remove_gradually(self.disk.as_ref(), &self.dir, &paths)?;
        tracing::info!(dir = %self.dir.display(), removed = doomed.len(), "old snapshots purged");
        Ok(())
    }

    /// The path of the snapshot named by `index`.
    pub fn path_of(&self, index: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{index:020}{SUFFIX}"))
    }
}

fn parse_name(name: &str) -> Option<u64> {
    if name.ends_with(TMP_SUFFIX) {
        return None;
    }
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header and the trailing checksum of a snapshot file; meta and data go between.
fn encode(index: u64, meta: &[u8], data: &[u8]) -> Result<(Vec<u8>, [u8; 4])> {
    let meta_len = u32::try_from(meta.len()).map_err(|_| StorageError::InvalidAppend {
        reason: format!("snapshot meta of {} bytes exceeds u32", meta.len()),
    })?;
    let mut out = Vec::with_capacity(HEADER_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&DATA_VERSION.to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&meta_len.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let header_crc = crc32c(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    let body_crc = crc32c_append(crc32c(meta), data);
    Ok((out, body_crc.to_le_bytes()))
}

/// Checks the header of a file of `total` bytes: returns the index, meta and data lengths.
fn decode_header(file: &Path, bytes: &[u8], total: u64) -> Result<(u64, usize, usize)> {
    blob::check_preamble(file, bytes, HEADER_BYTES, MAGIC, "snapshot ")?;
    let (want, got) = (u32_at(bytes, 36), crc32c(&bytes[..36]));
    if want != got {
        return Err(corrupt(
            file,
            36,
            format!("header checksum {got:#010x}, expected {want:#010x}"),
        ));
    }
    let data_version = u32_at(bytes, 12);
    if data_version > DATA_VERSION {
        return Err(StorageError::UnsupportedVersion {
            file: file.to_path_buf(),
            found: data_version,
            supported: DATA_VERSION,
        });
    }
    let index = u64_at(bytes, 16);
    let meta_len = u64::from(u32_at(bytes, 24));
    let data_len = u64_at(bytes, 28);
    let body = total - HEADER_BYTES as u64;
    let want_body = meta_len
        .checked_add(data_len)
        .and_then(|n| n.checked_add(4));
    if want_body != Some(body) {
        return Err(corrupt(
            file,
            HEADER_BYTES as u64,
            format!(
                "header says {meta_len} meta + {data_len} data bytes, file has {body} after the header"
            ),
        ));
    }
    Ok((index, meta_len as usize, data_len as usize))
}

/// Checks a whole file and splits it into index, meta and data. The data keeps the file's
/// buffer (moved down over the header and meta, the checksum cut off): no second copy.
fn decode(file: &Path, mut bytes: Vec<u8>) -> Result<Snapshot> {
    let (index, meta_len, data_len) = decode_header(file, &bytes, bytes.len() as u64)?;
    let meta_end = HEADER_BYTES + meta_len;
    let data_end = meta_end + data_len;
    let (meta, data) = (&bytes[HEADER_BYTES..meta_end], &bytes[meta_end..data_end]);
    let (want, got) = (u32_at(&bytes, data_end), crc32c_append(crc32c(meta), data));
    if want != got {
        return Err(corrupt(
            file,
            HEADER_BYTES as u64,
            format!(
                "body checksum {got:#010x}, expected {want:#010x} (stored at offset {data_end})"
            ),
        ));
    }
    let meta = meta.to_vec();
    bytes.truncate(data_end);
    bytes.drain(..meta_end);
    Ok((index, meta, bytes))
}
