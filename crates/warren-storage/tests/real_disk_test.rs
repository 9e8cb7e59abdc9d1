//! The stores on the real filesystem, in a temp directory.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::sync::Arc;

use warren_storage::{
    DataDir, Disk, LogOptions, MetaStore, RealDisk, SegmentLog, SnapshotStore, StorageError,
};

fn disk() -> Arc<dyn Disk> {
    Arc::new(RealDisk::new())
}

fn opts() -> LogOptions {
    LogOptions {
        segment_bytes: 4096,
        batch_bytes_max: 64 * 1024,
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("entry {i} ")
        .repeat((i % 13) as usize + 1)
        .into_bytes()
}

fn append(log: &mut SegmentLog, range: std::ops::Range<u64>) {
    let owned: Vec<(u64, Vec<u8>)> = range.map(|i| (i, payload(i))).collect();
    let recs: Vec<(u64, &[u8])> = owned.iter().map(|(i, p)| (*i, p.as_slice())).collect();
    log.append(&recs).unwrap();
}

#[test]
fn log_round_trip_torn_tail_and_corruption_on_real_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dd = DataDir::open(disk(), tmp.path()).unwrap();
    let dir = dd.log_dir();
    let (mut log, _) = SegmentLog::open(disk(), &dir, opts()).unwrap();
    append(&mut log, 1..200);
    log.sync().unwrap();
    log.truncate_from(150).unwrap();
    log.purge_to(20).unwrap();
    drop(log);

    // Reopen: the same records, read back from real files.
    let (log, report) = SegmentLog::open(disk(), &dir, opts()).unwrap();
    assert_eq!(
        (report.first_index, report.last_index),
        (Some(21), Some(149))
    );
    let got = log.read(0..1000).unwrap();
    assert_eq!(got, (21..150).map(|i| (i, payload(i))).collect::<Vec<_>>());
    drop(log);

    // Tear the last record of the last segment: cut at open.
    let mut segs: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    let last = segs.last().unwrap().clone();
    let len = fs::metadata(&last).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let (log, report) = SegmentLog::open(disk(), &dir, opts()).unwrap();
    assert_eq!(report.torn_tail.unwrap().file, last);
    assert_eq!(log.last_index(), Some(148));
    drop(log);

    // Flip a byte in the first segment's first record: corruption, named.
    let first = segs[0].clone();
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&first)
        .unwrap();
    f.seek(SeekFrom::Start(32 + 20)).unwrap();
    f.write_all(&[0xEE]).unwrap();
    drop(f);
    let err = SegmentLog::open(disk(), &dir, opts()).unwrap_err();
    assert!(
        matches!(&err, StorageError::Corrupt { file, offset: 32, .. } if *file == first),
        "{err}"
    );
}

#[test]
fn meta_and_snapshots_on_real_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dd = DataDir::open(disk(), tmp.path()).unwrap();
    assert!(tmp.path().join("VERSION").exists());
    let mut meta = MetaStore::open(disk(), &dd.meta_dir()).unwrap();
    meta.save(b"vote").unwrap();
    assert_eq!(
        MetaStore::open(disk(), &dd.meta_dir())
            .unwrap()
            .load()
            .unwrap()
            .unwrap(),
        b"vote"
    );

    // A leftover temp file from an interrupted snapshot save.
    let snaps = dd.snapshot_dir();
    let mut store = SnapshotStore::open(disk(), &snaps).unwrap();
    store.save(1, b"m1", b"one").unwrap();
    store.save(2, b"m2", b"two").unwrap();
    let tmp_file = snaps.join("snap-00000000000000000003.snap.tmp");
    fs::write(&tmp_file, b"partial").unwrap();
    let store = SnapshotStore::open(disk(), &snaps).unwrap();
    assert!(!tmp_file.exists());
    assert_eq!(
        store.load_latest().unwrap().unwrap(),
        (2, b"m2".to_vec(), b"two".to_vec())
    );
}
