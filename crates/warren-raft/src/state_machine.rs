//! The [`StateMachine`] the server implements, and the openraft adapter that drives it.
//!
//! The adapter applies Normal entries in log order through [`StateMachine::apply`]; blank and
//! membership entries only move the last applied log id (and the membership). Snapshots are
//! the state machine's own bytes ([`StateMachine::snapshot`]) plus metadata (last applied log
//! id, membership) kept by warren-raft, saved through the snapshot store. On restart openraft
//! installs the newest snapshot ([`StateMachine::restore`]) and re-applies the committed log
//! after it.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};

use crate::backend::SnapshotBackend;
use crate::codec;
use crate::types::{LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};

/// What warren-raft replicates into: the server implements it over its data tree.
///
/// Called from one task, in log order. `apply` must be deterministic: every replica applies
/// the same entries and must reach the same state. `apply` cannot fail: an outcome such as
/// `NoNode` is part of the replicated result, not an error; anything else is a broken
/// invariant and should panic (which stops the node).
pub trait StateMachine: Send + 'static {
    /// Applies the committed normal entry at `index`.
    fn apply(&mut self, index: u64, payload: &[u8]);
    /// The whole state as of the last `apply`, as bytes `restore` accepts.
    fn snapshot(&self) -> Vec<u8>;
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

/// openraft's state machine over a [`StateMachine`].
pub(crate) struct SmAdapter {
    applied: Mutex<Applied>,
    snapshots: Snapshots,
    /// The snapshot just installed from the store at start-up, handed back (moved, once)
    /// to openraft's next `get_current_snapshot`: at start-up openraft installs the newest
    /// snapshot and then, after replaying the log tail, asks for it again only to learn its
    /// metadata. Without this the whole file would be read and checksummed a second time.
    installed: Option<Snapshot>,
}

impl SmAdapter {
    pub(crate) fn new(sm: Box<dyn StateMachine>, snapshots: Snapshots) -> Self {
        SmAdapter {
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
        let applied = self.applied();
        let data = applied.sm.snapshot();
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership.clone(),
        };
        SnapshotBuilder {
            meta,
            data,
            snapshots: self.snapshots.clone(),
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
            let a = self.applied();
            if let Some(last) = a.last_applied {
                assert_eq!(
                    last.index + 1,
                    entry.log_id.index,
                    "entries are applied in log order, each once"
                );
            }
            match &entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(p) => a.sm.apply(entry.log_id.index, &p.0),
                EntryPayload::Membership(m) => {
                    a.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                }
            }
            a.last_applied = Some(entry.log_id);
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

/// A snapshot taken at the moment openraft asked for it; written to disk in the background.
pub(crate) struct SnapshotBuilder {
    meta: SnapshotMeta,
    data: Vec<u8>,
    snapshots: Snapshots,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = Vec<u8>;

    /// Saves the snapshot and returns its metadata with EMPTY data: openraft only reads
    /// the metadata of a snapshot it asked to build (replication and restarts read it back
    /// through `get_current_snapshot`), and the store releases the bytes as soon as they
    /// are written, before the fsync, so a large snapshot is not held in memory meanwhile.
    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let data = std::mem::take(&mut self.data);
        self.snapshots.save(&self.meta, data).await?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Vec::new(),
        })
    }
}
