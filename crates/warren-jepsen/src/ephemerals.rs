//! Checker (d): ephemerals live exactly as long as their session.
//!
//! The final tree ([`Dump`]) is read between `dump_started` and `dump_ended`. Sessions are
//! judged from the history:
//!
//! - **alive**: an op of the session invoked after `dump_ended` was answered OK (a session
//!   never comes back, so it lived through the whole dump);
//! - **dead**: its closeSession was answered OK, or it was answered SessionExpired, before
//!   `dump_started`; or it sent nothing after `quiet_since` (the moment every fault was
//!   healed) and the dump started at least two session timeouts later, by which time the
//!   leader, up and connected all along, must have expired it;
//! - anything else is not judged.
//!
//! Then: no ephemeral in the tree belongs to a dead session or to a session the history
//! never saw; an ephemeral belongs to the session that created it; every acknowledged
//! ephemeral of an alive session is there.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::dump::Dump;
use crate::history::{Call, History, Outcome, SESSION_EXPIRED, Time};
use crate::verdict::Verdict;

/// When the final tree was read, relative to the faults.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Faults were all healed by then; sessions meant to die were silent from then on.
    pub quiet_since: Time,
    /// The dump began.
    pub dump_started: Time,
    /// The dump ended.
    pub dump_ended: Time,
    /// The session timeout the server granted (the longest, if they differ).
    pub session_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Alive,
    Dead(&'static str),
    Unjudged,
}

fn fates(history: &History, w: &Window) -> BTreeMap<i64, Fate> {
    let long_enough = w
        .dump_started
        .saturating_sub(w.quiet_since)
        .ge(&(2 * w.session_timeout.as_nanos() as u64));
    let mut last_invoke: BTreeMap<i64, Time> = BTreeMap::new();
    let mut fate: BTreeMap<i64, Fate> = BTreeMap::new();
    for op in history {
        let last = last_invoke.entry(op.session).or_default();
        *last = (*last).max(op.invoke);
        let f = fate.entry(op.session).or_insert(Fate::Unjudged);
        if op.is_ok() && op.invoke >= w.dump_ended {
            *f = Fate::Alive;
            continue;
        }
        let before_dump = op.complete.is_some_and(|c| c < w.dump_started);
        if *f == Fate::Unjudged && before_dump {
            if op.failed_with(SESSION_EXPIRED) {
                *f = Fate::Dead("expired");
            } else if op.call == Call::Close && op.is_ok() {
                *f = Fate::Dead("closed");
            }
        }
    }
    for (session, f) in fate.iter_mut() {
        if *f == Fate::Unjudged && long_enough && last_invoke[session] < w.quiet_since {
            *f = Fate::Dead("silent");
        }
    }
    fate
}

