//! Counter.

use std::sync::Arc;

use warren_recipes::{Change, Counter};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adds_all_count() {
    let server = TestServer::start().await;
    let conns = [
        connect(&server.connect_string()).await,
        connect(&server.connect_string()).await,
    ];
    let mut tasks = Vec::new();
    for i in 0..8 {
        let counter = Arc::new(Counter::new(&conns[i % 2], "/counters/int", 0i64));
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                counter.add(1).await.unwrap();
            }
        }));
    }
    for t in tasks {
        bounded("adder", t).await.unwrap();
    }
    let counter = Counter::new(&conns[0], "/counters/int", 0i64);
    assert_eq!(counter.value().await.unwrap(), 80);
    assert_eq!(
        counter.sub(5).await.unwrap(),
        Change {
            pre_value: 80,
            post_value: 75
        }
    );
    // Stored as kazoo stores it: ASCII repr.
    let (data, _) = conns[0]
        .client()
        .unwrap()
        .get_data("/counters/int")
        .await
        .unwrap();
    assert_eq!(data, b"75");
    for c in conns {
        c.close();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn float_and_curator_encodings() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let c = conn.client().unwrap();

    let f = Counter::new(&conn, "/counters/float", 1.0f64);
    assert_eq!(f.value().await.unwrap(), 1.0);
    f.add(2.0).await.unwrap();
    assert_eq!(c.get_data("/counters/float").await.unwrap().0, b"3.0");

    let cur = Counter::curator(&conn, "/counters/curator", 0i64).unwrap();
    cur.add(2).await.unwrap();
    cur.sub(1).await.unwrap();
    assert_eq!(
        c.get_data("/counters/curator").await.unwrap().0,
        1i32.to_be_bytes()
    );
    assert!(Counter::curator(&conn, "/x", i64::MAX).is_err());
    conn.close();
    server.stop().await;
}
