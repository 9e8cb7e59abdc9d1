//! `Connection`: kazoo's `KazooClient` connection states over a `zookeeper_client::Client`.
//!
//! Twin: the state handling of `kazoo/client.py` (`KazooState`, `add_listener`). Mapping
//! from the client's session states:
//!
//! | `zookeeper_client::SessionState`      | [`ConnState`]                        |
//! |---------------------------------------|--------------------------------------|
//! | `SyncConnected`, `ConnectedReadOnly`  | `Connected`                          |
//! | `Disconnected`                        | `Suspended` (the session may live)   |
//! | `Expired`, `AuthFailed`, `Closed`     | `Lost`, then a fresh session: `Connected` with the next epoch |
//!
//! As kazoo, the connection makes a fresh session after one is lost, so recipes that must
//! go on (watches, caches, retried acquires) carry on in it; the *epoch* in [`Status`]
//! counts sessions, so a recipe can tell that everything ephemeral it made is gone.
//!
//! Deviation: state changes are read from the client's `StateWatcher`, which keeps only
//! the latest state, so a very short `Suspended` may be skipped (kazoo reports each).
//! Recipes that must see every reconnect (the tree cache) read the session events of
//! their persistent watcher instead, which are never coalesced.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use zookeeper_client::{Client, SessionState, StateWatcher};

use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// kazoo's `KazooState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Connected: the session is alive and requests go through.
    Connected,
    /// The connection dropped; the session may still be alive on the servers, so what it
    /// holds (ephemeral nodes, locks) may still be held. Requests wait for the reconnect.
    Suspended,
    /// The session is gone (expired, closed, or authentication failed): every ephemeral
    /// node it made is deleted and every lock it held is lost.
    Lost,
}

/// The connection's state and how many sessions came before the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The kazoo state.
    pub state: ConnState,
    /// 0 for the first session, then one more for each fresh session made after a loss.
    pub epoch: u64,
}

/// How to connect, and how to make a fresh session after one was lost.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The session timeout to ask for; the server bounds it (kazoo's default: 10 s).
    pub session_timeout: Duration,
    /// Idle time after which a connection is given up (the client's default: 2/5 of the
    /// session timeout).
    pub connection_timeout: Option<Duration>,
    /// Credentials as `(scheme, auth)`, for example `("digest", b"user:password")`.
    pub auth: Vec<(String, Vec<u8>)>,
    /// The pause between attempts to make a fresh session after a loss (retried forever
    /// until the connection is closed).
    pub reconnect: RetryPolicy,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            session_timeout: Duration::from_secs(10),
            connection_timeout: None,
            auth: Vec::new(),
            reconnect: RetryPolicy {
                max_delay: Duration::from_secs(2),
                ..RetryPolicy::forever()
            },
        }
    }
}

/// Identifies a listener added with [`Connection::add_listener`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

type Listener = Arc<dyn Fn(ConnState) + Send + Sync>;

/// A ZooKeeper connection with kazoo's states, listeners and fresh sessions after a loss.
/// Cheap to clone; every clone is the same connection.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    servers: String,
    options: ConnectOptions,
    /// The current session's client; `None` once closed.
    client: Mutex<Option<Client>>,
    status: watch::Sender<Status>,
    listeners: Mutex<Vec<(ListenerId, Listener)>>,
    next_listener: AtomicU64,
    closed: AtomicBool,
    monitor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("servers", &self.inner.servers)
            .field("status", &self.status())
            .finish()
    }
}

impl Connection {
    /// Connects to `servers` (`host:port,host:port[/chroot]`) with a new session. Must be
    /// called inside a tokio runtime, which then runs the session.
    pub async fn connect(servers: &str, options: ConnectOptions) -> Result<Connection> {
        let client = connector(&options).connect(servers).await?;
        let watcher = client.state_watcher();
        let (status, _) = watch::channel(Status {
            state: ConnState::Connected,
            epoch: 0,
        });
        let inner = Arc::new(Inner {
            servers: servers.to_owned(),
            options,
            client: Mutex::new(Some(client)),
            status,
            listeners: Mutex::new(Vec::new()),
            next_listener: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            monitor: Mutex::new(None),
        });
        let task = tokio::spawn(monitor(Arc::downgrade(&inner), watcher));
        *inner
            .monitor
            .lock()
            .expect("monitor lock is never poisoned") = Some(task);
        Ok(Connection { inner })
    }

    /// The current session's client. After a loss this is the fresh session's client once
    /// it is made; until then, the old one, whose requests fail with `SessionExpired`.
    pub fn client(&self) -> Result<Client> {
        let guard = self
            .inner
            .client
            .lock()
            .expect("client lock is never poisoned");
        guard.clone().ok_or(Error::Closed)
    }

    /// The current state and session epoch.
    pub fn status(&self) -> Status {
        *self.inner.status.borrow()
    }

    /// The current state.
    pub fn state(&self) -> ConnState {
        self.status().state
    }

    /// A receiver that sees every later change of [`Status`] (consecutive changes may be
    /// coalesced into the latest).
    pub fn status_watcher(&self) -> watch::Receiver<Status> {
        self.inner.status.subscribe()
    }

    /// The connect string this connection was made with.
    pub fn servers(&self) -> &str {
        &self.inner.servers
    }

    /// The options this connection was made with.
    pub fn options(&self) -> &ConnectOptions {
        &self.inner.options
    }

