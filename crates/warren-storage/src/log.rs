//! `SegmentLog`: the Raft log as a directory of segment files of `(index, payload)` records.
//!
//! Layout of the log directory:
//! - `log-<first index, 20 digits>.seg`: segments, in index order (see `segment` for bytes).
//! - `purged`: the purge point (a blob), so `first_index` survives a restart.
//! - `spare.seg`: a segment's worth of zeros that the next roll takes (see `spare`).
//! - `*.tmp`: a file being written before its atomic rename; removed at open.
//!
//! Invariants, checked at open and kept by every call:
//! - indexes are contiguous across segments; every segment but a brand-new last one holds at
//!   least one record;
//! - only the last segment has unsynced bytes, at most `batch_bytes_max` of them (a segment is
//!   fsynced before the next one is created, and `append` fsyncs early rather than exceed the
//!   window), so a bad region in the last segment no longer than that window, reaching its end,
//!   is a torn write from a crash; anything else is corruption;
//! - a segment file is created under a temp name with its header fsynced, then renamed and the
//!   directory fsynced, so every segment file has a complete, durable header;
//! - records are written at the segment's logical end, which in a segment made from the spare
//!   is followed by zeros to the end of the file; a segment is cut to its logical end (and
//!   fsynced) before the next one is created, so only the last segment can end in zeros, and
//!   recovery reads zeros after the last record there as space never written.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blob;
use crate::disk::{Disk, DiskFile, read_all};
use crate::error::{Result, StorageError, corrupt, io_err};
use crate::remove::remove_gradually;
use crate::segment::{self, HEADER_BYTES, RECORD_HEADER_BYTES};
use crate::spare::{SPARE_FILE, Spare, SpareFill};

const PURGE_MAGIC: &[u8; 8] = b"WRNPURG\0";
const PURGE_FILE: &str = "purged";
const SEGMENT_PREFIX: &str = "log-";
const SEGMENT_SUFFIX: &str = ".seg";

/// Tuning of a `SegmentLog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// A segment is closed and a new one started once the next record would take it past this
    /// size (a single larger record still gets a segment of its own). Default 64 MiB.
    pub segment_bytes: u64,
    /// The most bytes (record headers included) that may be appended between two fsyncs: one
    /// group-commit batch. `append` refuses a single call larger than this and fsyncs early
    /// rather than let unsynced bytes exceed it. Recovery cuts a bad tail of the last segment
    /// only if it is at most this long. Default 8 MiB.
    pub batch_bytes_max: u32,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: 64 << 20,
            batch_bytes_max: 8 << 20,
        }
    }
}

/// What `SegmentLog::open` found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in use after recovery.
    pub segments: usize,
    /// The first readable index after recovery.
    pub first_index: Option<u64>,
    /// The last index after recovery.
    pub last_index: Option<u64>,
    /// The durable purge point.
    pub purged_to: Option<u64>,
    /// A torn tail that was cut, if any.
    pub torn_tail: Option<TornTail>,
    /// Files removed: temp files of interrupted writes, segments left by an interrupted purge,
    /// an empty last segment.
    pub removed_files: Vec<PathBuf>,
}

/// A torn write at the end of the last segment, cut at recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub file: PathBuf,
    /// Where the file was cut (the start of the first bad record).
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes_cut: u64,
    /// Why the first cut record was bad.
    pub reason: String,
}

#[derive(Debug)]
struct Segment {
    first_index: u64,
    path: PathBuf,
    file: Box<dyn DiskFile>,
    /// `offsets[i]` is where record `first_index + i` starts.
    offsets: Vec<u64>,
    /// The logical end: the end of its last record, where the next one is written. The
    /// file is longer in a segment made from the spare (zeros follow).
    len: u64,
}

impl Segment {
    /// One past the last index held.
    fn end_index(&self) -> u64 {
        self.first_index + self.offsets.len() as u64
    }

    /// Where record `index` starts, or the end of the file for `end_index()`.
    fn offset_of(&self, index: u64) -> u64 {
        let i = (index - self.first_index) as usize;
        self.offsets.get(i).copied().unwrap_or(self.len)
    }
}

