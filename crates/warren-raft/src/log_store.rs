//! openraft's log storage over a [`LogBackend`], with group commit.
//!
//! # Layout
//! - [`LogStore`] is what the Raft core calls. `append` puts the entries into the `recent`
//!   tail (so they are readable at once, as openraft requires) and queues them to the I/O
//!   thread; it does not wait for the disk.
//! - The I/O thread owns the write side. It takes every queued operation, writes all the
//!   appends, does ONE `sync`, and only then completes every waiting [`IOFlushed`]: the core is
//!   never told an entry is durable before its fsync returned. Votes, truncations and purges
//!   are queued on the same channel, so all writes happen in the order the core issued them.
//! - [`LogReader`] serves replication and the apply path: from the `recent` tail when it covers
//!   the range (no disk, no lock on the I/O thread's work), else from the backend plus the tail.
//!
//! # Invariants
//! - Every entry of the log is in the backend, in `recent`, or both. An entry leaves `recent`
//!   only after it was written, and only while the backend lock is held, so a reader holding
//!   that lock sees the union. `recent` may also hold the newest purged entries (see
//!   `Recent::purge_to`).
//! - Lock order: `log` (the backend), then `recent`.
//! - After a storage error the store is failed for good: the error is logged, every waiting and
//!   later operation gets an error, and openraft stops the node. There is no retry (a failed
//!   fsync may have dropped the dirty pages).

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openraft::OptionalSend;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use tokio::sync::{mpsc, oneshot};

use crate::backend::{BackendError, DiskWork, LogBackend, MetaBackend};
use crate::codec::{self, HardState};
use crate::types::{Entry, LogId, TypeConfig, Vote};

/// Operations queued to the I/O thread at most; `append` waits when the queue is full.
const IO_QUEUE_OPS: usize = 4096;
/// Operations the I/O thread takes into one batch at most.
const BATCH_OPS_MAX: usize = 4096;
/// Written entries kept in memory for readers, at most (unwritten ones are always kept).
const RECENT_ENTRIES_MAX: usize = 8192;
/// Bytes of written entries kept in memory for readers, at most.
const RECENT_BYTES_MAX: usize = 32 << 20;
/// How often at most a changed committed log id alone causes a meta write.
const COMMITTED_SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// Counters of the log's I/O, for tests, `mntr` and the operator.
#[derive(Debug, Default)]
pub(crate) struct IoCounters {
    /// Log fsyncs done.
    pub(crate) fsyncs: AtomicU64,
    /// Entries written to the log.
    pub(crate) entries: AtomicU64,
    /// Group-commit batches written (each ends with one fsync).
    pub(crate) batches: AtomicU64,
}

/// The tail of the log kept in memory: contiguous entries, newest last.
#[derive(Default)]
struct Recent {
    entries: VecDeque<Entry>,
    /// Payload bytes in `entries`.
    bytes: usize,
    /// The highest index written to the backend (durable or not).
    written: Option<u64>,
}

impl Recent {
    fn front_index(&self) -> Option<u64> {
        self.entries.front().map(|e| e.log_id.index)
    }

    fn push(&mut self, entry: Entry) {
        if let Some(back) = self.entries.back() {
            assert_eq!(
                back.log_id.index + 1,
                entry.log_id.index,
                "log appends are contiguous"
            );
        }
        self.bytes += entry_bytes(&entry);
        self.entries.push_back(entry);
    }

    /// Drops entries with index `>= from`.
    fn truncate_from(&mut self, from: u64) {
        while self.entries.back().is_some_and(|e| e.log_id.index >= from) {
            if let Some(e) = self.entries.pop_back() {
                self.bytes -= entry_bytes(&e);
            }
        }
        if self.written.is_some_and(|w| w >= from) {
            self.written = from.checked_sub(1);
        }
    }

    /// The backend purged entries `<= upto`. They stay here (within the usual budget) while
    /// later entries follow them: openraft's streaming replication can read a range it chose
    /// just before the purge, and from the backend alone it would get the range with its
    /// head missing, which openraft then sends as an AppendEntries whose entries do not
    /// follow its `prev_log_id` (seen as a debug assertion in openraft 0.10.0-alpha.37).
    /// Served from here, the read is whole. If nothing follows `upto`, everything goes: the
    /// next append starts after `upto` (a snapshot was installed).
    fn purge_to(&mut self, upto: u64) {
        if self.entries.back().is_none_or(|e| e.log_id.index <= upto) {
            self.entries.clear();
            self.bytes = 0;
        }
    }

