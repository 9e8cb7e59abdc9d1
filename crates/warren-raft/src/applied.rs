//! This node's applied index, and the tasks waiting for it to reach theirs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

/// Distinct indices waited for before the waiters that gave up (timed out) are swept out.
/// A waiter normally leaves when its index is applied; a node that stopped applying would
/// otherwise keep every timed-out waiter.
const SWEEP_AT_INDICES: usize = 1024;

/// The last log index the state machine adapter applied (published per entry, and by a
/// snapshot install), and the tasks waiting for it: a follower's forwarded write (its outcome
/// resolves once the entry is applied here too) and a follower's read barrier.
///
/// Why not openraft's `Wait::applied_index_at_least`: it watches the whole metrics channel,
/// which changes several times per entry (flushed, committed, applied), and every change
/// woke every waiter, which cloned the whole `RaftMetrics`, formatted its message again and
/// armed a new timer. A `perf record` of a follower under paced sets showed those wake-ups
/// and polls at ~4% of its CPU. Here a waiter is woken once, by the apply that reaches it.
#[derive(Default)]
pub(crate) struct AppliedIndex {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    applied: Option<u64>,
    /// Senders by the index they wait for.
    waiters: BTreeMap<u64, Vec<oneshot::Sender<()>>>,
}

impl AppliedIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("the applied index lock holder never panics")
    }

    /// `index` is applied (it never moves back): wakes every waiter at or below it.
    pub(crate) fn publish(&self, index: u64) {
        let ready = {
            let mut inner = self.lock();
            if inner.applied.is_some_and(|a| a >= index) {
                return;
            }
            inner.applied = Some(index);
            if inner
                .waiters
                .first_key_value()
                .is_none_or(|(first, _)| *first > index)
            {
                return;
            }
            let later = inner.waiters.split_off(&(index + 1));
            std::mem::replace(&mut inner.waiters, later)
        };
        for tx in ready.into_values().flatten() {
            let _ = tx.send(());
        }
    }

    /// Resolves once `index` is applied here: true, or false when `timeout` passed first.
    pub(crate) async fn wait_for(&self, index: u64, timeout: Duration) -> bool {
        let rx = {
            let mut inner = self.lock();
            if inner.applied.is_some_and(|a| a >= index) {
                return true;
            }
            if inner.waiters.len() >= SWEEP_AT_INDICES {
                inner.waiters.retain(|_, txs| {
                    txs.retain(|tx| !tx.is_closed());
                    !txs.is_empty()
                });
            }
            let (tx, rx) = oneshot::channel();
            inner.waiters.entry(index).or_default().push(tx);
            rx
        };
        matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const LONG: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn a_waiter_resolves_when_its_index_is_applied_and_not_before() {
        let applied = Arc::new(AppliedIndex::default());
        let (a, b) = (applied.clone(), applied.clone());
        let five = tokio::spawn(async move { a.wait_for(5, LONG).await });
        let seven = tokio::spawn(async move { b.wait_for(7, LONG).await });
        tokio::task::yield_now().await;
        while applied.lock().waiters.len() < 2 {
            tokio::task::yield_now().await;
        }
        applied.publish(4);
        tokio::task::yield_now().await;
        assert!(!five.is_finished() && !seven.is_finished());
        applied.publish(6);
        assert!(five.await.unwrap());
        assert!(!seven.is_finished());
        assert_eq!(
            applied.lock().waiters.keys().copied().collect::<Vec<_>>(),
            [7]
        );
        applied.publish(9);
        assert!(seven.await.unwrap());
        assert!(applied.lock().waiters.is_empty());
        // Already applied: resolves at once; an older index published later changes nothing.
        assert!(applied.wait_for(9, LONG).await);
        applied.publish(3);
        assert_eq!(applied.lock().applied, Some(9));
    }

    #[tokio::test]
    async fn a_waiter_gives_up_at_its_timeout_and_is_swept_later() {
        let applied = AppliedIndex::default();
        assert!(!applied.wait_for(1, Duration::from_millis(20)).await);
        assert_eq!(applied.lock().waiters.len(), 1);
        // A zero timeout gives up at once, after registering.
        for i in 2..=SWEEP_AT_INDICES as u64 {
            assert!(!applied.wait_for(i, Duration::ZERO).await);
        }
        assert_eq!(applied.lock().waiters.len(), SWEEP_AT_INDICES);
        // The next wait sweeps the closed senders out and keeps only its own.
        let next = SWEEP_AT_INDICES as u64 + 1;
        assert!(!applied.wait_for(next, Duration::ZERO).await);
        assert_eq!(applied.lock().waiters.len(), 1);
        // A publish past them all leaves nothing behind.
        applied.publish(next);
        assert!(applied.lock().waiters.is_empty());
    }
}
