//! `Queue` and `LockingQueue`: kazoo's queues with priorities.
//!
//! Twin: `kazoo/recipe/queue.py`. Layout:
//!
//! ```text
//! Queue:         /path/entry-<prio 000-999>-<seq10>           persistent sequential, data: item
//! LockingQueue:  /path/entries/entry-<prio>-<seq10>           persistent sequential, data: item
//!                /path/taken/<entry name>                     ephemeral, data: taker's uuid hex
//! ```
//!
//! Names sort by priority (lower first), then by sequence: both queues hand out the
//! smallest name. `Queue::get` deletes the entry before the caller processes it (no
//! reliable consumption); `LockingQueue::get` only locks it, and `consume` deletes entry
//! and lock in one multi.

use std::time::Duration;

use zookeeper_client::Client;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::path::{EPHEMERAL, PERSISTENT_SEQUENTIAL, ensure_path, join, uuid_hex};

fn check_priority(priority: u16) -> Result<()> {
    if priority > 999 {
        return Err(Error::Inconsistent(
            "priority must be between 0 and 999".into(),
        ));
    }
    Ok(())
}

/// kazoo's `Queue`.
pub struct Queue {
    conn: Connection,
    path: String,
    /// Names read but not yet taken (kazoo's `_children`).
    children: std::sync::Mutex<Vec<String>>,
}

impl Queue {
    /// The queue at `path`.
    pub fn new(conn: &Connection, path: &str) -> Queue {
        Queue {
            conn: conn.clone(),
            path: path.to_owned(),
            children: Default::default(),
        }
    }

    /// Puts `value` with kazoo's default priority, 100.
    pub async fn put(&self, value: &[u8]) -> Result<()> {
        self.put_with_priority(value, 100).await
    }

    /// Puts `value` with `priority` (0..=999, lower first).
    pub async fn put_with_priority(&self, value: &[u8], priority: u16) -> Result<()> {
        check_priority(priority)?;
        let prefix = join(&self.path, &format!("entry-{priority:03}-"));
        self.conn
            .retry(|c| {
                let prefix = prefix.clone();
                async move {
                    ensure_path(&c, &self.path).await?;
                    c.create(&prefix, value, &PERSISTENT_SEQUENTIAL).await?;
                    Ok(())
                }
            })
            .await
    }

    /// Takes the first item out of the queue; `None` if it is empty.
    pub async fn get(&self) -> Result<Option<Vec<u8>>> {
        self.conn.retry(|c| self.try_get(c)).await
    }