    /// Drops written entries from the front while over budget.
    fn trim(&mut self) {
        while self.entries.len() > RECENT_ENTRIES_MAX || self.bytes > RECENT_BYTES_MAX {
            let written = self.written.unwrap_or(0);
            if self.front_index().is_none_or(|f| f > written) {
                break;
            }
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= entry_bytes(&e);
        }
    }

    fn collect(&self, start: u64, end: u64, out: &mut Vec<Entry>) {
        let Some(front) = self.front_index() else {
            return;
        };
        let skip = usize::try_from(start.saturating_sub(front)).unwrap_or(usize::MAX);
        for e in self.entries.iter().skip(skip) {
            if e.log_id.index >= end {
                break;
            }
            out.push(e.clone());
        }
    }
}

fn entry_bytes(e: &Entry) -> usize {
    match &e.payload {
        openraft::EntryPayload::Normal(p) => p.0.len() + 32,
        _ => 64,
    }
}

/// State shared by the store, its readers and the I/O thread.
struct Shared {
    /// The backend. Lock order: first.
    log: Mutex<Box<dyn LogBackend>>,
    /// The in-memory tail. Lock order: second.
    recent: Mutex<Recent>,
    /// The last vote saved durably.
    vote: Mutex<Option<Vote>>,
    /// The newest committed log id openraft reported; every meta save writes it (the I/O
    /// thread is woken for it alone at most once per `COMMITTED_SAVE_INTERVAL`).
    committed: Mutex<Option<LogId>>,
    /// The first storage error; set once, never cleared.
    failure: Mutex<Option<String>>,
    counters: Arc<IoCounters>,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect("a log store lock holder never panics")
}

impl Shared {
    /// Fails the store for good with `e`, unless it already failed (the first error is
    /// the one kept and logged).
    fn record_failure(&self, e: &BackendError) {
        let mut failure = lock(&self.failure);
        if failure.is_none() {
            tracing::error!(error = %e, "log storage failed; the Raft node stops");
            *failure = Some(e.0.clone());
        }
    }

    fn failed(&self) -> Option<io::Error> {
        lock(&self.failure)
            .as_ref()
            .map(|f| io::Error::other(format!("log storage failed earlier: {f}")))
    }

    fn read(&self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        if start >= end {
            return Ok(out);
        }
        {
            let recent = lock(&self.recent);
            if recent.front_index().is_some_and(|f| f <= start) {
                recent.collect(start, end, &mut out);
                return Ok(out);
            }
        }
        let log = lock(&self.log);
        for (index, bytes) in log.read(start..end).map_err(to_io)? {
            let entry = codec::decode_entry(&bytes).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("index {index}: {e}"))
            })?;
            // The record key and the entry's own index must agree: assertions in pairs.
            if entry.log_id.index != index {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("record {index} holds entry {}", entry.log_id.index),
                ));
            }
            out.push(entry);
        }
        let next = out.last().map_or(start, |e| e.log_id.index + 1);
        let recent = lock(&self.recent);
        recent.collect(next, end, &mut out);
        drop(recent);
        drop(log);
        check_contiguous(&out)?;
        Ok(out)
    }
}

fn check_contiguous(entries: &[Entry]) -> io::Result<()> {
    for w in entries.windows(2) {
        if w[0].log_id.index + 1 != w[1].log_id.index {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "hole in the log between {} and {}",
                    w[0].log_id, w[1].log_id
                ),
            ));
        }
    }
    Ok(())
}

fn to_io(e: BackendError) -> io::Error {
    io::Error::other(e.0)
}

fn range_to_start_end<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => *e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

/// An operation for the I/O thread.
enum IoOp {
    Append {
        entries: Vec<Entry>,
        callback: IOFlushed<TypeConfig>,
    },
    SaveVote {
        vote: Vote,
        done: oneshot::Sender<io::Result<()>>,
    },
    /// The committed log id in `Shared` changed: save it if none was saved for
    /// `COMMITTED_SAVE_INTERVAL`.
    SaveCommitted,
    Truncate {
        from: u64,
        done: oneshot::Sender<io::Result<()>>,
    },
    Purge {
        upto: LogId,
        done: oneshot::Sender<io::Result<()>>,
    },
    Stop {
        done: oneshot::Sender<io::Result<()>>,
    },
}

