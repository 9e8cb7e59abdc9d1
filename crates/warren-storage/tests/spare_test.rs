//! Preallocated segments: a roll takes the zero-filled spare, the segment before is cut to its
//! last record, zeros after the last record of the last segment are space never written, and
//! a crash at any step of a roll from the spare loses nothing acknowledged.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use warren_storage::{Disk, FaultyDisk, LogOptions, SegmentLog};

fn spare_path() -> PathBuf {
    dir().join("spare.seg")
}

fn file_len(disk: &FaultyDisk, path: &Path) -> usize {
    disk.file_bytes(path).expect("file exists").len()
}

/// The end of the last record of a segment file: the offset after the last nonzero byte is
/// not enough (a payload may end in zeros), so walk the records.
fn logical_end(bytes: &[u8]) -> usize {
    let mut at = 32;
    while at + 16 <= bytes.len() && bytes[at..at + 16].iter().any(|&b| b != 0) {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 16 + len;
    }
    at
}

fn fill_spare(log: &mut SegmentLog) {
    log.spare_work()
        .expect("a spare is due")
        .run()
        .expect("the fill succeeds");
}

#[test]
fn a_roll_takes_the_spare_and_the_segment_before_is_cut_to_its_last_record() {
    let disk = FaultyDisk::new(1);
    let opts = small_segments();
    let (mut log, _) = open(&disk, opts);

    // With no segment yet a spare is due; once asked for, not again.
    let fill = log.spare_work().expect("due with no segment");
    assert!(log.spare_work().is_none(), "a fill is under way");
    fill.run().unwrap();
    assert_eq!(disk.file_bytes(&spare_path()), Some(vec![0; 1024]));
    assert!(log.spare_work().is_none(), "a spare is ready");

    // The first segment is the spare: a header, the records, zeros to the segment size.
    append_range(&mut log, 1..4);
    log.sync().unwrap();
    assert!(!disk.files().contains(&spare_path()), "the spare was taken");
    let first = segment_files(&disk, &dir()).pop().unwrap();
    let bytes = disk.file_bytes(&first).unwrap();
    assert_eq!(bytes.len(), 1024, "preallocated");
    let end = logical_end(&bytes);
    assert!(end < 1024 && bytes[end..].iter().all(|&b| b == 0));

    // The roll took the spare, so the next one is due at once (its fill keeps pace with the
    // log's writes); without running it, the next roll creates a segment as before, and the
    // one before is cut to its last record.
    assert!(log.spare_work().is_some(), "due once the spare is taken");
    let mut next = 4;
    while segment_files(&disk, &dir()).len() < 2 {
        append_range(&mut log, next..next + 1);
        next += 1;
    }
    log.sync().unwrap();
    let files = segment_files(&disk, &dir());
    let sealed = disk.file_bytes(&files[0]).unwrap();
    assert_eq!(sealed.len(), logical_end(&sealed), "cut to its last record");
    let second = disk.file_bytes(&files[1]).unwrap();
    assert_eq!(
        second.len(),
        logical_end(&second),
        "created without the spare"
    );

    // Everything reads back after a reopen, nothing torn.
    drop(log);
    let (log, report) = open(&disk, opts);
    assert_eq!(report.torn_tail, None);
    check_all(&log, 1..=next - 1);
}

/// The length of the spare being filled (its temp file), 0 before it exists.
fn filling_len(disk: &FaultyDisk) -> usize {
    disk.file_bytes(&dir().join("spare.seg.tmp"))
        .map_or(0, |b| b.len())
}

