//! `TreeCache`: an in-memory copy of a subtree, kept up to date from one persistent
//! recursive watch.
//!
//! Twin: `kazoo/recipe/cache.py` (a port of Curator's `TreeCache`), with its event kinds.
//! Deviation: kazoo sets a one-shot data and child watch on every node; this cache adds
//! one `PersistentRecursive` watch on the root (ZooKeeper 3.6+), which sees every
//! creation, deletion and data change below it (never `NodeChildrenChanged`, which it
//! does not need).
//!
//! **The reconnect gap.** `zookeeper-client` 0.11.2 does not re-send persistent watches
//! when it reconnects (its `SetWatches` carries only the data, exist and child lists), so
//! after a reconnect the server no longer watches the subtree for this session. The cache
//! therefore re-adds its watch on every `SyncConnected` its watcher reports (and in the
//! fresh session after a loss), then re-reads the whole subtree and publishes the
//! difference, which also covers what changed while it was disconnected. The old watcher
//! is dropped only after the new one is registered, so the client never sends a
//! `removeWatches` that would take other watches on the root with it.
//!
//! Flow: one task per cache runs `arm → resync → events until reconnect or loss → arm ...`;
//! every event makes it re-read the node (or subtree) it names, and a read result replaces
//! the cached entry only if it differs, so duplicate and stale events are harmless.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use zookeeper_client::{AddWatchMode, Client, EventType, PersistentWatcher, SessionState};

use crate::connection::Connection;
use crate::error::Result;
use crate::path::{ensure_path, join};
use crate::watchers::NodeData;

/// kazoo's `TreeEvent` types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeEventKind {
    /// A node entered the cache.
    NodeAdded,
    /// A cached node's data or stat changed.
    NodeUpdated,
    /// A node left the cache.
    NodeRemoved,
    /// The connection dropped; the cache may be stale until it reconnects.
    ConnectionSuspended,
    /// The connection is back, the watch re-added and the cache re-read (so events after
    /// this one are seen live).
    ConnectionReconnected,
    /// The session was lost; the cache is refreshed in the fresh session.
    ConnectionLost,
    /// The first full read is in the cache.
    Initialized,
}

/// A change of the cache, delivered to [`TreeCache::listen`]ers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEvent {
    /// What happened.
    pub kind: TreeEventKind,
    /// The node's path, for node events.
    pub path: Option<String>,
    /// The node's data after the change (before it, for `NodeRemoved`).
    pub data: Option<NodeData>,
}

/// kazoo's `TreeCache`. Dropping it (or [`TreeCache::close`]) stops the watching task.
pub struct TreeCache {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    root: String,
    nodes: Mutex<BTreeMap<String, NodeData>>,
    listeners: Mutex<Vec<mpsc::UnboundedSender<TreeEvent>>>,
    initialized: watch::Sender<bool>,
    /// How many times the persistent watch was added (1 + re-arms).
    arms: watch::Sender<u64>,
}

impl TreeCache {
    /// Starts caching the subtree at `root` (created if missing, as kazoo does). The first
    /// full read happens in the background; see [`TreeCache::wait_initialized`].
    pub async fn start(conn: &Connection, root: &str) -> Result<TreeCache> {
        let root = root.to_owned();
        conn.retry(|c| {
            let root = root.clone();
            async move { ensure_path(&c, &root).await }
        })
        .await?;
        let (initialized, _) = watch::channel(false);
        let (arms, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            root,
            nodes: Mutex::new(BTreeMap::new()),
            listeners: Mutex::new(Vec::new()),
            initialized,
            arms,
        });
        let task = tokio::spawn(run(shared.clone(), conn.clone()));
        Ok(TreeCache { shared, task })
    }

    /// A receiver of every later [`TreeEvent`]. The queue is unbounded (as kazoo's): read
    /// it, or drop it.
    pub fn listen(&self) -> mpsc::UnboundedReceiver<TreeEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.shared.listeners().push(tx);
        rx
    }

    /// Waits until the first full read is in the cache.
    pub async fn wait_initialized(&self) {
        let mut rx = self.shared.initialized.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    /// The cached data and stat of `path`, if it is in the subtree and cached.
    pub fn get_data(&self, path: &str) -> Option<NodeData> {
        self.shared.nodes().get(path).cloned()
    }

    /// The cached children names of `path`, if it is cached.
    pub fn get_children(&self, path: &str) -> Option<BTreeSet<String>> {
        let nodes = self.shared.nodes();
        nodes.get(path)?;
        Some(children_of(&nodes, path).map(str::to_owned).collect())
    }

    /// How many times the persistent watch has been added: 1 after the start, one more
    /// after each reconnect or session loss.
    pub fn arms(&self) -> u64 {
        *self.shared.arms.borrow()
    }

    /// Stops the cache and empties it (kazoo's `close`).
    pub fn close(self) {
        self.task.abort();
        self.shared.nodes().clear();
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for TreeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeCache")
            .field("root", &self.shared.root)
            .field("nodes", &self.shared.nodes().len())
            .finish()
    }
}