/// The Raft core's handle on the log.
pub(crate) struct LogStore {
    shared: Arc<Shared>,
    tx: mpsc::Sender<IoOp>,
    last_log_id: Option<LogId>,
    last_purged: Option<LogId>,
    /// When the I/O thread was last woken to save the committed log id.
    committed_woken: Option<Instant>,
}

/// Joins the I/O thread on shutdown.
pub(crate) struct IoThread {
    tx: mpsc::Sender<IoOp>,
    handle: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
}

impl IoThread {
    /// Flushes what is queued, saves the committed hint and stops the thread. Idempotent.
    pub(crate) async fn stop(&self) -> io::Result<()> {
        let (done, rx) = oneshot::channel();
        let sent = self.tx.send(IoOp::Stop { done }).await.is_ok();
        let result = if sent {
            rx.await.unwrap_or(Ok(()))
        } else {
            Ok(())
        };
        let handle = lock(&self.handle).take();
        if let Some(handle) = handle {
            // The thread has answered Stop and returns once its purge work is done.
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        result
    }

    /// The first storage error, if any.
    pub(crate) fn failure(&self) -> Option<String> {
        lock(&self.shared.failure).clone()
    }
}

impl LogStore {
    /// Opens the log: loads the hard state, reconciles it with the log, starts the I/O thread.
    pub(crate) fn open(
        mut log: Box<dyn LogBackend>,
        meta: Box<dyn MetaBackend>,
        counters: Arc<IoCounters>,
    ) -> Result<(LogStore, IoThread), BackendError> {
        let hard = match meta.load()? {
            Some(blob) => {
                codec::decode_hard_state(&blob).map_err(|e| BackendError(format!("meta: {e}")))?
            }
            None => HardState::default(),
        };
        if let Some(purged) = &hard.purged {
            // A purge saves `purged` first, then cuts the log; finish a cut a crash interrupted.
            if log.first_index().is_some_and(|f| f <= purged.index)
                && let Some(work) = log.purge_to(purged.index)?
            {
                work()?;
            }
        }
        let expected_first = hard.purged.as_ref().map_or(0, |p| p.index + 1);
        if let Some(first) = log.first_index()
            && first != expected_first
        {
            return Err(BackendError(format!(
                "log starts at index {first} but the meta says it should start at \
                 {expected_first}: entries are missing"
            )));
        }
        let last_log_id = match log.last_index() {
            Some(last) => {
                let recs = log.read(last..last + 1)?;
                let (_, bytes) = recs
                    .first()
                    .ok_or_else(|| BackendError(format!("last index {last} is unreadable")))?;
                let entry = codec::decode_entry(bytes)
                    .map_err(|e| BackendError(format!("index {last}: {e}")))?;
                Some(entry.log_id)
            }
            None => hard.purged,
        };
        let written = log.last_index();
        let shared = Arc::new(Shared {
            log: Mutex::new(log),
            recent: Mutex::new(Recent {
                written,
                ..Recent::default()
            }),
            vote: Mutex::new(hard.vote),
            committed: Mutex::new(hard.committed),
            failure: Mutex::new(None),
            counters,
        });
        let (tx, rx) = mpsc::channel(IO_QUEUE_OPS);
        let worker = IoWorker {
            shared: shared.clone(),
            meta,
            hard: hard.clone(),
            last_meta_save: Instant::now(),
            waiting: Vec::new(),
            filler: Filler {
                shared: shared.clone(),
                thread: None,
            },
            disk_worker: DiskWorker::start(shared.clone())?,
        };
        let handle = std::thread::Builder::new()
            .name("warren-raft-io".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| BackendError(format!("cannot start the log I/O thread: {e}")))?;
        let store = LogStore {
            shared: shared.clone(),
            tx: tx.clone(),
            last_log_id,
            last_purged: hard.purged,
            committed_woken: None,
        };
        let io = IoThread {
            tx,
            handle: Mutex::new(Some(handle)),
            shared,
        };
        Ok((store, io))
    }

