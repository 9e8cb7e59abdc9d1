//! The 2pc demo: applied everywhere iff all voted commit; a killed replica aborts its
//! round; a killed coordinator is replaced and its round finished from warren's state.

use warren_demos::Summary as _;
use warren_demos::two_pc::{self, Opts, Verdict};

use crate::common::{TestServer, bounded, supervisor};

fn opts(server: &TestServer) -> Opts {
    Opts {
        server: server.opts(1500),
        replicas: 3,
        coordinators: 2,
        rounds: 5,
        abort_prob: 0.2,
        seed: 3,
        kill_replica_in_round: None,
        kill_coordinator_in_round: None,
        vote_delay_ms: 20,
        vote_timeout_ms: 30_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_commit_iff_every_replica_votes_commit() {
    // No kills: seeded votes give both outcomes over five rounds.
    let server = TestServer::start().await;
    let (mut sup, _stop) = supervisor();
    let summary = bounded("the 2pc demo", two_pc::coordinate(&opts(&server), &mut sup)).await;
    println!("{summary}");
    assert_eq!(summary.violations(), Vec::<String>::new());
    let decisions: Vec<_> = (1..=5).filter_map(|r| summary.decision(r)).collect();
    assert_eq!(decisions.len(), 5);
    assert!(decisions.contains(&Verdict::Commit) && decisions.contains(&Verdict::Abort));
    assert_eq!(summary.finals.len(), 3);

    // The check is not vacuous: a commit with an abort vote in it is caught.
    let mut broken = summary;
    let round = broken
        .rounds
        .values_mut()
        .find(|r| r.decisions[0].1 == Verdict::Abort)
        .unwrap();
    round.decisions[0].1 = Verdict::Commit;
    assert!(!broken.violations().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_aborts_its_round_and_a_killed_coordinator_is_replaced() {
    // Every vote commits, so only the kills can abort: replica-1 dies in round 2 before
    // voting; the leading coordinator dies in round 4 before deciding.
    let server = TestServer::start().await;
    let o = Opts {
        abort_prob: 0.0,
        kill_replica_in_round: Some(2),
        kill_coordinator_in_round: Some(4),
        ..opts(&server)
    };
    let (mut sup, _stop) = supervisor();
    let summary = bounded("the 2pc demo", two_pc::coordinate(&o, &mut sup)).await;
    println!("{summary}");
    assert_eq!(summary.violations(), Vec::<String>::new());

    // Round 2 aborted because replica-1 left; round 1 committed everywhere before it.
    assert_eq!(summary.decision(1), Some(Verdict::Commit));
    assert_eq!(summary.decision(2), Some(Verdict::Abort));
    assert!(summary.rounds[&2].decisions[0].2.contains("replica-1"));
    assert!(summary.killed.contains(&"replica-1".to_owned()));

    // Round 4 was started by the killed coordinator and decided by the other one, and
    // the rounds after it ran: the register ends at round 5's value on both survivors.
    let r4 = &summary.rounds[&4];
    assert!(summary.killed.contains(&r4.started_by));
    assert_ne!(r4.decisions[0].0, r4.started_by);
    assert_eq!(summary.decision(4), Some(Verdict::Commit));
    assert_eq!(summary.last_committed().as_deref(), Some("value-5"));
    assert_eq!(summary.finals.len(), 2);
    server.stop().await;
}
