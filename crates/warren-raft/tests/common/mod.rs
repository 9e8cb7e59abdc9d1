//! A harness for multi-node tests: real TCP on 127.0.0.1, the toy list state machine, a
//! transport wrapper that can cut nodes off (partitions), and bounded waits.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use warren_raft::{
    ConnectFuture, MemBackend, PeerStream, PeerTransport, ProposeError, RaftConfig, RaftNode, Role,
    StateMachine, TcpTransport, TransportError,
};

/// What the toy state machine holds: every applied (index, payload), in apply order.
pub type AppliedList = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

/// A toy state machine: the list of applied (index, payload), shared with the test.
#[derive(Clone, Default)]
pub struct ListSm {
    pub applied: AppliedList,
    pub restores: Arc<AtomicU64>,
}

impl ListSm {
    pub fn list(&self) -> Vec<(u64, Vec<u8>)> {
        self.applied.lock().unwrap().clone()
    }

    pub fn payloads(&self) -> Vec<Vec<u8>> {
        self.list().into_iter().map(|(_, p)| p).collect()
    }
}

/// A payload the toy state machine counts as `writes` transactions (one batched entry, as
/// the server's batches of client writes); any other payload counts one.
pub fn batch_payload(writes: u64) -> Vec<u8> {
    format!("batch-of-{writes}").into_bytes()
}

impl StateMachine for ListSm {
    fn apply(&mut self, index: u64, payload: &[u8]) -> u64 {
        self.applied.lock().unwrap().push((index, payload.to_vec()));
        std::str::from_utf8(payload)
            .ok()
            .and_then(|s| s.strip_prefix("batch-of-")?.parse().ok())
            .unwrap_or(1)
    }

    fn snapshot(&self) -> warren_raft::SnapshotEncoder {
        let mut out = Vec::new();
        for (i, p) in self.applied.lock().unwrap().iter() {
            out.extend_from_slice(&i.to_le_bytes());
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p);
        }
        Box::new(move || out)
    }

    fn restore(&mut self, mut snap: &[u8]) -> Result<(), String> {
        let mut list = Vec::new();
        while !snap.is_empty() {
            if snap.len() < 12 {
                return Err("short snapshot".into());
            }
            let i = u64::from_le_bytes(snap[..8].try_into().unwrap());
            let n = u32::from_le_bytes(snap[8..12].try_into().unwrap()) as usize;
            list.push((i, snap[12..12 + n].to_vec()));
            snap = &snap[12 + n..];
        }
        *self.applied.lock().unwrap() = list;
        self.restores.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Addresses on free local ports.
pub fn free_addrs(n: usize) -> Vec<String> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect()
}

/// Which pairs of nodes cannot talk; shared by every node's [`Faulty`] transport.
#[derive(Default)]
pub struct Net {
    cut: Mutex<BTreeSet<(u64, u64)>>,
    changed: Mutex<Option<watch::Sender<u64>>>,
}

impl Net {
    pub fn new() -> Arc<Net> {
        let (tx, _) = watch::channel(0);
        Arc::new(Net {
            cut: Mutex::default(),
            changed: Mutex::new(Some(tx)),
        })
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.lock().unwrap().as_ref().unwrap().subscribe()
    }

    fn bump(&self) {
        if let Some(tx) = self.changed.lock().unwrap().as_ref() {
            tx.send_modify(|g| *g += 1);
        }
    }

    pub fn is_cut(&self, a: u64, b: u64) -> bool {
        self.cut.lock().unwrap().contains(&(a.min(b), a.max(b)))
    }

    /// Cuts `id` off from every node in `others`, both ways, existing streams included.
    pub fn isolate(&self, id: u64, others: impl IntoIterator<Item = u64>) {
        {
            let mut cut = self.cut.lock().unwrap();
            for o in others {
                if o != id {
                    cut.insert((id.min(o), id.max(o)));
                }
            }
        }
        self.bump();
    }

    pub fn heal(&self) {
        self.cut.lock().unwrap().clear();
        self.bump();
    }
}

/// TCP through a pump that drops the stream when the pair is cut.
pub struct Faulty {
    pub me: u64,
    pub net: Arc<Net>,
}

