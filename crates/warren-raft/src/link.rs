//! Client streams from this node to its peers: forwarded writes, read-index requests and
//! application messages, pipelined over one connection per peer.
//!
//! A [`Link`] owns the stream to one peer. Requests enter its bounded queue in call order and
//! its task writes them in that order (so a follower's forwards reach the leader in the order
//! `submit` was called); replies come back in any order and are matched by id. The stream is
//! opened lazily and reopened by the next request after a failure. When it fails (or is
//! reset because the leader changed) every request written on it and still waiting fails as
//! `Lost` (a forward then is `Indeterminate`: the leader may or may not have enqueued it);
//! when no stream can be opened, what is queued fails as `Unsent` (certainly not enqueued).
//!
//! Each new stream carries a larger epoch in its handshake; the leader refuses forwards from
//! an older stream of the same follower once a newer one opened (see `Core::submit_forwarded`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::network::{PeerStream, PeerTransport, dial};
use crate::peer_server::CLIENT_INFLIGHT_MAX;
use crate::wire::{self, ClientReply, ClientRequest, Hello, StreamKind};

/// Frames queued for one link's writer, at most; `send_app` drops when it is full.
const LINK_QUEUE: usize = 1024;

/// What waits for a reply: the frame's id → where its outcome goes.
type Pending = Arc<Mutex<HashMap<u64, Reply>>>;
type Reply = oneshot::Sender<Result<ClientReply, LinkError>>;

/// A frame queued on a link, with where its reply goes (none for a message).
struct Outgoing {
    frame: Vec<u8>,
    reply: Option<(u64, Reply)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().expect("a link lock holder never panics")
}

/// Why a request on a link got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkError {
    /// The link is closed (node shutting down).
    Closed,
    /// The request was never written: no stream to the peer could be opened.
    Unsent,
    /// The stream failed or was reset after the request was written, before the reply.
    Lost,
    /// No reply in time.
    TimedOut,
}

/// The links of one node, by peer id.
pub(crate) struct Links {
    me: u64,
    transport: Arc<dyn PeerTransport>,
    connect_timeout: Duration,
    links: Mutex<HashMap<u64, Arc<Link>>>,
    /// Source of stream epochs: starts at the wall clock in microseconds, so a restarted node's
    /// streams are newer than its previous life's.
    epoch: Arc<AtomicU64>,
}

impl Links {
    pub(crate) fn new(
        me: u64,
        transport: Arc<dyn PeerTransport>,
        connect_timeout: Duration,
    ) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        Links {
            me,
            transport,
            connect_timeout,
            links: Mutex::new(HashMap::new()),
            epoch: Arc::new(AtomicU64::new(now)),
        }
    }

    /// The link to `target` at `addr`, made if need be (or remade if the address changed).
    pub(crate) fn get(&self, target: u64, addr: &str) -> Arc<Link> {
        let mut links = lock(&self.links);
        if let Some(l) = links.get(&target)
            && l.addr == addr
        {
            return l.clone();
        }
        let link = Arc::new(Link::spawn(
            self.me,
            target,
            addr.to_string(),
            self.transport.clone(),
            self.connect_timeout,
            self.epoch.clone(),
        ));
        links.insert(target, link.clone());
        link
    }

    /// Drops the stream to `target` (if any) and fails what waits on it.
    pub(crate) fn reset(&self, target: u64) {
        if let Some(l) = lock(&self.links).get(&target) {
            l.reset.notify_one();
        }
    }

    /// Stops every link.
    pub(crate) fn shutdown(&self) {
        for (_, l) in lock(&self.links).drain() {
            l.inflight.close();
            l.task.abort();
        }
    }
}

/// The client stream to one peer.
pub(crate) struct Link {
    addr: String,
    tx: mpsc::Sender<Outgoing>,
    next_id: AtomicU64,
    inflight: Arc<Semaphore>,
    reset: Arc<Notify>,
    /// False after the last attempt to open the stream failed, until one succeeds.
    reachable: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request written to a link, waiting for its reply.
pub(crate) struct Waiting {
    rx: oneshot::Receiver<Result<ClientReply, LinkError>>,
    _permit: OwnedSemaphorePermit,
}

impl Waiting {
    /// The reply, within `timeout`.
    pub(crate) async fn reply(self, timeout: Duration) -> Result<ClientReply, LinkError> {
        match tokio::time::timeout(timeout, self.rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(LinkError::Lost),
            Err(_) => Err(LinkError::TimedOut),
        }
    }
}

impl Link {
    fn spawn(
        me: u64,
        target: u64,
        addr: String,
        transport: Arc<dyn PeerTransport>,
        connect_timeout: Duration,
        epoch: Arc<AtomicU64>,
    ) -> Link {
        let (tx, rx) = mpsc::channel(LINK_QUEUE);
        let reset = Arc::new(Notify::new());
        let reachable = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn(
            Writer {
                me,
                target,
                addr: addr.clone(),
                transport,
                connect_timeout,
                epoch,
                pending: Pending::default(),
                reset: reset.clone(),
                reachable: reachable.clone(),
            }
            .run(rx),
        );
        Link {
            addr,
            tx,
            next_id: AtomicU64::new(1),
            inflight: Arc::new(Semaphore::new(CLIENT_INFLIGHT_MAX)),
            reset,
            reachable,
            task,
        }
    }

