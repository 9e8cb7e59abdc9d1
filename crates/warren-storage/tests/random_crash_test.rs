//! Randomized crash recovery: random appends, syncs, truncations, purges, spare segments
//! (asked for, filled later or never), injected EIO and (torn) crashes against a model; after every reopen, every acknowledged record survives,
//! nothing unwritten appears, and indexes are contiguous.
//!
//! The seed is printed; rerun one with `WARREN_STORAGE_SEED=<n> cargo test -p warren-storage
//! --test random_crash_test -- --nocapture`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use warren_storage::{Disk, FaultyDisk, LogOptions, SegmentLog, StorageError};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const OPTS: LogOptions = LogOptions {
    segment_bytes: 2048,
    batch_bytes_max: 8192,
};

/// What the log must hold: `written` is everything appended and not removed, `acked` the
/// part whose durability was acknowledged (sync, truncate or purge returned).
#[derive(Default)]
struct Model {
    written: BTreeMap<u64, Vec<u8>>,
    acked: BTreeMap<u64, Vec<u8>>,
    purged: Option<u64>,
}

fn open(disk: &FaultyDisk) -> SegmentLog {
    let d: Arc<dyn Disk> = Arc::new(disk.clone());
    SegmentLog::open(d, Path::new("/data/log"), OPTS)
        .unwrap_or_else(|e| panic!("recovery failed: {e}"))
        .0
}

/// Reopens after a crash and checks the recovered log against the model, which then
/// becomes what was recovered.
fn check_recovered(log: &SegmentLog, model: &mut Model, seed: u64, step: usize) {
    let ctx = format!("seed {seed} step {step}");
    let got = log
        .read(0..u64::MAX)
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    // Contiguous, and matching first/last index.
    for pair in got.windows(2) {
        assert_eq!(pair[0].0 + 1, pair[1].0, "{ctx}: gap");
    }
    assert_eq!(got.first().map(|r| r.0), log.first_index(), "{ctx}");
    assert_eq!(got.last().map(|r| r.0), log.last_index(), "{ctx}");
    let purged = log.purged_to();
    assert!(purged >= model.purged, "{ctx}: purge point went back");
    let recovered: BTreeMap<u64, Vec<u8>> = got.into_iter().collect();
    // Every acknowledged record above the purge point survived, byte for byte.
    for (i, p) in model.acked.range(purged.map_or(0, |p| p + 1)..) {
        assert_eq!(
            recovered.get(i),
            Some(p),
            "{ctx}: acknowledged record {i} lost"
        );
    }
    // Nothing appears that was not written.
    for (i, p) in &recovered {
        assert_eq!(
            model.written.get(i),
            Some(p),
            "{ctx}: record {i} was never written"
        );
    }
    if let (Some(p), Some(first)) = (purged, log.first_index()) {
        assert_eq!(first, p + 1, "{ctx}: first index after purge point");
    }
    model.written = recovered.clone();
    model.acked = recovered;
    model.purged = purged;
}

/// What one run did: crashes, failed operations, spare fills completed.
struct Counts {
    crashes: usize,
    failures: usize,
    fills: usize,
}

fn run(seed: u64, steps: usize) -> Counts {
    let mut rng = Rng(seed);
    let disk = FaultyDisk::new(seed ^ 0xD15C);
    let mut log = open(&disk);
    let mut model = Model::default();
    let mut generation = 0u64;
    let (mut crashes, mut failures, mut fills) = (0, 0, 0);
    // A spare fill asked for and not yet run (as on the thread that runs it).
    let mut pending = None;
    for step in 0..steps {
        if rng.below(40) == 0 {
            disk.inject_eio(1 + rng.below(8));
        }
        let roll = rng.below(100);
        let result: Result<(), StorageError> = if roll < 55 {
            // Append a batch, often asking first whether a spare is due.
            if rng.below(2) == 0 {
                pending = pending.or_else(|| log.spare_work());
            }
            let next = log.next_index().unwrap_or(1);
            generation += 1;
            let batch: Vec<(u64, Vec<u8>)> = (0..1 + rng.below(15))
                .map(|k| {
                    let len = rng.below(300) as usize;
                    let tag = (generation as u8) ^ (k as u8);
                    (
                        next + k,
                        (0..len).map(|b| tag.wrapping_add(b as u8)).collect(),
                    )
                })
                .collect();
            for (i, p) in &batch {
                model.written.insert(*i, p.clone());
            }
            let recs: Vec<(u64, &[u8])> = batch.iter().map(|(i, p)| (*i, p.as_slice())).collect();
            log.append(&recs)
        } else if roll < 80 {
            log.sync().map(|()| model.acked = model.written.clone())
        } else if roll < 86 {
            // Truncate somewhere in the last few records.
            let last = log.last_index().unwrap_or(0);
            let at = last.saturating_sub(rng.below(20));
            model.acked.split_off(&at);
            log.truncate_from(at).map(|()| {
                model.written.split_off(&at);
            })
        } else if roll < 90 {
            // Purge up to somewhere in the log, sometimes past its end.
            let last = log.last_index().unwrap_or(0);
            let at = last.saturating_sub(rng.below(60)) + rng.below(3);
            log.purge_to(at).map(|()| {
                model.purged = model.purged.max(Some(at));
                model.written = model.written.split_off(&(at + 1));
                model.acked = model.acked.split_off(&(at + 1));
            })
        } else if roll < 95 {
            match pending.take() {
                Some(fill) => fill.run().map(|()| fills += 1),
                None => {
                    pending = log.spare_work();
                    Ok(())
                }
            }
        } else {
            Ok(())
        };
        let crash = roll >= 95;
        if result.is_err() {
            failures += 1;
        }
        if crash || result.is_err() {
            crashes += 1;
            pending = None;
            drop(log);
            disk.clear_eio();
            if rng.below(2) == 0 {
                disk.crash_torn()
            } else {
                disk.crash()
            }
            log = open(&disk);
            check_recovered(&log, &mut model, seed, step);
        }
    }
    Counts {
        crashes,
        failures,
        fills,
    }
}

#[test]
fn random_crash_recovery() {
    let seed = std::env::var("WARREN_STORAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2024_u64);
    println!("random_crash_recovery: WARREN_STORAGE_SEED={seed}");
    let mut total = (0, 0, 0);
    for round in 0..8 {
        let c = run(seed.wrapping_add(round), 1500);
        total = (total.0 + c.crashes, total.1 + c.failures, total.2 + c.fills);
    }
    println!(
        "crashes {}, injected failures {}, spare fills {}",
        total.0, total.1, total.2
    );
    // The test exercised what it claims to.
    assert!(total.0 > 300 && total.1 > 50 && total.2 > 100, "{total:?}");
}
