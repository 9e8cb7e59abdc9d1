//! Session expiry in time buckets, run by the leader only.
//!
//! Twin of ZooKeeper's `ExpiryQueue`: a session's deadline is `now + timeout` rounded up to
//! the next multiple of the tick, so sessions expire in batches once per tick rather than one
//! timer each. A touch (any request or ping) moves the session to a later bucket. A new
//! leader re-arms every session of the tree with a full timeout before it expires any, so a
//! leader change never expires a client that was pinging the old leader.
//!
//! Time is passed in (milliseconds on a monotonic clock of the caller's choosing), which keeps
//! this deterministic under test.

use std::collections::{BTreeMap, HashMap, HashSet};

use warren_proto::SessionId;

/// Deadlines of sessions, bucketed by tick.
#[derive(Debug)]
pub struct ExpiryQueue {
    tick_ms: u64,
    deadline: HashMap<SessionId, u64>,
    buckets: BTreeMap<u64, HashSet<SessionId>>,
}

impl ExpiryQueue {
    /// An empty queue with buckets `tick_ms` wide.
    pub fn new(tick_ms: u64) -> Self {
        ExpiryQueue {
            tick_ms: tick_ms.max(1),
            deadline: HashMap::new(),
            buckets: BTreeMap::new(),
        }
    }

    fn round_up(&self, t: u64) -> u64 {
        t.div_ceil(self.tick_ms) * self.tick_ms
    }

    /// Arms or re-arms `session` to expire `timeout_ms` after `now_ms`.
    pub fn touch(&mut self, session: SessionId, timeout_ms: u64, now_ms: u64) {
        let new = self.round_up(now_ms + timeout_ms);
        if let Some(old) = self.deadline.insert(session, new) {
            if old == new {
                return;
            }
            self.unbucket(session, old);
        }
        self.buckets.entry(new).or_default().insert(session);
    }

    fn unbucket(&mut self, session: SessionId, at: u64) {
        if let Some(b) = self.buckets.get_mut(&at) {
            b.remove(&session);
            if b.is_empty() {
                self.buckets.remove(&at);
            }
        }
    }

    /// Stops tracking `session` (closed, or this server stopped leading).
    pub fn remove(&mut self, session: SessionId) {
        if let Some(at) = self.deadline.remove(&session) {
            self.unbucket(session, at);
        }
    }

    /// Forgets every session (this server stopped leading).
    pub fn clear(&mut self) {
        self.deadline.clear();
        self.buckets.clear();
    }

    /// Takes up to `max` sessions whose deadline is at or before `now_ms`, oldest first. They
    /// stay tracked, pushed one tick on, so that if their close is lost (leader change) they
    /// come up again.
    pub fn expired(&mut self, now_ms: u64, max: usize) -> Vec<SessionId> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(mut first) = self.buckets.first_entry() else {
                break;
            };
            if *first.key() > now_ms {
                break;
            }
            let bucket = first.get_mut();
            let take: Vec<SessionId> = bucket.iter().take(max - out.len()).copied().collect();
            for s in &take {
                bucket.remove(s);
                self.deadline.remove(s);
            }
            if bucket.is_empty() {
                first.remove();
            }
            out.extend(take);
        }
        out.sort();
        for s in &out {
            self.touch(*s, self.tick_ms, now_ms);
        }
        out
    }

    /// Number of tracked sessions.
    pub fn len(&self) -> usize {
        self.deadline.len()
    }

    /// True when no session is tracked.
    pub fn is_empty(&self) -> bool {
        self.deadline.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SessionId = SessionId(1);
    const B: SessionId = SessionId(2);

    #[test]
    fn sessions_expire_at_their_rounded_deadline_unless_touched() {
        // Tick 100: a 250 ms timeout armed at t=0 expires in the bucket at 300.
        let mut q = ExpiryQueue::new(100);
        q.touch(A, 250, 0);
        q.touch(B, 250, 0);
        assert!(q.expired(299, 10).is_empty());
        // B pings at 200, moving it to the bucket at 500.
        q.touch(B, 250, 200);
        assert_eq!(q.expired(300, 10), vec![A]);
        assert_eq!(
            q.expired(499, 10),
            vec![A],
            "still tracked, due again one tick later"
        );
        q.remove(A);
        assert_eq!(q.expired(500, 10), vec![B]);
    }

    #[test]
    fn expiry_is_bounded_per_call() {
        let mut q = ExpiryQueue::new(10);
        for i in 0..25 {
            q.touch(SessionId(i), 10, 0);
        }
        assert_eq!(q.expired(10, 10).len(), 10);
        assert_eq!(q.len(), 25);
    }
}
