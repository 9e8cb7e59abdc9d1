//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use warren_storage::{Disk, FaultyDisk, LogOptions, RecoveryReport, SegmentLog, StorageError};

pub fn dir() -> PathBuf {
    PathBuf::from("/data/log")
}

pub fn payload(index: u64) -> Vec<u8> {
    let len = (index * 37 % 200) as usize;
    (0..len)
        .map(|i| (index as u8).wrapping_add(i as u8))
        .collect()
}

pub fn open(disk: &FaultyDisk, opts: LogOptions) -> (SegmentLog, RecoveryReport) {
    let disk: Arc<dyn Disk> = Arc::new(disk.clone());
    SegmentLog::open(disk, &dir(), opts).unwrap()
}

/// Appends `range` with `payload(i)`, ten records per `append` call (one call may not exceed
/// the small test batch limit).
pub fn append_range(log: &mut SegmentLog, range: std::ops::Range<u64>) {
    try_append_range(log, range).unwrap();
}

pub fn try_append_range(
    log: &mut SegmentLog,
    range: std::ops::Range<u64>,
) -> Result<(), warren_storage::StorageError> {
    let payloads: Vec<(u64, Vec<u8>)> = range.map(|i| (i, payload(i))).collect();
    for chunk in payloads.chunks(10) {
        let records: Vec<(u64, &[u8])> = chunk.iter().map(|(i, p)| (*i, p.as_slice())).collect();
        log.append(&records)?;
    }
    Ok(())
}

pub fn check_all(log: &SegmentLog, range: std::ops::RangeInclusive<u64>) {
    let got = log.read(*range.start()..*range.end() + 1).unwrap();
    let want: Vec<(u64, Vec<u8>)> = range.map(|i| (i, payload(i))).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "records differ");
}

pub fn small_segments() -> LogOptions {
    LogOptions {
        segment_bytes: 1024,
        batch_bytes_max: 4096,
    }
}

pub fn segment_files(disk: &FaultyDisk, dir: &Path) -> Vec<PathBuf> {
    disk.files()
        .into_iter()
        .filter(|p| {
            p.parent() == Some(dir)
                && p.extension().is_some_and(|e| e == "seg")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("log-"))
        })
        .collect()
}

/// Segments of 1 MiB, batches of 4 KiB: one segment holds a whole test.
pub fn wide() -> LogOptions {
    LogOptions {
        segment_bytes: 1 << 20,
        batch_bytes_max: 4096,
    }
}

/// Opens the log expecting `Corrupt`; checks that the message names the file and offset.
pub fn expect_corrupt(disk: &FaultyDisk, opts: LogOptions) -> (PathBuf, u64, String) {
    let d: Arc<dyn Disk> = Arc::new(disk.clone());
    match SegmentLog::open(d, &dir(), opts) {
        Err(e @ StorageError::Corrupt { .. }) => {
            let shown = e.to_string();
            let StorageError::Corrupt { file, offset, .. } = e else {
                unreachable!()
            };
            // The message an operator sees names the file and the offset.
            assert!(shown.contains(&file.display().to_string()), "{shown}");
            assert!(shown.contains(&format!("offset {offset}")), "{shown}");
            (file, offset, shown)
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
