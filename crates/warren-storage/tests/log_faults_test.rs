//! SegmentLog recovery: torn tails are cut, everything else is reported as corruption with
//! its file and offset; truncate and purge are durable; EIO surfaces as an error.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use warren_storage::{Disk, FaultyDisk, SegmentLog, StorageError, segment_name};

fn last_segment(disk: &FaultyDisk) -> PathBuf {
    segment_files(disk, &dir()).pop().unwrap()
}

#[test]
fn torn_tail_is_cut_and_reported() {
    let disk = FaultyDisk::new(10);
    let (mut log, _) = open(&disk, wide());
    append_range(&mut log, 1..21);
    log.sync().unwrap();
    drop(log);
    // A crash left half of record 20 on disk (its last 7 bytes missing).
    let seg = last_segment(&disk);
    let bytes = disk.file_bytes(&seg).unwrap();
    let cut_len = bytes.len() - 7;
    disk.set_file_bytes(&seg, &bytes[..cut_len]).unwrap();

    let (mut log, report) = open(&disk, wide());
    let torn = report.torn_tail.expect("torn tail reported");
    assert_eq!(torn.file, seg);
    assert_eq!(torn.bytes_cut, (cut_len as u64) - torn.offset);
    assert_eq!(log.last_index(), Some(19));
    check_all(&log, 1..=19);
    // The file was really cut: appending continues cleanly and survives another reopen.
    append_range(&mut log, 20..26);
    log.sync().unwrap();
    drop(log);
    let (log, report) = open(&disk, wide());
    assert_eq!(report.torn_tail, None);
    check_all(&log, 1..=25);
}

#[test]
fn zero_filled_tail_is_cut() {
    let disk = FaultyDisk::new(11);
    let (mut log, _) = open(&disk, wide());
    append_range(&mut log, 1..11);
    log.sync().unwrap();
    drop(log);
    // The file's new size reached the disk but its data did not: zeros at the end. Zeros
    // after the last record are space never written (as in a preallocated segment), not a
    // torn record: they are cut without a torn-tail report.
    let seg = last_segment(&disk);
    let mut bytes = disk.file_bytes(&seg).unwrap();
    let written = bytes.len();
    bytes.extend_from_slice(&[0u8; 700]);
    disk.set_file_bytes(&seg, &bytes).unwrap();
    let (log, report) = open(&disk, wide());
    assert_eq!(report.torn_tail, None);
    assert_eq!(disk.file_bytes(&seg).unwrap().len(), written);
    check_all(&log, 1..=10);
}

#[test]
fn flipped_byte_in_a_middle_segment_is_corruption() {
    let disk = FaultyDisk::new(12);
    let (mut log, _) = open(&disk, small_segments());
    for start in (1..200).step_by(10) {
        append_range(&mut log, start..start + 10);
        log.sync().unwrap();
    }
    drop(log);
    let files = segment_files(&disk, &dir());
    let victim = files[1].clone();
    // Flip one payload byte of the segment's second record.
    let bytes = disk.file_bytes(&victim).unwrap();
    let first_len = u32::from_le_bytes(bytes[32..36].try_into().unwrap()) as u64;
    let second = 32 + 16 + first_len;
    disk.corrupt_byte(&victim, second + 16, 0x40).unwrap();

    let (file, offset, shown) = expect_corrupt(&disk, small_segments());
    assert_eq!(file, victim);
    assert_eq!(offset, second);
    assert!(shown.contains("checksum"), "{shown}");
    // Nothing was changed by the failed open.
    assert_eq!(segment_files(&disk, &dir()), files);
}

