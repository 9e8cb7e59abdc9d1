//! The election demo: a leader is killed, another takes over, causality holds.

use warren_demos::Summary as _;
use warren_demos::election::{self, Opts};

use crate::common::{TestServer, bounded, supervisor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_the_merged_log_respects_causality() {
    // Three workers with short sessions, so the killed leader's session expires soon.
    let server = TestServer::start().await;
    let opts = Opts {
        server: server.opts(1500),
        workers: 3,
        rounds: 3,
        interval_ms: 100,
        kills: 1,
    };
    let (mut sup, _stop) = supervisor();
    let summary = bounded("the election demo", election::coordinate(&opts, &mut sup)).await;
    println!("{summary}");

    // The property: no violation, including the causality check of every receive.
    assert_eq!(summary.violations(), Vec::<String>::new());

    // The kill case: the first leader was killed and another worker led after it.
    assert_eq!(summary.takeovers.len(), 1);
    let t = &summary.takeovers[0];
    assert_ne!(t.new_leader, t.killed);
    assert_eq!(
        summary.leaders,
        vec![t.killed.clone(), t.new_leader.clone()]
    );

    // Messages crossed both ways under both leaders: tasks and acks were received.
    let recv = |kind: &str| {
        summary
            .events
            .iter()
            .filter(|(_, e)| matches!(e, election::Event::Recv { kind: k, .. } if k == kind))
            .count()
    };
    assert!(recv("task") > 0 && recv("ack") > 0);

    // The checker is not vacuous: a receive whose clock is not above its send's is caught.
    let mut broken = summary;
    let bad = broken.events.iter_mut().find_map(|(_, e)| match e {
        election::Event::Recv {
            clock, send_clock, ..
        } => {
            *clock = *send_clock;
            Some(())
        }
        _ => None,
    });
    assert!(bad.is_some());
    assert!(!broken.causality_violations().is_empty());
    server.stop().await;
}
