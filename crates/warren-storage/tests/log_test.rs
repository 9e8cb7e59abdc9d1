//! SegmentLog behaviour on a FaultyDisk: append, sync, read, reopen, truncate, purge, crashes.

mod common;

use common::*;
use warren_storage::{FaultyDisk, LogOptions, StorageError};

#[test]
fn append_sync_read_reopen() {
    let disk = FaultyDisk::new(1);
    // A fresh log is empty and accepts any first index.
    let (mut log, report) = open(&disk, LogOptions::default());
    assert_eq!((log.first_index(), log.last_index()), (None, None));
    assert_eq!(report.torn_tail, None);
    append_range(&mut log, 1..101);
    // Records are readable before they are durable.
    check_all(&log, 1..=100);
    log.sync().unwrap();
    assert_eq!((log.first_index(), log.last_index()), (Some(1), Some(100)));
    // Reads are clamped to what the log holds.
    assert_eq!(log.read(90..200).unwrap().len(), 11);
    assert_eq!(log.read(0..1).unwrap().len(), 0);
    drop(log);

    // Reopened, everything synced is there, and appending continues.
    let (mut log, report) = open(&disk, LogOptions::default());
    assert_eq!(
        (report.first_index, report.last_index),
        (Some(1), Some(100))
    );
    check_all(&log, 1..=100);
    append_range(&mut log, 101..111);
    log.sync().unwrap();
    check_all(&log, 1..=110);
}

#[test]
fn append_refuses_gaps_and_oversized_batches() {
    let disk = FaultyDisk::new(2);
    let (mut log, _) = open(&disk, small_segments());
    append_range(&mut log, 5..10);
    // Not last_index + 1.
    let err = log.append(&[(11, b"x".as_slice())]).unwrap_err();
    assert!(matches!(err, StorageError::InvalidAppend { .. }), "{err}");
    // Not contiguous inside the batch.
    let err = log
        .append(&[(10, b"x".as_slice()), (12, b"y")])
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidAppend { .. }), "{err}");
    // Larger than one group-commit batch.
    let big = vec![0u8; 5000];
    let err = log.append(&[(10, big.as_slice())]).unwrap_err();
    assert!(matches!(err, StorageError::InvalidAppend { .. }), "{err}");
    // A refused append changes nothing and does not poison the log.
    log.append(&[(10, b"ok".as_slice())]).unwrap();
    log.sync().unwrap();
    assert_eq!(log.last_index(), Some(10));
}

#[test]
fn crash_before_sync_loses_only_unsynced_records() {
    let disk = FaultyDisk::new(3);
    let (mut log, _) = open(&disk, LogOptions::default());
    append_range(&mut log, 1..51);
    log.sync().unwrap();
    append_range(&mut log, 51..61);
    drop(log);

    // Power loss: the ten unsynced records are gone, the fifty synced ones are not.
    disk.crash();
    let (log, report) = open(&disk, LogOptions::default());
    assert_eq!(report.last_index, Some(50));
    assert_eq!(report.torn_tail, None);
    check_all(&log, 1..=50);
}

#[test]
fn segments_roll_and_reopen() {
    let disk = FaultyDisk::new(4);
    let (mut log, _) = open(&disk, small_segments());
    for start in (1..300).step_by(10) {
        append_range(&mut log, start..start + 10);
        log.sync().unwrap();
    }
    let files = segment_files(&disk, &dir());
    assert!(files.len() > 5, "expected several segments, got {files:?}");
    // Names sort in index order.
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
    check_all(&log, 1..=299);
    drop(log);
    let (log, report) = open(&disk, small_segments());
    assert_eq!(report.segments, files.len());
    check_all(&log, 1..=299);
}

#[test]
fn index_zero_is_an_ordinary_index() {
    // openraft's log may start at index 0.
    let disk = FaultyDisk::new(5);
    let (mut log, _) = open(&disk, small_segments());
    append_range(&mut log, 0..30);
    log.sync().unwrap();
    assert_eq!((log.first_index(), log.last_index()), (Some(0), Some(29)));
    log.purge_to(0).unwrap();
    log.truncate_from(25).unwrap();
    drop(log);
    disk.crash();
    let (log, _) = open(&disk, small_segments());
    assert_eq!((log.first_index(), log.last_index()), (Some(1), Some(24)));
    check_all(&log, 1..=24);
}
