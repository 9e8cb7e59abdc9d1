//! MetaStore and DataDir: durable, atomic replacement of one blob; the VERSION marker.

use std::path::Path;
use std::sync::Arc;

use warren_storage::{DataDir, Disk, FaultyDisk, MetaStore, StorageError, VERSION_FILE};

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

#[test]
fn crash_between_temp_write_and_rename_keeps_the_old_blob() {
    // Operations of one save: create tmp, write, fsync, rename, fsync dir. Failing the rename
    // (4) or the dir fsync (5) and then crashing must leave the old blob, whole.
    for nth in [1, 2, 3, 4, 5] {
        let disk = FaultyDisk::new(nth);
        let mut meta = open(&disk);
        meta.save(b"old").unwrap();
        disk.inject_eio(nth);
        let err = meta.save(b"new").unwrap_err();
        assert!(matches!(err, StorageError::Io { .. }), "{err}");
        for torn in [false, true] {
            let disk = disk.clone();
            if torn {
                disk.crash_torn()
            } else {
                disk.crash()
            }
            let meta = open(&disk);
            let got = meta.load().unwrap();
            // The rename itself may reach the disk in a torn crash after a failed dir fsync:
            // then the new blob is whole. Never a mix, never nothing.
            assert!(
                got.as_deref() == Some(b"old") || (nth == 5 && got.as_deref() == Some(b"new")),
                "op {nth} torn {torn}: {got:?}"
            );
            // The temp file is gone after open.
            assert!(disk.file_bytes(Path::new("/data/meta/meta.tmp")).is_none());
        }
    }
}

#[test]
fn torn_crashes_never_mix_blobs() {
    // Many saves, each interrupted at a different point by a torn crash.
    for seed in 0..200u64 {
        let disk = FaultyDisk::new(seed);
        let mut meta = open(&disk);
        meta.save(&[1u8; 300]).unwrap();
        // Fail one of the save's five operations, or none (6).
        disk.inject_eio(1 + seed % 6);
        let _ = meta.save(&[2u8; 500]);
        disk.clear_eio();
        disk.crash_torn();
        let got = open(&disk).load().unwrap().expect("a blob survives");
        assert!(
            got == [1u8; 300] || got == [2u8; 500],
            "seed {seed}: mixed blob"
        );
    }
}

#[test]
fn corrupt_meta_is_reported_with_file_and_offset() {
    let disk = FaultyDisk::new(2);
    let mut meta = open(&disk);
    meta.save(b"term=5 vote=2").unwrap();
    disk.corrupt_byte(Path::new("/data/meta/meta"), 26, 0x01)
        .unwrap();
    let err = meta.load().unwrap_err();
    let shown = err.to_string();
    assert!(
        matches!(err, StorageError::Corrupt { offset: 20, .. }),
        "{err}"
    );
    assert!(
        shown.contains("/data/meta/meta") && shown.contains("offset 20"),
        "{shown}"
    );
}

#[test]
fn data_dir_version_is_written_once_and_checked() {
    let disk = FaultyDisk::new(3);
    let d: Arc<dyn Disk> = Arc::new(disk.clone());
    let root = Path::new("/data");
    // First use writes VERSION.
    let dd = DataDir::open(d.clone(), root).unwrap();
    assert_eq!(dd.version(), warren_storage::DATA_VERSION);
    let marker = root.join(VERSION_FILE);
    let written = disk.file_bytes(&marker).unwrap();
    disk.crash();
    // Later opens read it back unchanged.
    DataDir::open(d.clone(), root).unwrap();
    assert_eq!(disk.file_bytes(&marker).unwrap(), written);
    assert!(dd.log_dir().starts_with(root) && dd.snapshot_dir() != dd.meta_dir());

    // A directory from a newer warren: data version 9 with a valid checksum.
    let mut newer = written.clone();
    newer[12..16].copy_from_slice(&9u32.to_le_bytes());
    let crc = warren_storage::crc32c_append(warren_storage::crc32c(&newer[..20]), &newer[24..]);
    newer[20..24].copy_from_slice(&crc.to_le_bytes());
    disk.set_file_bytes(&marker, &newer).unwrap();
    let err = DataDir::open(d, root).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::UnsupportedVersion {
                found: 9,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("VERSION"), "{err}");
}