/// The Raft log: append, sync, read, truncate and purge `(index, payload)` records.
///
/// Synchronous: meant to be driven from one I/O thread, which does group commit by calling
/// `append` for everything queued and then `sync` once. After any I/O failure the log refuses
/// further calls (`StorageError::Poisoned`); reopen it to learn what is really on disk.
#[derive(Debug)]
pub struct SegmentLog {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    opts: LogOptions,
    segments: Vec<Segment>,
    purged_to: Option<u64>,
    /// Bytes appended to the last segment since its last fsync.
    unsynced_bytes: u64,
    /// The next segment's file, prepared off the I/O thread (see [`SegmentLog::spare_work`]).
    spare: Arc<Spare>,
    poisoned: Option<String>,
}

impl SegmentLog {
    /// Opens (or creates) the log in `dir`, recovering from a crash: cuts a torn tail, finishes
    /// an interrupted purge, removes temp files. Fails with `Corrupt` on any other damage.
    pub fn open(
        disk: Arc<dyn Disk>,
        dir: &Path,
        opts: LogOptions,
    ) -> Result<(SegmentLog, RecoveryReport)> {
        if opts.batch_bytes_max as u64 <= RECORD_HEADER_BYTES || opts.segment_bytes == 0 {
            return Err(StorageError::InvalidAppend {
                reason: format!("unusable log options {opts:?}"),
            });
        }
        disk.create_dir_all(dir)
            .map_err(io_err(dir, "create dir"))?;
        let mut report = RecoveryReport {
            removed_files: blob::remove_tmp_files(disk.as_ref(), dir)?,
            ..RecoveryReport::default()
        };
        let purged_to = load_purge_point(disk.as_ref(), dir)?;
        let loaded = load_segments(disk.as_ref(), dir, opts)?;
        let plan = plan_recovery(loaded, purged_to, opts)?;
        let segments = apply_recovery(disk.as_ref(), dir, plan, &mut report)?;
        let (spare, removed) = Spare::open(disk.as_ref(), dir, opts.segment_bytes)?;
        report.removed_files.extend(removed);
        let log = SegmentLog {
            disk,
            dir: dir.to_path_buf(),
            opts,
            segments,
            purged_to,
            unsynced_bytes: 0,
            spare: Arc::new(spare),
            poisoned: None,
        };
        report.segments = log.segments.len();
        report.first_index = log.first_index();
        report.last_index = log.last_index();
        report.purged_to = purged_to;
        tracing::info!(
            dir = %dir.display(),
            segments = report.segments,
            first_index = ?report.first_index,
            last_index = ?report.last_index,
            purged_to = ?purged_to,
            "log opened"
        );
        Ok((log, report))
    }

    /// The first index that can be read, `None` if the log is empty.
    pub fn first_index(&self) -> Option<u64> {
        let first = self.segments.first()?.first_index;
        let first = match self.purged_to {
            Some(p) => first.max(p + 1),
            None => first,
        };
        (first <= self.last_index()?).then_some(first)
    }

    /// The last index, `None` if the log is empty.
    pub fn last_index(&self) -> Option<u64> {
        let seg = self.segments.last()?;
        seg.end_index()
            .checked_sub(1)
            .filter(|_| !seg.offsets.is_empty())
    }

    /// The durable purge point: every index `<=` it has been dropped.
    pub fn purged_to(&self) -> Option<u64> {
        self.purged_to
    }

    /// The index the next `append` must start with, if constrained: `last_index + 1`, or
    /// `purged_to + 1` for an empty log that was purged, or `None` (any) for a fresh log.
    pub fn next_index(&self) -> Option<u64> {
        match self.last_index() {
            Some(last) => Some(last + 1),
            None => self.purged_to.map(|p| p + 1),
        }
    }

    /// Bytes appended since the last fsync.
    pub fn unsynced_bytes(&self) -> u64 {
        self.unsynced_bytes
    }

    /// The options the log was opened with.
    pub fn options(&self) -> LogOptions {
        self.opts
    }

