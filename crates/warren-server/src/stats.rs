//! Gathers a [`ServerStats`] snapshot from a running server for the four-letter words.

use crate::fourlw::{
    ConnectionStats, EnvironmentInfo, LeaderStats, QuorumStats, ServerMode, ServerStats,
    SessionStats, WatchEntry,
};
use crate::server::ServerCtx;

/// A snapshot of the server's state now.
pub fn collect(ctx: &ServerCtx) -> ServerStats {
    let shared = &ctx.shared;
    let status = ctx.raft.status();
    let mode = if ctx.cfg.servers.len() <= 1 {
        ServerMode::Standalone
    } else if ctx.quorum.read_only() {
        ServerMode::ReadOnly
    } else {
        match status.role {
            warren_raft::Role::Leader => ServerMode::Leader,
            warren_raft::Role::Learner => ServerMode::Observer,
            _ => ServerMode::Follower,
        }
    };
    let conns = shared.conns.lock().all();
    let (watch_count, watches) = {
        let w = shared.watches.lock();
        let entries = w
            .by_session()
            .into_iter()
            .flat_map(|(s, paths)| {
                paths.into_iter().map(move |path| WatchEntry {
                    session_id: s.0,
                    path,
                })
            })
            .collect::<Vec<_>>();
        (w.summary().watches as u64, entries)
    };
    let tree = shared.tree.read();
    let sessions = tree
        .sessions()
        .map(|(id, s)| SessionStats {
            session_id: id.0,
            expires_at_ms: 0,
            ephemerals: s.ephemerals().map(str::to_owned).collect(),
        })
        .collect();
    let connections = conns
        .iter()
        .map(|c| ConnectionStats {
            remote: c.peer,
            interest_ops: 1,
            queued: c.state.lock().queue.len() as u64,
            received: 0,
            sent: 0,
            session_id: c.session().0,
            last_operation: "NA".to_owned(),
            established_ms: 0,
            session_timeout_ms: tree.session(c.session()).map_or(0, |s| s.timeout_ms),
            last_cxid: -1,
            last_zxid: -1,
            last_response_ms: 0,
            last_latency_ms: 0,
            latency_ms_min: 0,
            latency_ms_avg: 0,
            latency_ms_max: 0,
            expires_at_ms: 0,
        })
        .collect();
    ServerStats {
        mode,
        server_id: shared.node_id,
        client_port: Some(ctx.client_port),
        secure_client_port: ctx.cfg.secure_client_port,
        packets_received: ctx.stats.packets_received(),
        last_zxid: tree.last_zxid().0,
        node_count: tree.node_count() as u64,
        watch_count,
        ephemerals_count: tree.ephemeral_count() as u64,
        approximate_data_size: tree.approximate_data_size().max(0) as u64,
        global_sessions: tree.session_count() as u64,
        uptime_ms: shared.started.elapsed().as_millis() as u64,
        connections,
        watches,
        sessions,
        environment: EnvironmentInfo::from_process(),
        raft_term: (mode != ServerMode::Standalone).then_some(status.term),
        quorum: (mode != ServerMode::Standalone).then(|| quorum(&status)),
        cut_off: ctx.quorum.cut_off() && !ctx.quorum.read_only(),
        membership: tree
            .get_data(warren_tree::config::CONFIG_PATH)
            .and_then(|(data, _)| data)
            .filter(|data| !data.is_empty())
            .map(|data| String::from_utf8_lossy(data).into_owned()),
        ..ServerStats::default()
    }
}

/// The ensemble's state as `mntr` reports it: ZooKeeper's peer state, the quorum size, and
/// for the leader the learners and those in sync (matched up to the leader's last entry).
fn quorum(status: &warren_raft::NodeStatus) -> QuorumStats {
    let peer_state = match status.role {
        warren_raft::Role::Leader => "leading - broadcast",
        warren_raft::Role::Follower | warren_raft::Role::Learner => "following - broadcast",
        _ => "looking",
    };
    let leader = (status.role == warren_raft::Role::Leader).then(|| {
        let in_sync = |id: &u64| {
            *id != status.id
                && status.replication.get(id).copied().flatten() == status.last_log_index
        };
        LeaderStats {
            learners: (status.voters.len() + status.learners.len()).saturating_sub(1) as u64,
            synced_followers: status.voters.iter().filter(|id| in_sync(id)).count() as u64,
            synced_observers: status.learners.iter().filter(|id| in_sync(id)).count() as u64,
            proposal_bytes_last: -1,
            proposal_bytes_min: -1,
            proposal_bytes_max: -1,
            ..LeaderStats::default()
        }
    });
    QuorumStats {
        peer_state: peer_state.to_owned(),
        quorum_size: status.voters.len() as u64,
        leader,
    }
}
