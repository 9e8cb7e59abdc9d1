//! The spare segment: a file of zeros as long as a segment, prepared off the log's I/O
//! thread, that the log's next roll takes instead of creating a file.
//!
//! Why: the log's fsync is the floor under every write. Appending to a file that grows
//! changes its length, so each fsync also commits the filesystem's journal (ext4: a second
//! device flush, and a wait for whatever metadata anyone else queued). Writing inside a
//! file whose blocks are already written needs no journal commit: `fdatasync` then flushes
//! only the data. Measured on this project's machine (bench/RESULTS.md, "preallocated log
//! segments"): 4 KiB write + fsync 0.26-0.30 ms appending, 0.17-0.18 ms into a zero-filled
//! file; a closed-loop set ran 25% faster. ZooKeeper pads its log files for the same reason
//! (`FilePadding`, `preAllocSize`), though only by extending their length.
//!
//! Files, in the log directory:
//! - `spare.seg.tmp`: being filled; a leftover one is removed at open like any temp file.
//! - `spare.seg`: filled with zeros and fsynced *before* it was renamed to this name, so if
//!   the name exists its zeros are durable: `SegmentLog::open` keeps it when its length is
//!   right. (The roll writes a segment header at its start, syncs and renames it to the
//!   segment's name; a crash between the header's sync and that rename leaves a `spare.seg`
//!   starting with a header, which the next roll overwrites whole.)
//!
//! The states, shared by the log (on its I/O thread) and the thread that runs the fill:
//! `Empty` → (`SegmentLog::spare_work`) `Filling` → (`SpareFill::run`) `Ready` → (the roll
//! takes it) `Empty`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::blob;
use crate::disk::{Disk, DiskFile};
use crate::error::{Result, io_err};

/// The spare's name once it is ready.
pub(crate) const SPARE_FILE: &str = "spare.seg";
/// Zeros written, then fdatasynced, per step of a fill. A log fsync issued meanwhile waits
/// for the device to take what is in flight: on this project's machine a write of 1 MiB and
/// its fdatasync took 0.7-1.2 ms, of 8 MiB 4.5-6.5 ms (a log fsync alone: ~0.2 ms). Small
/// steps keep what a log fsync can find in flight small.
const FILL_STEP_BYTES: usize = 128 << 10;
/// The shortest pause between two steps: at most 100 MB/s of zeros, the rate of the 1 MiB
/// steps 10 ms apart that came before.
const FILL_PAUSE: Duration = Duration::from_micros(1250);
/// How far the fill may run ahead of the log, at most: twice what the log has written since
/// the fill began, plus this head start. So a spare is ready by the time the current segment
/// is half full, at any write rate below the fill's own, and its zeros are spread over that
/// half in proportion to the log's writes instead of arriving in one burst: written as fast
/// as allowed, a 64 MiB fill made about a third of paced writes (30k sets/s) wait 2-4 ms for
/// the second it lasted, the largest part of their p99 (bench/RESULTS.md, session 8).
const FILL_HEAD_START_BYTES: u64 = 1 << 20;
/// The longest sleep of a fill waiting for the log to write more: a server with no writes
/// has nothing to prepare a spare for, and its fill wakes this rarely; a stopping log waits
/// at most this long for the fill to see that it was abandoned.
const FILL_WAIT_MAX: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
enum State {
    #[default]
    Empty,
    Filling,
    Ready(Box<dyn DiskFile>),
}

/// The spare of one log, shared with whoever runs its fill.
#[derive(Debug, Default)]
pub(crate) struct Spare {
    state: Mutex<State>,
    /// Set when the log no longer wants a spare (it is stopping): a fill under way gives up.
    abandoned: AtomicBool,
    /// Bytes the log has written since it opened, the pace of a fill.
    log_written: AtomicU64,
}

