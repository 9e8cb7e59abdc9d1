//! `Semaphore`: kazoo's lease-counting semaphore.
//!
//! Twin: `Semaphore` in `kazoo/recipe/lock.py`. Layout:
//!
//! ```text
//! /path                   data: max leases (ASCII), checked against every participant's
//! /path/<uuid4 hex>       one ephemeral node per lease held (data: identifier)
//! /path-__lock__/...      a kazoo Lock serialising the lease takers (no herd)
//! ```
//!
//! A taker holds the lock while it looks at the lease count, creates its lease node if a
//! lease is free, and (blocking) waits for the children of `/path` to change.

use std::time::Duration;

use tokio::sync::watch;
use zookeeper_client::Client;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::path::{EPHEMERAL, ensure_path, join, uuid_hex};

/// kazoo's `Semaphore`.
pub struct Semaphore {
    conn: Connection,
    path: String,
    data: Vec<u8>,
    identifier: String,
    max_leases: usize,
    create_path: String,
    lock_path: String,
    acquired: std::sync::atomic::AtomicBool,
    cancelled: watch::Sender<bool>,
}

impl Semaphore {
    /// A participant in the semaphore at `path` with `max_leases` leases.
    pub fn new(conn: &Connection, path: &str, identifier: &str, max_leases: usize) -> Semaphore {
        let (cancelled, _) = watch::channel(false);
        Semaphore {
            conn: conn.clone(),
            path: path.to_owned(),
            data: identifier.as_bytes().to_vec(),
            identifier: identifier.to_owned(),
            max_leases,
            create_path: join(path, &uuid_hex()),
            lock_path: format!("{path}-__lock__"),
            acquired: false.into(),
            cancelled,
        }
    }

    /// True while this participant holds a lease.
    pub fn is_acquired(&self) -> bool {
        self.acquired.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Blocks until a lease is held.
    pub async fn acquire(&self) -> Result<()> {
        self.acquire_with(true, None).await.map(|_| ())
    }

    /// Takes a lease if one is free now.
    pub async fn try_acquire(&self) -> Result<bool> {
        self.acquire_with(false, None).await
    }

    /// kazoo's `acquire(blocking, timeout)`: [`Error::LockTimeout`] if `timeout` passes.
    pub async fn acquire_with(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        self.cancelled.send_replace(false);
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let r = self
            .conn
            .retry(|c| self.inner_acquire(c, blocking, deadline, timeout))
            .await;
        match r {
            Ok(got) => {
                self.acquired
                    .store(got, std::sync::atomic::Ordering::SeqCst);
                Ok(got)
            }
            Err(e) => {
                if let Ok(c) = self.conn.client() {
                    let _ = c.delete(&self.create_path, None).await;
                }
                self.cancelled.send_replace(false);
                Err(e)
            }
        }
    }

    /// Cancels a pending acquire ([`Error::Cancelled`]).
    pub fn cancel(&self) {
        self.cancelled.send_replace(true);
    }

    /// Gives the lease back; false if none was held.
    pub async fn release(&self) -> Result<bool> {
        if !self.is_acquired() {
            return Ok(false);
        }
        self.conn
            .retry(|c| async move {
                match c.delete(&self.create_path, None).await {
                    Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        self.acquired
            .store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(true)
    }

    /// The identifiers of the lease holders, in no particular order.
    pub async fn lease_holders(&self) -> Result<Vec<String>> {
        self.conn
            .retry(|c| async move {
                let children = match c.list_children(&self.path).await {
                    Ok(children) => children,
                    Err(zookeeper_client::Error::NoNode) => return Ok(Vec::new()),
                    Err(e) => return Err(e.into()),
                };
                let mut out = Vec::new();
                for child in children {
                    match c.get_data(&join(&self.path, &child)).await {
                        Ok((data, _)) => out.push(String::from_utf8_lossy(&data).into_owned()),
                        Err(zookeeper_client::Error::NoNode) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(out)
            })
            .await
    }

    /// kazoo's `_ensure_path`: makes the node with the lease count, or checks the count.
    async fn ensure(&self, c: &Client) -> Result<()> {
        if !ensure_path(c, &self.path).await? {
            let max = self.max_leases.to_string();
            c.set_data(&self.path, max.as_bytes(), None).await?;
            return Ok(());
        }
        let (data, _) = c.get_data(&self.path).await?;
        let stored = std::str::from_utf8(&data)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok());
        match stored {
            Some(leases) if leases != self.max_leases => Err(Error::Inconsistent(format!(
                "Inconsistent max leases: {leases}, expected: {}",
                self.max_leases
            ))),
            // Equal, or not a number (the node may be used for something else).
            _ => Ok(()),
        }
    }

    async fn inner_acquire(
        &self,
        c: Client,
        blocking: bool,
        deadline: Option<tokio::time::Instant>,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        self.ensure(&c).await?;
        if c.check_stat(&self.create_path).await?.is_some() {
            return Ok(true);
        }
        let lock = Lock::new(&self.conn, &self.lock_path, &self.identifier);
        let left = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
        let got = match lock.acquire_with(blocking, left, true).await {
            Ok(got) => got,
            Err(Error::LockTimeout(_)) => {
                return Err(Error::LockTimeout(timeout.unwrap_or_default()));
            }
            Err(e) => return Err(e),
        };
        if !got {
            return Ok(false);
        }
        let r = self.take_lease(&c, blocking, deadline, timeout).await;
        let _ = lock.release().await;
        r
    }

    async fn take_lease(
        &self,
        c: &Client,
        blocking: bool,
        deadline: Option<tokio::time::Instant>,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        let mut cancelled = self.cancelled.subscribe();
        let mut status = self.conn.status_watcher();
        loop {
            status.borrow_and_update();
            if *cancelled.borrow_and_update() {
                return Err(Error::Cancelled);
            }
            let (children, watcher) = c.list_and_watch_children(&self.path).await?;
            if children.len() < self.max_leases {
                match c.create(&self.create_path, &self.data, &EPHEMERAL).await {
                    Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if c.check_stat(&self.create_path).await?.is_some() {
                return Ok(true);
            }
            if !blocking {
                return Ok(false);
            }
            let until = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = watcher.changed() => {}
                _ = cancelled.changed() => {}
                r = status.changed() => if r.is_ok() {
                    // Any state change: look again from the top (kazoo retries on loss).
                    return Err(Error::ForceRetry("connection state changed"));
                },
                _ = until => return Err(Error::LockTimeout(timeout.unwrap_or_default())),
            }
        }
    }
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("path", &self.path)
            .field("max_leases", &self.max_leases)
            .field("acquired", &self.is_acquired())
            .finish()
    }
}
