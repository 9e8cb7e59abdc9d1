//! `DataWatch` and `ChildrenWatch`: kazoo's self-re-arming watches.
//!
//! Twin: `kazoo/recipe/watchers.py`. Each runs a task that reads the node with a one-shot
//! watch, calls the function, and reads again when the watch fires, when the connection
//! comes back, or in the fresh session after a loss; so the function sees every state
//! the node settles in, as kazoo's does. Returning `false` from the function stops the
//! watch. Deviation: dropping the handle stops the watch too, unless it was
//! [detached](DataWatch::detach).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;
use zookeeper_client::{Client, EventType, OneshotWatcher, Stat, WatchedEvent};

use crate::connection::{ConnState, Connection, Status};
use crate::error::Result;

/// A node's data and stat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeData {
    /// The node's data.
    pub data: Vec<u8>,
    /// The node's stat.
    pub stat: Stat,
}

/// Stops the watch task when dropped, unless detached.
struct StopHandle {
    stop: watch::Sender<bool>,
    detached: Arc<AtomicBool>,
    stopped: watch::Receiver<bool>,
}

impl StopHandle {
    fn new() -> (StopHandle, StopSignal, watch::Sender<bool>) {
        let (stop, stop_rx) = watch::channel(false);
        let (done_tx, stopped) = watch::channel(false);
        let detached = Arc::new(AtomicBool::new(false));
        let signal = StopSignal {
            rx: stop_rx,
            detached: detached.clone(),
        };
        (
            StopHandle {
                stop,
                detached,
                stopped,
            },
            signal,
            done_tx,
        )
    }

    fn stop(&self) {
        self.stop.send_replace(true);
    }

    fn detach(&self) {
        self.detached.store(true, Ordering::SeqCst);
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.borrow()
    }
}

struct StopSignal {
    rx: watch::Receiver<bool>,
    detached: Arc<AtomicBool>,
}

impl StopSignal {
    /// Resolves when the watch must stop: `stop()` was called, or the handle was dropped
    /// without being detached.
    async fn stopped(&mut self) {
        loop {
            if *self.rx.borrow_and_update() {
                return;
            }
            if self.rx.changed().await.is_err() {
                if self.detached.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                return;
            }
        }
    }
}

/// What woke a watch task.
enum Wake {
    Event(WatchedEvent),
    Reconnected,
    Stop,
}

/// Waits for the watcher, a reconnect (`Connected` after anything else, or a new epoch) or
/// the stop signal.
async fn next_wake(
    watcher: OneshotWatcher,
    status: &mut watch::Receiver<Status>,
    stop: &mut StopSignal,
) -> Wake {
    let mut last = *status.borrow_and_update();
    let event = watcher.changed();
    tokio::pin!(event);
    loop {
        tokio::select! {
            e = &mut event => return Wake::Event(e),
            r = status.changed() => {
                if r.is_err() {
                    return Wake::Stop;
                }
                let now = *status.borrow_and_update();
                if now.state == ConnState::Connected && now != last {
                    return Wake::Reconnected;
                }
                last = now;
            }
            _ = stop.stopped() => return Wake::Stop,
        }
    }
}

/// True for the session event a one-shot watcher gets when its session ends.
fn is_session_end(e: &WatchedEvent) -> bool {
    e.event_type == EventType::Session && e.session_state.is_terminated()
}

/// kazoo's `DataWatch`: calls a function with the node's data and stat (`None` while the
/// node does not exist) at once and after every change.
pub struct DataWatch {
    handle: StopHandle,
}

/// The function a [`DataWatch`] calls: `(data, event)`, where the event is the one that
/// caused the call (`None` on the first call and after reconnects). Return `false` to
/// stop watching.
pub trait DataWatchFn:
    FnMut(Option<&NodeData>, Option<&WatchedEvent>) -> bool + Send + 'static
{
}
impl<F> DataWatchFn for F where
    F: FnMut(Option<&NodeData>, Option<&WatchedEvent>) -> bool + Send + 'static
{
}

