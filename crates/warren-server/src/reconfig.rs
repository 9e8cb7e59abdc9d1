//! `reconfig` (opcode 16): the request's strings parsed into a log op, and the leader making
//! Raft's membership follow `/zookeeper/config`.
//!
//! Twin of the reconfig case of ZooKeeper's `PrepRequestProcessor` (parsing) and of the
//! leader's `Leader.processReconfig`. The flow, "log the intent, decide at apply":
//! 1. Any server parses the request (`joiningServers` and `leavingServers`, comma-separated,
//!    or `newMembers`) into [`Op::Reconfig`], canonicalising each `server.N=` spec;
//!    unparsable input becomes `malformed` (BadArguments at apply, after the version
//!    check, as ZooKeeper orders them). Disabled (`reconfigEnabled=false`, or a standalone
//!    server, which is ZooKeeper's `ZooKeeperServerMain`) is `Op::Refused(ReconfigDisabled)`.
//! 2. The op goes through the log like any write (a follower's write is forwarded to the
//!    leader), so every server applies it at the same position: the tree checks version,
//!    arguments and ACL and rewrites `/zookeeper/config`, whose version is the op's zxid.
//! 3. The leader reconciles Raft's membership with the applied configuration every half
//!    tick ([`reconcile`]): missing members are added as learners, participants become
//!    voters (`change_membership`, through a joint configuration), members gone from the
//!    configuration are removed. It is one step at a time and idempotent, so a new leader
//!    simply carries on. The client's reply comes from the apply (step 2), before the
//!    membership has caught up: unlike ZooKeeper, a joining participant that never runs does
//!    not fail the reconfig with NewConfigNoQuorum; the voters then include it and a
//!    majority must still be up.
//!
//! The configuration starts as zoo.cfg's `server.N` lines: the first leader of an ensemble
//! writes them into the empty `/zookeeper/config` through the log ([`Op::SetConfig`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{debug, info, warn};
use warren_proto::records::ReconfigRequest;
use warren_tree::Op;
use warren_tree::config::{CONFIG_PATH, ConfigServer, parse_config};

use crate::config::{PeerRole, ServerSpec, parse_server_line};
use crate::server::ServerCtx;

/// `server.N=spec`, with any id (the tree's configuration takes u64 ids; a server that
/// runs must still have an id of 1..=255).
fn parse_joiner(text: &str) -> Option<ConfigServer> {
    let (key, value) = text.split_once('=')?;
    if value.contains('=') {
        return None;
    }
    let id: u64 = key.trim().rsplit('.').next()?.parse().ok()?;
    let spec = parse_server_line(key.trim(), "1", value.trim()).ok()?;
    // ZooKeeper: "each server should have 3 ports specified".
    spec.client_port?;
    Some(ConfigServer {
        id,
        spec: spec.to_string(),
    })
}

/// Comma-separated items, trimmed, empties dropped (commons-lang `StringUtils.split`).
fn items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

/// The log op of a reconfig request on a server where reconfig is enabled; `initial` is
/// zoo.cfg's members (see [`Op::Reconfig`]).
pub fn reconfig_op(r: &ReconfigRequest, initial: Vec<ConfigServer>) -> Op {
    let joining: Option<Vec<ConfigServer>> = items(&r.joining_servers).map(parse_joiner).collect();
    let leaving: Option<Vec<u64>> = items(&r.leaving_servers)
        .map(|id| id.parse::<u64>().ok())
        .collect();
    // newMembers may be separated by commas or newlines (ZooKeeper reads it as properties).
    let new_members: Option<Option<Vec<ConfigServer>>> = if r.new_members.trim().is_empty() {
        Some(None)
    } else {
        r.new_members
            .split([',', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("version="))
            .map(parse_joiner)
            .collect::<Option<Vec<_>>>()
            .map(Some)
    };
    let nothing = r.joining_servers.trim().is_empty()
        && r.leaving_servers.trim().is_empty()
        && r.new_members.trim().is_empty();
    let malformed = nothing || joining.is_none() || leaving.is_none() || new_members.is_none();
    Op::Reconfig {
        from_config: r.cur_config_id,
        malformed,
        joining: joining.unwrap_or_default(),
        leaving: leaving.unwrap_or_default(),
        new_members: new_members.flatten(),
        initial,
    }
}

/// zoo.cfg's members as the configuration's first content.
pub fn initial_config(servers: &[ServerSpec]) -> Vec<ConfigServer> {
    servers
        .iter()
        .map(|s| ConfigServer {
            id: u64::from(s.id),
            spec: s.to_string(),
        })
        .collect()
}

/// A member as Raft needs it: peer address and whether it votes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    addr: String,
    voter: bool,
}

