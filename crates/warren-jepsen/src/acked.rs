//! Checker (a): every acknowledged write is present at the end.
//!
//! Against the final tree (a [`Dump`] read after the faults healed):
//!
//! - setData answered OK with version `n` (register writes and CAS, counter increments):
//!   the znode's final version is at least `n` (versions only grow, by one per setData).
//! - Counter increments on a znode created with `0`: the final value is at least the number
//!   of acknowledged increments and at most the number attempted (acknowledged plus
//!   unknown); failed ones did not happen.
//! - Sequential creates answered OK: the returned path exists with the data sent. Every
//!   child under the prefix carries the data of a create that was attempted and not
//!   definitely failed (no phantoms), no two children carry the same data (no create applied
//!   twice), and no two acknowledged creates returned the same path (ids are unique).
//!
//! Ephemerals are not here: their presence depends on their session's fate, which
//! [`crate::ephemerals`] judges.

use std::collections::{BTreeMap, BTreeSet};

use crate::dump::Dump;
use crate::history::{Call, History, Outcome, Value};
use crate::verdict::Verdict;

/// Checks `history`'s acknowledged writes against the final tree `dump`.
pub fn check_acknowledged(history: &History, dump: &Dump) -> Verdict {
    let mut violations = Vec::new();
    let mut checked = 0usize;
    checked += versions(history, dump, &mut violations);
    checked += counters(history, dump, &mut violations);
    checked += sequential(history, dump, &mut violations);
    if checked == 0 {
        return Verdict::Unknown("no acknowledged write in the history".into());
    }
    Verdict::from_violations(violations, format!("{checked} acknowledged writes found"))
}

fn versions(history: &History, dump: &Dump, violations: &mut Vec<String>) -> usize {
    let mut checked = 0;
    for op in history {
        let (Call::Write { path, .. } | Call::Cas { path, .. } | Call::Incr { path }) = &op.call
        else {
            continue;
        };
        let Outcome::Ok(Value::Version(n)) = op.outcome else {
            continue;
        };
        checked += 1;
        match dump.get(path) {
            None => violations.push(format!(
                "{path}: gone, but op #{} (session 0x{:x}) set version {n}",
                op.index, op.session
            )),
            Some(node) if node.stat.version < n => violations.push(format!(
                "{path}: final version {} < version {n} acknowledged to op #{} (session 0x{:x})",
                node.stat.version, op.index, op.session
            )),
            Some(_) => {}
        }
    }
    checked
}

fn counters(history: &History, dump: &Dump, violations: &mut Vec<String>) -> usize {
    // path -> (acknowledged, unknown)
    let mut counts: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for op in history {
        let Call::Incr { path } = &op.call else {
            continue;
        };
        let c = counts.entry(path).or_default();
        match op.outcome {
            Outcome::Ok(_) => c.0 += 1,
            Outcome::Info(_) => c.1 += 1,
            Outcome::Fail(_) => {}
        }
    }
    let mut checked = 0;
    for (path, (acked, unknown)) in counts {
        checked += 1;
        let value = dump.get(path).map(|n| n.text().trim().parse::<i64>());
        match value {
            Some(Ok(v)) if v < acked => violations.push(format!(
                "{path}: counter is {v} but {acked} increments were acknowledged"
            )),
            Some(Ok(v)) if v > acked + unknown => violations.push(format!(
                "{path}: counter is {v} but only {} increments were attempted ({acked} ok, \
                 {unknown} unknown)",
                acked + unknown
            )),
            Some(Ok(_)) => {}
            Some(Err(_)) => violations.push(format!("{path}: counter is not a number")),
            None => violations.push(format!("{path}: counter znode gone")),
        }
    }
    checked
}

/// The parent directory and child-name prefix of a sequential create's prefix.
fn split_prefix(prefix: &str) -> (&str, &str) {
    match prefix.rfind('/') {
        Some(0) => ("/", &prefix[1..]),
        Some(i) => (&prefix[..i], &prefix[i + 1..]),
        None => ("/", prefix),
    }
}

