//! The differential test: one scripted workload (every opcode, errors included) through
//! Apache ZooKeeper 3.8 (Debian's `zookeeper` package) and through warren, the frames
//! compared after normalising zxids, times and session ids.
//!
//! Layout (`tests/differential/`):
//! - `zookeeper.rs` starts ZooKeeper as a child process on a free port and kills it on drop.
//! - `transcript.rs` records every frame each step receives (replies and notifications in
//!   order, the end of a connection, silence).
//! - `workload.rs` is the script.
//! - `normalise.rs` turns a transcript into text, and holds the one table of intended deltas
//!   (`DELTAS`) and the known, not yet fixed, differences (`KNOWN_DIFFERENCES`).
//!
//! If ZooKeeper is not installed the test fails, unless `WARREN_SKIP_ZK=1` is set outside
//! CI (`CI=true` always fails): a reference test that skips silently proves nothing.

mod common;
#[path = "differential/normalise.rs"]
mod normalise;
#[path = "differential/transcript.rs"]
mod transcript;
#[path = "differential/workload.rs"]
mod workload;
#[path = "differential/zookeeper.rs"]
mod zookeeper;

use std::fmt::Write as _;
use std::net::SocketAddr;

use common::{TestServer, test_config};
use normalise::{DELTAS, KNOWN_DIFFERENCES, StepFrames, apply_deltas, normalise};
use transcript::{Recorder, Transcript};

#[test]
fn workload_answers_like_zookeeper_3_8() {
    let Some(classpath) = zookeeper_classpath_or_skip() else {
        return;
    };

    // Phase 1: the workload through Apache ZooKeeper 3.8, the reference.
    let sweep_ms = workload::CONTAINER_CHECK_INTERVAL.as_millis();
    let zk = zookeeper::ZooKeeper::start(&classpath, sweep_ms);
    let reference = record(zk.addr);
    drop(zk);

    // Phase 2: the same workload through warren, with the same tick, TTL and sweep settings.
    let dir = tempfile::tempdir().unwrap();
    let sweep_ms = sweep_ms.to_string();
    let settings = [
        ("tickTime", "2000"),
        ("extendedTypesEnabled", "true"),
        ("znode.container.checkIntervalMs", sweep_ms.as_str()),
    ];
    let cfg = test_config(dir.path(), &settings);
    let server = TestServer::start_with(cfg);
    let ours = record(server.addr);
    server.stop();

    // Phase 3: normalise both, apply the table of intended deltas, compare step by step.
    assert_eq!(
        reference.steps, ours.steps,
        "the script ran differently (a connection ended early on one server)"
    );
    let mut expected = normalise(&reference);
    let mut got = normalise(&ours);
    let fired_zk = apply_deltas(&reference.steps, &mut expected);
    let fired_ours = apply_deltas(&ours.steps, &mut got);
    for (i, d) in DELTAS.iter().enumerate() {
        eprintln!(
            "delta {:?} (ZooKeeper 3.8: {}; warren as 3.9: {}; {}) changed {} ZooKeeper \
             steps and {} warren steps",
            d.name, d.zookeeper_3_8, d.warren_3_9, d.why, fired_zk[i], fired_ours[i]
        );
    }
    write_transcripts(&reference, &expected, &got);
    let report = compare(&reference.steps, &expected, &got);
    assert!(report.is_empty(), "{report}");
}

/// The ZooKeeper classpath, or `None` when the test may skip (loudly).
fn zookeeper_classpath_or_skip() -> Option<String> {
    if let Some(cp) = zookeeper::classpath() {
        return Some(cp);
    }
    let missing = "Apache ZooKeeper 3.8 is not installed (Debian: `apt-get install -y \
                   zookeeper`, which brings Java; or set ZOOKEEPER_CLASSPATH)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{missing}: CI=true, and CI must run the differential test");
    }
    if std::env::var("WARREN_SKIP_ZK").is_ok_and(|v| v == "1") {
        eprintln!("\n{}\n", "!".repeat(78));
        eprintln!("!!! SKIPPED the differential test: {missing}. WARREN_SKIP_ZK=1 is set.");
        eprintln!("{}\n", "!".repeat(78));
        return None;
    }
    panic!("{missing}. Set WARREN_SKIP_ZK=1 to skip this test outside CI.");
}

fn record(addr: SocketAddr) -> Transcript {
    let mut r = Recorder::new(addr);
    workload::run(&mut r);
    r.transcript
}

/// The frames of step `step`, one line each, prefixed by the connection.
fn step_text(frames: &[StepFrames], step: usize) -> String {
    frames[step]
        .iter()
        .map(|(conn, f)| format!("{conn}: {f}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every step whose frames differ, except a known difference matching exactly; and every
/// known difference that no longer occurs. Empty when the servers agree.
fn compare(steps: &[String], expected: &[StepFrames], got: &[StepFrames]) -> String {
    let mut report = String::new();
    let mut mismatches = 0;
    for (step, label) in steps.iter().enumerate() {
        let want = step_text(expected, step);
        let have = step_text(got, step);
        let known = KNOWN_DIFFERENCES.iter().find(|k| k.step == label);
        match known {
            Some(k) if want == have => {
                let _ = writeln!(
                    report,
                    "\nknown difference {} ({label}) is gone: remove it from \
                     KNOWN_DIFFERENCES\n",
                    k.id
                );
            }
            Some(k) if k.zookeeper == want && k.warren == have => {
                eprintln!("known difference {} at step {step} {label:?}", k.id);
            }
            _ if want == have => {}
            _ => {
                mismatches += 1;
                let _ = writeln!(
                    report,
                    "\nstep {step} {label:?}\n  expected (ZooKeeper 3.8, after DELTAS):\n{}\n  got \
                     (warren):\n{}",
                    indent(&want),
                    indent(&have)
                );
            }
        }
    }
    if !report.is_empty() {
        report.insert_str(
            0,
            &format!("warren answered differently from ZooKeeper in {mismatches} steps:\n"),
        );
    }
    report
}

fn indent(text: &str) -> String {
    if text.is_empty() {
        return "    (no frames)".to_owned();
    }
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes both normalised transcripts side by side into the temp directory, for `diff`.
fn write_transcripts(t: &Transcript, expected: &[StepFrames], got: &[StepFrames]) {
    let dir = std::env::temp_dir().join("warren-differential");
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    for (name, frames) in [("zookeeper.txt", expected), ("warren.txt", got)] {
        let mut out = String::new();
        for (step, label) in t.steps.iter().enumerate() {
            let _ = writeln!(out, "## {step} {label}\n{}", step_text(frames, step));
        }
        let _ = std::fs::write(dir.join(name), out);
    }
    eprintln!(
        "normalised transcripts: {}/{{zookeeper,warren}}.txt",
        dir.display()
    );
}
