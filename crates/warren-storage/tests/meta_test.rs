//! MetaStore: durable, atomic replacement of one blob.

use std::path::Path;
use std::sync::Arc;

use warren_storage::{Disk, FaultyDisk, MetaStore};

fn open(disk: &FaultyDisk) -> MetaStore {
    let d: Arc<dyn Disk> = Arc::new(disk.clone());
    MetaStore::open(d, Path::new("/data/meta")).unwrap()
}

#[test]
fn save_load_reopen() {
    let disk = FaultyDisk::new(1);
    let mut meta = open(&disk);
    // Nothing saved yet.
    assert_eq!(meta.load().unwrap(), None);
    meta.save(b"vote=1").unwrap();
    meta.save(b"vote=2").unwrap();
    assert_eq!(meta.load().unwrap().as_deref(), Some(&b"vote=2"[..]));
    // A returned save survives a crash.
    disk.crash();
    let meta = open(&disk);
    assert_eq!(meta.load().unwrap().as_deref(), Some(&b"vote=2"[..]));
}
