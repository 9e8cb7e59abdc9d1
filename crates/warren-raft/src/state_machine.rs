//! The [`StateMachine`] the server implements, and the openraft adapter that drives it.
//!
//! The adapter applies Normal entries in log order through [`StateMachine::apply`]; blank and
//! membership entries only move the last applied log id (and the membership). Snapshots are
//! the state machine's own bytes ([`StateMachine::snapshot`]) plus metadata (last applied log
//! id, membership) kept by warren-raft, saved through the snapshot store. On restart openraft
//! installs the newest snapshot ([`StateMachine::restore`]) and re-applies the committed log
//! after it.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};

use crate::applied::AppliedIndex;
use crate::backend::SnapshotBackend;
use crate::codec;
use crate::types::{LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};

/// A snapshot frozen at the last apply; calling it gives the bytes. It is called on a thread
/// of its own that ends with it.
pub type SnapshotEncoder = Box<dyn FnOnce() -> Vec<u8> + Send + Sync>;

/// What warren-raft replicates into: the server implements it over its data tree.
///
/// Called from one task, in log order. `apply` must be deterministic: every replica applies
/// the same entries and must reach the same state. `apply` cannot fail: an outcome such as
/// `NoNode` is part of the replicated result, not an error; anything else is a broken
/// invariant and should panic (which stops the node).
pub trait StateMachine: Send + 'static {
    /// Applies the committed normal entry at `index`; returns how many transactions it
    /// held (an entry may batch several), which is what snapshots are counted in.
    fn apply(&mut self, index: u64, payload: &[u8]) -> u64;
    /// The whole state as of the last `apply`, frozen now and encoded later: the returned
    /// encoder runs on a thread of its own while `apply` goes on, and must give bytes
    /// `restore` accepts. Freezing should be quick (it holds up `apply`); the server copies
    /// the tree's pointers and lets changed nodes be copied on write.
    fn snapshot(&self) -> SnapshotEncoder;
    /// Replaces the whole state with a snapshot taken by `snapshot` (here or on a peer).
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
}

/// The state machine plus what Raft needs to know about it.
struct Applied {
    sm: Box<dyn StateMachine>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// The snapshot store and its retention, shared with snapshot builders.
#[derive(Clone)]
pub(crate) struct Snapshots {
    store: Arc<Mutex<Box<dyn SnapshotBackend>>>,
    keep: usize,
    /// Index of the newest snapshot known to be in the store.
    newest: Arc<Mutex<Option<u64>>>,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect("a snapshot store lock holder never panics")
}

impl Snapshots {
    pub(crate) fn new(store: Box<dyn SnapshotBackend>, keep: usize) -> Self {
        Snapshots {
            store: Arc::new(Mutex::new(store)),
            keep: keep.max(1),
            newest: Arc::new(Mutex::new(None)),
        }
    }

    /// Saves a snapshot and purges old ones, on a blocking thread.
    async fn save(&self, meta: &SnapshotMeta, data: Vec<u8>) -> io::Result<()> {
        let index = meta.last_log_id.map_or(0, |l| l.index);
        let meta_bytes = codec::encode_snapshot_meta(meta);
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = lock(&this.store);
            let bytes = data.len();
            store
                .save_owned(index, &meta_bytes, data)
                .and_then(|()| store.purge(this.keep))
                .map_err(|e| io::Error::other(e.0))?;
            *lock(&this.newest) = Some(index);
            tracing::info!(index, bytes, "snapshot saved");
            Ok(())
        })
        .await
        .map_err(|e| io::Error::other(format!("snapshot save task: {e}")))?
    }

    async fn load_latest(&self) -> io::Result<Option<Snapshot>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let Some((index, meta, data)) = lock(&this.store)
                .load_latest()
                .map_err(|e| io::Error::other(e.0))?
            else {
                return Ok(None);
            };
            let meta = codec::decode_snapshot_meta(&meta).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("snapshot {index}: {e}"))
            })?;
            if meta.last_log_id.map_or(0, |l| l.index) != index {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "snapshot file {index} claims to cover {:?}",
                        meta.last_log_id
                    ),
                ));
            }
            *lock(&this.newest) = Some(index);
            Ok(Some(Snapshot {
                meta,
                snapshot: data,
            }))
        })
        .await
        .map_err(|e| io::Error::other(format!("snapshot load task: {e}")))?
    }
}