    /// One attempt of kazoo's `_inner_get`.
    async fn try_get(&self, c: Client) -> Result<Option<Vec<u8>>> {
        let head = self.children().first().cloned();
        let name = match head {
            Some(name) => name,
            None => {
                ensure_path(&c, &self.path).await?;
                let mut fresh = c.list_children(&self.path).await?;
                fresh.sort();
                let head = fresh.first().cloned();
                *self.children() = fresh;
                let Some(name) = head else { return Ok(None) };
                name
            }
        };
        let path = join(&self.path, &name);
        let taken = match c.get_data(&path).await {
            Ok((data, _)) => c.delete(&path, None).await.map(|()| data),
            Err(e) => Err(e),
        };
        match taken {
            Ok(data) => {
                self.children().retain(|n| *n != name);
                Ok(Some(data))
            }
            Err(zookeeper_client::Error::NoNode) => {
                // Another consumer took it first: read the queue again.
                self.children().clear();
                Err(Error::ForceRetry("queue head taken"))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn children(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.children
            .lock()
            .expect("queue cache lock is never poisoned")
    }

    /// The number of items.
    pub async fn len(&self) -> Result<usize> {
        children_count(&self.conn, &self.path).await
    }

    /// True if the queue has no items.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }
}

async fn children_count(conn: &Connection, path: &str) -> Result<usize> {
    conn.retry(|c| async move {
        ensure_path(&c, path).await?;
        let (_, stat) = c.get_data(path).await?;
        Ok(usize::try_from(stat.num_children).unwrap_or(0))
    })
    .await
}

/// kazoo's `LockingQueue`: entries are locked while processed, and deleted only when
/// consumed, so an entry whose taker dies goes back to the queue.
pub struct LockingQueue {
    conn: Connection,
    path: String,
    lock_path: String,
    entries_path: String,
    id: String,
    processing: tokio::sync::Mutex<Option<(String, Vec<u8>)>>,
}

impl LockingQueue {
    /// The locking queue at `path`.
    pub fn new(conn: &Connection, path: &str) -> LockingQueue {
        LockingQueue {
            conn: conn.clone(),
            path: path.to_owned(),
            lock_path: join(path, "taken"),
            entries_path: join(path, "entries"),
            id: uuid_hex(),
            processing: Default::default(),
        }
    }

    /// This taker's id, written into the lock nodes it makes.
    pub fn id(&self) -> &str {
        &self.id
    }

    async fn ensure(&self, c: &Client) -> Result<()> {
        ensure_path(c, &self.lock_path).await?;
        ensure_path(c, &self.entries_path).await?;
        Ok(())
    }

    /// Puts `value` with priority 100.
    pub async fn put(&self, value: &[u8]) -> Result<()> {
        self.put_all(&[value], 100).await
    }

    /// Puts every value with `priority`, all or none (one multi).
    pub async fn put_all(&self, values: &[&[u8]], priority: u16) -> Result<()> {
        check_priority(priority)?;
        let prefix = join(&self.entries_path, &format!("entry-{priority:03}-"));
        self.conn
            .retry(|c| {
                let prefix = prefix.clone();
                async move {
                    self.ensure(&c).await?;
                    let mut multi = c.new_multi_writer();
                    for value in values {
                        multi.add_create(&prefix, value, &PERSISTENT_SEQUENTIAL)?;
                    }
                    multi
                        .commit()
                        .await
                        .map_err(zookeeper_client::Error::from)?;
                    Ok(())
                }
            })
            .await
    }

    /// Locks and returns the first free entry, waiting up to `timeout` (forever if
    /// `None`) for one; an entry got and not yet consumed or released is returned again.
    /// `None` if the time ran out.
    pub async fn get(&self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        let mut processing = self.processing.lock().await;
        if let Some((_, value)) = processing.as_ref() {
            return Ok(Some(value.clone()));
        }
        let wait = async {
            loop {
                let c = self.conn.client()?;
                match self.try_take(&c).await {
                    Ok(Ok(taken)) => return Ok(taken),
                    Ok(Err((w1, w2))) => {
                        tokio::select! {
                            _ = w1.changed() => {}
                            _ = w2.changed() => {}
                        }
                    }
                    Err(e) if crate::retry::RetryPolicy::forever().is_retryable(&e) => {
                        self.conn.wait_connected().await?;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let taken = match timeout {
            None => Some(wait.await?),
            Some(t) => match tokio::time::timeout(t, wait).await {
                Ok(r) => Some(r?),
                Err(_) => None,
            },
        };
        *processing = taken.clone();
        Ok(taken.map(|(_, value)| value))
    }

    /// One look: the taken entry, or the two child watchers to wait on.
    #[allow(clippy::type_complexity)]
    async fn try_take(
        &self,
        c: &Client,
    ) -> Result<
        std::result::Result<
            (String, Vec<u8>),
            (
                zookeeper_client::OneshotWatcher,
                zookeeper_client::OneshotWatcher,
            ),
        >,
    > {
        self.ensure(c).await?;
        let (mut entries, w1) = c.list_and_watch_children(&self.entries_path).await?;
        let (taken, w2) = c.list_and_watch_children(&self.lock_path).await?;
        entries.sort();
        for id in entries.into_iter().filter(|e| !taken.contains(e)) {
            if let Some(value) = self.take(c, &id).await? {
                return Ok(Ok((id, value)));
            }
        }
        Ok(Err((w1, w2)))
    }

    /// kazoo's `_take`: locks entry `id` and reads it; `None` if someone was first.
    async fn take(&self, c: &Client, id: &str) -> Result<Option<Vec<u8>>> {
        let lock = join(&self.lock_path, id);
        match c.create(&lock, self.id.as_bytes(), &EPHEMERAL).await {
            Ok(_) => {}
            Err(zookeeper_client::Error::NodeExists) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        match c.get_data(&join(&self.entries_path, id)).await {
            Ok((value, _)) => Ok(Some(value)),
            Err(zookeeper_client::Error::NoNode) => {
                // Already consumed.
                let _ = c.delete(&lock, None).await;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// True if this taker still holds the lock of the entry it got.
    pub async fn holds_lock(&self) -> Result<bool> {
        let processing = self.processing.lock().await;
        self.holds(processing.as_ref()).await
    }

    async fn holds(&self, processing: Option<&(String, Vec<u8>)>) -> Result<bool> {
        let Some((id, _)) = processing else {
            return Ok(false);
        };
        let lock = join(&self.lock_path, id);
        self.conn
            .retry(|c| {
                let lock = lock.clone();
                async move {
                    c.sync(&lock).await?;
                    match c.get_data(&lock).await {
                        Ok((value, _)) => Ok(value == self.id.as_bytes()),
                        Err(zookeeper_client::Error::NoNode) => Ok(false),
                        Err(e) => Err(e.into()),
                    }
                }
            })
            .await
    }

    /// Removes the entry being processed from the queue (entry and lock in one multi);
    /// false if this taker holds none.
    pub async fn consume(&self) -> Result<bool> {
        self.finish(true).await
    }

    /// Unlocks the entry being processed without consuming it; false if none is held.
    pub async fn release(&self) -> Result<bool> {
        self.finish(false).await
    }

    async fn finish(&self, consume: bool) -> Result<bool> {
        let mut processing = self.processing.lock().await;
        if !self.holds(processing.as_ref()).await? {
            return Ok(false);
        }
        let (id, _) = processing.take().expect("held means processing");
        let c = self.conn.client()?;
        let mut multi = c.new_multi_writer();
        if consume {
            multi.add_delete(&join(&self.entries_path, &id), None)?;
        }
        multi.add_delete(&join(&self.lock_path, &id), None)?;
        multi
            .commit()
            .await
            .map_err(zookeeper_client::Error::from)?;
        Ok(true)
    }

    /// The number of entries, locked ones included.
    pub async fn len(&self) -> Result<usize> {
        children_count(&self.conn, &self.entries_path).await
    }

    /// True if the queue has no entries.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        &self.path
    }
}
