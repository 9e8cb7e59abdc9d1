//! Checker (e): every server ends with the same tree.
//!
//! Each [`Replica`] is one server's view, read after the faults healed and the clients
//! stopped: the whole tree read through a client connected to that server after a `sync`
//! (a [`Dump`]: data and full stat of every znode), the `Zxid:` line of its `srvr`, and the
//! `(zxid, digest)` pairs of its `hash` four-letter word when it reports any. All must agree
//! with the first replica: trees equal znode by znode, last zxids equal, and digests equal
//! at every zxid both report.
//!
//! With one server the "replicas" are the live server and the same server after a SIGKILL
//! and restart: recovery must rebuild exactly the tree it served.

use std::collections::BTreeMap;

use crate::dump::{Dump, differences};
use crate::verdict::Verdict;

/// One server's final view.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Which server, and when ("s1", "s1 after restart").
    pub label: String,
    /// The tree read through it.
    pub dump: Dump,
    /// `srvr`'s `Zxid:`, if it answered.
    pub zxid: Option<i64>,
    /// `hash`'s `(zxid, digest)` lines (empty when it reports none).
    pub digests: Vec<(i64, i64)>,
}

/// Checks that every replica agrees with the first.
pub fn check_converged(replicas: &[Replica]) -> Verdict {
    let Some((first, rest)) = replicas.split_first() else {
        return Verdict::Unknown("no replica was read".into());
    };
    if rest.is_empty() {
        return Verdict::Unknown(format!("only {} was read: nothing to compare", first.label));
    }
    let mut violations = Vec::new();
    let base: BTreeMap<i64, i64> = first.digests.iter().copied().collect();
    let mut digests_compared = 0;
    for r in rest {
        for d in differences(&first.dump, &r.dump, 5) {
            violations.push(format!("{} vs {}: {d}", first.label, r.label));
        }
        if let (Some(a), Some(b)) = (first.zxid, r.zxid)
            && a != b
        {
            violations.push(format!(
                "{} at zxid 0x{a:x}, {} at 0x{b:x}",
                first.label, r.label
            ));
        }
        for (zxid, digest) in &r.digests {
            if let Some(d) = base.get(zxid) {
                digests_compared += 1;
                if d != digest {
                    violations.push(format!(
                        "digest at zxid 0x{zxid:x}: {} has {d}, {} has {digest}",
                        first.label, r.label
                    ));
                }
            }
        }
    }
    let labels: Vec<&str> = replicas.iter().map(|r| r.label.as_str()).collect();
    Verdict::from_violations(
        violations,
        format!(
            "{} znodes equal across {} ({digests_compared} digests compared)",
            first.dump.len(),
            labels.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::Node;

    fn replica(label: &str, nodes: &[(&str, &str, i32)], zxid: i64) -> Replica {
        Replica {
            label: label.into(),
            dump: nodes
                .iter()
                .map(|(p, d, v)| (p.to_string(), Node::with(d, *v, 0)))
                .collect(),
            zxid: Some(zxid),
            digests: vec![(zxid, 42)],
        }
    }

    #[test]
    fn equal_trees_pass() {
        let a = replica("s1", &[("/", "", 0), ("/a", "x", 1)], 9);
        let b = replica("s2", &[("/", "", 0), ("/a", "x", 1)], 9);
        assert!(check_converged(&[a, b]).is_pass());
    }

    #[test]
    fn different_data_missing_nodes_zxids_or_digests_fail() {
        let a = replica("s1", &[("/", "", 0), ("/a", "x", 1)], 9);
        let cases = [
            replica("s2", &[("/", "", 0), ("/a", "y", 1)], 9),
            replica("s2", &[("/", "", 0), ("/a", "x", 2)], 9),
            replica("s2", &[("/", "", 0)], 9),
            replica("s2", &[("/", "", 0), ("/a", "x", 1), ("/b", "", 0)], 9),
            replica("s2", &[("/", "", 0), ("/a", "x", 1)], 8),
            Replica {
                digests: vec![(9, 43)],
                ..replica("s2", &[("/", "", 0), ("/a", "x", 1)], 9)
            },
        ];
        for b in cases {
            let v = check_converged(&[a.clone(), b.clone()]);
            assert!(v.is_fail(), "{b:?}: {v}");
        }
    }

    #[test]
    fn one_replica_is_unknown() {
        let a = replica("s1", &[("/", "", 0)], 1);
        assert!(matches!(check_converged(&[a]), Verdict::Unknown(_)));
    }
}