/// Counts applied transactions and asks for a snapshot every `every` of them (openraft
/// itself counts entries, and an entry may batch many writes):
///
/// - the first after a number drawn from `[every/2 + 1, every]`, as ZooKeeper draws each
///   of its own, so the servers of an ensemble, which apply the same entries, do not all
///   snapshot at once; the later ones every `every` (ZooKeeper draws each anew, which
///   makes its snapshots a third more frequent on average for the same purpose);
/// - if the previous snapshot is still being built (or asked for and not yet started) when
///   one is due, that one is skipped and the count starts over, as ZooKeeper's
///   `SyncRequestProcessor` does ("too busy to snap, skipping"): under a sustained write
///   load snapshots never run back to back.
pub(crate) struct SnapshotTrigger {
    every: u64,
    /// Transactions from the last point due to the next.
    threshold: u64,
    since_last: u64,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
    builds: Arc<AtomicU64>,
    /// A snapshot is asked for and not yet built: set when the request is sent or a build
    /// starts, cleared when the builder is dropped ([`BuildGuard`]).
    busy: Arc<AtomicBool>,
    /// Transactions applied since the state of the newest snapshot (one built here, or one
    /// installed): what a start after a stop now would replay from the log.
    behind: Arc<AtomicU64>,
}

impl SnapshotTrigger {
    /// A trigger sending on `tx`; the node's task turns each request into openraft's
    /// snapshot trigger, and asks again until [`SnapshotTrigger::builds`] moves.
    pub(crate) fn new(every: u64, tx: tokio::sync::mpsc::UnboundedSender<()>) -> Self {
        Self::with_rng(every, tx, fastrand::Rng::new())
    }