#[test]
fn bad_record_far_from_the_end_of_the_last_segment_is_corruption() {
    let disk = FaultyDisk::new(13);
    let (mut log, _) = open(&disk, wide());
    for start in (1..400).step_by(20) {
        append_range(&mut log, start..start + 20);
        log.sync().unwrap();
    }
    drop(log);
    // Valid records follow the bad one for more than one batch: not a torn write.
    let seg = last_segment(&disk);
    disk.corrupt_byte(&seg, 32 + 6, 0x01).unwrap();
    let (file, offset, shown) = expect_corrupt(&disk, wide());
    assert_eq!((file, offset), (seg, 32));
    assert!(shown.contains("not a torn write"), "{shown}");
}

#[test]
fn bad_header_is_corruption() {
    let disk = FaultyDisk::new(14);
    let (mut log, _) = open(&disk, wide());
    append_range(&mut log, 1..5);
    log.sync().unwrap();
    drop(log);
    let seg = last_segment(&disk);
    disk.corrupt_byte(&seg, 20, 0x10).unwrap();
    let (file, offset, _) = expect_corrupt(&disk, wide());
    assert_eq!((file, offset), (seg, 28));
}

#[test]
fn missing_middle_segment_is_corruption() {
    let disk = FaultyDisk::new(15);
    let (mut log, _) = open(&disk, small_segments());
    append_range(&mut log, 1..40);
    log.sync().unwrap();
    append_range(&mut log, 40..80);
    log.sync().unwrap();
    drop(log);
    let files = segment_files(&disk, &dir());
    assert!(files.len() >= 3);
    disk.remove(&files[1]).unwrap();
    disk.sync_dir(&dir()).unwrap();
    let (file, _, shown) = expect_corrupt(&disk, small_segments());
    assert_eq!(file, files[2]);
    assert!(shown.contains("previous one ends"), "{shown}");
}

#[test]
fn newer_format_version_is_refused() {
    let disk = FaultyDisk::new(16);
    let (mut log, _) = open(&disk, wide());
    append_range(&mut log, 1..3);
    log.sync().unwrap();
    drop(log);
    let seg = last_segment(&disk);
    disk.corrupt_byte(&seg, 8, 0x02).unwrap(); // format version 1 -> 3
    let d: Arc<dyn Disk> = Arc::new(disk.clone());
    let err = SegmentLog::open(d, &dir(), wide()).unwrap_err();
    assert!(
        matches!(err, StorageError::UnsupportedVersion { found: 3, .. }),
        "{err}"
    );
}

#[test]
fn truncate_from_then_append_is_durable() {
    let disk = FaultyDisk::new(17);
    let (mut log, _) = open(&disk, small_segments());
    append_range(&mut log, 1..100);
    log.sync().unwrap();
    let before = segment_files(&disk, &dir()).len();
    // Raft found a conflict at 42: everything from 42 goes, in whole and cut segments.
    log.truncate_from(42).unwrap();
    assert_eq!(log.last_index(), Some(41));
    assert!(segment_files(&disk, &dir()).len() < before);
    assert_eq!(log.read(40..100).unwrap().len(), 2);
    // Truncation is durable on return, without a sync.
    disk.crash();
    let (mut log, _) = open(&disk, small_segments());
    assert_eq!(log.last_index(), Some(41));
    // New entries at 42.. carry different payloads and read back as written.
    let new: Vec<Vec<u8>> = (42..60u64).map(|i| vec![0xAB; i as usize]).collect();
    let recs: Vec<(u64, &[u8])> = (42..60u64).zip(new.iter().map(Vec::as_slice)).collect();
    log.append(&recs).unwrap();
    log.sync().unwrap();
    drop(log);
    let (log, _) = open(&disk, small_segments());
    check_all(&log, 1..=41);
    let got = log.read(42..60).unwrap();
    assert_eq!(got.len(), 18);
    assert!(
        got.iter()
            .all(|(i, p)| p.len() == *i as usize && p.iter().all(|&b| b == 0xAB))
    );
    // Truncating beyond the end is a no-op; truncating everything empties the log.
    let (mut log, _) = open(&disk, small_segments());
    log.truncate_from(1000).unwrap();
    assert_eq!(log.last_index(), Some(59));
    log.truncate_from(1).unwrap();
    assert_eq!((log.first_index(), log.last_index()), (None, None));
    assert!(segment_files(&disk, &dir()).is_empty());
}

