//! The philosophers demo: no deadlock, neighbours never eat at once, counts within one.

use std::time::Duration;

use warren_demos::Summary as _;
use warren_demos::philosophers::{self, Meal, Opts};

use crate::common::{TestServer, bounded, supervisor};

fn opts(server: &TestServer, meals: u64) -> Opts {
    Opts {
        server: server.opts(10_000),
        philosophers: 5,
        meals,
        eat_ms: 30,
        think_ms: 20,
        seed: 11,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_philosophers_all_eat_and_neighbours_never_at_once() {
    // Five philosophers, four meals each: every one must finish (no deadlock).
    let server = TestServer::start().await;
    let (mut sup, _stop) = supervisor();
    let summary = bounded(
        "the philosophers demo",
        philosophers::coordinate(&opts(&server, 4), &mut sup),
    )
    .await;
    println!("{summary}");

    // The property: no neighbours' meals overlap in zxid order, counts within one, all ate.
    assert_eq!(summary.violations(), Vec::<String>::new());
    assert_eq!(summary.counts(), vec![4; 5]);

    // The overlap check is not vacuous: a neighbour's meal moved into philosopher 0's
    // first meal is caught.
    let mut broken = summary;
    let first = broken.meals[&0][0];
    broken.meals.get_mut(&1).unwrap().push(Meal {
        meal: 99,
        start: first.start,
        end: first.end,
        waited_ms: 0,
    });
    assert!(!broken.neighbour_overlaps().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn philosophers_dining_forever_stop_cleanly_on_a_signal() {
    // Meals 0: they dine until stopped; the stop sender plays Ctrl-C.
    let server = TestServer::start().await;
    let (mut sup, stop) = supervisor();
    let o = opts(&server, 0);
    let run = philosophers::coordinate(&o, &mut sup);
    let signal = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.send(true).unwrap();
    };
    let (summary, ()) = bounded("the philosophers demo", async { tokio::join!(run, signal) }).await;
    println!("{summary}");

    // Every philosopher said it stopped and exited 0 (SIGTERM handled), and what they ate
    // until then still satisfies the property.
    assert!(summary.interrupted());
    let mut stopped = summary.stopped.clone();
    stopped.sort();
    assert_eq!(stopped, vec![0, 1, 2, 3, 4]);
    assert_eq!(summary.violations(), Vec::<String>::new());
    server.stop().await;
}