    fn with_rng(
        every: u64,
        tx: tokio::sync::mpsc::UnboundedSender<()>,
        mut rng: fastrand::Rng,
    ) -> Self {
        let every = every.max(1);
        // ZooKeeper's `snapCount / 2 + 1 + randRoll`, `randRoll` in `[0, snapCount / 2)`.
        let low = every / 2 + 1;
        SnapshotTrigger {
            every,
            threshold: rng.u64(low..=every.max(low)),
            since_last: 0,
            tx,
            builds: Arc::new(AtomicU64::new(0)),
            busy: Arc::new(AtomicBool::new(false)),
            behind: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Transactions applied since the state the newest snapshot holds (counted from the
    /// process start: at start-up, those replayed after the snapshot loaded).
    pub(crate) fn behind(&self) -> Arc<AtomicU64> {
        self.behind.clone()
    }

    /// How many snapshot builds have started: openraft drops a trigger that arrives while a
    /// build is under way, so whoever asks watches this to know the request was taken.
    pub(crate) fn builds(&self) -> Arc<AtomicU64> {
        self.builds.clone()
    }

    fn applied(&mut self, transactions: u64) {
        self.behind.fetch_add(transactions, Ordering::SeqCst);
        self.since_last += transactions;
        if self.since_last < self.threshold {
            return;
        }
        self.since_last = 0;
        self.threshold = self.every;
        if self.busy.load(Ordering::SeqCst) {
            tracing::warn!(
                "too busy to snapshot, skipping (the previous one is still being built)"
            );
            return;
        }
        // The asking task repeats the request until a build starts, so it is sent once.
        self.busy.store(self.tx.send(()).is_ok(), Ordering::SeqCst);
    }

    /// A build starts: the returned guard marks it under way until dropped.
    fn built(&mut self) -> BuildGuard {
        self.behind.store(0, Ordering::SeqCst);
        self.builds.fetch_add(1, Ordering::SeqCst);
        self.busy.store(true, Ordering::SeqCst);
        BuildGuard(self.busy.clone())
    }
}

/// Held by a snapshot builder: the build is under way until it is dropped.
struct BuildGuard(Arc<AtomicBool>);

impl Drop for BuildGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// openraft's state machine over a [`StateMachine`].
pub(crate) struct SmAdapter {
    applied: Mutex<Applied>,
    /// Published after each entry applied and each snapshot installed.
    applied_index: Arc<AppliedIndex>,
    snapshots: Snapshots,
    trigger: SnapshotTrigger,
    /// The snapshot just installed from the store at start-up, handed back (moved, once)
    /// to openraft's next `get_current_snapshot`: at start-up openraft installs the newest
    /// snapshot and then, after replaying the log tail, asks for it again only to learn its
    /// metadata. Without this the whole file would be read and checksummed a second time.
    installed: Option<Snapshot>,
}

impl SmAdapter {
    pub(crate) fn new(
        sm: Box<dyn StateMachine>,
        snapshots: Snapshots,
        trigger: SnapshotTrigger,
        applied_index: Arc<AppliedIndex>,
    ) -> Self {
        SmAdapter {
            trigger,
            applied_index,
            applied: Mutex::new(Applied {
                sm,
                last_applied: None,
                membership: StoredMembership::default(),
            }),
            snapshots,
            installed: None,
        }
    }

    fn applied(&mut self) -> &mut Applied {
        self.applied
            .get_mut()
            .expect("the state machine never panics while locked")
    }

    fn builder(&mut self) -> SnapshotBuilder {
        // A newer snapshot supersedes the one kept from start-up.
        self.installed = None;
        let building = self.trigger.built();
        let applied = self.applied();
        let encode = applied.sm.snapshot();
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership.clone(),
        };
        SnapshotBuilder {
            meta,
            encode: Some(encode),
            snapshots: self.snapshots.clone(),
            _building: building,
        }
    }
}

impl RaftStateMachine<TypeConfig> for SmAdapter {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let a = self.applied();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let a = self
                .applied
                .get_mut()
                .expect("the state machine never panics while locked");
            if let Some(last) = a.last_applied {
                assert_eq!(
                    last.index + 1,
                    entry.log_id.index,
                    "entries are applied in log order, each once"
                );
            }
            let transactions = match &entry.payload {
                EntryPayload::Blank => 1,
                EntryPayload::Normal(p) => a.sm.apply(entry.log_id.index, &p.0),
                EntryPayload::Membership(m) => {
                    a.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    1
                }
            };
            a.last_applied = Some(entry.log_id);
            self.trigger.applied(transactions);
            self.applied_index.publish(entry.log_id.index);
            if let Some(r) = responder {
                r.send(());
            }
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<Self::SnapshotBuilder> {
        Some(self.builder())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.builder()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        let index = meta.last_log_id.map_or(0, |l| l.index);
        {
            let a = self.applied();
            a.sm.restore(&snapshot).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("restore of snapshot {index}: {e}"),
                )
            })?;
            a.last_applied = meta.last_log_id;
            a.membership = meta.last_membership.clone();
        }
        if let Some(last) = meta.last_log_id {
            self.applied_index.publish(last.index);
        }
        self.trigger.behind.store(0, Ordering::SeqCst);
        tracing::info!(index, "snapshot installed into the state machine");
        // On restart openraft installs the snapshot it just read from the store: no re-save.
        let already = *lock(&self.snapshots.newest) == Some(index);
        if already {
            self.installed = Some(Snapshot {
                meta: meta.clone(),
                snapshot,
            });
        } else {
            self.installed = None;
            self.snapshots.save(meta, snapshot).await?;
        }
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let newest = *lock(&self.snapshots.newest);
        if let Some(s) = self.installed.take()
            && newest.is_some_and(|n| Some(n) == s.meta.last_log_id.map(|l| l.index))
        {
            return Ok(Some(s));
        }
        self.snapshots.load_latest().await
    }
}

