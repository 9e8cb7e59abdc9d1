//! Snapshots (placeholder; filled in below).

use thiserror::Error;

/// Why snapshot bytes were rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Not written by this crate.
    #[error("bad magic")]
    BadMagic,
}
