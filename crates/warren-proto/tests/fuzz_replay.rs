//! Replays the checked-in seed corpus (`fuzz-corpus/`) through [`fuzz::fuzz_frame`], then a
//! few thousand deterministic mutations of it. `fuzz_frame` panics if decoding panics or a
//! decoded request does not survive re-encoding.
//!
//! The corpus is regenerated with
//! `cargo test -p warren-proto --test fuzz_replay -- --ignored regenerate_corpus`.

mod common;

use std::path::PathBuf;

use common::*;
use warren_proto::request::{decode_frame, encode_request};
use warren_proto::response::encode_connect_response;
use warren_proto::*;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz-corpus")
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("fuzz-corpus/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// xorshift64*: deterministic, so a failure reproduces from the iteration number alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING_INTS: [i32; 9] = [-1, 0, 1, 2, 8, 127, i32::MAX, i32::MIN, 0xfffff];

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len());
        match rng.below(6) {
            0 if !data.is_empty() => data[at] ^= 1 << rng.below(8),
            1 if !data.is_empty() => data[at] = [0, 1, 0x7f, 0x80, 0xff, 0xed][rng.below(6)],
            2 => data.truncate(at),
            3 => data.insert(at.min(data.len()), rng.next() as u8),
            4 if data.len() >= 4 => {
                let at = at.min(data.len() - 4);
                let v = INTERESTING_INTS[rng.below(INTERESTING_INTS.len())];
                data[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            _ if !data.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                let chunk = data[at..end].to_vec();
                let to = rng.below(data.len());
                data.splice(to..to, chunk);
            }
            _ => data.push(rng.next() as u8),
        }
    }
}

#[test]
fn replay_seed_corpus_and_mutations() {
    // Why: the seeds alone must cover every opcode a client may send, validly framed.
    let files = corpus();
    assert!(files.len() >= 30, "corpus has only {} files", files.len());
    let mut ops = std::collections::BTreeSet::new();
    for (name, data) in &files {
        fuzz::fuzz_frame(data);
        if name.contains("-valid-") {
            let (_, req) = decode_frame(&data[4..]).unwrap_or_else(|e| panic!("{name}: {e}"));
            ops.insert(req.op());
        }
    }
    for (_, req) in sample_requests() {
        assert!(
            ops.contains(&req.op()),
            "no valid seed for opcode {}",
            req.op()
        );
    }

    // Why: mutations reach the error paths (bad lengths, bad codes, cut multis) the seeds
    // do not; fuzz_frame checks that none panics and every success re-encodes faithfully.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut decoded, mut refused) = (0, 0);
    for i in 0..5000 {
        let mut data = files[rng.below(files.len())].1.clone();
        mutate(&mut rng, &mut data);
        let result = std::panic::catch_unwind(|| fuzz::fuzz_frame(&data));
        assert!(result.is_ok(), "iteration {i} panicked on {data:02x?}");
        match data.get(4..).map(decode_frame) {
            Some(Ok(_)) => decoded += 1,
            _ => refused += 1,
        }
    }
    // Why: a mutator that only ever produced garbage (or only valid frames) would test half
    // of the decoder; both outcomes must be common.
    assert!(
        decoded > 500 && refused > 500,
        "decoded {decoded}, refused {refused}"
    );
}

#[test]
fn fuzz_frame_survives_degenerate_inputs() {
    for data in [
        &[][..],
        &[0, 0, 0],
        &[0, 0, 0, 0],
        &[0xff; 4],
        &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3],
        b"ruok",
        b"stmk\0\0\0\0\0\0\0\x01",
        &[0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 14],
    ] {
        fuzz::fuzz_frame(data);
    }
}

/// Writes the seed corpus: every sample request as a valid frame, plus truncated and
/// corrupted variants of every third one, handshakes, and framing edge cases.
#[test]
#[ignore = "regenerates fuzz-corpus/; run by hand"]
fn regenerate_corpus() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "bin") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let write = |name: String, data: &[u8]| std::fs::write(dir.join(name + ".bin"), data).unwrap();
    for (i, (xid, req)) in sample_requests().into_iter().enumerate() {
        let op = req.op();
        let frame = encode_request(xid, &req);
        write(format!("{i:02}-valid-op{op}"), &frame);
        if i % 3 == 0 && frame.len() > 8 {
            write(
                format!("{i:02}-truncated-op{op}"),
                &frame[..frame.len() / 2 + 2],
            );
            let mut bad = frame.clone();
            let mid = 4 + (bad.len() - 4) / 2;
            bad[mid] ^= 0xff;
            write(format!("{i:02}-corrupted-op{op}"), &bad);
        }
    }
    for (name, ro) in [("old", None), ("ro", Some(true))] {
        let body = connect(ro).to_bytes();
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        write(format!("connect-{name}"), &frame);
    }
    let resp = ConnectResponse {
        passwd: vec![1; 16],
        read_only: Some(false),
        ..Default::default()
    };
    write("connect-response".into(), &encode_connect_response(&resp));
    write("fourletter-ruok".into(), b"ruok");
    write("len-negative".into(), &[0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 1]);
    write(
        "len-too-long".into(),
        &[0x00, 0x10, 0x00, 0x00, 0, 0, 0, 1, 0, 0, 0, 4],
    );
    write("len-zero".into(), &[0, 0, 0, 0]);
}
