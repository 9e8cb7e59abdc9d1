//! [`Core`]: what a node's API, its peer server and its background tasks share: the Raft
//! handle, the log's I/O thread, the application handlers, and the leader's forward gates.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use openraft::error::{ClientWriteError, ForwardToLeader, LinearizableReadError};
use openraft::impls::ProgressResponder;
use openraft::{Raft, ReadPolicy};

use crate::applied::AppliedIndex;
use crate::log_store::{IoCounters, IoThread};
use crate::node::ProposeError;
use crate::state_machine::SmAdapter;
use crate::types::{Payload, TypeConfig};

/// Receives application messages sent with `RaftNode::send_app`: `(from, bytes)`.
pub type AppHandler = Arc<dyn Fn(u64, Vec<u8>) + Send + Sync>;
/// Answers application calls made with `RaftNode::call_app`: `(from, bytes) -> reply`.
pub type CallHandler = Arc<dyn Fn(u64, Vec<u8>) -> Vec<u8> + Send + Sync>;

/// Distinct peers that may hold a client stream to this node, at most.
const GATES_MAX: usize = 1024;

/// The shared heart of a node.
pub(crate) struct Core {
    pub(crate) id: u64,
    pub(crate) raft: Raft<TypeConfig, SmAdapter>,
    pub(crate) io: IoThread,
    /// What this node applied, for the tasks waiting to see an index applied here.
    pub(crate) applied: Arc<AppliedIndex>,
    pub(crate) counters: Arc<IoCounters>,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) app_handler: RwLock<Option<AppHandler>>,
    pub(crate) call_handler: RwLock<Option<CallHandler>>,
    /// Set once the application manages the membership itself (ZooKeeper's reconfig):
    /// the configured learners are then no longer added back when missing.
    pub(crate) membership_handed_over: AtomicBool,
    /// Leader side, per follower: the epoch of the newest client stream it opened. Forwards
    /// are enqueued under this lock, so a stream the follower gave up (and whose entries it
    /// reported indeterminate) can never slip an entry in after the newer stream's.
    gates: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<u64>>>>,
    /// The largest snapshot this node accepts from a leader.
    pub(crate) snapshot_bytes_max: u64,
    /// Bound on a leader-side read index (quorum confirmation).
    pub(crate) read_index_timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().expect("the gate map lock holder never panics")
}

