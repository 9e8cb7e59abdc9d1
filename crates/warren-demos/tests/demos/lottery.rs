//! The lottery demo: every bet stored in batches, the draw after the barrier, each agency
//! prints exactly its winners.

use warren_demos::Summary as _;
use warren_demos::lottery::{self, Event, Opts};

use crate::common::{TestServer, bounded, supervisor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_agencies_submit_in_batches_meet_and_print_their_winners() {
    // Five agencies with the shipped CSVs and small batches, so each sends several multis.
    let server = TestServer::start().await;
    let opts = Opts {
        server: server.opts(10_000),
        agencies: 5,
        data: None,
        batch_bytes_max: 4096,
        seed: 2024,
    };
    let (mut sup, _stop) = supervisor();
    let summary = bounded("the lottery demo", lottery::coordinate(&opts, &mut sup)).await;
    println!("{summary}");

    // The property: all bets stored, winners as recomputed, the draw after every batch.
    assert_eq!(summary.violations(), Vec::<String>::new());
    assert!(summary.batches().values().all(|(n, _)| *n > 1));
    assert!(!summary.expected_draw.winners.is_empty());

    // The check is not vacuous: a batch stored after the draw and a winner left unprinted
    // are both caught.
    let mut broken = summary;
    let draw_zxid = broken
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::Drawn { zxid, .. } => Some(*zxid),
            _ => None,
        })
        .unwrap();
    broken.events.push((
        "agency-1".into(),
        Event::Batch {
            agency: 1,
            bets: 1,
            bytes: 100,
            zxid: draw_zxid + 1,
        },
    ));
    let winner = broken
        .events
        .iter()
        .position(|(_, e)| matches!(e, Event::Winner { .. }))
        .unwrap();
    broken.events.remove(winner);
    assert_eq!(broken.violations().len(), 2, "{:?}", broken.violations());
    server.stop().await;
}
