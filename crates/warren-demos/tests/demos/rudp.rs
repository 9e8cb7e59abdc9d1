//! The rudp demo: every message delivered exactly once through injected loss and
//! duplication, sender and receiver in their own processes.

use warren_demos::Summary as _;
use warren_demos::rudp::{self, Opts};

use crate::common::{bounded, supervisor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_delivered_exactly_once_through_loss_and_duplication() {
    // A third of the packets lost and a fifth doubled, both ways.
    let opts = Opts {
        messages: 40,
        loss: 0.3,
        dup: 0.2,
        seed: 9,
        rto_ms: 10,
        timeout_ms: 10_000,
        bound_s: 60,
    };
    let (mut sup, _stop) = supervisor();
    let summary = bounded("the rudp demo", rudp::coordinate(&opts, &mut sup)).await;
    println!("{summary}");

    // The property, and evidence that the faults happened and were repaired.
    assert_eq!(summary.violations(), Vec::<String>::new());
    assert_eq!(summary.delivered.len(), 40);
    assert!(summary.sender.dropped + summary.receiver.dropped > 0);
    assert!(summary.sender.duplicated + summary.receiver.duplicated > 0);
    assert!(summary.sender.retransmits > 0);
    assert!(summary.receiver.duplicates_discarded > 0);

    // The check is not vacuous: a message delivered twice is caught.
    let mut broken = summary;
    broken.delivered.push("message 3".into());
    assert!(!broken.violations().is_empty());
}
