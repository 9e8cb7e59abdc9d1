//! warren-storage: the durable files under Raft.
//!
//! # Layout
//! - [`Disk`] / [`DiskFile`]: the filesystem calls the stores make; [`RealDisk`] over
//!   `std::fs`, [`FaultyDisk`] in memory with crashes, torn writes, lost fsyncs and EIO.
//! - [`SegmentLog`]: the Raft log, `(index, payload)` records in segment files, each new one
//!   taken from a zero-filled spare ([`SpareFill`]) that another thread prepares.
//! - [`MetaStore`]: one small blob replaced atomically (vote, committed, purge point).
//! - [`SnapshotStore`]: snapshot files, saved atomically, the newest few kept.
//! - [`DataDir`]: the `VERSION` marker of the data directory and where each store lives.
//!
//! # Invariants
//! - Every file starts with a magic, a format version ([`FORMAT_VERSION`]) and the data
//!   directory's version ([`DATA_VERSION`]); every record and blob carries a CRC32C, checked
//!   when written and when read.
//! - Nothing is reported durable before its fsync; a failed write or fsync poisons the log.
//! - A bad region at the end of the last log segment, no longer than one group-commit batch,
//!   is a torn write and is cut at open; any other bad byte is [`StorageError::Corrupt`],
//!   naming the file and offset, and the node must stop. Data is never dropped silently.
//!
//! # Flow of a Raft write
//! The Raft I/O thread calls [`SegmentLog::append`] for every queued entry, then one
//! [`SegmentLog::sync`] (group commit), then tells Raft the entries are durable.

mod blob;
mod crc;
mod datadir;
mod disk;
mod error;
mod faulty;
mod log;
mod meta;
mod remove;
mod segment;
mod snapshot;
mod spare;

pub use crc::{crc32c, crc32c_append};
pub use datadir::{DataDir, VERSION_FILE};
pub use disk::{Disk, DiskFile, RealDisk};
pub use error::{Result, StorageError};
pub use faulty::FaultyDisk;
pub use log::{LogOptions, PurgeFiles, RecoveryReport, SegmentLog, TornTail, segment_name};
pub use meta::{META_FILE, MetaStore};
pub use segment::RECORD_HEADER_BYTES;
pub use snapshot::{SNAPSHOTS_KEPT_DEFAULT, Snapshot, SnapshotStore};
pub use spare::SpareFill;

/// Version of the byte formats this build writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 1;

/// Version of the data directory's layout this build writes (and the newest it reads).
pub const DATA_VERSION: u32 = 1;
