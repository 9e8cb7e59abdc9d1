//! `Lock`, `ReadLock`, `WriteLock`: kazoo's fair lock and shared lock on sequential nodes.
//!
//! Twin: `kazoo/recipe/lock.py` (`Lock`, `ReadLock`, `WriteLock`). Layout under the lock
//! path, identical to kazoo's so both kinds of participant contend on one queue:
//!
//! ```text
//! /path/<uuid4 hex>__lock__<10-digit seq>    exclusive or write contender (data: identifier)
//! /path/<uuid4 hex>__rlock__<10-digit seq>   read contender (data: identifier)
//! ```
//!
//! A contender holds the lock when no node of the kinds it excludes has a smaller
//! sequence; otherwise it watches the largest such node (its predecessor), so each
//! release wakes exactly one waiter (no herd). Sequences compare as kazoo compares them,
//! as the matched strings.
//!
//! Deviations: `acquire` on an instance that already holds the lock fails with
//! [`Error::AlreadyAcquired`] (kazoo blocks forever); and the holder learns of a loss
//! through [`Lock::status_watcher`] / [`Lock::lost`]: the session that made the node is
//! gone (state `Lost` or a new epoch) or the node was deleted.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use zookeeper_client::{Client, EventType};

use crate::connection::{ConnState, Connection};
use crate::error::{Error, Result};
use crate::path::{EPHEMERAL_SEQUENTIAL, PERSISTENT_SEQUENTIAL, ensure_path, join, uuid_hex};
use crate::retry::RetryPolicy;

/// kazoo's node name of exclusive and write contenders.
pub const LOCK_NODE_NAME: &str = "__lock__";
/// kazoo's node name of read contenders.
pub const READ_LOCK_NODE_NAME: &str = "__rlock__";

/// Where a lock held by this instance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockStatus {
    /// Not held by this instance.
    Released,
    /// Held.
    Acquired,
    /// Was held, and is no longer: its session was lost or its node deleted. Another
    /// contender may hold it now.
    Lost,
}

/// kazoo's `Lock`: a fair, exclusive lock. See the module docs for the layout.
pub struct Lock {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Connection,
    path: String,
    data: Vec<u8>,
    node_name: &'static str,
    /// Node names whose smaller sequences keep this contender waiting.
    exclude_names: Vec<String>,
    /// `<uuid hex><node_name>`: the created node's name before its sequence.
    prefix: String,
    state: Mutex<State>,
    cancelled: watch::Sender<bool>,
    status: watch::Sender<LockStatus>,
    /// One acquire at a time per instance (kazoo's `_acquire_method_lock`).
    acquiring: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    node: Option<String>,
    create_tried: bool,
    assured_path: bool,
}

impl Lock {
    /// An exclusive lock on `path`; `identifier` is stored in the contender node and
    /// returned by [`Lock::contenders`].
    pub fn new(conn: &Connection, path: &str, identifier: &str) -> Lock {
        Lock::with_names(
            conn,
            path,
            identifier,
            LOCK_NODE_NAME,
            &[LOCK_NODE_NAME],
            &[],
        )
    }

    /// An exclusive lock that also counts nodes matching `extra_lock_patterns` as
    /// contenders (kazoo's `extra_lock_patterns`, for other implementations' nodes).
    pub fn with_extra_patterns(
        conn: &Connection,
        path: &str,
        identifier: &str,
        extra_lock_patterns: &[&str],
    ) -> Lock {
        Lock::with_names(
            conn,
            path,
            identifier,
            LOCK_NODE_NAME,
            &[LOCK_NODE_NAME],
            extra_lock_patterns,
        )
    }