    /// True once [`Connection::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Calls `listener` with every later state change, from the connection's own task: it
    /// must return quickly and not block (kazoo's `add_listener`).
    pub fn add_listener<F>(&self, listener: F) -> ListenerId
    where
        F: Fn(ConnState) + Send + Sync + 'static,
    {
        let id = ListenerId(self.inner.next_listener.fetch_add(1, Ordering::SeqCst));
        let mut listeners = self
            .inner
            .listeners
            .lock()
            .expect("listeners lock is never poisoned");
        listeners.push((id, Arc::new(listener)));
        id
    }

    /// Removes a listener; false if it was not there.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        let mut listeners = self
            .inner
            .listeners
            .lock()
            .expect("listeners lock is never poisoned");
        let before = listeners.len();
        listeners.retain(|(l, _)| *l != id);
        listeners.len() != before
    }

    /// Waits until the state is `Connected`; [`Error::Closed`] if the connection is closed.
    pub async fn wait_connected(&self) -> Result<Status> {
        let mut rx = self.status_watcher();
        loop {
            if self.is_closed() {
                return Err(Error::Closed);
            }
            let status = *rx.borrow_and_update();
            if status.state == ConnState::Connected {
                return Ok(status);
            }
            if rx.changed().await.is_err() {
                return Err(Error::Closed);
            }
        }
    }

    /// Runs `op` with the current client under `policy`; each attempt gets the client that
    /// is current then, so an attempt after a session loss runs in the fresh session.
    pub async fn retry_with<T, F, Fut>(&self, policy: &RetryPolicy, mut op: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        policy
            .run(|| {
                let client = self.client();
                let fut = client.map(&mut op);
                async move { fut?.await }
            })
            .await
    }

    /// [`Connection::retry_with`] with kazoo's client policy ([`RetryPolicy::forever`]).
    pub async fn retry<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.retry_with(&RetryPolicy::forever(), op).await
    }

    /// Closes the connection: the state becomes `Lost` (as kazoo's `stop`), no fresh
    /// session is made, and the session is closed on the server once the recipes still
    /// running a request with it finish.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.inner
            .client
            .lock()
            .expect("client lock is never poisoned")
            .take();
        if let Some(task) = self.inner.monitor.lock().expect("monitor lock").take() {
            task.abort();
        }
        self.inner.transition(ConnState::Lost, false);
    }
}

impl Inner {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Moves to `state` (and the next epoch if `new_session`), then tells the listeners.
    fn transition(&self, state: ConnState, new_session: bool) {
        let changed = self.status.send_if_modified(|s| {
            let epoch = s.epoch + u64::from(new_session);
            if s.state == state && s.epoch == epoch {
                return false;
            }
            *s = Status { state, epoch };
            true
        });
        if !changed {
            return;
        }
        tracing::debug!(?state, new_session, "connection state");
        let listeners: Vec<Listener> = {
            let guard = self
                .listeners
                .lock()
                .expect("listeners lock is never poisoned");
            guard.iter().map(|(_, l)| l.clone()).collect()
        };
        for listener in listeners {
            listener(state);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut m) = self.monitor.lock()
            && let Some(task) = m.take()
        {
            task.abort();
        }
    }
}

fn connector(options: &ConnectOptions) -> zookeeper_client::Connector {
    let mut c = Client::connector().with_session_timeout(options.session_timeout);
    if let Some(t) = options.connection_timeout {
        c = c.with_connection_timeout(t);
    }
    for (scheme, auth) in &options.auth {
        c = c.with_auth(scheme, auth);
    }
    c
}

/// Follows the session's states; after a loss, makes fresh sessions until one sticks. Holds
/// the connection weakly, so dropping every `Connection` ends it.
async fn monitor(weak: Weak<Inner>, mut watcher: StateWatcher) {
    loop {
        let state = watcher.changed().await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.is_closed() {
            return;
        }
        match state {
            SessionState::Disconnected => inner.transition(ConnState::Suspended, false),
            SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                inner.transition(ConnState::Connected, false)
            }
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed => {
                tracing::info!(?state, "session lost; making a fresh one");
                inner.transition(ConnState::Lost, false);
                drop(inner);
                let Some(client) = fresh_session(&weak).await else {
                    return;
                };
                let Some(inner) = weak.upgrade() else { return };
                if inner.is_closed() {
                    return;
                }
                watcher = client.state_watcher();
                *inner.client.lock().expect("client lock is never poisoned") = Some(client);
                inner.transition(ConnState::Connected, true);
            }
        }
    }
}

/// Connects with a new session, pausing between failures as the reconnect policy says;
/// `None` once the connection is closed or dropped.
async fn fresh_session(weak: &Weak<Inner>) -> Option<Client> {
    let mut delay = None;
    loop {
        let (servers, options) = {
            let inner = weak.upgrade()?;
            if inner.is_closed() {
                return None;
            }
            (inner.servers.clone(), inner.options.clone())
        };
        let policy = &options.reconnect;
        match connector(&options).connect(&servers).await {
            Ok(client) => return Some(client),
            Err(err) => {
                let d = delay.unwrap_or(policy.delay);
                let sleep = policy.jittered(d);
                tracing::warn!(%err, ?sleep, "cannot make a fresh session yet");
                tokio::time::sleep(sleep).await;
                delay = Some(sleep.mul_f64(policy.backoff).min(policy.max_delay));
            }
        }
    }
}
