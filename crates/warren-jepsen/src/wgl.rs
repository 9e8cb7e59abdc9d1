//! A linearizability checker: Wing & Gong's search with Lowe's just-in-time linearization
//! and a memo of (linearized set, model state), as Knossos's `wgl` and Porcupine do.
//!
//! The history becomes a doubly linked list of call and return entries in time order (at
//! equal times calls sort first, so ops that touch are taken as concurrent: the permissive
//! reading). The search walks the list: at a call it tries to linearize that op now (the
//! model accepts its recorded outcome from the current state, and the pair (set of
//! linearized ops, new state) was never seen); then the op's call and return are lifted out
//! of the list and the walk restarts from the head. Reaching a return entry means its op
//! should have been linearized already: backtrack (pop the last linearized op, put its
//! entries back, continue after its call). The history is linearizable when every op with a
//! known outcome is linearized; ops with unknown outcome (`Info`) have no return entry, so
//! they may be linearized at any point after their call, or never.
//!
//! Ops with unknown outcome never leave the list, so a history with many of them (every
//! request in flight when a leader dies) would make the search try every subset of them.
//! Two such ops with the same call are interchangeable once both are called (neither has a
//! return to meet, and the model sees only the call), so only the earliest unlinearized op
//! of each such class is ever tried: the linearized members of a class are always a prefix
//! of it in invoke order, which keeps the memo canonical too.
//!
//! The memo makes the search stop revisiting configurations; the search is still
//! exponential in the worst case, so it is bounded by [`Bounds`] and answers
//! [`Linearizability::Unknown`] rather than running on.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::history::{Call, Op};

/// A sequential specification: the state an op leads to, if its recorded outcome is
/// possible from `state`.
pub trait Model {
    /// The model's state (small and cheap to hash: it is memoized).
    type State: Clone + Eq + Hash + Debug;

    /// For an op with a known outcome: the next state if that outcome is possible now,
    /// else `None`. For an op with unknown outcome (`Info`): the state after it took effect,
    /// or `None` if it cannot take effect now (the search then leaves it out).
    fn step(&self, state: &Self::State, op: &Op) -> Option<Self::State>;
}

/// Limits on one search.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Memoized configurations at most (memory).
    pub max_states: usize,
    /// Wall time at most.
    pub max_time: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_states: 2_000_000,
            max_time: Duration::from_secs(20),
        }
    }
}

/// The search's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linearizability {
    /// A linearization exists.
    Linearizable {
        /// Configurations memoized on the way.
        states: usize,
    },
    /// No linearization exists.
    NotLinearizable {
        /// History index of the op whose completion could not be reached at the deepest
        /// point of the search.
        stuck: usize,
        /// History indexes of the longest linearized prefix found, in order.
        prefix: Vec<usize>,
    },
    /// The bounds were hit first.
    Unknown(String),
}

const NONE: usize = usize::MAX;

#[derive(Debug, Clone)]
struct Entry {
    /// Position of the op in the input slice.
    op: usize,
    call: bool,
    /// For a call: its return entry, or NONE for an op with unknown outcome.
    partner: usize,
    prev: usize,
    next: usize,
}

/// The entry list; index 0 is the head sentinel.
struct List {
    e: Vec<Entry>,
}

