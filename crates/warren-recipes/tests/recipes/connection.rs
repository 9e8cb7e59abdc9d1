//! Connection states, listeners, and a fresh session after a loss.

use std::sync::{Arc, Mutex};

use warren_recipes::ConnState;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_is_suspended_then_connected_in_the_same_session() {
    let server = TestServer::start().await;
    let proxy = Proxy::start(server.addr).await;
    let conn = connect(&proxy.connect_string()).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    conn.add_listener(move |state| s.lock().unwrap().push(state));
    let session = conn.client().unwrap().session_id();

    // Cut the link and refuse new ones, so the client stays disconnected until we let it in.
    proxy.refuse(true);
    proxy.cut();
    wait_state(&conn, ConnState::Suspended).await;

    // Let it reconnect: the same session comes back, in the same epoch.
    proxy.refuse(false);
    wait_state(&conn, ConnState::Connected).await;
    eventually("listener heard the reconnect", || async {
        seen.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(conn.status().epoch, 0);
    assert_eq!(conn.client().unwrap().session_id(), session);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![ConnState::Suspended, ConnState::Connected]
    );
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_is_reported_lost_then_replaced_by_a_fresh_one() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let id = conn.add_listener(move |state| s.lock().unwrap().push(state));
    let old = conn.client().unwrap().session_id();

    // End the session from outside; the connection reports LOST, then CONNECTED in a new
    // session with the next epoch.
    expire_session(&server.connect_string(), &conn).await;
    let new = conn.client().unwrap().session_id();
    assert_ne!(old, new);
    assert_eq!(conn.status().epoch, 1);
    // (Taking the session over may first bounce the old connection a few times.)
    eventually("listener heard the fresh session", || async {
        seen.lock()
            .unwrap()
            .ends_with(&[ConnState::Lost, ConnState::Connected])
    })
    .await;
    let heard = seen.lock().unwrap().clone();
    assert_eq!(heard.iter().filter(|s| **s == ConnState::Lost).count(), 1);

    // The fresh session works, and a removed listener hears nothing more.
    assert!(conn.remove_listener(id));
    let c = conn.client().unwrap();
    c.create("/fresh", b"x", &warren_recipes::path::PERSISTENT)
        .await
        .unwrap();
    conn.close();
    assert_eq!(conn.state(), ConnState::Lost);
    assert_eq!(*seen.lock().unwrap(), heard);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_runs_the_operation_again_in_the_fresh_session() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let old = conn.client().unwrap();
    expire_session(&server.connect_string(), &conn).await;

    // The old client's session is gone; `retry` picks the current one.
    assert!(old.check_stat("/").await.is_err());
    let stat = conn
        .retry(|c| async move { Ok(c.check_stat("/").await?) })
        .await
        .unwrap();
    assert!(stat.is_some());
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_refuses_work() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    conn.close();
    assert!(matches!(conn.client(), Err(warren_recipes::Error::Closed)));
    let r = conn
        .retry(|c| async move { Ok(c.check_stat("/").await?) })
        .await;
    assert!(matches!(r, Err(warren_recipes::Error::Closed)));
    assert!(conn.wait_connected().await.is_err());
    server.stop().await;
}