fn sequential(history: &History, dump: &Dump, violations: &mut Vec<String>) -> usize {
    let mut prefixes: BTreeSet<&str> = BTreeSet::new();
    // data -> attempted and not definitely failed
    let mut possible: BTreeSet<&str> = BTreeSet::new();
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    let mut returned: BTreeMap<&str, usize> = BTreeMap::new();
    let mut checked = 0;
    for op in history {
        let Call::CreateSeq { prefix, data } = &op.call else {
            continue;
        };
        prefixes.insert(prefix);
        match &op.outcome {
            Outcome::Fail(_) => {
                failed.insert(data);
            }
            Outcome::Info(_) => {
                possible.insert(data);
            }
            Outcome::Ok(v) => {
                possible.insert(data);
                checked += 1;
                let Value::Path(path) = v else {
                    violations.push(format!("op #{}: create answered without a path", op.index));
                    continue;
                };
                if let Some(first) = returned.insert(path, op.index) {
                    violations.push(format!(
                        "{path}: returned to both op #{first} and op #{} (duplicate id)",
                        op.index
                    ));
                }
                match dump.get(path.as_str()) {
                    None => violations.push(format!(
                        "{path}: acknowledged to op #{} (session 0x{:x}) but gone",
                        op.index, op.session
                    )),
                    Some(n) if n.text() != *data => violations.push(format!(
                        "{path}: holds {:?}, op #{} created it with {data:?}",
                        n.text(),
                        op.index
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    for prefix in prefixes {
        let (dir, name) = split_prefix(prefix);
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        let under = format!("{}/{name}", dir.trim_end_matches('/'));
        for (path, node) in dump.range(under.clone()..) {
            if !path.starts_with(&under) {
                break;
            }
            let text = node.text();
            if !possible.contains(text.as_str()) {
                let why = if failed.contains(text.as_str()) {
                    "a create that failed"
                } else {
                    "no create sent"
                };
                violations.push(format!("{path}: holds {text:?}, from {why}"));
            }
            if let Some(other) = seen.insert(text.clone(), path) {
                violations.push(format!(
                    "{path} and {other}: both hold {text:?} (applied twice)"
                ));
            }
        }
    }
    checked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::Node;
    use crate::history::HistoryBuilder;

    fn dump(nodes: &[(&str, Node)]) -> Dump {
        nodes
            .iter()
            .map(|(p, n)| (p.to_string(), n.clone()))
            .collect()
    }

    fn write(value: i64) -> Call {
        Call::Write {
            path: "/r".into(),
            value,
        }
    }

    fn incr() -> Call {
        Call::Incr { path: "/c".into() }
    }

    fn seq(data: &str) -> Call {
        Call::CreateSeq {
            prefix: "/ids/id-".into(),
            data: data.into(),
        }
    }

    fn path(p: &str) -> Value {
        Value::Path(p.into())
    }

    #[test]
    fn present_writes_pass() {
        let h = HistoryBuilder::new()
            .ok(1, 0, 1, write(1), Value::Version(1))
            .ok(1, 2, 3, write(2), Value::Version(2))
            .info(2, 4, write(3))
            .build();
        let d = dump(&[("/r", Node::with("3", 3, 0))]);
        assert!(check_acknowledged(&h, &d).is_pass());
    }

    #[test]
    fn a_lost_acknowledged_write_fails() {
        // Version 2 was acknowledged; the tree is back at version 1.
        let h = HistoryBuilder::new()
            .ok(1, 0, 1, write(1), Value::Version(1))
            .ok(1, 2, 3, write(2), Value::Version(2))
            .build();
        let d = dump(&[("/r", Node::with("1", 1, 0))]);
        let v = check_acknowledged(&h, &d);
        assert!(v.is_fail(), "{v}");
        assert!(check_acknowledged(&h, &Dump::new()).is_fail());
    }

    #[test]
    fn counter_within_bounds_passes_and_outside_fails() {
        let h = HistoryBuilder::new()
            .ok(1, 0, 1, incr(), Value::Version(1))
            .ok(2, 0, 1, incr(), Value::Version(2))
            .info(3, 2, incr())
            .fail(4, 2, 3, incr(), "BadVersion")
            .build();
        for (value, ok) in [("1", false), ("2", true), ("3", true), ("4", false)] {
            let d = dump(&[("/c", Node::with(value, 3, 0))]);
            assert_eq!(
                check_acknowledged(&h, &d).is_pass(),
                ok,
                "counter at {value}"
            );
        }
    }

    #[test]
    fn sequential_creates_present_and_unique_pass() {
        let h = HistoryBuilder::new()
            .ok(1, 0, 1, seq("a"), path("/ids/id-0000000000"))
            .info(2, 0, seq("b"))
            .ok(3, 2, 3, seq("c"), path("/ids/id-0000000002"))
            .build();
        let d = dump(&[
            ("/ids", Node::with("", 0, 0)),
            ("/ids/id-0000000000", Node::with("a", 0, 0)),
            ("/ids/id-0000000001", Node::with("b", 0, 0)),
            ("/ids/id-0000000002", Node::with("c", 0, 0)),
        ]);
        let v = check_acknowledged(&h, &d);
        assert!(v.is_pass(), "{v}");
    }

    #[test]
    fn lost_duplicate_and_phantom_creates_fail() {
        let h = HistoryBuilder::new()
            .ok(1, 0, 1, seq("a"), path("/ids/id-0000000000"))
            .ok(2, 0, 1, seq("b"), path("/ids/id-0000000000"))
            .fail(3, 2, 3, seq("c"), "SessionExpired")
            .build();
        // Same path returned twice.
        let d = dump(&[("/ids/id-0000000000", Node::with("a", 0, 0))]);
        assert!(check_acknowledged(&h, &d).is_fail());
        // A lost create.
        let h1 = HistoryBuilder::new()
            .ok(1, 0, 1, seq("a"), path("/ids/id-0000000000"))
            .build();
        assert!(check_acknowledged(&h1, &Dump::new()).is_fail());
        // A create applied twice, and one that failed yet is there.
        let twice = dump(&[
            ("/ids/id-0000000000", Node::with("a", 0, 0)),
            ("/ids/id-0000000001", Node::with("a", 0, 0)),
        ]);
        assert!(check_acknowledged(&h1, &twice).is_fail());
        let failed = dump(&[
            ("/ids/id-0000000000", Node::with("a", 0, 0)),
            ("/ids/id-0000000001", Node::with("c", 0, 0)),
        ]);
        let h2 = HistoryBuilder::new()
            .ok(1, 0, 1, seq("a"), path("/ids/id-0000000000"))
            .fail(3, 2, 3, seq("c"), "SessionExpired")
            .build();
        assert!(check_acknowledged(&h2, &failed).is_fail());
    }

    #[test]
    fn nothing_acknowledged_is_unknown() {
        let h = HistoryBuilder::new().info(1, 0, write(1)).build();
        assert!(matches!(
            check_acknowledged(&h, &Dump::new()),
            Verdict::Unknown(_)
        ));
    }
}