#[test]
fn purge_to_across_segments_and_reopen() {
    let disk = FaultyDisk::new(18);
    let (mut log, _) = open(&disk, small_segments());
    append_range(&mut log, 1..200);
    log.sync().unwrap();
    let files = segment_files(&disk, &dir());
    log.purge_to(120).unwrap();
    assert_eq!(log.first_index(), Some(121));
    assert_eq!(log.read(1..130).unwrap().first().map(|r| r.0), Some(121));
    let left = segment_files(&disk, &dir());
    assert!(
        left.len() < files.len(),
        "whole segments below the purge point are deleted"
    );
    // The segment holding 120 and 121 stays, with 121 readable.
    assert!(left[0] <= dir().join(segment_name(121)));
    disk.crash();
    let (mut log, report) = open(&disk, small_segments());
    assert_eq!(report.purged_to, Some(120));
    assert_eq!(
        (log.first_index(), log.last_index()),
        (Some(121), Some(199))
    );
    check_all(&log, 121..=199);
    // Purging past the end empties the log; the next index follows the purge point.
    log.purge_to(500).unwrap();
    assert_eq!((log.first_index(), log.last_index()), (None, None));
    assert_eq!(log.next_index(), Some(501));
    assert!(log.append(&[(200, b"old".as_slice())]).is_err());
    drop(log);
    let (mut log, _) = open(&disk, small_segments());
    assert_eq!(log.next_index(), Some(501));
    append_range(&mut log, 501..510);
    log.sync().unwrap();
    drop(log);
    let (log, _) = open(&disk, small_segments());
    check_all(&log, 501..=509);
}

#[test]
fn a_begun_purge_is_seen_at_once_and_on_disk_once_run() {
    // Why: the Raft I/O thread begins a purge and leaves its disk work to another thread,
    // so appends go on meanwhile; a crash before the work ran must lose nothing.
    let disk = FaultyDisk::new(20);
    let (mut log, _) = open(&disk, small_segments());
    append_range(&mut log, 1..200);
    log.sync().unwrap();
    let files = segment_files(&disk, &dir());
    let work = log.begin_purge(120).unwrap();
    assert!(!work.is_empty());
    // In memory the records are gone at once, and appends go on...
    assert_eq!(log.first_index(), Some(121));
    assert_eq!(log.read(1..130).unwrap().first().map(|r| r.0), Some(121));
    append_range(&mut log, 200..210);
    log.sync().unwrap();
    // ...while the disk still holds every file.
    assert_eq!(segment_files(&disk, &dir())[0], files[0]);
    // A crash now finds the records still there, from the old start (nothing lost).
    disk.crash();
    let (mut log, report) = open(&disk, small_segments());
    assert_eq!(report.purged_to, None);
    assert_eq!(log.first_index(), Some(1));
    check_all(&log, 1..=209);
    // Run, the work records the purge point and removes the whole segments below it.
    let work = log.begin_purge(120).unwrap();
    work.run().unwrap();
    assert!(segment_files(&disk, &dir()).len() < files.len());
    // A purge to where the log already is has nothing to do.
    assert!(log.begin_purge(100).unwrap().is_empty());
    disk.crash();
    let (log, report) = open(&disk, small_segments());
    assert_eq!(report.purged_to, Some(120));
    check_all(&log, 121..=209);
}

#[test]
fn interrupted_purge_is_finished_at_open() {
    let disk = FaultyDisk::new(19);
    let (mut log, _) = open(&disk, small_segments());
    append_range(&mut log, 1..200);
    log.sync().unwrap();
    // The purge point is written (create, write, fsync, rename, fsync dir), then the first
    // segment removal fails.
    disk.inject_eio(6);
    let err = log.purge_to(150).unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    // A failed log refuses further use until reopened.
    assert!(matches!(log.sync(), Err(StorageError::Poisoned { .. })));
    drop(log);
    disk.crash();
    let (log, report) = open(&disk, small_segments());
    assert_eq!(report.purged_to, Some(150));
    assert!(!report.removed_files.is_empty());
    assert_eq!(log.first_index(), Some(151));
    check_all(&log, 151..=199);
}