/// A snapshot frozen at the moment openraft asked for it (on the state machine's task,
/// between two applies); encoded and written to disk in the background (openraft runs
/// `build_snapshot` in a task of its own), so apply is held up only by the freezing.
pub(crate) struct SnapshotBuilder {
    meta: SnapshotMeta,
    encode: Option<SnapshotEncoder>,
    snapshots: Snapshots,
    /// Marks the build under way for the trigger until openraft drops the builder (after
    /// `build_snapshot`, saved or failed).
    _building: BuildGuard,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = Vec<u8>;

    /// Saves the snapshot and returns its metadata with EMPTY data: openraft only reads
    /// the metadata of a snapshot it asked to build (replication and restarts read it back
    /// through `get_current_snapshot`), and the store releases the bytes as soon as they
    /// are written, before the fsync, so a large snapshot is not held in memory meanwhile.
    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let encode = self
            .encode
            .take()
            .ok_or_else(|| io::Error::other("a snapshot builder is used once"))?;
        // A thread of its own, which ends with the encoder: the encoder may lower its own
        // scheduling priority (the server does), which must not outlive it in a pool.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("warren-snapshot".into())
            .spawn(move || {
                let _ = tx.send(encode());
            })?;
        let data = rx
            .await
            .map_err(|_| io::Error::other("the snapshot encoder panicked"))?;
        self.snapshots.save(&self.meta, data).await?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use tokio::sync::mpsc::UnboundedReceiver as Receiver;

    use super::SnapshotTrigger;

    /// Applies one transaction at a time until the trigger asks; how many it took.
    fn until_asked(t: &mut SnapshotTrigger, rx: &mut Receiver<()>, limit: u64) -> Option<u64> {
        (1..=limit).find(|_| {
            t.applied(1);
            rx.try_recv().is_ok()
        })
    }

    #[test]
    fn the_first_snapshot_is_drawn_from_half_to_all_of_snap_count_then_every_snap_count() {
        let mut firsts = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let mut t = SnapshotTrigger::with_rng(10, tx, fastrand::Rng::with_seed(seed));
            let first = until_asked(&mut t, &mut rx, 10).expect("asked within snapCount");
            assert!((6..=10).contains(&first), "first asked after {first}");
            firsts.insert(first);
            for _ in 0..3 {
                drop(t.built());
                assert_eq!(until_asked(&mut t, &mut rx, 20), Some(10));
            }
            // A batch entry counts each of its transactions.
            drop(t.built());
            t.applied(10);
            assert!(rx.try_recv().is_ok());
        }
        assert_eq!(
            firsts.len(),
            5,
            "every point of [6, 10] is drawn: {firsts:?}"
        );
        // snapCount 1 asks after every transaction.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut t = SnapshotTrigger::new(1, tx);
        assert_eq!(until_asked(&mut t, &mut rx, 1), Some(1));
        drop(t.built());
        assert_eq!(until_asked(&mut t, &mut rx, 1), Some(1));
    }

    #[test]
    fn a_snapshot_due_while_the_last_is_pending_or_building_is_skipped() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut t = SnapshotTrigger::with_rng(10, tx, fastrand::Rng::with_seed(1));
        assert!(until_asked(&mut t, &mut rx, 10).is_some());
        // Asked, not yet started: the next one due is skipped, not queued.
        assert_eq!(until_asked(&mut t, &mut rx, 30), None);
        // Started and under way: still skipped, and the count starts over at each point due.
        let builds = t.builds();
        let building = t.built();
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert_eq!(until_asked(&mut t, &mut rx, 30), None);
        // Once the build is over, the next point due asks again, within one draw.
        drop(building);
        assert!(until_asked(&mut t, &mut rx, 10).is_some());
    }
}
