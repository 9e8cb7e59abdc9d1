//! `FaultyDisk`: an in-memory `Disk` that can crash, tear writes, lose fsyncs and fail with EIO.
//!
//! The model, close to ext4 with `data=ordered`:
//! - Each file (inode) has its current bytes and its durable bytes; `DiskFile::sync` copies the
//!   current bytes to the durable ones.
//! - Creates, renames and removes go into a journal of pending namespace changes; `sync_dir`
//!   makes the pending changes of that directory durable, in order.
//! - `crash()` drops everything not durable. `crash_torn()` instead keeps a random prefix of
//!   the pending journal and, for each file whose unsynced change is an append, a random prefix
//!   of the appended bytes (sometimes with its end zero-filled, as when a file's new size reached
//!   the disk before its data), and for a file rewritten in place without changing its length
//!   (a preallocated log segment) a random prefix of the changed bytes. Any other unsynced
//!   change survives whole or not at all.
//! - `set_lose_fsyncs(true)` makes every fsync report success and do nothing.
//! - `inject_eio(n)` makes the n-th operation from now fail with EIO (errno 5).
//!
//! Directories themselves are always durable. Handles opened before a crash fail afterwards,
//! as the process that held them is gone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::disk::{Disk, DiskFile};

/// An in-memory disk with injectable faults, for tests. Clones share the same disk.
#[derive(Debug, Clone)]
pub struct FaultyDisk {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Lowest offset changed since the last fsync, if any: an fsync copies only from here,
    /// and a crash knows whether the unsynced change was a pure append.
    dirty_from: Option<usize>,
}

impl Inode {
    fn touch(&mut self, offset: usize) {
        self.dirty_from = Some(self.dirty_from.map_or(offset, |d| d.min(offset)));
    }
}

#[derive(Debug, Clone)]
enum MetaOp {
    Create { path: PathBuf, ino: u64 },
    Rename { from: PathBuf, to: PathBuf },
    Remove { path: PathBuf },
}

impl MetaOp {
    fn dir(&self) -> Option<&Path> {
        match self {
            MetaOp::Create { path, .. } | MetaOp::Remove { path } => path.parent(),
            MetaOp::Rename { to, .. } => to.parent(),
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, u64>) {
        match self {
            MetaOp::Create { path, ino } => {
                names.insert(path.clone(), *ino);
            }
            MetaOp::Rename { from, to } => {
                if let Some(ino) = names.remove(from) {
                    names.insert(to.clone(), ino);
                }
            }
            MetaOp::Remove { path } => {
                names.remove(path);
            }
        }
    }
}

#[derive(Debug)]
struct State {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    journal: Vec<MetaOp>,
    dirs: BTreeSet<PathBuf>,
    generation: u64,
    ops: u64,
    fail_at: Option<u64>,
    lose_fsyncs: bool,
    rng: u64,
}

impl State {
    /// Counts one operation and fails it if an EIO was injected for it.
    fn tick(&mut self) -> io::Result<()> {
        self.ops += 1;
        if self.fail_at == Some(self.ops) {
            self.fail_at = None;
            return Err(io::Error::from_raw_os_error(5));
        }
        Ok(())
    }

    /// splitmix64: tiny, seedable, good enough to choose tear points.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next_u64();
        }
        self.next_u64() % (max + 1)
    }

    fn lookup(&self, path: &Path) -> io::Result<u64> {
        self.names
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if self.dirs.contains(p) => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory for {}", path.display()),
            )),
        }
    }

    fn torn_bytes(&mut self, ino: u64) -> Vec<u8> {
        let (data, durable) = match self.inodes.get(&ino) {
            Some(i) => (i.data.clone(), i.durable.clone()),
            None => return Vec::new(),
        };
        let Some(dirty_from) = self.inodes.get(&ino).and_then(|i| i.dirty_from) else {
            return durable;
        };
        if data.len() > durable.len() && dirty_from >= durable.len() {
            let extra = (data.len() - durable.len()) as u64;
            let keep = self.upto(extra) as usize;
            let mut out = data[..durable.len() + keep].to_vec();
            if keep > 0 && self.upto(3) == 0 {
                // The new length reached the disk but the last pages of data did not.
                let zeros = (self.upto(keep.min(4096) as u64) as usize).max(1);
                let end = out.len();
                out[end - zeros..].fill(0);
            }
            return out;
        }
        if data.len() == durable.len() {
            // An overwrite in place (a log segment's preallocated zeros): the disk took a
            // random prefix of the changed bytes.
            let from = dirty_from.min(data.len());
            let keep = self.upto((data.len() - from) as u64) as usize;
            let mut out = durable;
            out[from..from + keep].copy_from_slice(&data[from..from + keep]);
            return out;
        }
        if self.upto(1) == 0 { data } else { durable }
    }
}

