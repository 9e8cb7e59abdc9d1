//! Election.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use warren_recipes::Election;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_in_arrival_order_and_cancel_withdraws() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let (led_tx, mut led) = mpsc::unbounded_channel();
    let mut steps = Vec::new();
    let mut runs = Vec::new();
    let mut elections = Vec::new();
    for name in ["e1", "e2", "e3"] {
        let e = Arc::new(Election::new(&conn, "/election", name));
        let (step_tx, step_rx) = oneshot::channel::<()>();
        steps.push(step_tx);
        let (e2, led_tx) = (e.clone(), led_tx.clone());
        runs.push(tokio::spawn(async move {
            e2.run(async move {
                led_tx.send(name).unwrap();
                // Lead until the test says to step down.
                let _ = step_rx.await;
                name
            })
            .await
        }));
        let n = elections.len() + 1;
        elections.push(e);
        eventually("contender queued", || async {
            elections[0].contenders().await.unwrap().len() == n
        })
        .await;
    }
    assert_eq!(bounded("first leader", led.recv()).await, Some("e1"));
    assert!(elections[0].is_leader());
    assert_eq!(
        elections[1].contenders().await.unwrap(),
        vec!["e1", "e2", "e3"]
    );

    // e2 withdraws before its turn; when e1 steps down, e3 leads.
    elections[1].cancel();
    assert_eq!(
        bounded("e2 run", &mut runs[1]).await.unwrap().unwrap(),
        None
    );
    let mut steps = steps.into_iter();
    steps.next().unwrap().send(()).unwrap();
    assert_eq!(
        bounded("e1 run", &mut runs[0]).await.unwrap().unwrap(),
        Some("e1")
    );
    assert_eq!(bounded("next leader", led.recv()).await, Some("e3"));
    steps.nth(1).unwrap().send(()).unwrap();
    assert_eq!(
        bounded("e3 run", &mut runs[2]).await.unwrap().unwrap(),
        Some("e3")
    );
    assert!(elections[0].contenders().await.unwrap().is_empty());
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_learns_it_lost_leadership_with_its_session() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let election = Arc::new(Election::new(&conn, "/election-lost", "leader"));
    let e = election.clone();
    let run = tokio::spawn(async move {
        let e2 = e.clone();
        e.run(async move { e2.lost().await }).await
    });
    eventually("leading", || async { election.is_leader() }).await;

    expire_session(&server.connect_string(), &conn).await;
    // The leader's work ends because leadership was lost; run returns.
    assert_eq!(bounded("run ends", run).await.unwrap().unwrap(), Some(()));
    conn.close();
    server.stop().await;
}
