//! The one error type of this crate.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in warren's durable storage.
///
/// `Corrupt` and `UnsupportedVersion` mean the node must stop: their `Display` names the file
/// (and for `Corrupt` the byte offset) so the operator can see what is wrong without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system call failed.
    #[error("I/O error during {op} on {}: {source}", .file.display())]
    Io {
        /// The file or directory the call was about.
        file: PathBuf,
        /// The operation, e.g. "fsync" or "rename".
        op: &'static str,
        /// The error the operating system returned.
        #[source]
        source: io::Error,
    },
    /// A file holds bytes that fail their checks and are not a torn tail that may be cut.
    #[error("corrupt data in {} at offset {offset}: {reason}", .file.display())]
    Corrupt {
        /// The file with the bad bytes.
        file: PathBuf,
        /// Byte offset of the first bad byte (record or header start).
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// A file was written by a newer warren whose format this build does not know.
    #[error(
        "{} was written in format version {found}, but this build understands versions up to \
         {supported}; run a newer warren on this data directory",
        .file.display()
    )]
    UnsupportedVersion {
        /// The file whose header names the version.
        file: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The caller broke the append contract (non-contiguous index, batch too large, ...).
    #[error("invalid append: {reason}")]
    InvalidAppend {
        /// Why the append was refused.
        reason: String,
    },
    /// An earlier write or fsync failed, so what is on disk is unknown; reopen to recover.
    ///
    /// After a failed fsync the kernel may already have dropped the dirty pages, so retrying
    /// would report success for data that is gone (PostgreSQL's "fsyncgate"). The only safe
    /// continuation is to reopen the log, which re-reads what is really on disk.
    #[error("storage unusable after an earlier failure ({reason}); reopen it")]
    Poisoned {
        /// The first failure.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Builds a closure mapping an `io::Error` into `StorageError::Io` for `file` and `op`.
pub(crate) fn io_err(file: &Path, op: &'static str) -> impl FnOnce(io::Error) -> StorageError {
    let file = file.to_path_buf();
    move |source| StorageError::Io { file, op, source }
}

/// Builds a `StorageError::Corrupt`.
pub(crate) fn corrupt(file: &Path, offset: u64, reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        file: file.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}