#[test]
fn eio_surfaces_as_an_error_at_every_step() {
    // Fail each operation in turn of an append-sync-truncate-purge workload; every failure
    // must come back as an error (never a panic), and reopening must find every synced record.
    let mut failures = 0;
    for nth in 1..80 {
        let disk = FaultyDisk::new(nth);
        let (mut log, _) = open(&disk, small_segments());
        append_range(&mut log, 1..30);
        log.sync().unwrap();
        disk.inject_eio(nth);
        let result = (|| {
            try_append_range(&mut log, 30..60)?;
            log.sync()?;
            log.truncate_from(50)?;
            log.purge_to(10)?;
            try_append_range(&mut log, 50..70)?;
            log.sync()
        })();
        if let Err(e) = &result {
            assert!(matches!(e, StorageError::Io { .. }), "op {nth}: {e}");
            failures += 1;
        }
        drop(log);
        disk.clear_eio();
        disk.crash();
        let (log, _) = open(&disk, small_segments());
        let first = log.first_index().unwrap();
        check_all(&log, first..=29);
        assert!(first == 1 || first == 11, "op {nth}: first {first}");
    }
    // The workload is long enough that most injected failures land inside it.
    assert!(failures > 40, "only {failures} injected failures fired");
}

#[test]
fn lost_fsync_loses_acknowledged_records_but_recovers_cleanly() {
    let disk = FaultyDisk::new(20);
    let (mut log, _) = open(&disk, wide());
    append_range(&mut log, 1..11);
    log.sync().unwrap();
    // The disk lies: fsync reports success and does nothing.
    disk.set_lose_fsyncs(true);
    append_range(&mut log, 11..21);
    log.sync().unwrap();
    drop(log);
    disk.crash();
    disk.set_lose_fsyncs(false);
    // What the lying disk dropped is gone; the log opens on what it really kept.
    let (log, _) = open(&disk, wide());
    assert_eq!(log.last_index(), Some(10));
    check_all(&log, 1..=10);
}

#[test]
fn flipped_byte_in_the_last_segment_with_records_after_it_is_corruption() {
    // Within one group-commit batch of the end, but followed by valid records: a crash cannot
    // leave that, so the records after it were written whole and must not be cut.
    let disk = FaultyDisk::new(14);
    let (mut log, _) = open(&disk, wide());
    append_range(&mut log, 1..51);
    log.sync().unwrap();
    drop(log);
    let seg = last_segment(&disk);
    let len = disk.file_bytes(&seg).unwrap().len() as u64;
    disk.corrupt_byte(&seg, len / 2, 0x40).unwrap();

    let (file, offset, shown) = expect_corrupt(&disk, wide());
    assert_eq!(file, seg);
    assert!(offset <= len / 2, "{shown}");
    assert!(shown.contains("not a torn write"), "{shown}");
    // Nothing was cut: the bytes are as the damage left them.
    assert_eq!(disk.file_bytes(&seg).unwrap().len() as u64, len);
}

#[test]
fn a_damaged_last_record_with_nothing_after_it_is_a_torn_tail() {
    let disk = FaultyDisk::new(15);
    let (mut log, _) = open(&disk, wide());
    append_range(&mut log, 1..11);
    log.sync().unwrap();
    drop(log);
    let seg = last_segment(&disk);
    let len = disk.file_bytes(&seg).unwrap().len() as u64;
    disk.corrupt_byte(&seg, len - 1, 0x01).unwrap();

    let (log, report) = open(&disk, wide());
    assert!(report.torn_tail.is_some());
    assert_eq!(log.last_index(), Some(9));
}