fn wanted(servers: &BTreeMap<u64, ConfigServer>) -> BTreeMap<u64, Wanted> {
    servers
        .values()
        .filter_map(|s| {
            let key = format!("server.{}", s.id);
            let spec = parse_server_line(&key, "1", &s.spec).ok()?;
            let addr = if spec.host.contains(':') {
                format!("[{}]:{}", spec.host, spec.peer_port)
            } else {
                format!("{}:{}", spec.host, spec.peer_port)
            };
            let voter = spec.role == PeerRole::Participant;
            Some((s.id, Wanted { addr, voter }))
        })
        .collect()
}

/// One step of making Raft's membership follow `/zookeeper/config`, on the leader; at most
/// one runs at a time (`busy`). Seeds an empty configuration from zoo.cfg first.
pub fn reconcile(ctx: &Arc<ServerCtx>, busy: &Arc<AtomicBool>) {
    if ctx.cfg.servers.is_empty() || busy.swap(true, Ordering::AcqRel) {
        return;
    }
    let data = ctx
        .shared
        .tree
        .read()
        .get_data(CONFIG_PATH)
        .and_then(|(d, _)| d.map(<[u8]>::to_vec))
        .unwrap_or_default();
    let ctx = ctx.clone();
    let busy = busy.clone();
    tokio::spawn(async move {
        step(&ctx, &data).await;
        busy.store(false, Ordering::Release);
    });
}

async fn step(ctx: &ServerCtx, data: &[u8]) {
    if data.is_empty() {
        let servers = initial_config(&ctx.cfg.servers);
        if let Err(e) = ctx.propose_and_wait(Op::SetConfig { servers }).await {
            debug!(error = %e, "writing the initial /zookeeper/config failed");
        }
        return;
    }
    // The configuration is written: it alone says who the members are from now on (an
    // observer zoo.cfg lists is not added back after a reconfig removed it).
    ctx.raft.hand_over_membership();
    let (servers, version) = parse_config(data);
    let want = wanted(&servers);
    let status = ctx.raft.status();
    let raft = &ctx.raft;
    let result = if let Some((id, w)) = want.iter().find(|(id, _)| !status.members.contains_key(id))
    {
        info!(node = id, addr = %w.addr, version = format_args!("{version:x}"), "reconfig: adding a learner");
        raft.add_learner(*id, w.addr.clone()).await
    } else {
        let voters: BTreeSet<u64> = want
            .iter()
            .filter(|(_, w)| w.voter)
            .map(|(id, _)| *id)
            .collect();
        if !voters.is_empty() && voters != status.voters {
            info!(
                ?voters,
                version = format_args!("{version:x}"),
                "reconfig: changing the voters"
            );
            raft.change_membership(voters).await
        } else if let Some(gone) = status.learners.iter().find(|id| !want.contains_key(id)) {
            info!(
                node = gone,
                version = format_args!("{version:x}"),
                "reconfig: removing a learner"
            );
            raft.remove_node(*gone).await
        } else {
            return;
        }
    };
    if let Err(e) = result {
        warn!(error = %e, "reconfig: membership change failed; retrying");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(joining: &str, leaving: &str, new_members: &str, from: i64) -> ReconfigRequest {
        ReconfigRequest {
            joining_servers: joining.into(),
            leaving_servers: leaving.into(),
            new_members: new_members.into(),
            cur_config_id: from,
        }
    }

    #[test]
    fn joiners_are_canonicalised_and_bad_input_is_marked_malformed() {
        let op = reconfig_op(
            &request(
                "server.100=0.0.0.0:1:2:observer;0.0.0.0:3, server.4=h:5:6;7",
                "2,3",
                "",
                -1,
            ),
            vec![],
        );
        let Op::Reconfig {
            joining,
            leaving,
            malformed,
            new_members,
            ..
        } = op
        else {
            panic!("a reconfig op");
        };
        assert!(!malformed);
        assert_eq!(leaving, [2, 3]);
        assert_eq!(new_members, None);
        let specs: Vec<_> = joining.iter().map(|s| (s.id, s.spec.as_str())).collect();
        assert_eq!(
            specs,
            [
                (100, "0.0.0.0:1:2:observer;0.0.0.0:3"),
                (4, "h:5:6:participant;0.0.0.0:7")
            ]
        );
        for bad in [
            request("some thing", "", "", -1),
            request("server.5=h:1:2", "", "", -1),
            request("", "x", "", -1),
            request("", "", "", -1),
            request("", "", "server.1=h:1:2:participant;3,garbage", -1),
        ] {
            let Op::Reconfig { malformed, .. } = reconfig_op(&bad, vec![]) else {
                panic!("a reconfig op");
            };
            assert!(malformed, "{bad:?} is malformed");
        }
    }

    #[test]
    fn new_members_replace_the_configuration() {
        let op = reconfig_op(
            &request("", "", "server.1=h:1:2;3\nserver.2=h:4:5;6", 7),
            vec![],
        );
        let Op::Reconfig {
            new_members,
            from_config,
            ..
        } = op
        else {
            panic!("a reconfig op");
        };
        assert_eq!(from_config, 7);
        assert_eq!(new_members.map(|m| m.len()), Some(2));
    }
}