struct DataWatchTask<F> {
    conn: Connection,
    path: String,
    func: F,
    /// The `mzxid` last reported (kazoo's `_version`), `None` while the node is missing.
    version: Option<i64>,
    ever_called: bool,
}

impl DataWatch {
    /// Starts watching `path`; `func` has been called once when this returns.
    pub async fn new<F>(conn: &Connection, path: &str, func: F) -> Result<DataWatch>
    where
        F: DataWatchFn,
    {
        let mut task = DataWatchTask {
            conn: conn.clone(),
            path: path.to_owned(),
            func,
            version: None,
            ever_called: false,
        };
        let (handle, mut stop, done) = StopHandle::new();
        let first = task.read(None).await?;
        tokio::spawn(async move {
            if let Some(watcher) = first {
                task.run(watcher, &mut stop).await;
            }
            done.send_replace(true);
        });
        Ok(DataWatch { handle })
    }

    /// Stops the watch; the function is not called again once its current call returns.
    pub fn stop(&self) {
        self.handle.stop();
    }

    /// Lets the watch run after this handle is dropped, until the function returns false
    /// or the connection is closed (kazoo's lifetime).
    pub fn detach(self) {
        self.handle.detach();
    }

    /// True once the watch has ended (stopped, function returned false, connection closed).
    pub fn is_stopped(&self) -> bool {
        self.handle.is_stopped()
    }
}

impl<F: DataWatchFn> DataWatchTask<F> {
    async fn run(&mut self, mut watcher: OneshotWatcher, stop: &mut StopSignal) {
        let mut status = self.conn.status_watcher();
        loop {
            let event = match next_wake(watcher, &mut status, stop).await {
                Wake::Stop => return,
                Wake::Reconnected => None,
                Wake::Event(e) if is_session_end(&e) => {
                    if self.conn.wait_connected().await.is_err() {
                        return;
                    }
                    None
                }
                Wake::Event(e) => Some(e),
            };
            watcher = match self.read(event).await {
                Ok(Some(w)) => w,
                Ok(None) | Err(_) => return,
            };
        }
    }

    /// kazoo's `_get_data`: reads with a watch, calls the function if the node changed.
    /// `None` once the function asked to stop.
    async fn read(&mut self, event: Option<WatchedEvent>) -> Result<Option<OneshotWatcher>> {
        let path = self.path.clone();
        let (node, watcher) = self.conn.retry(|c| read_node(c, path.clone())).await?;
        let version = node.as_ref().map(|n| n.stat.mzxid);
        if version != self.version || !self.ever_called {
            self.version = version;
            self.ever_called = true;
            if !(self.func)(node.as_ref(), event.as_ref()) {
                return Ok(None);
            }
        }
        Ok(Some(watcher))
    }
}

