//! Small whole-file blobs written atomically: the meta file, the log's purge point, `VERSION`.
//!
//! Format (little-endian):
//! ```text
//! magic [u8; 8] | format_version u32 | data_version u32 | payload_len u32 | crc32c u32 | payload
//! ```
//! The CRC covers the first 20 bytes and the payload. Writing goes to `<name>.tmp`, fsyncs it,
//! renames it over `<name>` and fsyncs the directory, so a reader sees the old or the new blob,
//! never a mix.

use std::path::{Path, PathBuf};

use crate::crc::{crc32c, crc32c_append};
use crate::disk::{Disk, read_all};
use crate::error::{Result, StorageError, corrupt, io_err};
use crate::{DATA_VERSION, FORMAT_VERSION};

const HEADER_BYTES: usize = 24;

/// Suffix of files being written before their atomic rename.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Encodes `payload` as a blob with `magic`.
pub(crate) fn encode(magic: &[u8; 8], data_version: u32, payload: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(payload.len()).map_err(|_| StorageError::InvalidAppend {
        reason: format!("blob of {} bytes exceeds u32", payload.len()),
    })?;
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&data_version.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    let crc = crc32c_append(crc32c(&out), payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// A decoded blob.
pub(crate) struct Blob {
    pub data_version: u32,
    pub payload: Vec<u8>,
}

/// Decodes and checks a blob read from `file`.
pub(crate) fn decode(file: &Path, magic: &[u8; 8], bytes: &[u8]) -> Result<Blob> {
    check_preamble(file, bytes, HEADER_BYTES, magic, "")?;
    let data_version = u32_at(bytes, 12);
    let len = u32_at(bytes, 16) as usize;
    if bytes.len() != HEADER_BYTES + len {
        return Err(corrupt(
            file,
            16,
            format!(
                "length says {len} payload bytes, file has {}",
                bytes.len() - HEADER_BYTES
            ),
        ));
    }
    let want = u32_at(bytes, 20);
    let got = crc32c_append(crc32c(&bytes[..20]), &bytes[HEADER_BYTES..]);
    if want != got {
        return Err(corrupt(
            file,
            20,
            format!("checksum {got:#010x}, expected {want:#010x}"),
        ));
    }
    if data_version > DATA_VERSION {
        return Err(StorageError::UnsupportedVersion {
            file: file.to_path_buf(),
            found: data_version,
            supported: DATA_VERSION,
        });
    }
    Ok(Blob {
        data_version,
        payload: bytes[HEADER_BYTES..].to_vec(),
    })
}

/// The checks every warren file starts with: at least `header_bytes` long, `magic` first,
/// and a format version this build reads. `what` names the kind of file in the messages
/// (`"segment "`, `"snapshot "`, or `""`).
pub(crate) fn check_preamble(
    file: &Path,
    bytes: &[u8],
    header_bytes: usize,
    magic: &[u8; 8],
    what: &str,
) -> Result<()> {
    if bytes.len() < header_bytes {
        let reason = format!("{what}header truncated ({} bytes)", bytes.len());
        return Err(corrupt(file, 0, reason));
    }
    if &bytes[..8] != magic {
        return Err(corrupt(file, 0, format!("bad {what}magic")));
    }
    let format = u32_at(bytes, 8);
    if format > FORMAT_VERSION {
        return Err(StorageError::UnsupportedVersion {
            file: file.to_path_buf(),
            found: format,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The temp path used while writing `path`.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(TMP_SUFFIX);
    PathBuf::from(s)
}

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync dir.
pub(crate) fn write_atomic(disk: &dyn Disk, path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_parts(disk, path, &[bytes])
}

/// [`write_atomic`] of the concatenation of `parts`, without building it in memory.
pub(crate) fn write_atomic_parts(disk: &dyn Disk, path: &Path, parts: &[&[u8]]) -> Result<()> {
    // Small files: nothing is synced until `finish_tmp`.
    let file = write_tmp_paced(disk, path, parts, usize::MAX)?;
    finish_tmp(disk, path, file)
}

/// The first half of [`write_atomic_parts`]: `parts` written to the temp file of `path`, not
/// yet durable (the caller may release the parts' memory before the slow final fsync), for
/// a large file written beside a busy log (snapshots): after every
/// `sync_every` bytes the file is fsynced, so the disk never holds more than that much of it
/// unwritten. Written in one go, a snapshot of hundreds of megabytes sits in the page cache
/// until its final fsync pushes it all at once, and every log fsync meanwhile waits behind
/// it (write latency spikes of tens of milliseconds while a snapshot is saved).
pub(crate) fn write_tmp_paced(
    disk: &dyn Disk,
    path: &Path,
    parts: &[&[u8]],
    sync_every: usize,
) -> Result<Box<dyn crate::DiskFile>> {
    let tmp = tmp_path(path);
    let mut file = disk.create(&tmp).map_err(io_err(&tmp, "create"))?;
    let mut unsynced = 0;
    for part in parts {
        for piece in part.chunks(sync_every.max(1)) {
            file.append(piece).map_err(io_err(&tmp, "write"))?;
            unsynced += piece.len();
            if unsynced >= sync_every {
                file.sync().map_err(io_err(&tmp, "fsync"))?;
                unsynced = 0;
            }
        }
    }
    Ok(file)
}

/// The second half of [`write_atomic_parts`]: fsync the temp file, rename it to `path`,
/// fsync the directory.
pub(crate) fn finish_tmp(
    disk: &dyn Disk,
    path: &Path,
    mut file: Box<dyn crate::DiskFile>,
) -> Result<()> {
    let dir = parent(path);
    let tmp = tmp_path(path);
    file.sync().map_err(io_err(&tmp, "fsync"))?;
    drop(file);
    disk.rename(&tmp, path).map_err(io_err(path, "rename"))?;
    disk.sync_dir(dir).map_err(io_err(dir, "fsync dir"))
}

/// Reads the whole file at `path`, or `None` if it does not exist.
pub(crate) fn read_if_exists(disk: &dyn Disk, path: &Path) -> Result<Option<Vec<u8>>> {
    if !disk.exists(path).map_err(io_err(path, "stat"))? {
        return Ok(None);
    }
    let file = disk.open(path).map_err(io_err(path, "open"))?;
    read_all(file.as_ref())
        .map(Some)
        .map_err(io_err(path, "read"))
}

/// Removes leftover `*.tmp` files in `dir` (interrupted atomic writes), fsyncing the directory
/// if any were removed. Returns their paths.
pub(crate) fn remove_tmp_files(disk: &dyn Disk, dir: &Path) -> Result<Vec<PathBuf>> {
    let names = disk.list_dir(dir).map_err(io_err(dir, "list"))?;
    let mut removed = Vec::new();
    for name in names.iter().filter(|n| n.ends_with(TMP_SUFFIX)) {
        let path = dir.join(name);
        tracing::info!(file = %path.display(), "removing leftover temp file of an interrupted write");
        disk.remove(&path).map_err(io_err(&path, "remove"))?;
        removed.push(path);
    }
    if !removed.is_empty() {
        disk.sync_dir(dir).map_err(io_err(dir, "fsync dir"))?;
    }
    Ok(removed)
}

/// The directory holding `path` (`.` for a bare name).
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