    /// Appends records (written, not yet durable: call `sync`). The first index must be
    /// `next_index()` (anything for a fresh, empty log) and the rest contiguous. A call whose
    /// encoded size (16 bytes per record plus payloads) exceeds `batch_bytes_max` is refused;
    /// if it would push the unsynced bytes past that, the earlier ones are fsynced first.
    pub fn append(&mut self, records: &[(u64, &[u8])]) -> Result<()> {
        self.check_usable()?;
        let Some(&(first, _)) = records.first() else {
            return Ok(());
        };
        let batch_bytes = self.check_append(first, records)?;
        if self.unsynced_bytes + batch_bytes > u64::from(self.opts.batch_bytes_max) {
            self.sync()?;
        }
        let result = self.append_unchecked(records);
        self.poison_on_err(result)
    }

    fn check_append(&self, first: u64, records: &[(u64, &[u8])]) -> Result<u64> {
        if let Some(next) = self.next_index()
            && first != next
        {
            return Err(StorageError::InvalidAppend {
                reason: format!("first index {first}, expected {next}"),
            });
        }
        let mut bytes = 0u64;
        for (i, (index, payload)) in records.iter().enumerate() {
            let want = first + i as u64;
            if *index != want {
                return Err(StorageError::InvalidAppend {
                    reason: format!("index {index} at position {i} of a batch, expected {want}"),
                });
            }
            bytes += RECORD_HEADER_BYTES + payload.len() as u64;
        }
        if bytes > u64::from(self.opts.batch_bytes_max) {
            return Err(StorageError::InvalidAppend {
                reason: format!(
                    "batch of {bytes} bytes exceeds batch_bytes_max {}; split it with a sync \
                     between the parts",
                    self.opts.batch_bytes_max
                ),
            });
        }
        Ok(bytes)
    }

    fn append_unchecked(&mut self, records: &[(u64, &[u8])]) -> Result<()> {
        let bytes: u64 = records
            .iter()
            .map(|(_, p)| RECORD_HEADER_BYTES + p.len() as u64)
            .sum();
        let mut buf = Vec::with_capacity(usize::try_from(bytes).unwrap_or(0));
        let mut offsets = Vec::with_capacity(records.len());
        for &(index, payload) in records {
            let record_bytes = RECORD_HEADER_BYTES + payload.len() as u64;
            let roll = match self.segments.last() {
                None => true,
                Some(seg) => {
                    let holds_any = !seg.offsets.is_empty() || !offsets.is_empty();
                    holds_any && seg.len + buf.len() as u64 + record_bytes > self.opts.segment_bytes
                }
            };
            if roll {
                self.write_pending(&mut buf, &mut offsets)?;
                self.roll(index)?;
            }
            let base = self.segments.last().map_or(0, |s| s.len);
            offsets.push(base + buf.len() as u64);
            segment::encode_record(&mut buf, index, payload);
        }
        self.write_pending(&mut buf, &mut offsets)
    }