    /// Queues a request that expects a reply; returns once it is queued (its place in the
    /// stream is fixed). `make` builds the request from its id.
    pub(crate) async fn request(
        &self,
        make: impl FnOnce(u64) -> ClientRequest,
    ) -> Result<Waiting, LinkError> {
        let permit = self
            .inflight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| LinkError::Closed)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let out = Outgoing {
            frame: wire::encode_client_request(&make(id)),
            reply: Some((id, tx)),
        };
        if self.tx.send(out).await.is_err() {
            return Err(LinkError::Closed);
        }
        Ok(Waiting {
            rx,
            _permit: permit,
        })
    }

    /// Whether the last attempt to open the stream succeeded (true before any).
    pub(crate) fn reachable(&self) -> bool {
        self.reachable.load(Ordering::SeqCst)
    }

    /// Queues a message without reply; false (dropped) if the queue is full or closed.
    pub(crate) fn send(&self, req: &ClientRequest) -> bool {
        let out = Outgoing {
            frame: wire::encode_client_request(req),
            reply: None,
        };
        self.tx.try_send(out).is_ok()
    }
}

/// The task that owns a link's stream.
struct Writer {
    me: u64,
    target: u64,
    addr: String,
    transport: Arc<dyn PeerTransport>,
    connect_timeout: Duration,
    epoch: Arc<AtomicU64>,
    pending: Pending,
    reset: Arc<Notify>,
    reachable: Arc<AtomicBool>,
}

/// A live stream: its write half and the task reading replies off its read half.
struct Conn {
    wr: BufWriter<WriteHalf<PeerStream>>,
    reader: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Outgoing>) {
        let mut conn: Option<Conn> = None;
        loop {
            let reader_done = async {
                match conn.as_mut() {
                    Some(c) => {
                        let _ = (&mut c.reader).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = self.reset.notified() => {
                    self.drop_conn(&mut conn, "reset (leader changed)");
                }
                () = reader_done => {
                    self.drop_conn(&mut conn, "the peer closed the stream");
                }
                out = rx.recv() => {
                    let Some(out) = out else { return };
                    self.write(&mut conn, out, &mut rx).await;
                }
            }
        }
    }

    /// Writes `out` and whatever else is queued, then flushes; connects first if need be.
    async fn write(
        &self,
        conn: &mut Option<Conn>,
        out: Outgoing,
        rx: &mut mpsc::Receiver<Outgoing>,
    ) {
        if conn.is_none() {
            match self.connect().await {
                Ok(c) => {
                    self.reachable.store(true, Ordering::SeqCst);
                    *conn = Some(c);
                }
                Err(e) => {
                    self.reachable.store(false, Ordering::SeqCst);
                    tracing::debug!(target = self.target, error = %e, "client stream unavailable");
                    // Nothing queued was written: all of it fails as unsent.
                    unsent(out);
                    while let Ok(out) = rx.try_recv() {
                        unsent(out);
                    }
                    return;
                }
            }
        }
        let c = conn.as_mut().expect("connected just above");
        let mut result = self.write_one(c, out).await;
        while result.is_ok() {
            match rx.try_recv() {
                Ok(next) => result = self.write_one(c, next).await,
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = c.wr.flush().await;
        }
        if let Err(e) = result {
            self.drop_conn(conn, &format!("write failed: {e}"));
        }
    }

    /// Registers the reply (before the frame can be answered) and writes the frame.
    async fn write_one(&self, c: &mut Conn, out: Outgoing) -> std::io::Result<()> {
        if let Some((id, reply)) = out.reply {
            lock(&self.pending).insert(id, reply);
        }
        c.wr.write_all(&out.frame).await
    }

    fn drop_conn(&self, conn: &mut Option<Conn>, why: &str) {
        if conn.take().is_some() {
            tracing::debug!(target = self.target, why, "client stream dropped");
        }
        self.fail_all();
    }

    /// Every written request still waiting fails as lost.
    fn fail_all(&self) {
        for (_, reply) in lock(&self.pending).drain() {
            let _ = reply.send(Err(LinkError::Lost));
        }
    }

    async fn connect(&self) -> Result<Conn, crate::TransportError> {
        let hello = Hello {
            kind: StreamKind::Client,
            from: self.me,
            to: self.target,
            epoch: self.epoch.fetch_add(1, Ordering::SeqCst),
        };
        let stream = dial(&*self.transport, hello, &self.addr, self.connect_timeout).await?;
        let (rd, wr) = tokio::io::split(stream);
        let reader = tokio::spawn(read_replies(BufReader::new(rd), self.pending.clone()));
        Ok(Conn {
            wr: BufWriter::new(wr),
            reader,
        })
    }
}

/// Fails a request that was never written.
fn unsent(out: Outgoing) {
    if let Some((_, reply)) = out.reply {
        let _ = reply.send(Err(LinkError::Unsent));
    }
}

/// Reads replies and hands each to its waiter, until the stream fails.
async fn read_replies(mut rd: BufReader<ReadHalf<PeerStream>>, pending: Pending) {
    loop {
        let body = match wire::read_frame(&mut rd, wire::CLIENT_FRAME_BYTES_MAX).await {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(error = %e, "client stream read ended");
                return;
            }
        };
        let reply = match wire::decode_client_reply(&body) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "undecodable reply; closing the client stream");
                return;
            }
        };
        let id = match &reply {
            ClientReply::Forward { id, .. }
            | ClientReply::ReadIndex { id, .. }
            | ClientReply::AppCall { id, .. } => *id,
        };
        if let Some(tx) = lock(&pending).remove(&id) {
            let _ = tx.send(Ok(reply));
        }
    }
}
