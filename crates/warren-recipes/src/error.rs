//! The one error type of the recipes.

use std::time::Duration;

/// What a recipe call can fail with.
///
/// ZooKeeper's own outcomes (`NoNode`, `BadVersion`, ...) and connection faults arrive as
/// [`Error::Zk`]; the other variants are the recipes' own, named after kazoo's exceptions.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the ZooKeeper client: a protocol outcome or a connection fault.
    #[error(transparent)]
    Zk(#[from] zookeeper_client::Error),
    /// The operation was cancelled (kazoo's `CancelledError`).
    #[error("cancelled")]
    Cancelled,
    /// A blocking acquire did not succeed in time (kazoo's `LockTimeout`).
    #[error("not acquired within {0:?}")]
    LockTimeout(Duration),
    /// The retry policy gave up (kazoo's `RetryFailedError`); the last error is kept.
    #[error("retry failed: {0}")]
    RetryFailed(Box<Error>),
    /// Recipe logic asks its retry loop to start over (kazoo's `ForceRetryError`). It only
    /// escapes a retry loop inside [`Error::RetryFailed`].
    #[error("retry forced: {0}")]
    ForceRetry(&'static str),
    /// The [`Connection`](crate::Connection) was closed by its owner.
    #[error("connection closed")]
    Closed,
    /// The recipe is already held by this instance (the recipes are not re-entrant).
    #[error("already acquired by this instance")]
    AlreadyAcquired,
    /// Data found in ZooKeeper does not fit the recipe (kazoo raises `ValueError` or
    /// `TypeError` for these), for example a semaphore created with another lease count.
    #[error("{0}")]
    Inconsistent(String),
}

impl Error {
    /// True if the error is `err` from ZooKeeper.
    pub fn is_zk(&self, err: &zookeeper_client::Error) -> bool {
        matches!(self, Error::Zk(e) if e == err)
    }

    /// True for ZooKeeper's `NoNode`.
    pub fn is_no_node(&self) -> bool {
        self.is_zk(&zookeeper_client::Error::NoNode)
    }

    /// True for ZooKeeper's `NodeExists`.
    pub fn is_node_exists(&self) -> bool {
        self.is_zk(&zookeeper_client::Error::NodeExists)
    }
}

/// The result type of the recipes.
pub type Result<T, E = Error> = std::result::Result<T, E>;
