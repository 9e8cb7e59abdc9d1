//! Removing large files (purged log segments, old snapshots) without one long stall of the
//! disk that the log's fsyncs would queue behind.
//!
//! Why: on ext4 mounted with online `discard` (as this project's machines are), unlinking a
//! 64 MiB segment took 13-28 ms, and the log's fdatasyncs issued meanwhile took 9-17 ms
//! instead of ~0.2 ms: the freed blocks are discarded as the journal commits, and the log's
//! flush waits behind them. Cutting the file a few MiB at a time, each cut committed on its
//! own, spreads that work into short pieces. ZooKeeper never meets this during a run: it
//! removes old files only in its optional, periodic autopurge.
//!
//! Crash safety: the files are first renamed to temp names (`*.tmp`, which the stores remove
//! at open) and the directory fsynced, so a crash part way leaves only temp files, never a
//! half-cut file under its real name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::blob::tmp_path;
use crate::disk::Disk;
use crate::error::{Result, io_err};

/// Bytes cut from a file per step.
const STEP_BYTES: u64 = 4 << 20;
/// The pause after each step, so the log's fsyncs find the device free between them.
const STEP_PAUSE: Duration = Duration::from_millis(5);

/// Removes `paths` (files of `dir`) gradually, as the module docs say; the directory is
/// fsynced once the last is gone.
pub(crate) fn remove_gradually(disk: &dyn Disk, dir: &Path, paths: &[PathBuf]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut doomed = Vec::with_capacity(paths.len());
    for path in paths {
        let tmp = tmp_path(path);
        disk.rename(path, &tmp).map_err(io_err(path, "rename"))?;
        doomed.push(tmp);
    }
    disk.sync_dir(dir).map_err(io_err(dir, "fsync dir"))?;
    for tmp in &doomed {
        let mut file = disk.open(tmp).map_err(io_err(tmp, "open"))?;
        let mut len = file.len().map_err(io_err(tmp, "stat"))?;
        while len > STEP_BYTES {
            len -= STEP_BYTES;
            file.set_len(len).map_err(io_err(tmp, "truncate"))?;
            file.sync().map_err(io_err(tmp, "fsync"))?;
            std::thread::sleep(STEP_PAUSE);
        }
        drop(file);
        disk.remove(tmp).map_err(io_err(tmp, "remove"))?;
    }
    disk.sync_dir(dir).map_err(io_err(dir, "fsync dir"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FaultyDisk;

    /// A durable file of `len` bytes of `fill` at `path`.
    fn file(disk: &FaultyDisk, path: &Path, len: usize, fill: u8) {
        let mut f = disk.create(path).unwrap();
        f.append(&vec![fill; len]).unwrap();
        f.sync().unwrap();
        disk.sync_dir(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn files_are_cut_in_steps_then_removed() {
        let disk = FaultyDisk::new(1);
        let dir = Path::new("/d");
        disk.create_dir_all(dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        file(&disk, &a, 10 << 20, 1);
        file(&disk, &b, 100, 2);
        let before = disk.ops();
        remove_gradually(&disk, dir, &[a.clone(), b.clone()]).unwrap();
        assert!(disk.files().is_empty(), "{:?}", disk.files());
        // 10 MiB: two cuts of 4 MiB, each fsynced, before the unlink.
        let per_cut = 2;
        assert!(
            disk.ops() - before >= 2 * per_cut + 4,
            "{}",
            disk.ops() - before
        );
    }

    #[test]
    fn a_crash_at_any_step_leaves_the_file_whole_or_only_a_temp_file() {
        let dir = Path::new("/d");
        let path = dir.join("seg");
        for fail_at in 1..12 {
            let disk = FaultyDisk::new(fail_at);
            disk.create_dir_all(dir).unwrap();
            file(&disk, &path, 9 << 20, 7);
            disk.inject_eio(fail_at);
            let _ = remove_gradually(&disk, dir, std::slice::from_ref(&path));
            disk.clear_eio();
            disk.crash_torn();
            for f in disk.files() {
                if f == path {
                    assert_eq!(
                        disk.file_bytes(&f),
                        Some(vec![7; 9 << 20]),
                        "step {fail_at}"
                    );
                } else {
                    assert_eq!(f, tmp_path(&path), "step {fail_at}");
                }
            }
        }
    }
}
