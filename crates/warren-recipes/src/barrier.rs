//! `Barrier` and `DoubleBarrier`: kazoo's barriers.
//!
//! Twin: `kazoo/recipe/barrier.py`. A `Barrier` is in place while its node exists. A
//! `DoubleBarrier` at `/path` keeps one ephemeral child per member,
//! `/path/<uuid4 hex>` (data: identifier), and `/path/ready` once enough have entered;
//! leaving follows kazoo's order (the lowest member waits for the highest, the others
//! delete themselves and wait for the lowest).

use std::time::Duration;

use zookeeper_client::EventType;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::path::{EPHEMERAL, ensure_path, join, uuid_hex};

/// kazoo's `Barrier`.
pub struct Barrier {
    conn: Connection,
    path: String,
}

impl Barrier {
    /// A barrier at `path`.
    pub fn new(conn: &Connection, path: &str) -> Barrier {
        Barrier {
            conn: conn.clone(),
            path: path.to_owned(),
        }
    }

    /// Puts the barrier in place (creates its node if missing).
    pub async fn create(&self) -> Result<()> {
        self.conn
            .retry(|c| async move { ensure_path(&c, &self.path).await.map(|_| ()) })
            .await
    }

    /// Removes the barrier; false if it was not in place.
    pub async fn remove(&self) -> Result<bool> {
        let r = self
            .conn
            .retry(|c| async move { Ok(c.delete(&self.path, None).await?) })
            .await;
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.is_no_node() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until the barrier is removed; false if `timeout` passed first.
    pub async fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let wait = async {
            loop {
                let c = self.conn.client()?;
                let (stat, watcher) = c.check_and_watch_stat(&self.path).await?;
                if stat.is_none() {
                    return Ok::<bool, Error>(true);
                }
                let event = watcher.changed().await;
                match event.event_type {
                    EventType::NodeDeleted => return Ok(true),
                    EventType::Session if event.session_state.is_terminated() => {
                        // The session was lost: look again in the fresh one.
                        self.conn.wait_connected().await?;
                    }
                    _ => {}
                }
            }
        };
        match timeout {
            None => wait.await,
            Some(t) => tokio::time::timeout(t, wait).await.unwrap_or(Ok(false)),
        }
    }
}

/// kazoo's `DoubleBarrier`.
pub struct DoubleBarrier {
    conn: Connection,
    path: String,
    num_clients: usize,
    identifier: String,
    node_name: String,
    participating: bool,
}

impl DoubleBarrier {
    /// A member of the double barrier at `path` that opens once `num_clients` entered.
    pub fn new(conn: &Connection, path: &str, num_clients: usize, identifier: &str) -> Self {
        DoubleBarrier {
            conn: conn.clone(),
            path: path.to_owned(),
            num_clients,
            identifier: identifier.to_owned(),
            node_name: uuid_hex(),
            participating: false,
        }
    }

    /// True between a successful `enter` and `leave`.
    pub fn participating(&self) -> bool {
        self.participating
    }

    /// This member's node path.
    pub fn create_path(&self) -> String {
        join(&self.path, &self.node_name)
    }

    /// Enters, waiting until `num_clients` members have entered.
    pub async fn enter(&mut self) -> Result<()> {
        let r = self.conn.retry(|c| self.inner_enter(c)).await;
        match r {
            Ok(()) => {
                self.participating = true;
                Ok(())
            }
            Err(e) => {
                self.best_effort_cleanup().await;
                self.participating = false;
                Err(e)
            }
        }
    }

    async fn inner_enter(&self, c: zookeeper_client::Client) -> Result<()> {
        ensure_path(&c, &self.path).await?;
        let ready = join(&self.path, "ready");
        match c
            .create(&self.create_path(), self.identifier.as_bytes(), &EPHEMERAL)
            .await
        {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(e) => return Err(e.into()),
        }
        let (stat, watcher) = c.check_and_watch_stat(&ready).await?;
        if stat.is_some() {
            return Ok(());
        }
        let children = c.list_children(&self.path).await?;
        if children.len() < self.num_clients {
            let event = watcher.changed().await;
            if event.event_type == EventType::Session {
                return Err(Error::ForceRetry("session lost while entering"));
            }
        } else {
            ensure_path(&c, &ready).await?;
        }
        Ok(())
    }

    /// Leaves, waiting until every member has left.
    pub async fn leave(&mut self) -> Result<()> {
        let r = self.conn.retry(|c| self.inner_leave(c)).await;
        if r.is_err() {
            self.best_effort_cleanup().await;
        }
        self.participating = false;
        r
    }

    async fn inner_leave(&self, c: zookeeper_client::Client) -> Result<()> {
        match c.delete(&join(&self.path, "ready"), None).await {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
        loop {
            let mut children = c.list_children(&self.path).await?;
            if children.is_empty() {
                return Ok(());
            }
            if children.len() == 1 && children[0] == self.node_name {
                delete_if_there(&c, &self.create_path()).await?;
                return Ok(());
            }
            children.sort();
            let wait_for = if self.node_name == children[0] {
                // Lowest: wait for the highest to leave.
                children.last().expect("children is not empty").clone()
            } else {
                delete_if_there(&c, &self.create_path()).await?;
                children[0].clone()
            };
            let (stat, watcher) = c.check_and_watch_stat(&join(&self.path, &wait_for)).await?;
            if stat.is_none() {
                continue;
            }
            let event = watcher.changed().await;
            if event.event_type == EventType::Session {
                return Err(Error::ForceRetry("session lost while leaving"));
            }
        }
    }

    async fn best_effort_cleanup(&self) {
        if let Ok(c) = self.conn.client() {
            let _ = c.delete(&self.create_path(), None).await;
        }
    }
}

async fn delete_if_there(c: &zookeeper_client::Client, path: &str) -> Result<()> {
    match c.delete(path, None).await {
        Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