    async fn call(
        &self,
        make: impl FnOnce(oneshot::Sender<io::Result<()>>) -> IoOp,
    ) -> io::Result<()> {
        if let Some(e) = self.shared.failed() {
            return Err(e);
        }
        let (done, rx) = oneshot::channel();
        self.tx
            .send(make(done))
            .await
            .map_err(|_| io::Error::other("log I/O thread stopped"))?;
        rx.await
            .map_err(|_| io::Error::other("log I/O thread stopped"))?
    }
}

/// A reader of the log for replication and apply.
#[derive(Clone)]
pub(crate) struct LogReader {
    shared: Arc<Shared>,
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = range_to_start_end(&range);
        self.shared.read(start, end)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(*lock(&self.shared.vote))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) = range_to_start_end(&range);
        self.shared.read(start, end)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(*lock(&self.shared.vote))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        Ok(LogState {
            last_purged_log_id: self.last_purged,
            last_log_id: self.last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            shared: self.shared.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let vote = *vote;
        self.call(|done| IoOp::SaveVote { vote, done }).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        if let Some(e) = self.shared.failed() {
            return Err(e);
        }
        *lock(&self.shared.committed) = committed;
        // The id is only a hint for the next start (a restarted node learns what is
        // committed from its leader, or by committing again), so it is saved at most once
        // a second. Waking the I/O thread at every commit cost it a context switch per
        // fsync; now it is woken once per interval, and any meta save it does meanwhile (a
        // vote, a purge, the stop) writes the newest id too.
        if self
            .committed_woken
            .is_some_and(|t| t.elapsed() < COMMITTED_SAVE_INTERVAL)
        {
            return Ok(());
        }
        self.committed_woken = Some(Instant::now());
        self.tx
            .send(IoOp::SaveCommitted)
            .await
            .map_err(|_| io::Error::other("log I/O thread stopped"))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(*lock(&self.shared.committed))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        if let Some(e) = self.shared.failed() {
            return Err(e);
        }
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            callback.io_completed(Ok(()));
            return Ok(());
        };
        {
            let mut recent = lock(&self.shared.recent);
            for e in &entries {
                recent.push(e.clone());
            }
        }
        self.last_log_id = Some(last);
        self.tx
            .send(IoOp::Append { entries, callback })
            .await
            .map_err(|_| io::Error::other("log I/O thread stopped"))
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.as_ref().map_or(0, |l| l.index + 1);
        self.call(|done| IoOp::Truncate { from, done }).await?;
        self.last_log_id = last_log_id.or(self.last_purged);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.call(|done| IoOp::Purge { upto: log_id, done }).await?;
        if self.last_log_id.is_none_or(|l| l.index < log_id.index) {
            self.last_log_id = Some(log_id);
        }
        self.last_purged = Some(log_id);
        Ok(())
    }
}

/// The I/O thread's state.
struct IoWorker {
    shared: Arc<Shared>,
    meta: Box<dyn MetaBackend>,
    hard: HardState,
    last_meta_save: Instant,
    /// Appends written but not yet synced: completed after the next fsync.
    waiting: Vec<IOFlushed<TypeConfig>>,
    /// Fills the spare segments.
    filler: Filler,
    /// Runs the disk work of purges.
    disk_worker: DiskWorker,
}

/// A thread per spare segment's fill (the backend's background work). Not the disk worker's:
/// a fill keeps pace with the log's writes (`warren-storage`'s `spare`), so it lasts as long
/// as the log takes to write half a segment, and a purge must not wait behind it. Dropped
/// with the I/O thread: the fill is abandoned, then waited for (it sees that within one of
/// its pauses), so the log is never reopened while a fill still writes.
struct Filler {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Filler {
    /// Runs `work` on a thread of its own; a failure fails the store, as any failed write
    /// does. The backend hands out one fill at a time, so the previous one has ended.
    fn start(&mut self, work: DiskWork) -> Result<(), BackendError> {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("warren-raft-fill".into())
            .spawn(move || {
                if let Err(e) = work() {
                    shared.record_failure(&e);
                }
            })
            .map_err(|e| BackendError(format!("cannot start the spare-fill thread: {e}")))?;
        self.thread = Some(thread);
        Ok(())
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            lock(&self.shared.log).abandon_background_work();
            let _ = t.join();
        }
    }
}

