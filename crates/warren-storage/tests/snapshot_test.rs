//! SnapshotStore: atomic saves, checked loads, retention.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use warren_storage::{Disk, FaultyDisk, SnapshotStore, StorageError};

fn dir() -> PathBuf {
    PathBuf::from("/data/snapshots")
}

fn open(disk: &FaultyDisk) -> SnapshotStore {
    let d: Arc<dyn Disk> = Arc::new(disk.clone());
    SnapshotStore::open(d, &dir()).unwrap()
}

fn data(index: u64) -> Vec<u8> {
    (0..1000 + index).map(|i| (i * index) as u8).collect()
}

#[test]
fn save_load_latest_and_purge() {
    let disk = FaultyDisk::new(1);
    let mut store = open(&disk);
    assert_eq!(store.load_latest().unwrap(), None);
    for index in [10, 20, 30, 40, 50] {
        store
            .save(index, format!("meta{index}").as_bytes(), &data(index))
            .unwrap();
    }
    // Survives a crash, newest wins.
    disk.crash();
    let mut store = open(&disk);
    let (index, meta, d) = store.load_latest().unwrap().unwrap();
    assert_eq!((index, meta.as_slice(), d), (50, &b"meta50"[..], data(50)));
    // ZooKeeper's snapRetainCount: keep the newest three.
    store.purge(3).unwrap();
    assert_eq!(store.indexes().unwrap(), vec![30, 40, 50]);
    disk.crash();
    assert_eq!(open(&disk).indexes().unwrap(), vec![30, 40, 50]);
    // Never purge the last one.
    store.purge(0).unwrap();
    assert_eq!(store.indexes().unwrap(), vec![50]);
    assert_eq!(store.load(50).unwrap().2, data(50));
}

#[test]
fn crash_during_save_leaves_previous_snapshot_and_removes_temp() {
    for nth in 1..=5 {
        let disk = FaultyDisk::new(nth);
        let mut store = open(&disk);
        store.save(7, b"m7", &data(7)).unwrap();
        // Fail one step of saving snapshot 8 (create, write, fsync, rename, fsync dir).
        disk.inject_eio(nth);
        assert!(store.save(8, b"m8", &data(8)).is_err());
        disk.crash();
        let store = open(&disk);
        let (index, _, d) = store.load_latest().unwrap().unwrap();
        assert_eq!((index, d), (7, data(7)), "op {nth}");
        // The temp file of the interrupted save is gone.
        assert!(
            disk.files()
                .iter()
                .all(|p| !p.to_string_lossy().ends_with(".tmp"))
        );
    }
}

#[test]
fn leftover_temp_file_is_ignored_and_removed() {
    let disk = FaultyDisk::new(2);
    let mut store = open(&disk);
    store.save(5, b"m", b"five").unwrap();
    // A save of 9 got as far as its temp file, half written.
    let d: Arc<dyn Disk> = Arc::new(disk.clone());
    let tmp = dir().join("snap-00000000000000000009.snap.tmp");
    let mut f = d.create(&tmp).unwrap();
    f.append(b"WRNSNAP\0 half").unwrap();
    f.sync().unwrap();
    d.sync_dir(&dir()).unwrap();
    // load_latest ignores it, open removes it.
    assert_eq!(store.load_latest().unwrap().unwrap().0, 5);
    let store = open(&disk);
    assert!(disk.file_bytes(&tmp).is_none());
    assert_eq!(store.load_latest().unwrap().unwrap().2, b"five");
}

#[test]
fn corrupt_snapshot_is_reported_with_file_and_offset() {
    let disk = FaultyDisk::new(3);
    let mut store = open(&disk);
    store.save(3, b"meta", &data(3)).unwrap();
    store.save(4, b"meta", &data(4)).unwrap();
    let path = store.path_of(4);
    disk.corrupt_byte(&path, 500, 0x80).unwrap();
    let err = store.load_latest().unwrap_err();
    let shown = err.to_string();
    assert!(
        matches!(&err, StorageError::Corrupt { file, offset: 40, .. } if *file == path),
        "{err}"
    );
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    // A truncated file is corrupt too.
    let bytes = disk.file_bytes(&path).unwrap();
    disk.set_file_bytes(&path, &bytes[..30]).unwrap();
    assert!(matches!(
        store.load(4),
        Err(StorageError::Corrupt { offset: 0, .. })
    ));
    assert!(Path::new(&path).ends_with("snap-00000000000000000004.snap"));
}
