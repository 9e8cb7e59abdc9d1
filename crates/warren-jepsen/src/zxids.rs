//! Checker (c): the zxids a session sees never go back.
//!
//! Every reply header carries a zxid: the write's own for a write, the server's last
//! applied one for a read. A session's ops are sequential and its replies come in order,
//! so within one session (one process) these numbers must not decrease, even when the
//! session moves to another server: ZooKeeper refuses a client whose last seen zxid is ahead
//! of the server, so a session never reads older state than it already saw.

use std::collections::BTreeMap;

use crate::history::History;
use crate::verdict::Verdict;

/// Checks that each session's reply zxids, in completion order, never decrease.
pub fn check_session_zxids(history: &History) -> Verdict {
    // session -> (completion time, zxid, op index)
    let mut by_session: BTreeMap<i64, Vec<(u64, i64, usize)>> = BTreeMap::new();
    for op in history {
        if let (Some(done), Some(zxid)) = (op.complete, op.zxid) {
            by_session
                .entry(op.session)
                .or_default()
                .push((done, zxid, op.index));
        }
    }
    let mut violations = Vec::new();
    let mut seen = 0usize;
    for (session, mut replies) in by_session {
        replies.sort_unstable();
        seen += replies.len();
        let mut high: Option<(i64, usize)> = None;
        for (_, zxid, index) in replies {
            if let Some((max, at)) = high
                && zxid < max
            {
                violations.push(format!(
                    "session 0x{session:x}: op #{index} saw zxid 0x{zxid:x} after op #{at} saw \
                     0x{max:x}"
                ));
            }
            if high.is_none_or(|(max, _)| zxid >= max) {
                high = Some((zxid, index));
            }
        }
    }
    if seen == 0 {
        return Verdict::Unknown("no reply carried a zxid".into());
    }
    Verdict::from_violations(violations, format!("{seen} reply zxids in order"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Call, HistoryBuilder, Value};

    fn probe(b: HistoryBuilder, session: i64, t: u64, zxid: i64) -> HistoryBuilder {
        b.ok(session, t, t + 1, Call::Probe, Value::None).zxid(zxid)
    }

    #[test]
    fn growing_or_equal_zxids_pass() {
        let mut b = HistoryBuilder::new();
        for (t, z) in [(0, 5), (10, 5), (20, 9)] {
            b = probe(b, 1, t, z);
        }
        // Another session may be behind the first: only each session's own order counts.
        b = probe(b, 2, 30, 3);
        assert!(check_session_zxids(&b.build()).is_pass());
    }

    #[test]
    fn a_zxid_going_back_fails() {
        let mut b = HistoryBuilder::new();
        for (t, z) in [(0, 5), (10, 9), (20, 7)] {
            b = probe(b, 1, t, z);
        }
        let v = check_session_zxids(&b.build());
        assert!(v.is_fail(), "{v}");
    }

    #[test]
    fn unknown_outcomes_carry_no_zxid_and_no_replies_is_unknown() {
        let b = HistoryBuilder::new().info(1, 0, Call::Probe);
        assert!(matches!(
            check_session_zxids(&b.build()),
            Verdict::Unknown(_)
        ));
    }
}
