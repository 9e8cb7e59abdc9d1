//! The register model (one znode: read, write, compare-and-set on its version) and the
//! per-znode linearizability check over a whole history.
//!
//! State: the znode's value and data version. ZooKeeper's compare-and-set is setData with an
//! expected version, so the model keeps the version and every op is checked against it:
//!
//! | op | outcome | possible when | next state |
//! |---|---|---|---|
//! | read | ok (v, n) | state = (v, n) | same |
//! | write v | ok, new version n' | n' = n + 1 | (v, n') |
//! | cas (e, v) | ok, new version n' | n = e and n' = e + 1 | (v, n') |
//! | cas (e, v) | BadVersion | n ≠ e | same |
//! | write v | unknown | always | (v, n + 1) |
//! | cas (e, v) | unknown | n = e | (v, e + 1) |
//!
//! A failed CAS is kept (it tells the version differed at some point), unlike Knossos's
//! value CAS where a failure is dropped. Reads with unknown outcome and ops that failed for
//! other reasons (not sent, session expired) did not change the znode and are dropped.
//!
//! Reads must be linearizable reads for this model to be the right specification: the
//! workload sends `sync` then `getData` on one session (see [`crate::workload`]). A plain
//! `getData` on a lagging follower may legitimately return an older value after a write was
//! acknowledged elsewhere; this checker would call that a violation, rightly for the model,
//! wrongly for ZooKeeper's contract.
//!
//! Znodes are independent objects, so the history is split per znode and each part is
//! checked alone (linearizability is compositional).

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{BAD_VERSION, Call, History, Op, Outcome, Value};
use crate::verdict::Verdict;
use crate::wgl::{self, Bounds, Linearizability, Model};

/// A register znode's state: value and data version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegisterState {
    /// The value (decimal text in the znode).
    pub value: i64,
    /// The znode's data version.
    pub version: i32,
}

/// The register model of the table above.
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

impl Model for Register {
    type State = RegisterState;

    fn step(&self, s: &RegisterState, op: &Op) -> Option<RegisterState> {
        let next = s.version.checked_add(1)?;
        match (&op.call, &op.outcome) {
            (Call::Read { .. }, Outcome::Ok(Value::Data { value, version })) => {
                (*value == s.value && *version == s.version).then_some(*s)
            }
            (Call::Write { value, .. }, Outcome::Ok(Value::Version(n))) => {
                (*n == next).then_some(RegisterState {
                    value: *value,
                    version: next,
                })
            }
            (Call::Write { value, .. }, Outcome::Info(_)) => Some(RegisterState {
                value: *value,
                version: next,
            }),
            (Call::Cas { version, value, .. }, Outcome::Ok(Value::Version(n))) => {
                (*version == s.version && *n == next).then_some(RegisterState {
                    value: *value,
                    version: next,
                })
            }
            (Call::Cas { version, value, .. }, Outcome::Info(_)) => (*version == s.version)
                .then_some(RegisterState {
                    value: *value,
                    version: next,
                }),
            (Call::Cas { version, .. }, Outcome::Fail(e)) if e == BAD_VERSION => {
                (*version != s.version).then_some(*s)
            }
            // Anything else was filtered out by `relevant`; seeing it is a harness bug.
            _ => None,
        }
    }
}

/// Whether an op constrains the register: see the module docs.
fn relevant(op: &Op) -> bool {
    match (&op.call, &op.outcome) {
        (Call::Read { .. }, Outcome::Ok(Value::Data { .. })) => true,
        (Call::Write { .. } | Call::Cas { .. }, Outcome::Ok(Value::Version(_))) => true,
        (Call::Write { .. } | Call::Cas { .. }, Outcome::Info(_)) => true,
        (Call::Cas { .. }, Outcome::Fail(e)) => e == BAD_VERSION,
        _ => false,
    }
}

/// The value a write carries in the check when no read ever returned it: such a value can
/// only show as "not what a read saw", so all of them are one value to the model.
pub const UNOBSERVED: i64 = i64::MIN;

/// The ops of one znode with the values no read of it returned replaced by
/// [`UNOBSERVED`]: such a value can only show as "not what a read saw", so writes of
/// different unobserved values are the same to the model, and pending ones become
/// interchangeable for the search. Reads never return `UNOBSERVED` (it is not a value the
/// workload writes).
fn canonical(ops: Vec<&Op>) -> Vec<Op> {
    let observed: BTreeSet<i64> = ops
        .iter()
        .filter_map(|op| match op.outcome {
            Outcome::Ok(Value::Data { value, .. }) => Some(value),
            _ => None,
        })
        .collect();
    ops.into_iter()
        .map(|op| {
            let mut op = op.clone();
            if let Call::Write { value, .. } | Call::Cas { value, .. } = &mut op.call
                && !observed.contains(value)
            {
                *value = UNOBSERVED;
            }
            op
        })
        .collect()
}

/// Checks every register znode's part of `history` for linearizability, each from
/// `init` (all registers start the same way: created before the history begins).
pub fn check_registers(history: &History, init: RegisterState, bounds: &Bounds) -> Verdict {
    let mut by_path: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history.iter().filter(|op| relevant(op)) {
        if let Some(path) = op.call.path() {
            by_path.entry(path).or_default().push(op);
        }
    }
    let by_path: BTreeMap<&str, Vec<Op>> = by_path
        .into_iter()
        .map(|(path, ops)| (path, canonical(ops)))
        .collect();
    if by_path.is_empty() {
        return Verdict::Unknown("no register operations in the history".into());
    }
    let mut parts = Vec::new();
    let mut summary = Vec::new();
    for (path, ops) in &by_path {
        let ops: Vec<&Op> = ops.iter().collect();
        let verdict = match wgl::check(&Register, init, &ops, bounds) {
            Linearizability::Linearizable { states } => {
                summary.push(format!("{path}: {} ops, {states} states", ops.len()));
                Verdict::Pass(String::new())
            }
            Linearizability::NotLinearizable { stuck, prefix } => {
                Verdict::Fail(explain(path, history, stuck, &prefix))
            }
            Linearizability::Unknown(why) => Verdict::Unknown(format!("{path}: {why}")),
        };
        parts.push(verdict);
    }
    Verdict::all(parts, summary.join("; "))
}

/// A counterexample in words: the longest prefix that could be linearized and the op whose
/// completion could not be reached after it.
fn explain(path: &str, history: &History, stuck: usize, prefix: &[usize]) -> Vec<String> {
    let mut lines = vec![format!(
        "{path}: not linearizable: no order of the ops explains op #{stuck} {}",
        history.get(stuck).map(describe).unwrap_or_default()
    )];
    let tail = prefix.len().saturating_sub(6);
    lines.push(format!(
        "{path}: longest linearizable prefix ({} ops) ends with:",
        prefix.len()
    ));
    for &i in &prefix[tail..] {
        lines.push(format!("  #{i} {}", describe(&history[i])));
    }
    lines
}

/// One op in a line: session, call, outcome, times in ms.
pub fn describe(op: &Op) -> String {
    let ms = |t: u64| t as f64 / 1e6;
    let done = op
        .complete
        .map_or("?".to_string(), |c| format!("{:.3}", ms(c)));
    format!(
        "[session 0x{:x}, {:.3}..{} ms] {:?} -> {:?}",
        op.session,
        ms(op.invoke),
        done,
        op.call,
        op.outcome
    )
}

#[cfg(test)]
#[path = "register_test.rs"]
mod tests;