impl Core {
    pub(crate) fn new(
        id: u64,
        raft: Raft<TypeConfig, SmAdapter>,
        io: IoThread,
        applied: Arc<AppliedIndex>,
        counters: Arc<IoCounters>,
        snapshot_bytes_max: u64,
        read_index_timeout: Duration,
    ) -> Self {
        Core {
            id,
            raft,
            io,
            applied,
            counters,
            shutting_down: AtomicBool::new(false),
            app_handler: RwLock::new(None),
            call_handler: RwLock::new(None),
            membership_handed_over: AtomicBool::new(false),
            gates: Mutex::new(HashMap::new()),
            snapshot_bytes_max,
            read_index_timeout,
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub(crate) fn check_running(&self) -> Result<(), ProposeError> {
        if self.stopping() {
            return Err(ProposeError::ShuttingDown);
        }
        Ok(())
    }

    /// Enqueues `payload` into this node's Raft core (it must lead, or the outcome is
    /// `NotLeader`); the returned future resolves with the index once applied here.
    pub(crate) async fn submit_local(
        self: &Arc<Self>,
        payload: Bytes,
    ) -> Result<impl Future<Output = Result<u64, ProposeError>> + Send + 'static, ProposeError>
    {
        self.check_running()?;
        let (responder, rx) = ProgressResponder::<TypeConfig, _>::complete_only();
        self.raft
            .client_write_ff(Payload(payload), Some(responder))
            .await
            .map_err(|f| self.fatal(f))?;
        let core = self.clone();
        Ok(async move {
            match rx.await {
                Ok(Ok(resp)) => Ok(resp.log_id.index),
                Ok(Err(ClientWriteError::ForwardToLeader(f))) => Err(ProposeError::NotLeader {
                    leader: leader_hint(&f),
                }),
                Ok(Err(ClientWriteError::LogEntryDiscarded(f))) => {
                    Err(ProposeError::Indeterminate {
                        leader: leader_hint(&f),
                    })
                }
                Ok(Err(other)) => Err(ProposeError::Fatal(format!(
                    "unexpected write error: {other}"
                ))),
                // The core dropped the responder: it stopped, on an error or not.
                Err(_) => Err(core.stop_cause()),
            }
        })
    }

    /// Leader side of a read barrier: confirms leadership with a quorum and returns the index
    /// a reader must have applied (not waiting for this node's own apply).
    pub(crate) async fn leader_read_index(&self) -> Result<u64, ProposeError> {
        self.check_running()?;
        let get = self.raft.get_read_linearizer(ReadPolicy::ReadIndex);
        match tokio::time::timeout(self.read_index_timeout, get).await {
            Err(_) => Err(ProposeError::NotLeader { leader: None }),
            Ok(Ok(lin)) => Ok(lin.read_log_id().index()),
            Ok(Err(e)) => Err(self.read_error(e)),
        }
    }

    /// A read barrier on this node as leader: leadership confirmed, then applied up to the
    /// read index.
    pub(crate) async fn local_read_index(&self) -> Result<(), ProposeError> {
        self.check_running()?;
        let ensure = self.raft.ensure_linearizable(ReadPolicy::ReadIndex);
        match tokio::time::timeout(self.read_index_timeout, ensure).await {
            Err(_) => Err(ProposeError::NotLeader { leader: None }),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.read_error(e)),
        }
    }

    fn read_error(
        &self,
        e: openraft::error::RaftError<TypeConfig, LinearizableReadError<TypeConfig>>,
    ) -> ProposeError {
        match e {
            openraft::error::RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => {
                ProposeError::NotLeader {
                    leader: self.leader_of(&f),
                }
            }
            openraft::error::RaftError::APIError(LinearizableReadError::QuorumNotEnough(_)) => {
                ProposeError::NotLeader { leader: None }
            }
            openraft::error::RaftError::Fatal(f) => self.fatal(f),
        }
    }

    fn gate(&self, from: u64) -> Arc<tokio::sync::Mutex<u64>> {
        lock(&self.gates).entry(from).or_default().clone()
    }

    /// Registers a client stream from `from` with `epoch`; false if a newer one exists (or
    /// too many distinct peers have opened one: ids come from the wire).
    pub(crate) async fn open_client_stream(&self, from: u64, epoch: u64) -> bool {
        {
            let gates = lock(&self.gates);
            if gates.len() >= GATES_MAX && !gates.contains_key(&from) {
                return false;
            }
        }
        let gate = self.gate(from);
        let mut newest = gate.lock().await;
        if epoch < *newest {
            return false;
        }
        *newest = epoch;
        true
    }

    /// Enqueues a payload forwarded by `from` on its stream of `epoch`, in arrival order.
    pub(crate) async fn submit_forwarded(
        self: &Arc<Self>,
        from: u64,
        epoch: u64,
        payload: Vec<u8>,
    ) -> Result<impl Future<Output = Result<u64, ProposeError>> + Send + 'static, ProposeError>
    {
        let gate = self.gate(from);
        let newest = gate.lock().await;
        if *newest != epoch {
            // The follower has moved to a newer stream and reported this entry indeterminate.
            return Err(ProposeError::Indeterminate { leader: None });
        }
        let fut = self.submit_local(Bytes::from(payload)).await;
        drop(newest);
        fut
    }

    pub(crate) fn leader_of(&self, f: &ForwardToLeader<TypeConfig>) -> Option<(u64, String)> {
        let id = f.leader_id?;
        let addr = match &f.leader_node {
            Some(n) => n.addr.clone(),
            None => self.member_addr(id).unwrap_or_default(),
        };
        Some((id, addr))
    }

    /// The peer address of `id` as the effective membership records it.
    pub(crate) fn member_addr(&self, id: u64) -> Option<String> {
        use openraft::async_runtime::watch::WatchReceiver;
        let m = self.raft.metrics();
        let m = m.borrow_watched();
        m.membership_config.get_node(&id).map(|n| n.addr.clone())
    }

    /// Why the core stopped: shut down, or failed (the log's error first: it is the cause).
    fn stop_cause(&self) -> ProposeError {
        use openraft::async_runtime::watch::WatchReceiver;
        if self.stopping() {
            return ProposeError::ShuttingDown;
        }
        if let Some(f) = self.io.failure() {
            return ProposeError::Fatal(f);
        }
        match &self.raft.metrics().borrow_watched().running_state {
            Err(e) => ProposeError::Fatal(e.to_string()),
            Ok(()) => ProposeError::ShuttingDown,
        }
    }

    pub(crate) fn fatal(&self, f: openraft::error::Fatal<TypeConfig>) -> ProposeError {
        if self.stopping() {
            return ProposeError::ShuttingDown;
        }
        let cause = self.io.failure().unwrap_or_else(|| f.to_string());
        ProposeError::Fatal(cause)
    }
}

/// The leader named by a forward, as far as the forward itself knows.
fn leader_hint(f: &ForwardToLeader<TypeConfig>) -> Option<(u64, String)> {
    let id = f.leader_id?;
    Some((
        id,
        f.leader_node
            .as_ref()
            .map(|n| n.addr.clone())
            .unwrap_or_default(),
    ))
}
