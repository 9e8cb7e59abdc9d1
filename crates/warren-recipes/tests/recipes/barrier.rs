//! Barrier and DoubleBarrier.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use warren_recipes::{Barrier, DoubleBarrier};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_pass_when_the_barrier_is_removed() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let barrier = Arc::new(Barrier::new(&conn, "/barriers/one"));
    // No barrier: waiting passes at once.
    assert!(barrier.wait(None).await.unwrap());
    barrier.create().await.unwrap();
    assert!(!barrier.wait(Some(Duration::from_millis(50))).await.unwrap());

    let b = barrier.clone();
    let waiter = tokio::spawn(async move { b.wait(None).await });
    assert!(barrier.remove().await.unwrap());
    assert!(bounded("waiter", waiter).await.unwrap().unwrap());
    assert!(!barrier.remove().await.unwrap());
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_barrier_enters_together_and_leaves_together() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let n = 3;
    let mut members = Vec::new();
    for i in 0..n {
        let conn = conn.clone();
        let tx = tx.clone();
        members.push(tokio::spawn(async move {
            let mut b = DoubleBarrier::new(&conn, "/barriers/double", n, &format!("m{i}"));
            b.enter().await.unwrap();
            assert!(b.participating());
            tx.send(("entered", i)).unwrap();
            b.leave().await.unwrap();
            tx.send(("left", i)).unwrap();
        }));
    }
    // Every member enters before any leaves: nobody passes `enter` until all n are in,
    // and nobody passes `leave` until all have started leaving.
    let mut events = Vec::new();
    for _ in 0..2 * n {
        events.push(bounded("barrier event", rx.recv()).await.unwrap());
    }
    let first_left = events.iter().position(|(what, _)| *what == "left").unwrap();
    assert!(
        events[..first_left]
            .iter()
            .filter(|(w, _)| *w == "entered")
            .count()
            == n
    );
    for m in members {
        m.await.unwrap();
    }
    let c = conn.client().unwrap();
    assert!(
        c.list_children("/barriers/double")
            .await
            .unwrap()
            .is_empty()
    );
    conn.close();
    server.stop().await;
}