/// The node's data with a watch on it, or `None` with a watch for its creation.
async fn read_node(c: Client, path: String) -> Result<(Option<NodeData>, OneshotWatcher)> {
    loop {
        match c.get_and_watch_data(&path).await {
            Ok((data, stat, w)) => return Ok((Some(NodeData { data, stat }), w)),
            Err(zookeeper_client::Error::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
        match c.check_and_watch_stat(&path).await? {
            (None, w) => return Ok((None, w)),
            // Created in between: read it again (kazoo spawns `_get_data` again).
            (Some(_), _) => continue,
        }
    }
}

/// kazoo's `ChildrenWatch`: calls a function with the node's children at once and after
/// every change. The node must exist; the watch stops when it is deleted.
pub struct ChildrenWatch {
    handle: StopHandle,
}

/// The function a [`ChildrenWatch`] calls: `(children, event)`. Return `false` to stop.
pub trait ChildrenWatchFn:
    FnMut(&[String], Option<&WatchedEvent>) -> bool + Send + 'static
{
}
impl<F> ChildrenWatchFn for F where
    F: FnMut(&[String], Option<&WatchedEvent>) -> bool + Send + 'static
{
}

struct ChildrenWatchTask<F> {
    conn: Connection,
    path: String,
    func: F,
    allow_session_lost: bool,
    prior: Option<Vec<String>>,
}

impl ChildrenWatch {
    /// Starts watching the children of `path` (which must exist: `NoNode` otherwise);
    /// `func` has been called once when this returns. The watch goes on in the fresh
    /// session after a loss (kazoo's `allow_session_lost=True`).
    pub async fn new<F>(conn: &Connection, path: &str, func: F) -> Result<ChildrenWatch>
    where
        F: ChildrenWatchFn,
    {
        ChildrenWatch::with_options(conn, path, true, func).await
    }

    /// [`ChildrenWatch::new`] with kazoo's `allow_session_lost`: if false, the watch stops
    /// when the session is lost.
    pub async fn with_options<F>(
        conn: &Connection,
        path: &str,
        allow_session_lost: bool,
        func: F,
    ) -> Result<ChildrenWatch>
    where
        F: ChildrenWatchFn,
    {
        let mut task = ChildrenWatchTask {
            conn: conn.clone(),
            path: path.to_owned(),
            func,
            allow_session_lost,
            prior: None,
        };
        let (handle, mut stop, done) = StopHandle::new();
        let first = match task.read(None, false).await {
            Err(e) if e.is_no_node() => return Err(e),
            other => other?,
        };
        tokio::spawn(async move {
            if let Some(watcher) = first {
                task.run(watcher, &mut stop).await;
            }
            done.send_replace(true);
        });
        Ok(ChildrenWatch { handle })
    }

    /// Stops the watch.
    pub fn stop(&self) {
        self.handle.stop();
    }

    /// Lets the watch run after this handle is dropped.
    pub fn detach(self) {
        self.handle.detach();
    }

    /// True once the watch has ended (stopped, function returned false, node deleted,
    /// connection closed).
    pub fn is_stopped(&self) -> bool {
        self.handle.is_stopped()
    }
}

impl<F: ChildrenWatchFn> ChildrenWatchTask<F> {
    async fn run(&mut self, mut watcher: OneshotWatcher, stop: &mut StopSignal) {
        let mut status = self.conn.status_watcher();
        loop {
            let (event, reestablished) = match next_wake(watcher, &mut status, stop).await {
                Wake::Stop => return,
                Wake::Reconnected => (None, true),
                Wake::Event(e) if is_session_end(&e) => {
                    if !self.allow_session_lost || self.conn.wait_connected().await.is_err() {
                        return;
                    }
                    (None, true)
                }
                Wake::Event(e) => (Some(e), false),
            };
            watcher = match self.read(event, reestablished).await {
                Ok(Some(w)) => w,
                Ok(None) | Err(_) => return,
            };
        }
    }

    /// kazoo's `_get_children`. After a reconnect the function is called only if the
    /// children differ from the last call's. `None` once the watch must stop.
    async fn read(
        &mut self,
        event: Option<WatchedEvent>,
        reestablished: bool,
    ) -> Result<Option<OneshotWatcher>> {
        let path = self.path.clone();
        let read = self
            .conn
            .retry(|c| {
                let path = path.clone();
                async move { Ok(c.list_and_watch_children(&path).await?) }
            })
            .await;
        let (children, watcher) = match read {
            Ok(r) => r,
            Err(e) if e.is_no_node() && self.prior.is_some() => return Ok(None),
            Err(e) => return Err(e),
        };
        if reestablished && self.prior.as_ref() == Some(&children) {
            return Ok(Some(watcher));
        }
        let keep = (self.func)(&children, event.as_ref());
        self.prior = Some(children);
        Ok(keep.then_some(watcher))
    }
}

impl std::fmt::Debug for DataWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataWatch")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl std::fmt::Debug for ChildrenWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildrenWatch")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}
