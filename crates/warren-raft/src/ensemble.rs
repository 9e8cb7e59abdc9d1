//! The background work of an ensemble member: forming the ensemble exactly once, adding the
//! configured learners when leading, and resetting the stream to a leader that lost its
//! leadership (so forwards waiting on it fail at once as `Indeterminate`).
//!
//! # Formation
//! Only the lowest voter id of `RaftConfig::members` ever calls openraft's `initialize`, and
//! only while its own log and vote are empty. Before it does, it probes the other voters
//! (a Raft-stream `Probe`): if any answers that it already belongs to an ensemble, there is
//! one, and this node (say, with a wiped data directory) waits to be caught up by its leader
//! instead; if a majority of the voters (itself included) answer that they never did, it
//! initializes. Every other node only waits to be contacted, so the starting order does not
//! matter and an ensemble forms once. (Caveat: if the lowest voter's directory is wiped
//! while a majority of the others are also wiped or down-and-then-wiped, it forms anew; data
//! loss on a majority is beyond what any consensus can undo.)

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::join_all;
use openraft::ServerState;
use openraft::async_runtime::watch::WatchReceiver;
use tokio::time::Instant;

use crate::config::RaftConfig;
use crate::core::Core;
use crate::link::Links;
use crate::network::{NetTimes, PeerClient, PeerTransport};
use crate::types::PeerNode;
use crate::wire::{self, RaftReply};

/// The voters of `cfg` as openraft's membership nodes.
pub(crate) fn voter_nodes(cfg: &RaftConfig) -> BTreeMap<u64, PeerNode> {
    cfg.members
        .iter()
        .map(|(id, addr)| (*id, PeerNode { addr: addr.clone() }))
        .collect()
}

/// Runs until the node shuts down (the task is aborted) or its core stops.
pub(crate) async fn run(
    core: Arc<Core>,
    links: Arc<Links>,
    transport: Arc<dyn PeerTransport>,
    cfg: RaftConfig,
) {
    if cfg.members.keys().next() == Some(&cfg.node_id) && !cfg.sole_voter() {
        form(&core, &transport, &cfg).await;
    }
    watch(&core, &links, &cfg).await;
}

/// Majority of `n` voters.
fn majority(n: usize) -> usize {
    n / 2 + 1
}

async fn form(core: &Core, transport: &Arc<dyn PeerTransport>, cfg: &RaftConfig) {
    let pause = Duration::from_millis(cfg.election_timeout_min_ms);
    let times = NetTimes {
        rpc_floor: pause,
        snapshot_install: pause,
    };
    loop {
        match core.raft.is_initialized().await {
            Ok(false) => {}
            Ok(true) | Err(_) => return,
        }
        let probes = cfg
            .members
            .iter()
            .filter(|(id, _)| **id != cfg.node_id)
            .map(|(id, addr)| {
                let mut client =
                    PeerClient::new(cfg.node_id, *id, addr.clone(), transport.clone(), times);
                async move { client.call(&wire::encode_probe(), pause).await }
            });
        let answers = join_all(probes).await;
        let mut fresh = 1; // this node
        for a in answers {
            match a {
                Ok(RaftReply::Probe { initialized: true }) => {
                    tracing::info!(
                        node = cfg.node_id,
                        "a peer already belongs to an ensemble: waiting to be caught up"
                    );
                    return;
                }
                Ok(RaftReply::Probe { initialized: false }) => fresh += 1,
                _ => {}
            }
        }
        if fresh >= majority(cfg.members.len()) {
            tracing::info!(node = cfg.node_id, members = ?cfg.members, fresh, "forming a new ensemble");
            if let Err(e) = core.raft.initialize(voter_nodes(cfg)).await {
                tracing::warn!(error = %e, "initialize refused");
            }
            return;
        }
        tracing::debug!(fresh, "not enough voters answer yet to form the ensemble");
        tokio::time::sleep(pause).await;
    }
}

async fn watch(core: &Core, links: &Links, cfg: &RaftConfig) {
    let me = cfg.node_id;
    // The server metrics change only with the state, the leader or the membership; the full
    // metrics change several times per entry, and each change woke this task.
    let mut rx = core.raft.server_metrics();
    let mut last_leader: Option<u64> = None;
    let mut next_learner_try = Instant::now();
    let retry = Duration::from_millis(cfg.election_timeout_min_ms);
    loop {
        let (leader, leading, missing) = {
            let m = rx.borrow_watched();
            let known: BTreeSet<u64> = m.membership_config.nodes().map(|(id, _)| *id).collect();
            let missing: Vec<(u64, String)> = cfg
                .learners
                .iter()
                .filter(|(id, _)| !known.contains(id))
                .map(|(id, a)| (*id, a.clone()))
                .collect();
            (m.current_leader, m.state == ServerState::Leader, missing)
        };
        if leader != last_leader {
            if let Some(old) = last_leader
                && old != me
            {
                links.reset(old);
            }
            last_leader = leader;
        }
        let handed_over = core.membership_handed_over.load(Ordering::Relaxed);
        if leading && !handed_over && !missing.is_empty() && Instant::now() >= next_learner_try {
            for (id, addr) in missing {
                match core.raft.add_learner(id, PeerNode { addr }, false).await {
                    Ok(_) => tracing::info!(learner = id, "learner (observer) added"),
                    Err(e) => tracing::debug!(learner = id, error = %e, "adding a learner failed"),
                }
            }
            next_learner_try = Instant::now() + retry;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            () = tokio::time::sleep(retry) => {}
        }
    }
}