    /// Writes buffered records at the last segment's logical end.
    fn write_pending(&mut self, buf: &mut Vec<u8>, offsets: &mut Vec<u64>) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let seg = self.last_segment_mut()?;
        seg.file
            .write_at(seg.len, buf)
            .map_err(io_err(&seg.path, "write"))?;
        seg.offsets.append(offsets);
        seg.len += buf.len() as u64;
        self.unsynced_bytes += buf.len() as u64;
        self.spare.log_wrote(buf.len() as u64);
        buf.clear();
        Ok(())
    }

    /// Fsyncs the current segment, cuts it to its logical end, and starts a new one whose
    /// first record is `first_index`: from the spare when one is ready, else a new file.
    fn roll(&mut self, first_index: u64) -> Result<()> {
        self.sync_inner()?;
        self.seal_last()?;
        let path = self.dir.join(segment_name(first_index));
        let header = segment::encode_header(first_index);
        let disk = self.disk.as_ref();
        let (file, preallocated) = match self.spare.take() {
            Some(mut file) => {
                // The spare's zeros are durable; only the header is new.
                let spare = self.dir.join(SPARE_FILE);
                file.write_at(0, &header).map_err(io_err(&spare, "write"))?;
                file.sync_data().map_err(io_err(&spare, "fsync"))?;
                disk.rename(&spare, &path)
                    .map_err(io_err(&path, "rename"))?;
                (file, true)
            }
            None => {
                let tmp = blob::tmp_path(&path);
                let mut file = disk.create(&tmp).map_err(io_err(&tmp, "create"))?;
                file.append(&header).map_err(io_err(&tmp, "write"))?;
                file.sync().map_err(io_err(&tmp, "fsync"))?;
                disk.rename(&tmp, &path).map_err(io_err(&path, "rename"))?;
                (file, false)
            }
        };
        disk.sync_dir(&self.dir)
            .map_err(io_err(&self.dir, "fsync dir"))?;
        tracing::debug!(file = %path.display(), preallocated, "new log segment");
        self.segments.push(Segment {
            first_index,
            path,
            file,
            offsets: Vec::new(),
            len: HEADER_BYTES,
        });
        Ok(())
    }

    /// Cuts the last segment's zeros after its logical end, durably, so that no segment but
    /// the last ends in zeros (recovery holds the others to that).
    fn seal_last(&mut self) -> Result<()> {
        let Some(seg) = self.segments.last_mut() else {
            return Ok(());
        };
        if seg.file.len().map_err(io_err(&seg.path, "stat"))? > seg.len {
            seg.file
                .set_len(seg.len)
                .map_err(io_err(&seg.path, "truncate"))?;
            seg.file.sync().map_err(io_err(&seg.path, "fsync"))?;
        }
        Ok(())
    }

    /// The work of preparing a spare segment, when one is due: none is ready or being made.
    /// The caller runs it on another thread, so that the I/O thread never writes the zeros;
    /// the fill keeps pace with the log's writes (see `spare`), and rolls before it is done
    /// create their segments as before.
    pub fn spare_work(&mut self) -> Option<SpareFill> {
        if self.poisoned.is_some() || self.opts.segment_bytes <= HEADER_BYTES {
            return None;
        }
        if !self.spare.start_fill() {
            return None;
        }
        Some(SpareFill {
            disk: self.disk.clone(),
            dir: self.dir.clone(),
            bytes: self.opts.segment_bytes,
            spare: self.spare.clone(),
        })
    }

    /// Makes no more spares and stops a fill under way at its next chunk (the log is
    /// stopping; a spare already made stays for the next open).
    pub fn abandon_spare(&self) {
        self.spare.abandon();
    }

    /// Makes everything appended so far durable: one fsync of the current segment (earlier
    /// segments were fsynced when they were closed; directory changes are fsynced as made).
    pub fn sync(&mut self) -> Result<()> {
        self.check_usable()?;
        let result = self.sync_inner();
        self.poison_on_err(result)
    }

    fn sync_inner(&mut self) -> Result<()> {
        if self.unsynced_bytes == 0 {
            return Ok(());
        }
        let seg = self.last_segment_mut()?;
        // fdatasync: flushes the length too when it changed (appending past the spare's
        // zeros, or to a segment created without them).
        seg.file.sync_data().map_err(io_err(&seg.path, "fsync"))?;
        self.unsynced_bytes = 0;
        Ok(())
    }

    /// Reads the records of `range` that the log holds (its intersection with
    /// `first_index()..=last_index()`), checking each record's CRC and index.
    pub fn read(&self, range: Range<u64>) -> Result<Vec<(u64, Vec<u8>)>> {
        self.check_usable()?;
        let (Some(first), Some(last)) = (self.first_index(), self.last_index()) else {
            return Ok(Vec::new());
        };
        let lo = range.start.max(first);
        let hi = range.end.min(last + 1);
        let mut out = Vec::with_capacity(hi.saturating_sub(lo) as usize);
        if lo >= hi {
            return Ok(out);
        }
        let start = self.segments.partition_point(|s| s.end_index() <= lo);
        for seg in &self.segments[start..] {
            if seg.first_index >= hi {
                break;
            }
            let a = lo.max(seg.first_index);
            let b = hi.min(seg.end_index());
            self.read_segment(seg, a..b, &mut out)?;
        }
        Ok(out)
    }

    fn read_segment(
        &self,
        seg: &Segment,
        range: Range<u64>,
        out: &mut Vec<(u64, Vec<u8>)>,
    ) -> Result<()> {
        let from = seg.offset_of(range.start);
        let to = seg.offset_of(range.end);
        let mut bytes = vec![0u8; (to - from) as usize];
        seg.file
            .read_at(from, &mut bytes)
            .map_err(io_err(&seg.path, "read"))?;
        let payload_max = u64::from(self.opts.batch_bytes_max);
        let mut at = 0usize;
        for index in range {
            let end = segment::parse_record(&bytes, at, index, payload_max)
                .map_err(|reason| corrupt(&seg.path, from + at as u64, reason))?;
            out.push((index, segment::payload_at(&bytes, at).to_vec()));
            at = end;
        }
        Ok(())
    }

    /// Removes every record with index `>= index`; durable when this returns. Used when Raft
    /// finds a conflicting suffix. Indexes at or below the purge point are not touched.
    pub fn truncate_from(&mut self, index: u64) -> Result<()> {
        self.check_usable()?;
        let result = self.truncate_inner(index);
        self.poison_on_err(result)
    }

    fn truncate_inner(&mut self, index: u64) -> Result<()> {
        let Some(last) = self.last_index() else {
            return Ok(());
        };
        let index = match self.purged_to {
            Some(p) => index.max(p + 1),
            None => index,
        };
        if index > last {
            return Ok(());
        }
        // Whole segments first, newest first, and their removal made durable before the cut
        // below: a crash in between leaves a contiguous prefix, never a cut segment followed
        // by an old one (which would look like a gap).
        let mut removed = false;
        while let Some(seg) = self.segments.last() {
            if seg.first_index < index {
                break;
            }
            let path = seg.path.clone();
            self.segments.pop();
            self.disk.remove(&path).map_err(io_err(&path, "remove"))?;
            removed = true;
        }
        if removed {
            self.disk
                .sync_dir(&self.dir)
                .map_err(io_err(&self.dir, "fsync dir"))?;
        }
        if let Some(seg) = self.segments.last_mut()
            && seg.end_index() > index
        {
            let cut = seg.offset_of(index);
            seg.file
                .set_len(cut)
                .map_err(io_err(&seg.path, "truncate"))?;
            seg.file.sync().map_err(io_err(&seg.path, "fsync"))?;
            seg.offsets.truncate((index - seg.first_index) as usize);
            seg.len = cut;
        }
        // What remains is either the cut segment (just fsynced) or older, already fsynced ones.
        self.unsynced_bytes = 0;
        tracing::debug!(index, "log truncated");
        Ok(())
    }

    /// Drops every record with index `<= index`: records the purge point durably, then
    /// removes segment files wholly at or below it. Purging past `last_index` empties the log;
    /// the next append must then start at `index + 1`. [`SegmentLog::begin_purge`] then
    /// [`PurgeFiles::run`], in one call.
    pub fn purge_to(&mut self, index: u64) -> Result<()> {
        let files = self.begin_purge(index)?;
        let result = files.run();
        self.poison_on_err(result)
    }

    /// The in-memory half of [`SegmentLog::purge_to`]: from now on the log holds no record
    /// `<= index` (reads, `first_index` and appends see it purged). The disk work (the purge
    /// point, then the removal of the segment files wholly at or below it, then a directory
    /// fsync) is returned, to be run later, on another thread if the caller likes: removing
    /// a large file and the fsyncs around it take tens of milliseconds on a busy disk, which
    /// the thread that appends and syncs the log should not wait for.
    ///
    /// Until the returned work has run, a crash leaves the records on disk; reopening finds
    /// them, from the previous purge point on. Run the works in the order they were begun,
    /// and each before reopening the log. The log is not poisoned if the work fails: the
    /// caller must treat that as a failed write.
    pub fn begin_purge(&mut self, index: u64) -> Result<PurgeFiles> {
        self.check_usable()?;
        let mut files = PurgeFiles {
            disk: self.disk.clone(),
            dir: self.dir.clone(),
            point: None,
            segments: Vec::new(),
        };
        if self.purged_to.is_some_and(|p| index <= p) {
            return Ok(files);
        }
        // The purge point goes first (in `run`): after a crash, recovery finishes removing
        // the files.
        files.point = Some(blob::encode(
            PURGE_MAGIC,
            crate::DATA_VERSION,
            &index.to_le_bytes(),
        )?);
        self.purged_to = Some(index);
        let whole = self
            .segments
            .iter()
            .take_while(|s| s.end_index() <= index + 1)
            .count();
        if whole == self.segments.len() {
            // The last segment may have held unsynced bytes; they are purged with it.
            self.unsynced_bytes = 0;
        }
        // Oldest first, so a crash leaves a contiguous suffix.
        files.segments = self.segments.drain(..whole).map(|s| s.path).collect();
        tracing::debug!(index, segments = files.segments.len(), "log purge begun");
        Ok(files)
    }

    fn last_segment_mut(&mut self) -> Result<&mut Segment> {
        self.segments
            .last_mut()
            .ok_or_else(|| StorageError::Poisoned {
                reason: "log has no segment to write to".into(),
            })
    }

    fn check_usable(&self) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(StorageError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison_on_err(&mut self, result: Result<()>) -> Result<()> {
        if let Err(e) = &result {
            tracing::error!(dir = %self.dir.display(), error = %e, "log write failed; the log must be reopened");
            self.poisoned = Some(e.to_string());
        }
        result
    }
}

