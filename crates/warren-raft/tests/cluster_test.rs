//! Multi-node Raft over real TCP on 127.0.0.1: formation, forwarding, ordering, failover,
//! catch-up, snapshot install, read barriers on followers, partitions, learners, leadership
//! transfer and application messages.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Cluster, ListSm, free_addrs, payload, propose_retry, read_index_retry, tune, wait_until,
};
use warren_raft::{ProposeError, RaftConfig, RaftNode, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_form_whatever_the_start_order() {
    for order in [[1u64, 2, 3], [3, 2, 1], [2, 3, 1]] {
        // Why: every server starts with the same member list in any order; exactly one
        // ensemble must form, with every voter in it.
        let mut c = Cluster::new(3, 0);
        for (k, id) in order.iter().enumerate() {
            let node = c.start(*id).await;
            if k == 0 {
                // Alone, a node returns from start without a quorum and does not lead.
                tokio::time::sleep(Duration::from_millis(700)).await;
                assert_ne!(node.status().role, Role::Leader, "order {order:?}");
            }
        }
        let leader = c.leader().await;
        // A follower learns the leader from its vote, which can reach it a moment before the
        // membership entry reaches its log: wait for the membership everywhere.
        wait_until(
            Duration::from_secs(10),
            "the membership on every node",
            || {
                c.ids()
                    .into_iter()
                    .all(|id| c.node(id).status().voters == BTreeSet::from([1, 2, 3]))
            },
        )
        .await;
        for id in c.ids() {
            let st = c.node(id).status();
            assert_eq!(st.voters, BTreeSet::from([1, 2, 3]), "order {order:?}");
            assert_eq!(st.leader, Some(leader));
            assert_eq!(st.leader_addr.as_deref(), Some(c.members[&leader].as_str()));
        }
        propose_retry(c.node(order[0]), payload("formed", 0)).await;
        c.converged(1).await;
        c.stop_all().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_production_path_forms_over_tcp_and_disk() {
    // Why: `RaftNode::start` picks the TCP transport and real stores by itself.
    let addrs = free_addrs(3);
    let members: std::collections::BTreeMap<u64, String> = (1..=3)
        .map(|i| (i, addrs[i as usize - 1].clone()))
        .collect();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let sms: Vec<ListSm> = (0..3).map(|_| ListSm::default()).collect();
    let mut nodes = Vec::new();
    for i in [3u64, 1, 2] {
        let mut cfg = RaftConfig::new(i, members.clone(), dirs[i as usize - 1].path());
        tune(&mut cfg);
        let node = RaftNode::start(cfg, Box::new(sms[i as usize - 1].clone()))
            .await
            .unwrap();
        nodes.push(node);
    }
    for (k, node) in nodes.iter().enumerate() {
        propose_retry(node, payload("disk", k)).await;
    }
    wait_until(Duration::from_secs(10), "three applied everywhere", || {
        sms.iter().all(|s| s.list().len() == 3) && sms.iter().all(|s| s.list() == sms[0].list())
    })
    .await;
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_through_leader_and_followers_apply_in_one_order_everywhere() {
    let mut c = Cluster::new(3, 0);
    c.start_all().await;
    c.leader().await;

    // Why: a follower forwards; every node must apply the same entries in the same order,
    // and each proposer's own entries in the order it proposed them.
    let tasks: Vec<_> = c
        .ids()
        .into_iter()
        .map(|id| {
            let node = c.node(id).clone();
            tokio::spawn(async move {
                let mut indexes = Vec::new();
                for i in 0..40 {
                    indexes.push(propose_retry(&node, payload(&format!("n{id}"), i)).await);
                }
                indexes
            })
        })
        .collect();
    for t in tasks {
        let indexes = t.await.unwrap();
        assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{indexes:?}");
    }
    let list = c.converged(120).await;
    for id in c.ids() {
        let mine: Vec<Vec<u8>> = list
            .iter()
            .map(|(_, p)| p.clone())
            .filter(|p| p.starts_with(format!("n{id}-").as_bytes()))
            .collect();
        let want: Vec<Vec<u8>> = (0..40).map(|i| payload(&format!("n{id}"), i)).collect();
        assert_eq!(mine, want, "node {id}'s entries in its order");
    }
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_submits_from_a_follower_keep_their_order() {
    let mut c = Cluster::new(3, 0);
    c.start_all().await;
    let leader = c.leader().await;
    let follower = c.other_than(&[leader]);
    let node = c.node(follower).clone();

    // Why: the server submits a session's writes one after another without waiting; on a
    // follower they travel the forward stream and must enter the log in call order.
    const N: usize = 500;
    let t = Instant::now();
    let mut outcomes = Vec::new();
    for i in 0..N {
        outcomes.push(node.submit(payload("pipe", i)).await.unwrap());
    }
    let mut indexes = Vec::new();
    for o in outcomes {
        indexes.push(o.await.unwrap());
    }
    println!(
        "{N} pipelined submits through a follower: {:?}",
        t.elapsed()
    );
    assert!(
        indexes.windows(2).all(|w| w[0] < w[1]),
        "indexes in call order"
    );
    let list = c.converged(N).await;
    let got: Vec<Vec<u8>> = list.into_iter().map(|(_, p)| p).collect();
    assert_eq!(got, (0..N).map(|i| payload("pipe", i)).collect::<Vec<_>>());
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn application_messages_and_calls_reach_their_peer() {
    let mut c = Cluster::new(3, 0);
    c.start_all().await;
    let leader = c.leader().await;
    let follower = c.other_than(&[leader]);
    let got: common::AppliedList = Arc::default();
    let sink = got.clone();
    c.node(leader).set_app_handler(Arc::new(move |from, bytes| {
        sink.lock().unwrap().push((from, bytes))
    }));
    c.node(leader).set_call_handler(Arc::new(|from, mut bytes| {
        bytes.extend_from_slice(format!(" from {from}").as_bytes());
        bytes
    }));

    // Why: the server batches session pings from followers to the leader with these.
    for i in 0..10 {
        c.node(follower).send_app(leader, payload("ping", i));
    }
    wait_until(Duration::from_secs(5), "ten pings", || {
        got.lock().unwrap().len() == 10
    })
    .await;
    let pings = got.lock().unwrap().clone();
    assert!(pings.iter().all(|(from, _)| *from == follower));
    assert_eq!(
        pings.into_iter().map(|(_, p)| p).collect::<Vec<_>>(),
        (0..10).map(|i| payload("ping", i)).collect::<Vec<_>>(),
        "in order"
    );
    let answer = c
        .node(follower)
        .call_app(leader, b"hi".to_vec())
        .await
        .unwrap();
    assert_eq!(answer, format!("hi from {follower}").into_bytes());
    // A peer without a call handler refuses; an unknown peer is an error, not a hang.
    let other = c.other_than(&[leader, follower]);
    assert!(
        c.node(follower)
            .call_app(other, b"x".to_vec())
            .await
            .is_err()
    );
    assert!(c.node(follower).call_app(99, b"x".to_vec()).await.is_err());
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_loss_elects_a_new_leader_and_the_old_one_catches_up() {
    let mut c = Cluster::new(3, 0);
    c.start_all().await;
    let old = c.leader().await;
    let follower = c.other_than(&[old]);
    for i in 0..20 {
        propose_retry(c.node(follower), payload("before", i)).await;
    }

    // Why: losing the leader must cost a few election timeouts, not acknowledged writes;
    // forwarding must follow the new leader.
    c.stop(old).await;
    let t = Instant::now();
    // A write caught in flight by the loss is indeterminate; the probe retries with a new
    // payload each time, so the check below can tell them apart.
    let mut attempt = 0;
    let probe = loop {
        attempt += 1;
        let p = payload("failover", attempt);
        match c.node(follower).propose(p.clone()).await {
            Ok(_) => break p,
            Err(ProposeError::NotLeader { .. } | ProposeError::Indeterminate { .. }) => {
                assert!(t.elapsed() < Duration::from_secs(15), "no failover");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let failover = t.elapsed();
    println!(
        "failover: leader shutdown to first successful proposal via a follower: {failover:?} \
         ({attempt} attempts)"
    );
    let new = c.leader().await;
    assert_ne!(new, old);
    let survivor = c.other_than(&[old, new]);
    for i in 0..20 {
        let via = if i % 2 == 0 { new } else { survivor };
        propose_retry(c.node(via), payload("after", i)).await;
    }
    let len = c.sms[&new].list().len();
    c.converged(len).await;

    // The old leader restarts on its disk and catches up from the log.
    let t = Instant::now();
    c.start(old).await;
    let list = c.converged(len).await;
    println!("restarted old leader caught up in {:?}", t.elapsed());
    let got: Vec<Vec<u8>> = list.into_iter().map(|(_, p)| p).collect();
    assert!(got.contains(&probe));
    let got: Vec<Vec<u8>> = got
        .into_iter()
        .filter(|p| !p.starts_with(b"failover-"))
        .collect();
    let want: Vec<Vec<u8>> = (0..20)
        .map(|i| payload("before", i))
        .chain((0..20).map(|i| payload("after", i)))
        .collect();
    assert_eq!(got, want);
    // It serves writes again (forwarded: it is a follower now).
    propose_retry(c.node(old), payload("back", 0)).await;
    c.converged(len + 1).await;
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_node_rejoins_by_snapshot() {
    let mut c = Cluster::new(3, 0);
    c.tweak = |cfg| {
        cfg.snapshot_every_entries = 10;
        cfg.log_entries_kept_behind_snapshot = 2;
    };
    c.start_all().await;
    let leader = c.leader().await;
    for i in 0..40 {
        propose_retry(c.node(leader), payload("w", i)).await;
    }
    let victim = c.other_than(&[leader]);
    c.stop(victim).await;
    // Writes go on until a snapshot is past the victim (one due while the last is still
    // being built is skipped, as in ZooKeeper).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut n = 40;
    while n < 60
        || c.node(leader)
            .status()
            .snapshot_index
            .is_none_or(|s| s < 50)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot past the victim"
        );
        propose_retry(c.node(leader), payload("w", n)).await;
        n += 1;
    }

    // Why: a server whose data directory was lost rejoins; the log it needs was purged, so
    // the leader must install its snapshot.
    c.disks.insert(victim, warren_raft::MemBackend::new());
    c.start(victim).await;
    c.converged(n).await;
    assert!(
        c.sms[&victim]
            .restores
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 1
    );
    propose_retry(c.node(victim), payload("w", n)).await;
    c.converged(n + 1).await;
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_index_on_a_follower_sees_a_write_acknowledged_just_before() {
    let mut c = Cluster::new(3, 0);
    c.start_all().await;
    let leader = c.leader().await;
    let a = c.other_than(&[leader]);
    let b = c.other_than(&[leader, a]);
    // Why: `sync` then read on any server must see every write acknowledged before it.
    for i in 0..30 {
        let writer = [leader, a, b][i % 3];
        let reader = [a, b, leader][i % 3];
        let p = payload("ri", i);
        propose_retry(c.node(writer), p.clone()).await;
        read_index_retry(c.node(reader)).await;
        assert!(
            c.sms[&reader].payloads().contains(&p),
            "read on {reader} after the write on {writer} misses it"
        );
    }
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_minority_cannot_commit_and_heals() {
    let mut c = Cluster::new(3, 0);
    c.start_all().await;
    let leader = c.leader().await;
    for i in 0..5 {
        propose_retry(c.node(leader), payload("p", i)).await;
    }
    let mut acked = (0..5).map(|i| payload("p", i)).collect::<Vec<_>>();

    // Why: a leader cut off from the others is a minority: it must not commit; the
    // majority elects a leader and goes on.
    c.net.isolate(leader, c.ids());
    let lost = c.node(leader).submit(payload("minority", 0)).await;
    let majority: Vec<u64> = c.ids().into_iter().filter(|i| *i != leader).collect();
    let new = c.leader_among(&majority).await;
    assert_ne!(new, leader);
    for i in 5..10 {
        propose_retry(c.node(majority[i % 2]), payload("p", i)).await;
        acked.push(payload("p", i));
    }
    if let Ok(outcome) = lost {
        let r = tokio::time::timeout(Duration::from_secs(2), outcome).await;
        assert!(!matches!(r, Ok(Ok(_))), "the minority committed: {r:?}");
    }
    // Isolated, the old leader cannot forward either.
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        c.node(leader).propose(payload("minority", 1)),
    )
    .await;
    assert!(!matches!(r, Ok(Ok(_))), "the minority committed: {r:?}");

    // Healed, the old leader follows, drops its uncommitted entry, and converges.
    c.net.heal();
    let healed = c.leader().await;
    assert!(majority.contains(&healed));
    propose_retry(c.node(leader), payload("p", 10)).await;
    acked.push(payload("p", 10));
    let mut lists = Vec::new();
    wait_until(Duration::from_secs(15), "convergence after heal", || {
        lists = c.ids().iter().map(|id| c.sms[id].payloads()).collect();
        lists.iter().all(|l| *l == lists[0]) && acked.iter().all(|p| lists[0].contains(p))
    })
    .await;
    assert!(
        !lists[0].contains(&payload("minority", 0)) && !lists[0].contains(&payload("minority", 1)),
        "entries of the cut-off leader never commit: {:?}",
        lists[0]
    );
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learner_receives_the_log_and_never_votes() {
    let mut c = Cluster::new(3, 1);
    c.start_all().await;
    let leader = c.leader_among(&[1, 2, 3]).await;
    // Why: observers are added by the leader after formation and replicate like followers.
    wait_until(
        Duration::from_secs(10),
        "the learner in the membership",
        || c.node(leader).status().learners == BTreeSet::from([4]),
    )
    .await;
    for i in 0..10 {
        propose_retry(c.node(leader), payload("l", i)).await;
    }
    // A write submitted on the learner is forwarded too.
    propose_retry(c.node(4), payload("l", 10)).await;
    c.converged(11).await;
    let st = c.node(4).status();
    assert_eq!(st.role, Role::Learner);
    assert!(!st.voters.contains(&4));
    assert!(c.node(leader).status().replication.contains_key(&4));

    // Without a quorum of voters the learner cannot make anyone leader, itself included.
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != leader).collect();
    c.stop(leader).await;
    c.stop(others[0]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.node(4).status().role, Role::Learner);
    assert_ne!(c.node(others[1]).status().role, Role::Leader);
    let r = c.node(4).propose(payload("l", 99)).await;
    assert!(r.is_err(), "{r:?}");
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfer_leadership_moves_the_leader() {
    let mut c = Cluster::new(3, 0);
    c.start_all().await;
    let old = c.leader().await;
    for i in 0..10 {
        propose_retry(c.node(old), payload("t", i)).await;
    }
    // Why: a SIGTERM on the leader hands leadership over before exit.
    let t = Instant::now();
    let new = c.node(old).transfer_leadership().await.unwrap();
    println!("leadership transfer {old} -> {new}: {:?}", t.elapsed());
    assert_ne!(new, old);
    // (Under heavy load a spurious election may move it again; agreement is what matters.)
    c.leader().await;
    let follower = c.other_than(&[c.leader().await]);
    assert!(matches!(
        c.node(follower).transfer_leadership().await,
        Err(ProposeError::NotLeader { .. })
    ));
    propose_retry(c.node(old), payload("t", 10)).await;
    c.converged(11).await;
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn membership_changes_promote_a_learner_and_remove_a_voter() {
    let mut c = Cluster::new(3, 1);
    c.start_all().await;
    let leader = c.leader_among(&[1, 2, 3]).await;
    wait_until(
        Duration::from_secs(10),
        "the learner in the membership",
        || c.node(leader).status().learners.contains(&4),
    )
    .await;
    propose_retry(c.node(leader), payload("m", 0)).await;

    // Why: ZooKeeper's reconfig adds and removes participants; through Raft's joint
    // consensus the ensemble keeps one leader and loses no write.
    let follower = c.other_than(&[leader]);
    assert!(matches!(
        c.node(follower)
            .change_membership(BTreeSet::from([1, 2, 3, 4]))
            .await,
        Err(ProposeError::NotLeader { .. })
    ));
    c.node(leader)
        .change_membership(BTreeSet::from([1, 2, 3, 4]))
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "node 4 a voter", || {
        let st = c.node(4).status();
        st.voters == BTreeSet::from([1, 2, 3, 4]) && st.role == Role::Follower
    })
    .await;
    propose_retry(c.node(4), payload("m", 1)).await;

    let victim = c.other_than(&[leader, 4]);
    c.node(leader).remove_node(victim).await.unwrap();
    let rest: Vec<u64> = c.ids().into_iter().filter(|i| *i != victim).collect();
    wait_until(Duration::from_secs(10), "the victim gone", || {
        rest.iter()
            .all(|i| !c.node(*i).status().members.contains_key(&victim))
    })
    .await;
    c.stop(victim).await;
    propose_retry(c.node(4), payload("m", 2)).await;
    c.converged(3).await;
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_on_the_peer_port_closes_only_that_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = Cluster::new(3, 0);
    c.start_all().await;
    let leader = c.leader().await;
    let addr = c.members[&leader].clone();

    // Why: peer bytes are untrusted; a bad handshake, an oversized length or an undecodable
    // frame must cost that connection only, never the node.
    let mut bad_hello = tokio::net::TcpStream::connect(&addr).await.unwrap();
    bad_hello.write_all(&[0xAB; 32]).await.unwrap();
    let mut huge = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut hello = b"WRNP\x01\x01\0\0".to_vec();
    hello.extend_from_slice(&9u64.to_le_bytes());
    hello.extend_from_slice(&leader.to_le_bytes());
    hello.extend_from_slice(&0u64.to_le_bytes());
    huge.write_all(&hello).await.unwrap();
    huge.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
    let mut junk = tokio::net::TcpStream::connect(&addr).await.unwrap();
    junk.write_all(&hello).await.unwrap();
    junk.write_all(&[3, 0, 0, 0, 0x77, 1, 2]).await.unwrap();
    for s in [&mut bad_hello, &mut huge, &mut junk] {
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("the node closes a bad connection")
            .unwrap_or(0);
        assert_eq!(n, 0, "closed without a reply");
    }
    for i in 0..5 {
        propose_retry(c.node(c.other_than(&[leader])), payload("g", i)).await;
    }
    c.converged(5).await;
    c.stop_all().await;
}
