//! Client histories: what each client process asked for, when, and what came back.
//!
//! An [`Op`] is one call by one process (one ZooKeeper session): its invoke time, its
//! completion time and its [`Outcome`], as Jepsen records them:
//!
//! - `Ok`: the server answered success; the op took effect once, between invoke and
//!   completion.
//! - `Fail`: the server answered a definite error, or the request was never sent; the op
//!   did not take effect.
//! - `Info`: the outcome is unknown (the connection was lost or the reply timed out after
//!   the request was sent, or the server answered ConnectionLoss); the op may take effect at
//!   any time after its invoke, or never. Its completion time is `None` (infinity).
//!
//! Times are nanoseconds of one monotonic clock ([`Recorder`]'s), shared by every process
//! of a run, so real-time order between ops of different processes is meaningful.

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Nanoseconds since the start of the run, on a monotonic clock.
pub type Time = u64;

/// What a process asked the service to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// getData of a register znode.
    Read {
        /// The register.
        path: String,
    },
    /// setData with version -1 (unconditional).
    Write {
        /// The register.
        path: String,
        /// The value written (decimal text in the znode).
        value: i64,
    },
    /// setData with an expected version: compare-and-set on the znode's version.
    Cas {
        /// The register.
        path: String,
        /// The version the znode must have.
        version: i32,
        /// The value written if it has.
        value: i64,
    },
    /// Counter increment: getData then setData(value + 1, version), retried on BadVersion.
    Incr {
        /// The counter znode.
        path: String,
    },
    /// A persistent sequential create.
    CreateSeq {
        /// The path prefix (the server appends the sequence number).
        prefix: String,
        /// The data, unique per call, so a create applied twice shows.
        data: String,
    },
    /// An ephemeral create.
    CreateEphemeral {
        /// The path.
        path: String,
    },
    /// Any request that proves the session alive when answered (exists `/`).
    Probe,
    /// closeSession.
    Close,
}

impl Call {
    /// The znode the call is about, if one (the register key for per-znode checks).
    pub fn path(&self) -> Option<&str> {
        match self {
            Call::Read { path }
            | Call::Write { path, .. }
            | Call::Cas { path, .. }
            | Call::Incr { path }
            | Call::CreateEphemeral { path } => Some(path),
            Call::CreateSeq { prefix, .. } => Some(prefix),
            Call::Probe | Call::Close => None,
        }
    }
}

/// What a successful call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Nothing worth keeping.
    None,
    /// A register read: the value and the znode's data version.
    Data {
        /// The value read.
        value: i64,
        /// The znode's version.
        version: i32,
    },
    /// A setData: the znode's new version.
    Version(i32),
    /// A create: the path created (sequence suffix included).
    Path(String),
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Success, with what came back.
    Ok(Value),
    /// Definitely did not happen: the error code's name, or why it was not sent.
    Fail(String),
    /// May or may not have happened: why the outcome is unknown.
    Info(String),
}

/// The error name a definite answer of an expired session carries.
pub const SESSION_EXPIRED: &str = "SessionExpired";
/// The error name of a failed compare-and-set.
pub const BAD_VERSION: &str = "BadVersion";

/// One call by one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Position in the history (invoke order).
    pub index: usize,
    /// The client process: its ZooKeeper session id (one session per process).
    pub session: i64,
    /// What was asked.
    pub call: Call,
    /// When it was asked.
    pub invoke: Time,
    /// When the answer came; `None` for `Info` (the op may still be in flight forever).
    pub complete: Option<Time>,
    /// How it ended.
    pub outcome: Outcome,
    /// The zxid in the reply header, when a reply came and carried one (> 0).
    pub zxid: Option<i64>,
}

impl Op {
    /// Whether the op succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ok(_))
    }

    /// Whether the op's outcome is unknown.
    pub fn is_info(&self) -> bool {
        matches!(self.outcome, Outcome::Info(_))
    }

    /// Whether the op failed with the named error.
    pub fn failed_with(&self, name: &str) -> bool {
        matches!(&self.outcome, Outcome::Fail(n) if n == name)
    }
}

