//! The byte format of log segment files, and scanning one.
//!
//! ```text
//! header (32 bytes): magic b"WRNLOG\0\0" | format_version u32 | data_version u32
//!                    | first_index u64 | reserved u32 (0) | crc32c u32 over the first 28 bytes
//! record:            payload_len u32 | crc32c u32 over (index LE ++ payload) | index u64 | payload
//! ```
//! All integers little-endian. Records follow the header back to back, indexes contiguous from
//! `first_index`. A segment may end in zero bytes after its last record: space preallocated
//! for records not yet written (no record starts with a zero header, whose checksum would not
//! match).

use std::path::Path;

use crate::blob::{check_preamble, u32_at, u64_at};
use crate::crc::{crc32c, crc32c_append};
use crate::error::{Result, StorageError, corrupt};
use crate::{DATA_VERSION, FORMAT_VERSION};

/// Magic at the start of every segment file.
pub(crate) const MAGIC: &[u8; 8] = b"WRNLOG\0\0";
/// Bytes in a segment header.
pub(crate) const HEADER_BYTES: u64 = 32;
/// Bytes a log record takes besides its payload (length, CRC32C, index): what counts
/// against `LogOptions::batch_bytes_max` is this plus the payload, per record.
pub const RECORD_HEADER_BYTES: u64 = 16;

/// Encodes a segment header.
pub(crate) fn encode_header(first_index: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&DATA_VERSION.to_le_bytes());
    out.extend_from_slice(&first_index.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a segment header; returns its first index.
pub(crate) fn decode_header(file: &Path, bytes: &[u8]) -> Result<u64> {
    check_preamble(file, bytes, HEADER_BYTES as usize, MAGIC, "segment ")?;
    let want = u32_at(bytes, 28);
    let got = crc32c(&bytes[..28]);
    if want != got {
        return Err(corrupt(
            file,
            28,
            format!("header checksum {got:#010x}, expected {want:#010x}"),
        ));
    }
    let data_version = u32_at(bytes, 12);
    if data_version > DATA_VERSION {
        return Err(StorageError::UnsupportedVersion {
            file: file.to_path_buf(),
            found: data_version,
            supported: DATA_VERSION,
        });
    }
    Ok(u64_at(bytes, 16))
}

fn record_crc(index: u64, payload: &[u8]) -> u32 {
    crc32c_append(crc32c(&index.to_le_bytes()), payload)
}

/// Appends one encoded record to `buf` with its checksum (the write half of the checksum pair;
/// the read half is in `parse_record`). Debug builds re-read it to check the encoding.
pub(crate) fn encode_record(buf: &mut Vec<u8>, index: u64, payload: &[u8]) {
    let start = buf.len();
    // Callers bound payloads by `batch_bytes_max`, which is a u32, so this cannot truncate.
    let len = payload.len() as u32;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&record_crc(index, payload).to_le_bytes());
    buf.extend_from_slice(&index.to_le_bytes());
    buf.extend_from_slice(payload);
    // The pair of the read-side check: the record parses back as written. Debug builds only:
    // in release it cost a second CRC pass over every payload on the write path, and every
    // read (recovery, replication from disk) checks the CRC anyway.
    debug_assert!(
        matches!(
            parse_record(&buf[start..], 0, index, u64::from(u32::MAX)),
            Ok(end) if end == buf.len() - start
        ),
        "encoded log record {index} does not re-read"
    );
}