impl PeerTransport for Faulty {
    fn connect<'a>(&'a self, target: u64, addr: &'a str) -> ConnectFuture<'a> {
        Box::pin(async move {
            let refused = || TransportError::Unreachable {
                target,
                addr: addr.to_string(),
                reason: "partitioned (test)".into(),
            };
            if self.net.is_cut(self.me, target) {
                return Err(refused());
            }
            let tcp = TcpTransport.connect(target, addr).await?;
            let (ours, theirs) = tokio::io::duplex(256 << 10);
            let net = self.net.clone();
            let me = self.me;
            let mut rx = net.subscribe();
            tokio::spawn(async move {
                let watch_cut = async {
                    loop {
                        if net.is_cut(me, target) {
                            return;
                        }
                        if rx.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                };
                let (tcp_r, tcp_w) = tokio::io::split(tcp);
                let (their_r, their_w) = tokio::io::split(theirs);
                tokio::select! {
                    () = pump(tcp_r, their_w, &net, me, target) => {}
                    () = pump(their_r, tcp_w, &net, me, target) => {}
                    () = watch_cut => {}
                }
            });
            Ok(Box::new(ours) as PeerStream)
        })
    }
}

/// Copies `r` to `w` until either ends or `a` and `b` are cut apart. The cut is checked after
/// every read, so nothing written after `Net::isolate` returned crosses it: a stream severed
/// only when its task noticed the cut let an entry appended just after the cut reach a
/// follower now and then, and that entry then rightly committed under the next leader.
async fn pump<R, W>(mut r: R, mut w: W, net: &Net, a: u64, b: u64)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if net.is_cut(a, b) || w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Test timings: fast heartbeats, elections within a fraction of a second.
pub fn tune(cfg: &mut RaftConfig) {
    cfg.heartbeat_interval_ms = 50;
    cfg.election_timeout_min_ms = 300;
    cfg.election_timeout_max_ms = 600;
    cfg.rpc_timeout_min_ms = 300;
    cfg.forward_timeout_ms = 5_000;
}

/// A cluster of in-process nodes over real TCP, with in-memory disks.
pub struct Cluster {
    pub members: BTreeMap<u64, String>,
    pub learners: BTreeMap<u64, String>,
    pub disks: BTreeMap<u64, MemBackend>,
    pub sms: BTreeMap<u64, ListSm>,
    pub nodes: BTreeMap<u64, Arc<RaftNode>>,
    pub net: Arc<Net>,
    pub tweak: fn(&mut RaftConfig),
}

impl Cluster {
    /// `voters` voters (ids 1..) and `learners` learners (ids after them), none started.
    pub fn new(voters: u64, learners: u64) -> Cluster {
        let addrs = free_addrs((voters + learners) as usize);
        let mut c = Cluster {
            members: BTreeMap::new(),
            learners: BTreeMap::new(),
            disks: BTreeMap::new(),
            sms: BTreeMap::new(),
            nodes: BTreeMap::new(),
            net: Net::new(),
            tweak: |_| {},
        };
        for (i, addr) in addrs.into_iter().enumerate() {
            let id = i as u64 + 1;
            if id <= voters {
                c.members.insert(id, addr);
            } else {
                c.learners.insert(id, addr);
            }
            c.disks.insert(id, MemBackend::new());
        }
        c
    }

    pub fn ids(&self) -> Vec<u64> {
        self.members
            .keys()
            .chain(self.learners.keys())
            .copied()
            .collect()
    }

    pub fn config(&self, id: u64) -> RaftConfig {
        let mut cfg = RaftConfig::new(id, self.members.clone(), "/unused");
        cfg.learners = self.learners.clone();
        tune(&mut cfg);
        (self.tweak)(&mut cfg);
        cfg
    }

    /// Starts node `id` on its (possibly previous) disk, with a fresh state machine.
    pub async fn start(&mut self, id: u64) -> Arc<RaftNode> {
        let sm = ListSm::default();
        let transport = Arc::new(Faulty {
            me: id,
            net: self.net.clone(),
        });
        let node = RaftNode::start_with(
            self.config(id),
            Box::new(sm.clone()),
            self.disks[&id].backends(),
            transport,
        )
        .await
        .unwrap();
        let node = Arc::new(node);
        self.sms.insert(id, sm);
        self.nodes.insert(id, node.clone());
        node
    }

    pub async fn start_all(&mut self) {
        for id in self.ids() {
            self.start(id).await;
        }
    }

    pub async fn stop(&mut self, id: u64) {
        if let Some(n) = self.nodes.remove(&id) {
            n.shutdown().await;
        }
    }

    pub async fn stop_all(&mut self) {
        for id in self.ids() {
            self.stop(id).await;
        }
    }

    pub fn node(&self, id: u64) -> &Arc<RaftNode> {
        &self.nodes[&id]
    }

    /// Waits until one running node leads and every running voter names it; returns it.
    pub async fn leader(&self) -> u64 {
        self.leader_among(&self.nodes.keys().copied().collect::<Vec<_>>())
            .await
    }

    /// As [`Cluster::leader`], over the nodes `ids` only.
    pub async fn leader_among(&self, ids: &[u64]) -> u64 {
        let mut found = 0;
        wait_until(Duration::from_secs(15), "an agreed leader", || {
            let statuses: Vec<_> = ids.iter().map(|id| self.nodes[id].status()).collect();
            let leaders: Vec<u64> = statuses
                .iter()
                .filter(|s| s.role == Role::Leader)
                .map(|s| s.id)
                .collect();
            if leaders.len() != 1 {
                return false;
            }
            found = leaders[0];
            statuses.iter().all(|s| s.leader == Some(found))
        })
        .await;
        found
    }

    /// A running node other than `not`.
    pub fn other_than(&self, not: &[u64]) -> u64 {
        *self
            .nodes
            .keys()
            .find(|id| !not.contains(id) && self.members.contains_key(id))
            .expect("another running voter")
    }

    /// Waits until every running node has applied the same list as node `id`, of `len`.
    pub async fn converged(&self, len: usize) -> Vec<(u64, Vec<u8>)> {
        let mut lists = Vec::new();
        wait_until(Duration::from_secs(15), "replicas to converge", || {
            lists = self.nodes.keys().map(|id| self.sms[id].list()).collect();
            lists[0].len() == len && lists.iter().all(|l| *l == lists[0])
        })
        .await;
        lists.swap_remove(0)
    }
}

/// Proposes through `node`, retrying while no leader can take it (elections in progress).
pub async fn propose_retry(node: &RaftNode, payload: Vec<u8>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match node.propose(payload.clone()).await {
            Ok(i) => return i,
            Err(ProposeError::NotLeader { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("proposal failed: {e}"),
        }
    }
}

/// A read barrier through `node`, retrying while no leader can serve it (elections).
pub async fn read_index_retry(node: &RaftNode) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match node.read_index().await {
            Ok(()) => return,
            Err(ProposeError::NotLeader { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("read barrier failed: {e}"),
        }
    }
}

pub fn payload(tag: &str, i: usize) -> Vec<u8> {
    format!("{tag}-{i}").into_bytes()
}