/// The disk work of a purge, from [`SegmentLog::begin_purge`].
#[must_use = "the purge is not on disk until `run` is called"]
#[derive(Debug)]
pub struct PurgeFiles {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    /// The purge point's bytes, if the purge point moved.
    point: Option<Vec<u8>>,
    /// Segment files to remove, oldest first.
    segments: Vec<PathBuf>,
}

impl PurgeFiles {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.point.is_none()
    }

    /// Writes the purge point durably, then removes the segment files (gradually: see
    /// `remove`; this is why the work belongs off the log's I/O thread).
    pub fn run(self) -> Result<()> {
        let Some(point) = self.point else {
            return Ok(());
        };
        let path = self.dir.join(PURGE_FILE);
        blob::write_atomic(self.disk.as_ref(), &path, &point)?;
        remove_gradually(self.disk.as_ref(), &self.dir, &self.segments)?;
        tracing::debug!(removed = self.segments.len(), "log segments purged");
        Ok(())
    }
}

/// The file name of the segment whose first record is `first_index`.
pub fn segment_name(first_index: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_index:020}{SEGMENT_SUFFIX}")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn load_purge_point(disk: &dyn Disk, dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(PURGE_FILE);
    let Some(bytes) = blob::read_if_exists(disk, &path)? else {
        return Ok(None);
    };
    let blob = blob::decode(&path, PURGE_MAGIC, &bytes)?;
    let raw: [u8; 8] = blob
        .payload
        .as_slice()
        .try_into()
        .map_err(|_| corrupt(&path, 24, "purge point is not 8 bytes"))?;
    Ok(Some(u64::from_le_bytes(raw)))
}

