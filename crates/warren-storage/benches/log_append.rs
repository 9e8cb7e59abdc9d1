//! Group commit: `SegmentLog::append` of a batch of 1, 16 or 256 entries of 200 bytes, then
//! one `sync` (fsync), on the real disk, as the Raft I/O thread does per batch.
//!
//! The log lives in a temporary directory under Cargo's target dir (a real disk; `/tmp` may
//! be tmpfs, where fsync costs nothing). `cargo bench -p warren-storage --bench log_append`;
//! `-- --test` runs each once (CI smoke test).

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use warren_storage::{LogOptions, RealDisk, SegmentLog};

/// Payload bytes per entry: about one small write command.
const ENTRY_BYTES: usize = 200;

fn append_sync(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temp dir");
    let payload = vec![0x5a; ENTRY_BYTES];
    let mut g = c.benchmark_group("log_append_sync");
    for batch in [1usize, 16, 256] {
        let path = dir.path().join(format!("batch-{batch}"));
        let (mut log, _) =
            SegmentLog::open(Arc::new(RealDisk::new()), &path, LogOptions::default())
                .expect("a fresh log opens");
        let mut next = 1u64;
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(BenchmarkId::from_parameter(batch), |b| {
            b.iter(|| {
                let records: Vec<(u64, &[u8])> = (0..batch as u64)
                    .map(|i| (next + i, payload.as_slice()))
                    .collect();
                log.append(&records).expect("append");
                log.sync().expect("fsync");
                next += batch as u64;
            })
        });
    }
    g.finish();
}

criterion_group!(benches, append_sync);
criterion_main!(benches);