impl List {
    fn build(ops: &[&Op]) -> List {
        // (time, 0 = call / 1 = return, op position)
        let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.invoke, 0, i));
            if let Some(c) = op.complete {
                events.push((c.max(op.invoke), 1, i));
            }
        }
        events.sort_unstable();
        let mut e = Vec::with_capacity(events.len() + 1);
        e.push(Entry {
            op: NONE,
            call: false,
            partner: NONE,
            prev: NONE,
            next: NONE,
        });
        let mut call_at = vec![NONE; ops.len()];
        for (k, &(_, kind, i)) in events.iter().enumerate() {
            let at = k + 1;
            e.push(Entry {
                op: i,
                call: kind == 0,
                partner: NONE,
                prev: at - 1,
                next: if k + 1 < events.len() { at + 1 } else { NONE },
            });
            if kind == 0 {
                call_at[i] = at;
            } else {
                e[call_at[i]].partner = at;
            }
        }
        e[0].next = if events.is_empty() { NONE } else { 1 };
        List { e }
    }

    fn unlink(&mut self, at: usize) {
        let (prev, next) = (self.e[at].prev, self.e[at].next);
        self.e[prev].next = next;
        if next != NONE {
            self.e[next].prev = prev;
        }
    }

    fn relink(&mut self, at: usize) {
        let (prev, next) = (self.e[at].prev, self.e[at].next);
        self.e[prev].next = at;
        if next != NONE {
            self.e[next].prev = at;
        }
    }

    /// Takes a call entry and its return out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        let ret = self.e[call].partner;
        if ret != NONE {
            self.unlink(ret);
        }
    }

    /// Puts them back, in the reverse order of [`List::lift`] (dancing links).
    fn unlift(&mut self, call: usize) {
        let ret = self.e[call].partner;
        if ret != NONE {
            self.relink(ret);
        }
        self.relink(call);
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(n: usize) -> BitSet {
        BitSet(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

/// For each op with unknown outcome, the position of the latest earlier-invoked op with
/// unknown outcome and the same call (its interchangeable twin), or NONE.
fn earlier_twins(ops: &[&Op]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].invoke, i));
    let mut last: HashMap<&Call, usize> = HashMap::new();
    let mut twin = vec![NONE; ops.len()];
    for i in order {
        if ops[i].complete.is_none() {
            if let Some(&prev) = last.get(&ops[i].call) {
                twin[i] = prev;
            }
            last.insert(&ops[i].call, i);
        }
    }
    twin
}

/// Decides whether `ops` (one object's history) is linearizable for `model` from `init`.
pub fn check<M>(model: &M, init: M::State, ops: &[&Op], bounds: &Bounds) -> Linearizability
where
    M: Model,
{
    let started = Instant::now();
    let mut list = List::build(ops);
    let twin_before = earlier_twins(ops);
    let mut remaining = ops.iter().filter(|op| op.complete.is_some()).count();
    let mut linearized = BitSet::new(ops.len());
    let mut memo: HashSet<(BitSet, M::State)> = HashSet::new();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut state = init;
    let mut deepest: (usize, usize, Vec<usize>) = (0, NONE, Vec::new());
    let mut at = list.e[0].next;
    let mut steps: u64 = 0;
    while remaining > 0 {
        steps += 1;
        if steps.is_multiple_of(4096) && started.elapsed() > bounds.max_time {
            return Linearizability::Unknown(format!(
                "search stopped after {:?} ({} states, {} ops)",
                bounds.max_time,
                memo.len(),
                ops.len()
            ));
        }
        if memo.len() > bounds.max_states {
            return Linearizability::Unknown(format!(
                "search stopped at {} states ({} ops)",
                bounds.max_states,
                ops.len()
            ));
        }
        // A definite op's return is always still in the list while it is unlinearized,
        // so the walk meets a return before it can run off the end.
        assert_ne!(at, NONE, "walked past the last return entry");
        let entry = list.e[at].clone();
        if entry.call {
            let op = ops[entry.op];
            let twin = twin_before[entry.op];
            if twin != NONE && !linearized.get(twin) {
                // An earlier interchangeable op is still pending: try that one only.
                at = entry.next;
                continue;
            }
            if let Some(next) = model.step(&state, op) {
                let mut set = linearized.clone();
                set.set(entry.op);
                if memo.insert((set.clone(), next.clone())) {
                    stack.push((at, std::mem::replace(&mut state, next)));
                    linearized = set;
                    list.lift(at);
                    if op.complete.is_some() {
                        remaining -= 1;
                    }
                    at = list.e[0].next;
                    continue;
                }
            }
            at = entry.next;
            continue;
        }
        // A return entry of an op not yet linearized: undo the last choice.
        if stack.len() >= deepest.0 && (stack.len() > deepest.0 || deepest.1 == NONE) {
            let prefix = stack
                .iter()
                .map(|(c, _)| ops[list.e[*c].op].index)
                .collect();
            deepest = (stack.len(), ops[entry.op].index, prefix);
        }
        let Some((call, previous)) = stack.pop() else {
            return Linearizability::NotLinearizable {
                stuck: deepest.1,
                prefix: deepest.2,
            };
        };
        let op_at = list.e[call].op;
        state = previous;
        linearized.clear(op_at);
        list.unlift(call);
        if ops[op_at].complete.is_some() {
            remaining += 1;
        }
        at = list.e[call].next;
    }
    Linearizability::Linearizable { states: memo.len() }
}