/// Checks the ephemerals of the final tree `dump` against the sessions' fates.
pub fn check_ephemerals(history: &History, dump: &Dump, w: &Window) -> Verdict {
    let fate = fates(history, w);
    let mut creator: BTreeMap<&str, i64> = BTreeMap::new();
    let mut violations = Vec::new();
    let mut alive_acked = 0usize;
    for op in history {
        let Call::CreateEphemeral { path } = &op.call else {
            continue;
        };
        if matches!(op.outcome, Outcome::Fail(_)) {
            continue;
        }
        creator.insert(path, op.session);
        if op.is_ok() && fate.get(&op.session) == Some(&Fate::Alive) {
            alive_acked += 1;
            match dump.get(path.as_str()) {
                None => violations.push(format!(
                    "{path}: acknowledged ephemeral of live session 0x{:x} is gone",
                    op.session
                )),
                Some(n) if n.stat.ephemeral_owner != op.session => violations.push(format!(
                    "{path}: owned by 0x{:x}, created by live session 0x{:x}",
                    n.stat.ephemeral_owner, op.session
                )),
                Some(_) => {}
            }
        }
    }
    let mut dead_owned = BTreeSet::new();
    let mut judged = 0usize;
    for (path, node) in dump {
        let owner = node.stat.ephemeral_owner;
        if owner == 0 {
            continue;
        }
        judged += 1;
        match fate.get(&owner) {
            None => violations.push(format!(
                "{path}: ephemeral of session 0x{owner:x}, which no client of the run had"
            )),
            Some(Fate::Dead(how)) => {
                dead_owned.insert(owner);
                violations.push(format!(
                    "{path}: ephemeral outlived its session 0x{owner:x} ({how})"
                ));
            }
            Some(_) => {}
        }
        if let Some(&by) = creator.get(path.as_str())
            && by != owner
        {
            violations.push(format!(
                "{path}: owned by 0x{owner:x} but created by session 0x{by:x}"
            ));
        }
    }
    let dead: Vec<i64> = fate
        .iter()
        .filter(|(_, f)| matches!(f, Fate::Dead(_)))
        .map(|(s, _)| *s)
        .collect();
    let dead_with_acked = history
        .iter()
        .filter(|op| matches!(op.call, Call::CreateEphemeral { .. }) && op.is_ok())
        .filter(|op| dead.contains(&op.session))
        .map(|op| op.session)
        .collect::<BTreeSet<_>>()
        .len();
    if violations.is_empty() && dead_with_acked == 0 {
        return Verdict::Unknown(
            "no session that died had an acknowledged ephemeral: nothing to judge".into(),
        );
    }
    let alive = fate.values().filter(|f| **f == Fate::Alive).count();
    Verdict::from_violations(
        violations,
        format!(
            "{} dead sessions ({dead_with_acked} with ephemerals) left none; {alive_acked} \
             ephemerals of {alive} live sessions present; {judged} ephemerals in the tree",
            dead.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::Node;
    use crate::history::{HistoryBuilder, Value};

    const SEC: u64 = 1_000_000_000;

    fn window() -> Window {
        Window {
            quiet_since: 10 * SEC,
            dump_started: 30 * SEC,
            dump_ended: 31 * SEC,
            session_timeout: Duration::from_secs(4),
        }
    }

    fn create(path: &str) -> Call {
        Call::CreateEphemeral { path: path.into() }
    }

    /// Session 1 creates /e/1 and closes; 2 creates /e/2 and goes silent; 3 creates /e/3,
    /// is expired; 4 creates /e/4 and is alive after the dump.
    fn history() -> History {
        HistoryBuilder::new()
            .ok(1, SEC, SEC + 1, create("/e/1"), Value::None)
            .ok(1, 2 * SEC, 2 * SEC + 1, Call::Close, Value::None)
            .ok(2, SEC, SEC + 1, create("/e/2"), Value::None)
            .ok(3, SEC, SEC + 1, create("/e/3"), Value::None)
            .fail(3, 5 * SEC, 5 * SEC + 1, Call::Probe, SESSION_EXPIRED)
            .ok(4, SEC, SEC + 1, create("/e/4"), Value::None)
            .ok(4, 32 * SEC, 32 * SEC + 1, Call::Probe, Value::None)
            .build()
    }

    #[test]
    fn only_live_sessions_ephemerals_remain_passes() {
        let d: Dump = [("/e/4".to_string(), Node::with("", 0, 4))].into();
        let v = check_ephemerals(&history(), &d, &window());
        assert!(v.is_pass(), "{v}");
    }

    #[test]
    fn an_ephemeral_of_a_dead_session_fails() {
        for (path, owner) in [("/e/1", 1), ("/e/2", 2), ("/e/3", 3)] {
            let d: Dump = [
                ("/e/4".to_string(), Node::with("", 0, 4)),
                (path.to_string(), Node::with("", 0, owner)),
            ]
            .into();
            let v = check_ephemerals(&history(), &d, &window());
            assert!(v.is_fail(), "{path}: {v}");
        }
    }

    #[test]
    fn a_lost_or_misowned_ephemeral_of_a_live_session_fails() {
        assert!(check_ephemerals(&history(), &Dump::new(), &window()).is_fail());
        let d: Dump = [("/e/4".to_string(), Node::with("", 0, 77))].into();
        assert!(check_ephemerals(&history(), &d, &window()).is_fail());
    }

    #[test]
    fn a_silent_session_is_not_judged_before_two_timeouts() {
        // The dump began 4 s after the quiet point: session 2 may legitimately still live.
        let w = Window {
            dump_started: 14 * SEC,
            dump_ended: 15 * SEC,
            ..window()
        };
        let h = HistoryBuilder::new()
            .ok(2, SEC, SEC + 1, create("/e/2"), Value::None)
            .ok(1, SEC, SEC + 1, create("/e/1"), Value::None)
            .ok(1, 2 * SEC, 2 * SEC + 1, Call::Close, Value::None)
            .build();
        let d: Dump = [("/e/2".to_string(), Node::with("", 0, 2))].into();
        assert!(check_ephemerals(&h, &d, &w).is_pass());
    }
}