impl Spare {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("the spare's lock is never held across a panic")
    }

    /// A spare found at open: `spare.seg` of exactly `bytes` bytes. Any other file of that
    /// name is removed (it is not what a finished fill leaves).
    pub(crate) fn open(disk: &dyn Disk, dir: &Path, bytes: u64) -> Result<(Spare, Vec<PathBuf>)> {
        let path = dir.join(SPARE_FILE);
        let spare = Spare::default();
        if !disk.exists(&path).map_err(io_err(&path, "stat"))? {
            return Ok((spare, Vec::new()));
        }
        let file = disk.open(&path).map_err(io_err(&path, "open"))?;
        if file.len().map_err(io_err(&path, "stat"))? == bytes {
            *spare.state() = State::Ready(file);
            return Ok((spare, Vec::new()));
        }
        tracing::info!(file = %path.display(), "removing a spare segment of another size");
        disk.remove(&path).map_err(io_err(&path, "remove"))?;
        disk.sync_dir(dir).map_err(io_err(dir, "fsync dir"))?;
        Ok((spare, vec![path]))
    }

    /// Moves `Empty` to `Filling`; false if a spare is already filling or ready.
    pub(crate) fn start_fill(&self) -> bool {
        let mut state = self.state();
        if !matches!(*state, State::Empty) || self.abandoned.load(Ordering::Relaxed) {
            return false;
        }
        *state = State::Filling;
        true
    }

    /// The ready spare file, if there is one; the state goes back to `Empty`.
    pub(crate) fn take(&self) -> Option<Box<dyn DiskFile>> {
        let mut state = self.state();
        match std::mem::take(&mut *state) {
            State::Ready(file) => Some(file),
            other => {
                *state = other;
                None
            }
        }
    }

    /// Counts `bytes` written to the log, which lets a fill under way go on.
    pub(crate) fn log_wrote(&self, bytes: u64) {
        self.log_written.fetch_add(bytes, Ordering::Relaxed);
    }

    /// No more spares: a fill under way stops at its next chunk.
    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }
}

/// The work of filling a spare, from [`crate::SegmentLog::spare_work`]: run it on any
/// thread. Until it has run, the log's rolls create their segments as before.
#[must_use = "no spare is made until `run` is called"]
#[derive(Debug)]
pub struct SpareFill {
    pub(crate) disk: Arc<dyn Disk>,
    pub(crate) dir: PathBuf,
    pub(crate) bytes: u64,
    pub(crate) spare: Arc<Spare>,
}

impl SpareFill {
    /// Writes `spare.seg.tmp` full of zeros in steps of `FILL_STEP_BYTES`, each
    /// fdatasynced, paced by the log's own writes (`FILL_HEAD_START_BYTES`) and never
    /// faster than one step per `FILL_PAUSE`; fsyncs it, renames it to `spare.seg` and hands
    /// it to the log. If the log is stopping, gives up quietly (open removes the temp file).
    /// On an error the log gets no spare; the caller must treat the error as a failed write
    /// of the log.
    pub fn run(self) -> Result<()> {
        let path = self.dir.join(SPARE_FILE);
        let tmp = blob::tmp_path(&path);
        let disk = self.disk.as_ref();
        let mut file = disk.create(&tmp).map_err(io_err(&tmp, "create"))?;
        let zeros = vec![0u8; FILL_STEP_BYTES];
        let log_at_start = self.spare.log_written.load(Ordering::Relaxed);
        let mut written = 0u64;
        let mut wait = FILL_PAUSE;
        while written < self.bytes {
            if self.spare.abandoned.load(Ordering::Relaxed) {
                return Ok(());
            }
            let log = self.spare.log_written.load(Ordering::Relaxed) - log_at_start;
            if written >= log.saturating_mul(2).saturating_add(FILL_HEAD_START_BYTES) {
                std::thread::sleep(wait);
                wait = (wait * 2).min(FILL_WAIT_MAX);
                continue;
            }
            if written > 0 {
                std::thread::sleep(FILL_PAUSE);
            }
            wait = FILL_PAUSE;
            let n = zeros
                .len()
                .min(usize::try_from(self.bytes - written).unwrap_or(usize::MAX));
            file.append(&zeros[..n]).map_err(io_err(&tmp, "write"))?;
            file.sync_data().map_err(io_err(&tmp, "fsync"))?;
            written += n as u64;
        }
        // Data and length durable before the name says "ready".
        file.sync().map_err(io_err(&tmp, "fsync"))?;
        disk.rename(&tmp, &path).map_err(io_err(&path, "rename"))?;
        *self.spare.state() = State::Ready(file);
        tracing::debug!(file = %path.display(), bytes = self.bytes, "spare log segment ready");
        Ok(())
    }
}