/// Checks the record at `at` in `bytes`, which must carry `expected_index`; returns the offset
/// just past it, or why it is bad.
pub(crate) fn parse_record(
    bytes: &[u8],
    at: usize,
    expected_index: u64,
    payload_max: u64,
) -> std::result::Result<usize, String> {
    let rest = &bytes[at..];
    if (rest.len() as u64) < RECORD_HEADER_BYTES {
        return Err(format!("record header truncated ({} bytes)", rest.len()));
    }
    let len = u64::from(u32_at(rest, 0));
    if len > payload_max {
        return Err(format!(
            "record length {len} exceeds the limit {payload_max}"
        ));
    }
    let end = RECORD_HEADER_BYTES + len;
    if (rest.len() as u64) < end {
        return Err(format!(
            "record of {len} bytes truncated ({} bytes present)",
            rest.len() as u64 - RECORD_HEADER_BYTES
        ));
    }
    let want = u32_at(rest, 4);
    let index = u64_at(rest, 8);
    let payload = &rest[RECORD_HEADER_BYTES as usize..end as usize];
    let got = record_crc(index, payload);
    if want != got {
        return Err(format!(
            "record checksum {got:#010x}, expected {want:#010x}"
        ));
    }
    if index != expected_index {
        return Err(format!("record index {index}, expected {expected_index}"));
    }
    Ok(at + end as usize)
}

/// The payload of a record that `parse_record` accepted at `at`.
pub(crate) fn payload_at(bytes: &[u8], at: usize) -> &[u8] {
    let len = u32_at(bytes, at) as usize;
    let start = at + RECORD_HEADER_BYTES as usize;
    &bytes[start..start + len]
}

/// What scanning a whole segment file found.
#[derive(Debug)]
pub(crate) struct Scan {
    pub first_index: u64,
    /// Offset of each valid record, in index order.
    pub offsets: Vec<u64>,
    /// End of the last valid record.
    pub valid_len: u64,
    /// End of the data: of the last nonzero byte or of the last valid record, whichever is
    /// later. From here to `file_len` the file holds only zeros (preallocated space).
    pub data_end: u64,
    /// Length of the file.
    pub file_len: u64,
    /// The first bad record, if any: its offset and why.
    pub bad: Option<(u64, String)>,
    /// A valid record found after the bad one, if any: its offset and index. A crash can
    /// leave only garbage or zeros after a torn write; a valid record after damage means the
    /// damage is corruption of data that was written whole.
    pub valid_after_bad: Option<(u64, u64)>,
}

/// Scans a segment's bytes: header, then records until the first bad one or the zeros that
/// end the file (preallocated space, which a record never starts with).
pub(crate) fn scan(file: &Path, bytes: &[u8], payload_max: u64) -> Result<Scan> {
    let first_index = decode_header(file, bytes)?;
    let nonzero_end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut offsets = Vec::new();
    let mut at = HEADER_BYTES as usize;
    let mut bad = None;
    let mut valid_after_bad = None;
    while at < nonzero_end {
        let expected = first_index + offsets.len() as u64;
        match parse_record(bytes, at, expected, payload_max) {
            Ok(end) => {
                offsets.push(at as u64);
                at = end;
            }
            Err(reason) => {
                bad = Some((at as u64, reason));
                let data = &bytes[..nonzero_end];
                valid_after_bad = find_record_after(data, at + 1, expected, payload_max);
                break;
            }
        }
    }
    Ok(Scan {
        first_index,
        offsets,
        valid_len: at as u64,
        data_end: nonzero_end.max(at) as u64,
        file_len: bytes.len() as u64,
        bad,
        valid_after_bad,
    })
}

/// The first offset at or after `from` holding a record with a valid checksum and an index
/// at or after `expected` (and not absurdly far past it): `(offset, index)`.
///
/// Only recovery calls this, on at most one group-commit batch of bytes: the probe at each
/// offset stops at the first header field that cannot fit.
fn find_record_after(
    bytes: &[u8],
    from: usize,
    expected: u64,
    payload_max: u64,
) -> Option<(u64, u64)> {
    const INDEX_SLACK: u64 = 1 << 20;
    let header = RECORD_HEADER_BYTES as usize;
    (from..bytes.len().saturating_sub(header - 1)).find_map(|at| {
        let rest = &bytes[at..];
        let len = u64::from(u32_at(rest, 0));
        if len > payload_max || (rest.len() as u64) < RECORD_HEADER_BYTES + len {
            return None;
        }
        let index = u64_at(rest, 8);
        if index < expected || index - expected > INDEX_SLACK {
            return None;
        }
        let payload = &rest[header..header + len as usize];
        (record_crc(index, payload) == u32_at(rest, 4)).then_some((at as u64, index))
    })
}
