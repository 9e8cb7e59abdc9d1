//! `Election`: kazoo's leader election, a [`Lock`] whose holder is the leader.
//!
//! Twin: `kazoo/recipe/election.py`. Same nodes as the lock
//! (`/path/<uuid hex>__lock__<seq>`, data = identifier), so kazoo and Rust contenders
//! share one election. Deviation: the leader's work is a future, and
//! [`Election::lost`] tells it when leadership was lost with the session.

use std::future::Future;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::lock::{Lock, LockStatus};

/// kazoo's `Election`.
pub struct Election {
    lock: Lock,
}

impl Election {
    /// A contender in the election at `path`, known to others as `identifier`.
    pub fn new(conn: &Connection, path: &str, identifier: &str) -> Election {
        Election {
            lock: Lock::new(conn, path, identifier),
        }
    }

    /// Waits to win the election, then runs `leader` and steps down when it finishes
    /// (kazoo's `run`). `Ok(None)` if cancelled before winning.
    pub async fn run<F>(&self, leader: F) -> Result<Option<F::Output>>
    where
        F: Future,
    {
        match self.lock.acquire().await {
            Ok(()) => {}
            Err(Error::Cancelled) => return Ok(None),
            Err(e) => return Err(e),
        }
        let out = leader.await;
        self.lock.release().await?;
        Ok(Some(out))
    }

    /// Cancels a pending [`Election::run`] (not the leader's work once it has won).
    pub fn cancel(&self) {
        self.lock.cancel();
    }

    /// The contenders' identifiers, the leader first (kazoo's `contenders`).
    pub async fn contenders(&self) -> Result<Vec<String>> {
        self.lock.contenders().await
    }

    /// True while this contender leads.
    pub fn is_leader(&self) -> bool {
        self.lock.status() == LockStatus::Acquired
    }

    /// Resolves once this contender's leadership is lost with its session; a leader's work
    /// should `select!` on it.
    pub async fn lost(&self) {
        self.lock.lost().await
    }

    /// The lock underneath.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }
}
