//! `MetaStore`: one small blob replaced atomically (the Raft layer's vote, committed log id
//! and purge point).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::DATA_VERSION;
use crate::blob;
use crate::disk::Disk;
use crate::error::{Result, io_err};

const MAGIC: &[u8; 8] = b"WRNMETA\0";

/// Name of the meta file inside its directory.
pub const META_FILE: &str = "meta";

/// One small blob, saved durably and atomically: after a crash `load` returns either the
/// previous or the new contents, never a mix, and never loses a `save` that returned.
#[derive(Debug)]
pub struct MetaStore {
    disk: Arc<dyn Disk>,
    path: PathBuf,
}

impl MetaStore {
    /// Opens the meta store in `dir` (created if missing), removing a temp file left by an
    /// interrupted `save`.
    pub fn open(disk: Arc<dyn Disk>, dir: &Path) -> Result<MetaStore> {
        disk.create_dir_all(dir)
            .map_err(io_err(dir, "create dir"))?;
        let path = dir.join(META_FILE);
        let tmp = blob::tmp_path(&path);
        if disk.exists(&tmp).map_err(io_err(&tmp, "stat"))? {
            tracing::info!(file = %tmp.display(), "removing temp file of an interrupted meta save");
            disk.remove(&tmp).map_err(io_err(&tmp, "remove"))?;
            disk.sync_dir(dir).map_err(io_err(dir, "fsync dir"))?;
        }
        Ok(MetaStore { disk, path })
    }

    /// The last saved blob, or `None` if nothing was ever saved.
    pub fn load(&self) -> Result<Option<Vec<u8>>> {
        let Some(bytes) = blob::read_if_exists(self.disk.as_ref(), &self.path)? else {
            return Ok(None);
        };
        Ok(Some(blob::decode(&self.path, MAGIC, &bytes)?.payload))
    }

    /// Replaces the blob; durable when this returns `Ok`.
    pub fn save(&mut self, payload: &[u8]) -> Result<()> {
        let bytes = blob::encode(MAGIC, DATA_VERSION, payload)?;
        blob::write_atomic(self.disk.as_ref(), &self.path, &bytes)
    }

    /// The path of the meta file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
