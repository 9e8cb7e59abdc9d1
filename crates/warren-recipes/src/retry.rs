//! `RetryPolicy`: kazoo's `KazooRetry` (max tries, delay, backoff, max delay, jitter,
//! deadline, retry on session expiry).
//!
//! Twin: `kazoo/retry.py`. Deviation: the operation is an async closure called again from
//! the top on every attempt, so it picks up a fresh session from the
//! [`Connection`](crate::Connection) after one was lost.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How often and how patiently to retry an operation that failed with a retryable error:
/// a connection fault (`ConnectionLoss`, `SessionMoved`, an I/O fault), a client-side
/// `Timeout`, [`Error::ForceRetry`], and `SessionExpired` unless `ignore_expire` is false.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; `None` retries forever (kazoo's `None`/-1).
    pub max_tries: Option<u32>,
    /// The first delay between attempts.
    pub delay: Duration,
    /// The factor the delay grows by after each attempt.
    pub backoff: f64,
    /// Each delay is multiplied by a uniform factor in `[1 - max_jitter, 1 + max_jitter]`,
    /// so that clients do not retry in lock step; clamped to `[0, 1]`.
    pub max_jitter: f64,
    /// The delay never grows past this.
    pub max_delay: Duration,
    /// Give up once the next sleep would end past this much time after the first attempt.
    pub deadline: Option<Duration>,
    /// Treat `SessionExpired` as retryable (kazoo's default): the connection makes a fresh
    /// session after one is lost, and the next attempt runs in it.
    pub ignore_expire: bool,
}

impl Default for RetryPolicy {
    /// kazoo's `KazooRetry()` defaults: one try, 0.1 s delay, backoff 2, jitter 0.4, 60 s
    /// max delay, no deadline, retry on session expiry.
    fn default() -> Self {
        RetryPolicy {
            max_tries: Some(1),
            delay: Duration::from_millis(100),
            backoff: 2.0,
            max_jitter: 0.4,
            max_delay: Duration::from_secs(60),
            deadline: None,
            ignore_expire: true,
        }
    }
}

impl RetryPolicy {
    /// The policy of `KazooClient.retry` (used by most recipes): retry forever, 0.1 s delay,
    /// backoff 2, jitter 0.4, at most an hour between tries.
    pub fn forever() -> Self {
        RetryPolicy {
            max_tries: None,
            max_delay: Duration::from_secs(3600),
            ..RetryPolicy::default()
        }
    }

    /// This policy with `deadline`.
    pub fn with_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// This policy with `max_tries`.
    pub fn with_max_tries(mut self, max_tries: Option<u32>) -> Self {
        self.max_tries = max_tries;
        self
    }

    /// True if `err` is worth another attempt under this policy.
    pub fn is_retryable(&self, err: &Error) -> bool {
        use zookeeper_client::Error as Zk;
        match err {
            Error::ForceRetry(_) => true,
            // The client fails requests in flight when their connection breaks with the
            // error that broke it: `ConnectionLoss`, `SessionMoved` (the session was taken
            // over by another connection), or an I/O or protocol fault (`Custom`). All
            // are kazoo's `ConnectionLoss`: the request may or may not have happened.
            Error::Zk(Zk::ConnectionLoss | Zk::Timeout | Zk::SessionMoved | Zk::Custom(_)) => true,
            Error::Zk(Zk::SessionExpired) => self.ignore_expire,
            _ => false,
        }
    }

    /// Calls `op` until it succeeds, fails with an error that is not retryable (returned as
    /// is), or the policy gives up ([`Error::RetryFailed`] with the last error).
    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let start = Instant::now();
        let stop_at = self.deadline.map(|d| start + d);
        let mut attempts = 0u32;
        let mut delay = self.delay;
        loop {
            let err = match op().await {
                Ok(v) => return Ok(v),
                Err(e) if self.is_retryable(&e) => e,
                Err(e) => return Err(e),
            };
            attempts += 1;
            if self.max_tries.is_some_and(|max| attempts >= max) {
                return Err(Error::RetryFailed(Box::new(err)));
            }
            let sleep = self.jittered(delay);
            if stop_at.is_some_and(|stop| Instant::now() + sleep >= stop) {
                return Err(Error::RetryFailed(Box::new(err)));
            }
            tracing::debug!(?err, attempts, ?sleep, "retrying");
            tokio::time::sleep(sleep).await;
            // As kazoo: the next delay grows from the jittered one.
            delay = sleep.mul_f64(self.backoff).min(self.max_delay);
        }
    }

    pub(crate) fn jittered(&self, delay: Duration) -> Duration {
        let jitter = self.max_jitter.clamp(0.0, 1.0);
        let factor = 1.0 - jitter + fastrand::f64() * 2.0 * jitter;
        delay.mul_f64(factor.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick() -> RetryPolicy {
        RetryPolicy {
            delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            ..RetryPolicy::default()
        }
    }

    #[tokio::test]
    async fn retries_retryable_errors_up_to_max_tries() {
        let calls = AtomicU32::new(0);
        let policy = quick().with_max_tries(Some(3));
        let r: Result<()> = policy
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::Zk(zookeeper_client::Error::ConnectionLoss))
            })
            .await;
        assert!(matches!(r, Err(Error::RetryFailed(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn other_errors_are_returned_at_once() {
        let calls = AtomicU32::new(0);
        let r: Result<()> = quick()
            .with_max_tries(None)
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::Zk(zookeeper_client::Error::NoNode))
            })
            .await;
        assert!(r.unwrap_err().is_no_node());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn succeeds_after_transient_failures() {
        let calls = AtomicU32::new(0);
        let r = quick()
            .with_max_tries(None)
            .run(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 4 {
                    Err(Error::ForceRetry("again"))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(r.unwrap(), 7);
    }

    #[tokio::test]
    async fn session_expiry_is_retryable_only_when_ignored() {
        let expired = Error::Zk(zookeeper_client::Error::SessionExpired);
        assert!(RetryPolicy::default().is_retryable(&expired));
        let strict = RetryPolicy {
            ignore_expire: false,
            ..RetryPolicy::default()
        };
        assert!(!strict.is_retryable(&expired));
    }

    #[tokio::test]
    async fn deadline_stops_retrying() {
        let policy = RetryPolicy {
            delay: Duration::from_millis(50),
            max_tries: None,
            deadline: Some(Duration::from_millis(1)),
            ..RetryPolicy::default()
        };
        let r: Result<()> = policy.run(|| async { Err(Error::ForceRetry("x")) }).await;
        assert!(matches!(r, Err(Error::RetryFailed(_))));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let p = RetryPolicy::default();
        for _ in 0..1000 {
            let d = p.jittered(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(60) && d <= Duration::from_millis(140));
        }
    }
}