impl Default for FaultyDisk {
    fn default() -> Self {
        FaultyDisk::new(0)
    }
}

impl FaultyDisk {
    /// An empty disk (only `/` exists) whose random choices (tear points) follow `seed`.
    pub fn new(seed: u64) -> FaultyDisk {
        let mut dirs = BTreeSet::new();
        dirs.insert(PathBuf::from("/"));
        FaultyDisk {
            state: Arc::new(Mutex::new(State {
                inodes: HashMap::new(),
                next_ino: 1,
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                journal: Vec::new(),
                dirs,
                generation: 0,
                ops: 0,
                fail_at: None,
                lose_fsyncs: false,
                rng: seed,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock can only come from a test assertion; the state is
        // still consistent enough to keep using.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Simulates power loss: everything not made durable is gone.
    pub fn crash(&self) {
        self.crash_inner(false);
    }

    /// Simulates power loss mid-write: a random prefix of the pending namespace changes and
    /// of each file's unsynced appended bytes survives (see the module docs).
    pub fn crash_torn(&self) {
        self.crash_inner(true);
    }

    fn crash_inner(&self, torn: bool) {
        let mut s = self.lock();
        let mut names = s.durable_names.clone();
        if torn {
            let pending = s.journal.len() as u64;
            let keep = s.upto(pending) as usize;
            for op in &s.journal[..keep] {
                op.apply(&mut names);
            }
        }
        s.journal.clear();
        let live: BTreeSet<u64> = names.values().copied().collect();
        s.inodes.retain(|ino, _| live.contains(ino));
        for ino in live {
            let bytes = if torn {
                s.torn_bytes(ino)
            } else {
                s.inodes
                    .get(&ino)
                    .map(|i| i.durable.clone())
                    .unwrap_or_default()
            };
            if let Some(inode) = s.inodes.get_mut(&ino) {
                inode.data = bytes.clone();
                inode.durable = bytes;
                inode.dirty_from = None;
            }
        }
        s.durable_names = names.clone();
        s.names = names;
        s.generation += 1;
    }

    /// While `lose` is true every fsync (file or directory) succeeds without doing anything.
    pub fn set_lose_fsyncs(&self, lose: bool) {
        self.lock().lose_fsyncs = lose;
    }

    /// Makes the `nth` operation from now (1 = the next one) fail with EIO, once.
    pub fn inject_eio(&self, nth: u64) {
        let mut s = self.lock();
        s.fail_at = Some(s.ops + nth.max(1));
    }

    /// Cancels an injected EIO that has not fired yet.
    pub fn clear_eio(&self) {
        self.lock().fail_at = None;
    }

    /// Operations performed so far (each `Disk` or `DiskFile` call counts one).
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// The current bytes of a file, if it exists.
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        let ino = s.names.get(path)?;
        s.inodes.get(ino).map(|i| i.data.clone())
    }

    /// XORs the byte at `offset` of a file with `mask`, durably (bit rot, for tests).
    pub fn corrupt_byte(&self, path: &Path, offset: u64, mask: u8) -> io::Result<()> {
        self.edit_durably(path, |data| {
            let at = usize::try_from(offset).ok().filter(|&o| o < data.len());
            match at {
                Some(o) => {
                    data[o] ^= mask;
                    Ok(())
                }
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "offset past end",
                )),
            }
        })
    }

    /// Replaces a file's bytes durably, bypassing the model (for tests that craft damage).
    pub fn set_file_bytes(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.edit_durably(path, |data| {
            *data = bytes.to_vec();
            Ok(())
        })
    }

    fn edit_durably(
        &self,
        path: &Path,
        edit: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut s = self.lock();
        let ino = s.lookup(path)?;
        let inode = s.inodes.entry(ino).or_default();
        edit(&mut inode.data)?;
        inode.durable = inode.data.clone();
        inode.dirty_from = None;
        Ok(())
    }

    /// Paths of all files that currently exist.
    pub fn files(&self) -> Vec<PathBuf> {
        self.lock().names.keys().cloned().collect()
    }

    fn handle(&self, s: &State, ino: u64) -> Box<dyn DiskFile> {
        Box::new(FaultyFile {
            disk: self.clone(),
            ino,
            generation: s.generation,
        })
    }
}

impl Disk for FaultyDisk {
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let mut s = self.lock();
        s.tick()?;
        s.check_parent(path)?;
        let ino = match s.names.get(path) {
            Some(&ino) => {
                if let Some(inode) = s.inodes.get_mut(&ino) {
                    inode.data.clear();
                    inode.touch(0);
                }
                ino
            }
            None => {
                let ino = s.next_ino;
                s.next_ino += 1;
                s.inodes.insert(ino, Inode::default());
                s.names.insert(path.to_path_buf(), ino);
                s.journal.push(MetaOp::Create {
                    path: path.to_path_buf(),
                    ino,
                });
                ino
            }
        };
        Ok(self.handle(&s, ino))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let mut s = self.lock();
        s.tick()?;
        let ino = s.lookup(path)?;
        Ok(self.handle(&s, ino))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let mut s = self.lock();
        s.tick()?;
        Ok(s.names.contains_key(path))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.tick()?;
        let mut p = Some(path);
        while let Some(dir) = p {
            if dir.as_os_str().is_empty() {
                break;
            }
            s.dirs.insert(dir.to_path_buf());
            p = dir.parent();
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut s = self.lock();
        s.tick()?;
        if !s.dirs.contains(dir) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                dir.display().to_string(),
            ));
        }
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.tick()?;
        s.check_parent(to)?;
        let ino = s.lookup(from)?;
        s.names.remove(from);
        s.names.insert(to.to_path_buf(), ino);
        s.journal.push(MetaOp::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.tick()?;
        s.lookup(path)?;
        s.names.remove(path);
        s.journal.push(MetaOp::Remove {
            path: path.to_path_buf(),
        });
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.tick()?;
        if s.lose_fsyncs {
            return Ok(());
        }
        let journal = std::mem::take(&mut s.journal);
        let (now, later): (Vec<MetaOp>, Vec<MetaOp>) =
            journal.into_iter().partition(|op| op.dir() == Some(dir));
        for op in &now {
            op.apply(&mut s.durable_names);
        }
        s.journal = later;
        Ok(())
    }
}