/// The names of `path`'s direct children among `nodes`' keys.
fn children_of<'a>(
    nodes: &'a BTreeMap<String, NodeData>,
    path: &str,
) -> impl Iterator<Item = &'a str> {
    let prefix = join(path, "");
    nodes
        .range(prefix.clone()..)
        .map(|(k, _)| k.as_str())
        .take_while(move |k| k.starts_with(&prefix))
        .filter_map(move |k| {
            let rest = &k[join(path, "").len()..];
            (!rest.is_empty() && !rest.contains('/')).then_some(rest)
        })
}

/// True if `path` is `root` or below it.
fn within(root: &str, path: &str) -> bool {
    path == root || path.starts_with(&join(root, ""))
}

impl Shared {
    fn nodes(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, NodeData>> {
        self.nodes.lock().expect("cache lock is never poisoned")
    }

    fn listeners(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::UnboundedSender<TreeEvent>>> {
        self.listeners
            .lock()
            .expect("listener lock is never poisoned")
    }

    fn publish(&self, kind: TreeEventKind, path: Option<String>, data: Option<NodeData>) {
        let event = TreeEvent { kind, path, data };
        tracing::debug!(?event.kind, path = ?event.path, "tree cache event");
        self.listeners().retain(|l| l.send(event.clone()).is_ok());
    }

    /// Puts `node` at `path`, publishing Added or Updated if it changed anything.
    fn upsert(&self, path: &str, node: NodeData) {
        let old = self.nodes().insert(path.to_owned(), node.clone());
        match old {
            None => self.publish(TreeEventKind::NodeAdded, Some(path.to_owned()), Some(node)),
            Some(old) if old != node => self.publish(
                TreeEventKind::NodeUpdated,
                Some(path.to_owned()),
                Some(node),
            ),
            Some(_) => {}
        }
    }

    /// Removes `path` and everything below it, deepest first.
    fn remove_subtree(&self, path: &str) {
        let removed: Vec<(String, NodeData)> = {
            let mut nodes = self.nodes();
            let keys: Vec<String> = nodes.keys().filter(|k| within(path, k)).cloned().collect();
            keys.into_iter()
                .rev()
                .filter_map(|k| nodes.remove(&k).map(|v| (k, v)))
                .collect()
        };
        for (k, v) in removed {
            self.publish(TreeEventKind::NodeRemoved, Some(k), Some(v));
        }
    }

    /// Makes the cache equal `snapshot`, publishing the difference.
    fn replace_all(&self, snapshot: BTreeMap<String, NodeData>) {
        let gone: Vec<String> = self
            .nodes()
            .keys()
            .filter(|k| !snapshot.contains_key(*k))
            .cloned()
            .collect();
        for k in gone.iter().rev() {
            self.remove_subtree(k);
        }
        for (k, v) in snapshot {
            self.upsert(&k, v);
        }
    }
}

/// Reads the subtree at `path`: every node's data and stat.
async fn load(c: &Client, path: &str) -> Result<BTreeMap<String, NodeData>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![path.to_owned()];
    while let Some(p) = stack.pop() {
        let (data, stat) = match c.get_data(&p).await {
            Ok(r) => r,
            Err(zookeeper_client::Error::NoNode) => continue,
            Err(e) => return Err(e.into()),
        };
        let children = match c.list_children(&p).await {
            Ok(children) => children,
            Err(zookeeper_client::Error::NoNode) => continue,
            Err(e) => return Err(e.into()),
        };
        stack.extend(children.iter().map(|child| join(&p, child)));
        out.insert(p, NodeData { data, stat });
    }
    Ok(out)
}

/// How an event stream ended.
enum Ended {
    /// The connection came back in the same session: re-arm and resync.
    Reconnected,
    /// The session ended: wait for a fresh one, then re-arm and resync.
    Lost,
    /// A request failed (connection trouble): re-arm and resync once connected.
    Failed,
}

/// The cache's task: arm, resync, follow events; again after each reconnect or loss.
async fn run(shared: Arc<Shared>, conn: Connection) {
    let mut old: Option<PersistentWatcher> = None;
    let mut reconnected = false;
    // The session epoch of the last armed watch: a different one means the session was
    // lost in between, however the loss was noticed (a watcher event or a failed read).
    let mut armed_epoch: Option<u64> = None;
    loop {
        let Ok(status) = conn.wait_connected().await else {
            return;
        };
        if armed_epoch.is_some_and(|e| e != status.epoch) {
            shared.publish(TreeEventKind::ConnectionLost, None, None);
            reconnected = true;
            // The old watcher belongs to the dead session; never poll it again.
            old = None;
        }
        armed_epoch = Some(status.epoch);
        let Ok(c) = conn.client() else { return };
        let mut watcher = match c
            .watch(&shared.root, AddWatchMode::PersistentRecursive)
            .await
        {
            Ok(w) => w,
            Err(err) => {
                tracing::debug!(%err, "cannot add the tree cache's watch yet");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Only now that the new watch is registered may the old one go (see module docs).
        drop(old.take());
        shared.arms.send_modify(|n| *n += 1);
        match load(&c, &shared.root).await {
            Ok(snapshot) => shared.replace_all(snapshot),
            Err(err) => {
                tracing::debug!(%err, "tree cache resync failed; again");
                old = Some(watcher);
                continue;
            }
        }
        if !*shared.initialized.borrow() {
            shared.initialized.send_replace(true);
            shared.publish(TreeEventKind::Initialized, None, None);
        }
        if std::mem::take(&mut reconnected) {
            shared.publish(TreeEventKind::ConnectionReconnected, None, None);
        }
        match follow(&shared, &c, &mut watcher).await {
            Ended::Reconnected => {
                reconnected = true;
                old = Some(watcher);
            }
            Ended::Failed => {
                reconnected = true;
                old = Some(watcher);
            }
            // The dead session's watcher must not be polled again; it goes. The loss is
            // published at the top, once the connection has the fresh session.
            Ended::Lost => {}
        }
    }
}

/// Applies node events until the watcher reports a reconnect or a loss.
async fn follow(shared: &Shared, c: &Client, watcher: &mut PersistentWatcher) -> Ended {
    loop {
        let event = watcher.changed().await;
        let path = event.path;
        let applied = match event.event_type {
            EventType::Session => match event.session_state {
                SessionState::Disconnected => {
                    shared.publish(TreeEventKind::ConnectionSuspended, None, None);
                    Ok(())
                }
                SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                    return Ended::Reconnected;
                }
                _ => return Ended::Lost,
            },
            _ if !within(&shared.root, &path) => Ok(()),
            EventType::NodeCreated => refresh_subtree(shared, c, &path).await,
            EventType::NodeDataChanged => refresh_node(shared, c, &path).await,
            EventType::NodeDeleted => {
                shared.remove_subtree(&path);
                Ok(())
            }
            EventType::NodeChildrenChanged => Ok(()),
        };
        if let Err(err) = applied {
            tracing::debug!(%err, path, "tree cache refresh failed");
            return Ended::Failed;
        }
    }
}

async fn refresh_node(shared: &Shared, c: &Client, path: &str) -> Result<()> {
    match c.get_data(path).await {
        Ok((data, stat)) => shared.upsert(path, NodeData { data, stat }),
        Err(zookeeper_client::Error::NoNode) => shared.remove_subtree(path),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

async fn refresh_subtree(shared: &Shared, c: &Client, path: &str) -> Result<()> {
    let snapshot = load(c, path).await?;
    if snapshot.is_empty() {
        shared.remove_subtree(path);
    }
    for (k, v) in snapshot {
        shared.upsert(&k, v);
    }
    Ok(())
}