/// A segment read at open, before recovery decides what to keep.
struct Loaded {
    path: PathBuf,
    file: Box<dyn DiskFile>,
    scan: segment::Scan,
}

fn load_segments(disk: &dyn Disk, dir: &Path, opts: LogOptions) -> Result<Vec<Loaded>> {
    let mut names: Vec<(u64, String)> = disk
        .list_dir(dir)
        .map_err(io_err(dir, "list"))?
        .into_iter()
        .filter_map(|n| Some((parse_segment_name(&n)?, n)))
        .collect();
    names.sort();
    let payload_max = u64::from(opts.batch_bytes_max);
    let mut loaded = Vec::with_capacity(names.len());
    for (name_index, name) in names {
        let path = dir.join(name);
        let file = disk.open(&path).map_err(io_err(&path, "open"))?;
        let bytes = read_all(file.as_ref()).map_err(io_err(&path, "read"))?;
        let scan = segment::scan(&path, &bytes, payload_max)?;
        if scan.first_index != name_index {
            return Err(corrupt(
                &path,
                16,
                format!(
                    "header says first index {}, file name says {name_index}",
                    scan.first_index
                ),
            ));
        }
        loaded.push(Loaded { path, file, scan });
    }
    Ok(loaded)
}

/// What recovery will do, decided before anything on disk changes.
struct Plan {
    keep: Vec<Loaded>,
    remove: Vec<PathBuf>,
    torn: Option<TornTail>,
}

