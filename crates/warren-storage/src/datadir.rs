//! `DataDir`: the data directory's `VERSION` marker and where each store lives in it.
//!
//! ```text
//! <root>/VERSION      blob (magic b"WRNDATA\0") whose header's data_version is the layout's
//! <root>/log/         SegmentLog
//! <root>/meta/        MetaStore
//! <root>/snapshots/   SnapshotStore
//! ```
//! `VERSION` is written on first use. A directory written by an older layout is upgraded in
//! place here, before any store opens (there is no older layout yet); one written by a newer
//! warren is refused with `UnsupportedVersion`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::DATA_VERSION;
use crate::blob;
use crate::disk::Disk;
use crate::error::{Result, io_err};

const MAGIC: &[u8; 8] = b"WRNDATA\0";

/// Name of the version marker in the data directory.
pub const VERSION_FILE: &str = "VERSION";

/// A checked data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
    version: u32,
}

impl DataDir {
    /// Opens the data directory at `root`, creating it and its `VERSION` marker on first use,
    /// and checking the marker otherwise.
    pub fn open(disk: Arc<dyn Disk>, root: &Path) -> Result<DataDir> {
        disk.create_dir_all(root)
            .map_err(io_err(root, "create dir"))?;
        let path = root.join(VERSION_FILE);
        let tmp = blob::tmp_path(&path);
        if disk.exists(&tmp).map_err(io_err(&tmp, "stat"))? {
            disk.remove(&tmp).map_err(io_err(&tmp, "remove"))?;
        }
        let version = match blob::read_if_exists(disk.as_ref(), &path)? {
            Some(bytes) => blob::decode(&path, MAGIC, &bytes)?.data_version,
            None => {
                let text = b"warren data directory\n";
                let bytes = blob::encode(MAGIC, DATA_VERSION, text)?;
                blob::write_atomic(disk.as_ref(), &path, &bytes)?;
                tracing::info!(root = %root.display(), version = DATA_VERSION, "new data directory");
                DATA_VERSION
            }
        };
        // `decode` refused newer versions; older ones would be upgraded here, in place, and
        // the marker rewritten last. Version 1 is the first, so there is nothing to upgrade.
        Ok(DataDir {
            root: root.to_path_buf(),
            version,
        })
    }

    /// The data directory's layout version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the `SegmentLog` lives.
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }

    /// Where the `MetaStore` lives.
    pub fn meta_dir(&self) -> PathBuf {
        self.root.join("meta")
    }

    /// Where the `SnapshotStore` lives.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }
}