/// A whole history, in invoke order.
pub type History = Vec<Op>;

/// Records ops from many tasks into one history, stamping them with one monotonic clock.
/// Cloning shares the history.
#[derive(Debug, Clone)]
pub struct Recorder {
    start: Instant,
    ops: Arc<Mutex<History>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// A new, empty history whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            ops: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Now, on the history's clock.
    pub fn now(&self) -> Time {
        u64::try_from(self.start.elapsed().as_nanos()).expect("a run shorter than 584 years")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        self.ops
            .lock()
            .expect("history lock poisoned by a panicking worker")
    }

    /// Records the invocation of `call` by `session`; the op stays `Info` until
    /// [`Recorder::complete`] (a worker cancelled mid-call leaves it unknown, as it is).
    pub fn invoke(&self, session: i64, call: Call) -> usize {
        let mut ops = self.lock();
        let index = ops.len();
        // The stamp is taken under the lock, so invoke order and time order agree.
        let invoke = self.now();
        ops.push(Op {
            index,
            session,
            call,
            invoke,
            complete: None,
            outcome: Outcome::Info("no answer".into()),
            zxid: None,
        });
        index
    }

    /// Records how op `index` ended. An `Info` outcome keeps completion at infinity.
    pub fn complete(&self, index: usize, outcome: Outcome, zxid: Option<i64>) {
        let now = self.now();
        let mut ops = self.lock();
        let op = &mut ops[index];
        op.complete = (!matches!(outcome, Outcome::Info(_))).then_some(now);
        op.outcome = outcome;
        op.zxid = zxid.filter(|z| *z > 0);
    }

    /// A copy of the history so far.
    pub fn snapshot(&self) -> History {
        self.lock().clone()
    }
}

/// Builds hand-written histories for tests: `b.ok(p, t0, t1, call, value)` and friends.
#[derive(Debug, Default)]
pub struct HistoryBuilder {
    ops: History,
}

impl HistoryBuilder {
    /// An empty history.
    pub fn new() -> HistoryBuilder {
        HistoryBuilder::default()
    }

    fn push(&mut self, session: i64, invoke: Time, complete: Option<Time>, call: Call, o: Outcome) {
        let index = self.ops.len();
        self.ops.push(Op {
            index,
            session,
            call,
            invoke,
            complete,
            outcome: o,
            zxid: None,
        });
    }

    /// A successful op.
    pub fn ok(mut self, session: i64, invoke: Time, complete: Time, call: Call, v: Value) -> Self {
        self.push(session, invoke, Some(complete), call, Outcome::Ok(v));
        self
    }

    /// A definitely failed op.
    pub fn fail(mut self, session: i64, invoke: Time, complete: Time, call: Call, e: &str) -> Self {
        self.push(
            session,
            invoke,
            Some(complete),
            call,
            Outcome::Fail(e.into()),
        );
        self
    }

    /// An op with unknown outcome.
    pub fn info(mut self, session: i64, invoke: Time, call: Call) -> Self {
        self.push(session, invoke, None, call, Outcome::Info("test".into()));
        self
    }

    /// Sets the reply zxid of the last op.
    pub fn zxid(mut self, zxid: i64) -> Self {
        if let Some(op) = self.ops.last_mut() {
            op.zxid = Some(zxid);
        }
        self
    }

    /// The history, sorted by invoke time as a recorder would have produced it.
    pub fn build(mut self) -> History {
        self.ops.sort_by_key(|op| op.invoke);
        for (i, op) in self.ops.iter_mut().enumerate() {
            op.index = i;
        }
        self.ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_keeps_invoke_order_and_unknowns() {
        let r = Recorder::new();
        let a = r.invoke(1, Call::Probe);
        let b = r.invoke(2, Call::Close);
        r.complete(a, Outcome::Ok(Value::None), Some(5));
        r.complete(b, Outcome::Info("lost".into()), Some(9));
        let h = r.snapshot();
        assert!(h[0].invoke <= h[1].invoke);
        assert_eq!(h[0].zxid, Some(5));
        assert!(h[0].complete.is_some() && h[1].complete.is_none());
        assert!(h[1].is_info());
    }
}