/// Waits (at most 10 s) until the spare being filled is `len` bytes long, then checks that it
/// stays there while the log writes nothing more.
fn fill_reaches_and_holds(disk: &FaultyDisk, len: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while filling_len(disk) < len {
        assert!(
            std::time::Instant::now() < deadline,
            "stuck at {}",
            filling_len(disk)
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(filling_len(disk), len, "ran ahead of the log");
}

#[test]
fn a_fill_keeps_pace_with_the_log_and_runs_at_most_twice_its_writes_ahead() {
    const MIB: usize = 1 << 20;
    let disk = FaultyDisk::new(4);
    let opts = LogOptions {
        segment_bytes: 8 * MIB as u64,
        batch_bytes_max: 4 * MIB as u32,
    };
    let (mut log, _) = open(&disk, opts);
    let fill = log.spare_work().expect("due with no segment");
    let filler = std::thread::spawn(move || fill.run());

    // The log writes nothing: the fill takes its head start of 1 MiB and waits.
    fill_reaches_and_holds(&disk, MIB);

    // The log writes 1 MiB (16 records of 64 KiB less their 16-byte headers): the fill may
    // be 2 MiB past where it began, plus its head start.
    let payload = vec![7u8; 64 * 1024 - 16];
    let mut next = 1;
    let mut write = |log: &mut SegmentLog, records: usize| {
        for _ in 0..records {
            log.append(&[(next, payload.as_slice())]).unwrap();
            next += 1;
        }
    };
    write(&mut log, 16);
    fill_reaches_and_holds(&disk, 3 * MIB);

    // 3 MiB more: 9 MiB allowed, past the spare's 8 MiB, so it completes and is ready.
    write(&mut log, 48);
    filler.join().unwrap().unwrap();
    assert_eq!(
        disk.file_bytes(&spare_path()).map(|b| b.len()),
        Some(8 * MIB)
    );
    assert!(log.spare_work().is_none(), "a spare is ready");
}

#[test]
fn a_ready_spare_survives_a_restart_and_one_of_another_size_is_removed() {
    let disk = FaultyDisk::new(2);
    let opts = small_segments();
    let (mut log, _) = open(&disk, opts);
    fill_spare(&mut log);
    drop(log);

    // Still ready after a clean restart: none is due, and the first roll takes it.
    let (mut log, report) = open(&disk, opts);
    assert!(report.removed_files.is_empty(), "{report:?}");
    assert!(log.spare_work().is_none());
    append_range(&mut log, 1..3);
    log.sync().unwrap();
    let seg = segment_files(&disk, &dir()).pop().unwrap();
    assert_eq!(file_len(&disk, &seg), 1024);
    drop(log);

    // A spare of another size (the segment size changed) is removed, and a half-made one
    // (the temp file) too.
    let d: Arc<dyn Disk> = Arc::new(disk.clone());
    let mut f = d.create(&spare_path()).unwrap();
    f.append(&[0; 100]).unwrap();
    f.sync().unwrap();
    let tmp = dir().join("spare.seg.tmp");
    d.create(&tmp).unwrap();
    d.sync_dir(&dir()).unwrap();
    let (log, report) = open(&disk, opts);
    assert!(report.removed_files.contains(&spare_path()), "{report:?}");
    assert!(report.removed_files.contains(&tmp), "{report:?}");
    assert!(!disk.files().contains(&spare_path()));
    // The restart cut the zeros after the last record of the last segment.
    let bytes = disk.file_bytes(&seg).unwrap();
    assert_eq!(bytes.len(), logical_end(&bytes));
    check_all(&log, 1..=2);
}

/// Builds a log whose one segment came from the spare, with a second spare ready; returns it
/// and the next index.
fn log_about_to_roll(disk: &FaultyDisk, opts: LogOptions) -> (SegmentLog, u64) {
    let (mut log, _) = open(disk, opts);
    fill_spare(&mut log);
    let mut next = 1;
    loop {
        append_range(&mut log, next..next + 1);
        next += 1;
        if let Some(fill) = log.spare_work() {
            fill.run().unwrap();
            break;
        }
    }
    log.sync().unwrap();
    (log, next)
}

#[test]
fn a_crash_at_every_step_of_a_roll_from_the_spare_loses_nothing_acknowledged() {
    let opts = small_segments();
    // Count the disk operations of the appends up to the one that rolls into the spare, and
    // their sync.
    let disk = FaultyDisk::new(3);
    let (mut log, first_new) = log_about_to_roll(&disk, opts);
    let before = disk.ops();
    let mut end = first_new;
    while segment_files(&disk, &dir()).len() < 2 {
        append_range(&mut log, end..end + 1);
        end += 1;
    }
    log.sync().unwrap();
    let steps = disk.ops() - before;
    assert!(
        !disk.files().contains(&spare_path()),
        "the roll took the spare"
    );
    assert!(steps >= 8, "{steps} operations");
    drop(log);

    for crash_after in 0..steps {
        for torn in [false, true] {
            let disk = FaultyDisk::new(100 + crash_after);
            let (mut log, next) = log_about_to_roll(&disk, opts);
            assert_eq!(next, first_new);
            // The operation after `crash_after` fails, then the power goes.
            disk.inject_eio(crash_after + 1);
            // The same calls as counted above: one append per record, then a sync.
            let result = (next..end)
                .try_for_each(|i| try_append_range(&mut log, i..i + 1))
                .and_then(|()| log.sync());
            assert!(result.is_err(), "step {crash_after} was reached");
            drop(log);
            disk.clear_eio();
            if torn {
                disk.crash_torn();
            } else {
                disk.crash();
            }
            let d: Arc<dyn Disk> = Arc::new(disk.clone());
            let (mut log, _) = SegmentLog::open(d, &dir(), opts)
                .unwrap_or_else(|e| panic!("crash after {crash_after} (torn {torn}): {e}"));
            // What was acknowledged is there; what follows is a prefix of what was written.
            let last = log.last_index().unwrap();
            assert!(
                last >= next - 1,
                "crash after {crash_after}: lost {last}..{next}"
            );
            check_all(&log, 1..=last);
            // And the log goes on: more appends, a restart, all there.
            append_range(&mut log, last + 1..last + 30);
            log.sync().unwrap();
            drop(log);
            let (log, report) = open(&disk, opts);
            assert_eq!(report.torn_tail, None);
            check_all(&log, 1..=last + 29);
        }
    }
}

/// One preallocated segment holding records 1..=10, synced; returns its path.
fn preallocated_segment(disk: &FaultyDisk) -> PathBuf {
    let (mut log, _) = open(disk, wide());
    fill_spare(&mut log);
    append_range(&mut log, 1..11);
    log.sync().unwrap();
    segment_files(disk, &dir()).pop().unwrap()
}

#[test]
fn a_torn_write_inside_the_preallocated_zone_is_cut() {
    let disk = FaultyDisk::new(4);
    let seg = preallocated_segment(&disk);
    let mut bytes = disk.file_bytes(&seg).unwrap();
    assert_eq!(bytes.len(), 1 << 20);
    let end = logical_end(&bytes);
    // Half of a 100-byte record reached the disk, then the zeros it was written over.
    bytes[end..end + 4].copy_from_slice(&100u32.to_le_bytes());
    bytes[end + 4..end + 60].fill(0xAB);
    disk.set_file_bytes(&seg, &bytes).unwrap();

    let (log, report) = open(&disk, wide());
    let torn = report.torn_tail.expect("a torn tail");
    assert_eq!((torn.offset, torn.bytes_cut), (end as u64, 60));
    assert_eq!(file_len(&disk, &seg), end);
    check_all(&log, 1..=10);
}

#[test]
fn nonzero_bytes_past_a_batch_after_the_zeros_are_corruption() {
    let disk = FaultyDisk::new(5);
    let seg = preallocated_segment(&disk);
    let mut bytes = disk.file_bytes(&seg).unwrap();
    let end = logical_end(&bytes);
    // Zeros, then a stray byte further on than any unsynced write could reach.
    bytes[end + 10_000] = 1;
    disk.set_file_bytes(&seg, &bytes).unwrap();

    let (file, offset, shown) = expect_corrupt(&disk, wide());
    assert_eq!((file, offset), (seg.clone(), end as u64));
    assert!(shown.contains("not a torn write"), "{shown}");
    // Nothing was cut by the failed open.
    assert_eq!(disk.file_bytes(&seg).unwrap(), bytes);
}

#[test]
fn zeros_after_the_last_record_of_a_segment_that_is_not_the_last_are_corruption() {
    let disk = FaultyDisk::new(6);
    let (mut log, _) = open(&disk, small_segments());
    append_range(&mut log, 1..60);
    log.sync().unwrap();
    drop(log);
    let files = segment_files(&disk, &dir());
    assert!(files.len() >= 2);
    let mut bytes = disk.file_bytes(&files[0]).unwrap();
    let end = bytes.len();
    bytes.extend_from_slice(&[0; 300]);
    disk.set_file_bytes(&files[0], &bytes).unwrap();

    let (file, offset, shown) = expect_corrupt(&disk, small_segments());
    assert_eq!((file, offset), (files[0].clone(), end as u64));
    assert!(shown.contains("not the last"), "{shown}");
}