    fn with_names(
        conn: &Connection,
        path: &str,
        identifier: &str,
        node_name: &'static str,
        exclude: &[&str],
        extra: &[&str],
    ) -> Lock {
        let mut exclude_names: Vec<String> =
            exclude.iter().chain(extra).map(|s| s.to_string()).collect();
        exclude_names.sort();
        exclude_names.dedup();
        let (cancelled, _) = watch::channel(false);
        let (status, _) = watch::channel(LockStatus::Released);
        Lock {
            inner: Arc::new(Inner {
                conn: conn.clone(),
                path: path.trim_end_matches('/').to_owned(),
                data: identifier.as_bytes().to_vec(),
                node_name,
                exclude_names,
                prefix: format!("{}{node_name}", uuid_hex()),
                state: Mutex::new(State::default()),
                cancelled,
                status,
                acquiring: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// This contender's node name under the path, while it has one.
    pub fn node(&self) -> Option<String> {
        self.inner.state().node.clone()
    }

    /// Where the lock stands for this instance.
    pub fn status(&self) -> LockStatus {
        *self.inner.status.borrow()
    }

    /// True while this instance holds the lock.
    pub fn is_acquired(&self) -> bool {
        self.status() == LockStatus::Acquired
    }

    /// A receiver of this instance's [`LockStatus`] changes.
    pub fn status_watcher(&self) -> watch::Receiver<LockStatus> {
        self.inner.status.subscribe()
    }

    /// Resolves once a lock held by this instance is lost (at once if it already was).
    /// Never resolves while the lock is released normally and not re-acquired.
    pub async fn lost(&self) {
        let mut rx = self.status_watcher();
        // The sender lives in `self`, so `wait_for` only ends when the status matches.
        let _ = rx.wait_for(|s| *s == LockStatus::Lost).await;
    }

    /// Blocks until the lock is held (kazoo's `acquire()`).
    pub async fn acquire(&self) -> Result<()> {
        self.acquire_with(true, None, true).await.map(|_| ())
    }

    /// Blocks until the lock is held or `timeout` passes ([`Error::LockTimeout`]).
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        self.acquire_with(true, Some(timeout), true)
            .await
            .map(|_| ())
    }

    /// Takes the lock if it is free now (kazoo's `acquire(blocking=False)`).
    pub async fn try_acquire(&self) -> Result<bool> {
        self.acquire_with(false, None, true).await
    }

    /// kazoo's `acquire(blocking, timeout, ephemeral)`. With `ephemeral` false the node
    /// outlives the session, so a lost session does not release the lock.
    pub async fn acquire_with(
        &self,
        blocking: bool,
        timeout: Option<Duration>,
        ephemeral: bool,
    ) -> Result<bool> {
        let inner = &self.inner;
        let _one_at_a_time = if blocking {
            inner.acquiring.lock().await
        } else {
            match inner.acquiring.try_lock() {
                Ok(g) => g,
                Err(_) => return Ok(false),
            }
        };
        if self.is_acquired() {
            return Err(Error::AlreadyAcquired);
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let policy = RetryPolicy::forever().with_deadline(timeout);
        let result = inner
            .conn
            .retry_with(&policy, |client| {
                inner.try_acquire_once(client, blocking, deadline, timeout, ephemeral)
            })
            .await;
        match result {
            Ok(true) => {
                inner.status.send_replace(LockStatus::Acquired);
                tokio::spawn(watch_for_loss(Arc::downgrade(inner), self.node()));
                Ok(true)
            }
            Ok(false) | Err(Error::RetryFailed(_)) => {
                inner.best_effort_cleanup().await;
                Ok(false)
            }
            Err(e) => {
                inner.best_effort_cleanup().await;
                inner.cancelled.send_replace(false);
                Err(e)
            }
        }
    }

    /// Cancels a pending acquire, which then fails with [`Error::Cancelled`] (kazoo's
    /// `cancel`). A cancel while no acquire runs makes the next one fail at once.
    pub fn cancel(&self) {
        self.inner.cancelled.send_replace(true);
    }

    /// Releases the lock: deletes this contender's node. False if it was not held (a lost
    /// lock's node is still deleted if it is somehow there, and false returned).
    pub async fn release(&self) -> Result<bool> {
        let inner = &self.inner;
        let was = self.status();
        if was == LockStatus::Released {
            return Ok(false);
        }
        // Forget the node before deleting it, so that the loss watcher does not take our own
        // delete for a lost lock; if the delete fails, the node is still ours.
        let node = inner.state().node.take();
        if let Some(node) = node {
            let path = join(&inner.path, &node);
            let deleted = inner
                .conn
                .retry(|c| {
                    let path = path.clone();
                    async move {
                        match c.delete(&path, None).await {
                            Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
                            Err(e) => Err(e.into()),
                        }
                    }
                })
                .await;
            if let Err(e) = deleted {
                inner.state().node = Some(node);
                return Err(e);
            }
        }
        inner.status.send_replace(LockStatus::Released);
        Ok(was == LockStatus::Acquired)
    }

    /// The identifiers of every contender, the holder(s) first, in queue order (kazoo's
    /// `contenders()`): exclusive, read and write contenders alike.
    pub async fn contenders(&self) -> Result<Vec<String>> {
        let inner = &self.inner;
        let mut names = inner.exclude_names.clone();
        names.push(inner.node_name.to_owned());
        inner
            .conn
            .retry(|c| {
                let names = names.clone();
                async move {
                    inner.assure_path(&c).await?;
                    contenders_of(&c, &inner.path, &names).await
                }
            })
            .await
    }
}

/// The identifiers of the contenders among `path`'s children whose names end in one of
/// `names` and a sequence, in sequence order.
pub(crate) async fn contenders_of(c: &Client, path: &str, names: &[String]) -> Result<Vec<String>> {
    let children = c.list_children(path).await?;
    let mut matched: Vec<(&str, &String)> = children
        .iter()
        .filter_map(|child| contender_sequence(child, names).map(|seq| (seq, child)))
        .collect();
    matched.sort();
    let mut out = Vec::with_capacity(matched.len());
    for (_, child) in matched {
        match c.get_data(&join(path, child)).await {
            Ok((data, _)) => out.push(String::from_utf8_lossy(&data).into_owned()),
            Err(zookeeper_client::Error::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// kazoo's contender pattern `(?:name1|name2)(-?\d{10})$`: the sequence part (with its
/// sign) if `child` ends in one of `names` and ten digits.
pub(crate) fn contender_sequence<'a>(child: &'a str, names: &[String]) -> Option<&'a str> {
    let digits_at = child.len().checked_sub(10)?;
    if !child.is_char_boundary(digits_at) || !child[digits_at..].bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let head = &child[..digits_at];
    if let Some(unsigned) = head.strip_suffix('-')
        && names.iter().any(|n| unsigned.ends_with(n.as_str()))
    {
        return Some(&child[digits_at - 1..]);
    }
    names
        .iter()
        .any(|n| head.ends_with(n.as_str()))
        .then(|| &child[digits_at..])
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("lock state is never poisoned")
    }

    async fn assure_path(&self, c: &Client) -> Result<()> {
        if !self.state().assured_path {
            ensure_path(c, &self.path).await?;
            self.state().assured_path = true;
        }
        Ok(())
    }

    /// One attempt of kazoo's `_inner_acquire`: find or make our node, then wait for every
    /// predecessor to go.
    async fn try_acquire_once(
        &self,
        c: Client,
        blocking: bool,
        deadline: Option<tokio::time::Instant>,
        timeout: Option<Duration>,
        ephemeral: bool,
    ) -> Result<bool> {
        self.assure_path(&c).await?;
        let tried = std::mem::replace(&mut self.state().create_tried, true);
        let found = if tried {
            self.find_node(&c).await?
        } else {
            None
        };
        let node = match found {
            Some(node) => node,
            None => {
                let opts = if ephemeral {
                    &EPHEMERAL_SEQUENTIAL
                } else {
                    &PERSISTENT_SEQUENTIAL
                };
                let create_path = join(&self.path, &self.prefix);
                let (_, seq) = c.create(&create_path, &self.data, opts).await?;
                format!("{}{seq}", self.prefix)
            }
        };
        self.state().node = Some(node.clone());
        let mut status = self.conn.status_watcher();
        let mut cancelled = self.cancelled.subscribe();
        loop {
            status.borrow_and_update();
            if *cancelled.borrow_and_update() {
                return Err(Error::Cancelled);
            }
            let Some(predecessor) = self.predecessor(&c, &node).await? else {
                return Ok(true);
            };
            if !blocking {
                return Ok(false);
            }
            let watcher = match c.get_and_watch_data(&join(&self.path, &predecessor)).await {
                Ok((_, _, watcher)) => watcher,
                Err(zookeeper_client::Error::NoNode) => continue,
                Err(e) => return Err(e.into()),
            };
            let until = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = watcher.changed() => {}
                _ = status.changed() => {}
                _ = cancelled.changed() => {}
                _ = until => {
                    return Err(Error::LockTimeout(timeout.unwrap_or_default()));
                }
            }
        }
    }

    /// The contender this one waits for, or `None` if it holds the lock. Forces a retry
    /// from the top if our node is gone (the session that made it was lost).
    async fn predecessor(&self, c: &Client, node: &str) -> Result<Option<String>> {
        let own_sequence = &node[self.prefix.len()..];
        let children = c.list_children(&self.path).await?;
        if !children.iter().any(|child| child == node) {
            return Err(Error::ForceRetry("our lock node is gone"));
        }
        let predecessor = children
            .iter()
            .filter_map(|child| {
                let seq = contender_sequence(child, &self.exclude_names)?;
                (seq < own_sequence).then_some((seq, child))
            })
            .max();
        Ok(predecessor.map(|(_, child)| child.clone()))
    }

    async fn find_node(&self, c: &Client) -> Result<Option<String>> {
        let children = c.list_children(&self.path).await?;
        Ok(children
            .into_iter()
            .find(|child| child.starts_with(&self.prefix)))
    }

    /// kazoo's `_best_effort_cleanup`: deletes our node if we know it or can find it.
    async fn best_effort_cleanup(&self) {
        let Ok(c) = self.conn.client() else { return };
        let known = self.state().node.take();
        let node = match known {
            Some(node) => Some(node),
            None => self.find_node(&c).await.ok().flatten(),
        };
        if let Some(node) = node {
            let _ = c.delete(&join(&self.path, &node), None).await;
        }
    }

    fn mark_lost(&self, node: &str) {
        let current = self.state().node.clone();
        if current.as_deref() != Some(node) {
            return;
        }
        let lost = self.status.send_if_modified(|s| {
            let held = *s == LockStatus::Acquired;
            if held {
                *s = LockStatus::Lost;
            }
            held
        });
        if lost {
            tracing::warn!(path = %self.path, node, "lock lost");
        }
    }
}

/// Watches a held lock until it is released (or the `Lock` dropped), and marks it lost if
/// its session is lost or its node deleted.
async fn watch_for_loss(weak: Weak<Inner>, node: Option<String>) {
    let Some(node) = node else { return };
    let (mut conn_status, mut lock_status, epoch) = {
        let Some(inner) = weak.upgrade() else { return };
        let status = inner.conn.status_watcher();
        let epoch = status.borrow().epoch;
        (status, inner.status.subscribe(), epoch)
    };
    loop {
        let watcher = {
            let Some(inner) = weak.upgrade() else { return };
            if *lock_status.borrow_and_update() != LockStatus::Acquired {
                return;
            }
            let s = *conn_status.borrow_and_update();
            if s.state == ConnState::Lost || s.epoch != epoch {
                inner.mark_lost(&node);
                return;
            }
            let Ok(c) = inner.conn.client() else { return };
            let path = join(&inner.path, &node);
            drop(inner);
            match c.get_and_watch_data(&path).await {
                Ok((_, _, watcher)) => Some(watcher),
                Err(zookeeper_client::Error::NoNode) => {
                    if let Some(inner) = weak.upgrade() {
                        inner.mark_lost(&node);
                    }
                    return;
                }
                // Connection trouble: decided by the connection's state below.
                Err(_) => None,
            }
        };
        let node_event = async {
            match watcher {
                Some(w) => Some(w.changed().await),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = node_event => {
                let gone = event.is_some_and(|e| {
                    e.event_type == EventType::NodeDeleted
                        || (e.event_type == EventType::Session && e.session_state.is_terminated())
                });
                if gone {
                    if let Some(inner) = weak.upgrade() {
                        inner.mark_lost(&node);
                    }
                    return;
                }
            }
            r = conn_status.changed() => if r.is_err() { return },
            r = lock_status.changed() => if r.is_err() { return },
        }
    }
}

/// kazoo's `ReadLock`: shared with other readers, excluded by writers (`__lock__` nodes).
pub struct ReadLock(Lock);

/// kazoo's `WriteLock`: excluded by readers and writers (`__lock__` and `__rlock__`).
pub struct WriteLock(Lock);

impl ReadLock {
    /// A read lock on `path`.
    pub fn new(conn: &Connection, path: &str, identifier: &str) -> ReadLock {
        ReadLock(Lock::with_names(
            conn,
            path,
            identifier,
            READ_LOCK_NODE_NAME,
            &[LOCK_NODE_NAME],
            &[],
        ))
    }
}

impl WriteLock {
    /// A write lock on `path`.
    pub fn new(conn: &Connection, path: &str, identifier: &str) -> WriteLock {
        WriteLock(Lock::with_names(
            conn,
            path,
            identifier,
            LOCK_NODE_NAME,
            &[LOCK_NODE_NAME, READ_LOCK_NODE_NAME],
            &[],
        ))
    }
}

impl std::ops::Deref for ReadLock {
    type Target = Lock;
    fn deref(&self) -> &Lock {
        &self.0
    }
}

impl std::ops::Deref for WriteLock {
    type Target = Lock;
    fn deref(&self) -> &Lock {
        &self.0
    }
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("path", &self.inner.path)
            .field("node", &self.node())
            .field("status", &self.status())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn contender_sequence_follows_kazoos_pattern() {
        let lock = names(&["__lock__"]);
        let both = names(&["__lock__", "__rlock__"]);
        assert_eq!(
            contender_sequence("abc__lock__0000000007", &lock),
            Some("0000000007")
        );
        assert_eq!(contender_sequence("abc__lock__-000000007", &lock), None);
        assert_eq!(
            contender_sequence("abc__lock__-0000000007", &lock),
            Some("-0000000007")
        );
        assert_eq!(contender_sequence("abc__rlock__0000000007", &lock), None);
        assert_eq!(
            contender_sequence("abc__rlock__0000000007", &both),
            Some("0000000007")
        );
        // Eleven digits: the pattern wants exactly ten after the name.
        assert_eq!(contender_sequence("abc__lock__00000000007", &lock), None);
        assert_eq!(contender_sequence("short", &lock), None);
        assert_eq!(contender_sequence("lease_holder", &lock), None);
    }
}