fn plan_recovery(loaded: Vec<Loaded>, purged_to: Option<u64>, opts: LogOptions) -> Result<Plan> {
    let count = loaded.len();
    let mut torn = None;
    for (i, l) in loaded.iter().enumerate() {
        let last = i + 1 == count;
        if !last && l.scan.bad.is_none() && l.scan.valid_len < l.scan.file_len {
            // A segment is cut to its last record before the next one is created.
            return Err(corrupt(
                &l.path,
                l.scan.valid_len,
                format!(
                    "{} zero bytes after the last record, in a segment that is not the last",
                    l.scan.file_len - l.scan.valid_len
                ),
            ));
        }
        let Some((offset, reason)) = &l.scan.bad else {
            continue;
        };
        // Zeros after the bad region are preallocated space, never written.
        let bad_bytes = l.scan.data_end - offset;
        if !last {
            return Err(corrupt(
                &l.path,
                *offset,
                format!("{reason}, in a segment that is not the last"),
            ));
        }
        if let Some((after, index)) = l.scan.valid_after_bad {
            return Err(corrupt(
                &l.path,
                *offset,
                format!(
                    "{reason}; a valid record (index {index}) follows at offset {after}, so \
                     this is damage to data written whole, not a torn write"
                ),
            ));
        }
        if bad_bytes > u64::from(opts.batch_bytes_max) {
            return Err(corrupt(
                &l.path,
                *offset,
                format!(
                    "{reason}; the {bad_bytes} bytes from here to the end exceed one group-commit \
                     batch ({}), so this is not a torn write",
                    opts.batch_bytes_max
                ),
            ));
        }
        torn = Some(TornTail {
            file: l.path.clone(),
            offset: *offset,
            bytes_cut: bad_bytes,
            reason: reason.clone(),
        });
    }
    for pair in loaded.windows(2) {
        let end = pair[0].scan.first_index + pair[0].scan.offsets.len() as u64;
        if pair[1].scan.first_index != end {
            return Err(corrupt(
                &pair[1].path,
                16,
                format!(
                    "segment starts at index {}, but the previous one ends before {end}",
                    pair[1].scan.first_index
                ),
            ));
        }
    }
    let mut keep = Vec::new();
    let mut remove = Vec::new();
    for (i, l) in loaded.into_iter().enumerate() {
        let end = l.scan.first_index + l.scan.offsets.len() as u64;
        let empty_last = i + 1 == count && l.scan.offsets.is_empty();
        let purged = purged_to.is_some_and(|p| end <= p + 1);
        if empty_last || purged {
            remove.push(l.path);
        } else {
            keep.push(l);
        }
    }
    if let (Some(p), Some(first)) = (purged_to, keep.first())
        && first.scan.first_index > p + 1
    {
        return Err(corrupt(
            &first.path,
            16,
            format!(
                "records {}..{} are missing: the log was purged only to {p}",
                p + 1,
                first.scan.first_index
            ),
        ));
    }
    Ok(Plan { keep, remove, torn })
}

fn apply_recovery(
    disk: &dyn Disk,
    dir: &Path,
    plan: Plan,
    report: &mut RecoveryReport,
) -> Result<Vec<Segment>> {
    let mut segments = Vec::with_capacity(plan.keep.len());
    for mut l in plan.keep {
        if l.scan.valid_len < l.scan.file_len {
            l.file
                .set_len(l.scan.valid_len)
                .map_err(io_err(&l.path, "truncate"))?;
            l.file.sync().map_err(io_err(&l.path, "fsync"))?;
        }
        segments.push(Segment {
            first_index: l.scan.first_index,
            path: l.path,
            file: l.file,
            offsets: l.scan.offsets,
            len: l.scan.valid_len,
        });
    }
    if let Some(t) = &plan.torn {
        tracing::warn!(
            file = %t.file.display(),
            offset = t.offset,
            bytes_cut = t.bytes_cut,
            reason = %t.reason,
            "cut a torn tail from the log (a write interrupted by a crash)"
        );
    }
    for path in &plan.remove {
        tracing::info!(file = %path.display(), "removing log segment left empty or purged");
        disk.remove(path).map_err(io_err(path, "remove"))?;
    }
    if !plan.remove.is_empty() {
        disk.sync_dir(dir).map_err(io_err(dir, "fsync dir"))?;
    }
    report.torn_tail = plan.torn;
    report.removed_files.extend(plan.remove);
    Ok(segments)
}