/// An open file on a `FaultyDisk`.
#[derive(Debug)]
struct FaultyFile {
    disk: FaultyDisk,
    ino: u64,
    generation: u64,
}

impl FaultyFile {
    fn with<T>(&self, f: impl FnOnce(&mut State, u64) -> io::Result<T>) -> io::Result<T> {
        let mut s = self.disk.lock();
        s.tick()?;
        if s.generation != self.generation || !s.inodes.contains_key(&self.ino) {
            return Err(io::Error::other("stale file handle: the disk crashed"));
        }
        f(&mut s, self.ino)
    }
}

fn inode(s: &mut State, ino: u64) -> io::Result<&mut Inode> {
    s.inodes
        .get_mut(&ino)
        .ok_or_else(|| io::Error::other("inode vanished"))
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))
}

impl DiskFile for FaultyFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.with(|s, ino| {
            let i = inode(s, ino)?;
            let end = i.data.len();
            i.touch(end);
            i.data.extend_from_slice(data);
            Ok(())
        })
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.with(|s, ino| {
            let at = to_usize(offset)?;
            let i = inode(s, ino)?;
            i.touch(at.min(i.data.len()));
            let file = &mut i.data;
            if file.len() < at + data.len() {
                file.resize(at + data.len(), 0);
            }
            file[at..at + data.len()].copy_from_slice(data);
            Ok(())
        })
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.with(|s, ino| {
            let at = to_usize(offset)?;
            let file = &inode(s, ino)?.data;
            let src = file
                .get(at..at + buf.len())
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end"))?;
            buf.copy_from_slice(src);
            Ok(())
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with(|s, ino| Ok(inode(s, ino)?.data.len() as u64))
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.with(|s, ino| {
            let len = to_usize(len)?;
            let i = inode(s, ino)?;
            i.touch(len.min(i.data.len()));
            i.data.resize(len, 0);
            Ok(())
        })
    }

    fn sync(&mut self) -> io::Result<()> {
        self.with(|s, ino| {
            if s.lose_fsyncs {
                return Ok(());
            }
            let i = inode(s, ino)?;
            if let Some(from) = i.dirty_from.take() {
                let keep = from.min(i.durable.len());
                i.durable.truncate(keep);
                i.durable.extend_from_slice(&i.data[keep..]);
            }
            Ok(())
        })
    }
}