/// A thread of its own for the log's slow disk work: a purge's (the purge point, the removal
/// of whole segment files, a directory fsync). On a busy disk a purge that removed a 64 MiB
/// segment took 29-34 ms, and every append waited behind it when the I/O thread did it (a
/// write stall at each snapshot). Works run in the order they were handed over; a failure fails the store, as
/// any failed write does. Stopped (and waited for) with the I/O thread, so the log is never
/// reopened while a purge still removes files.
struct DiskWorker {
    tx: Option<std::sync::mpsc::Sender<DiskWork>>,
    thread: Option<JoinHandle<()>>,
}

impl DiskWorker {
    fn start(shared: Arc<Shared>) -> Result<DiskWorker, BackendError> {
        let (tx, rx) = std::sync::mpsc::channel::<DiskWork>();
        let thread = std::thread::Builder::new()
            .name("warren-raft-disk".into())
            .spawn(move || {
                for work in rx {
                    if let Err(e) = work() {
                        shared.record_failure(&e);
                        return;
                    }
                }
            })
            .map_err(|e| BackendError(format!("cannot start the log disk-work thread: {e}")))?;
        Ok(DiskWorker {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    fn run(&self, work: DiskWork) -> Result<(), BackendError> {
        match &self.tx {
            Some(tx) if tx.send(work).is_ok() => Ok(()),
            _ => Err(BackendError("the log disk-work thread stopped".into())),
        }
    }
}

impl Drop for DiskWorker {
    /// Lets the queued works finish, then ends the thread (the I/O thread drops its disk
    /// worker as it returns, so stopping it waits for them).
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl IoWorker {
    fn run(mut self, mut rx: mpsc::Receiver<IoOp>) {
        let mut batch = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < BATCH_OPS_MAX {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            let stop = self.run_batch(&mut batch);
            if stop {
                return;
            }
        }
        // Every sender is gone: the node was dropped without a shutdown; flush what we have.
        let _ = self.flush();
        let _ = self.save_committed_if_dirty(true);
    }

    /// Runs the batch in order; true when the thread must stop.
    fn run_batch(&mut self, batch: &mut Vec<IoOp>) -> bool {
        let mut stop = false;
        // The entries of consecutive appends, written together: one write call (one
        // `pwrite`) for all the appends queued behind an fsync, not one each. Paced writes
        // arrive as one small append each, about five per fsync at 18k sets/s.
        let mut unwritten: Vec<Entry> = Vec::new();
        for op in batch.drain(..) {
            if !matches!(op, IoOp::Append { .. } | IoOp::SaveCommitted) {
                self.write_all(&mut unwritten);
            }
            if let Some(e) = self.shared.failed() {
                stop |= matches!(op, IoOp::Stop { .. });
                fail_op(op, e);
                continue;
            }
            match op {
                IoOp::Append {
                    mut entries,
                    callback,
                } => {
                    self.waiting.push(callback);
                    unwritten.append(&mut entries);
                }
                IoOp::SaveCommitted => {}
                IoOp::SaveVote { vote, done } => {
                    let r = self.flush().and_then(|()| {
                        self.hard.vote = Some(vote);
                        self.save_meta()
                    });
                    if r.is_ok() {
                        *lock(&self.shared.vote) = Some(vote);
                    }
                    self.reply(done, r);
                }
                IoOp::Truncate { from, done } => {
                    let r = self.flush().and_then(|()| self.truncate(from));
                    self.reply(done, r);
                }
                IoOp::Purge { upto, done } => {
                    let r = self.flush().and_then(|()| self.purge(upto));
                    self.reply(done, r);
                }
                IoOp::Stop { done } => {
                    // A spare being filled is not waited for (its thread is joined as this
                    // thread returns).
                    lock(&self.shared.log).abandon_background_work();
                    let r = self
                        .flush()
                        .and_then(|()| self.save_committed_if_dirty(true));
                    self.reply(done, r);
                    stop = true;
                }
            }
        }
        self.write_all(&mut unwritten);
        if !stop {
            if let Err(e) = self.flush() {
                self.fail(e);
            }
            if let Err(e) = self.save_committed_if_dirty(false) {
                self.fail(e);
            }
        }
        stop
    }

    fn reply(&mut self, done: oneshot::Sender<io::Result<()>>, r: Result<(), BackendError>) {
        let r = r.map_err(|e| {
            self.fail(e.clone());
            to_io(e)
        });
        let _ = done.send(r);
    }

    /// [`write`](Self::write)s `entries` and empties it; a failure fails every waiting append.
    fn write_all(&mut self, entries: &mut Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let r = self.write(entries);
        entries.clear();
        if let Err(e) = r {
            self.fail(e);
        }
    }

    /// Writes entries to the backend (not yet durable) and trims the in-memory tail.
    fn write(&mut self, entries: &[Entry]) -> Result<(), BackendError> {
        let encoded: Vec<(u64, Vec<u8>)> = entries
            .iter()
            .map(|e| (e.log_id.index, codec::encode_entry(e)))
            .collect();
        let records: Vec<(u64, &[u8])> = encoded.iter().map(|(i, b)| (*i, b.as_slice())).collect();
        let mut log = lock(&self.shared.log);
        log.append(&records)?;
        if let Some(work) = log.background_work() {
            self.filler.start(work)?;
        }
        let mut recent = lock(&self.shared.recent);
        recent.written = entries.last().map(|e| e.log_id.index).or(recent.written);
        recent.trim();
        self.shared
            .counters
            .entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// One fsync for everything written since the last, then completes every waiting append.
    fn flush(&mut self) -> Result<(), BackendError> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        lock(&self.shared.log).sync()?;
        self.shared.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.shared.counters.batches.fetch_add(1, Ordering::Relaxed);
        for cb in self.waiting.drain(..) {
            cb.io_completed(Ok(()));
        }
        Ok(())
    }

    fn truncate(&mut self, from: u64) -> Result<(), BackendError> {
        let mut log = lock(&self.shared.log);
        log.truncate_from(from)?;
        lock(&self.shared.recent).truncate_from(from);
        Ok(())
    }

    fn purge(&mut self, upto: LogId) -> Result<(), BackendError> {
        // The meta first: a crash between the two leaves entries the next open cuts again.
        self.hard.purged = Some(upto);
        self.save_meta()?;
        let mut log = lock(&self.shared.log);
        if let Some(work) = log.purge_to(upto.index)? {
            self.disk_worker.run(work)?;
        }
        let mut recent = lock(&self.shared.recent);
        recent.purge_to(upto.index);
        if recent.written.is_none_or(|w| w < upto.index) {
            recent.written = Some(upto.index);
        }
        Ok(())
    }

    /// The committed log id a meta save may write: the newest, unless it is past the log's
    /// durable end (every meta save follows a flush, so all that is written is durable). A
    /// restart re-applies the log up to the saved id, and a leader can learn that an entry
    /// is committed (its followers have it) before its own append of it is written; then
    /// the id saved last stays until the log holds the newest.
    fn committed_to_save(&self) -> Option<LogId> {
        let newest = *lock(&self.shared.committed);
        if newest.map(|c| c.index) <= lock(&self.shared.recent).written {
            newest
        } else {
            self.hard.committed
        }
    }

    /// Saves the vote, the purge point and the committed log id (`committed_to_save`).
    fn save_meta(&mut self) -> Result<(), BackendError> {
        self.hard.committed = self.committed_to_save();
        self.meta.save(&codec::encode_hard_state(&self.hard))?;
        self.last_meta_save = Instant::now();
        Ok(())
    }

    fn save_committed_if_dirty(&mut self, now: bool) -> Result<(), BackendError> {
        // After a failed flush what was written may not be durable: save nothing more.
        if self.shared.failed().is_some() {
            return Ok(());
        }
        let dirty = self.committed_to_save() != self.hard.committed;
        if dirty && (now || self.last_meta_save.elapsed() >= COMMITTED_SAVE_INTERVAL) {
            self.save_meta()?;
        }
        Ok(())
    }

    /// Enters the failed state: logs, records the error, fails every waiting append.
    fn fail(&mut self, e: BackendError) {
        self.shared.record_failure(&e);
        for cb in self.waiting.drain(..) {
            cb.io_completed(Err(io::Error::other(e.0.clone())));
        }
    }
}

fn fail_op(op: IoOp, e: io::Error) {
    match op {
        IoOp::Append { callback, .. } => callback.io_completed(Err(e)),
        IoOp::SaveVote { done, .. }
        | IoOp::Truncate { done, .. }
        | IoOp::Purge { done, .. }
        | IoOp::Stop { done } => {
            let _ = done.send(Err(e));
        }
        IoOp::SaveCommitted => {}
    }
}

#[cfg(test)]
#[path = "log_store_test.rs"]
mod tests;
