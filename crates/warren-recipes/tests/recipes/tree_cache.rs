//! TreeCache, and the persistent-watch reconnect gap of `zookeeper-client` 0.11.2 it
//! works around.

use futures_now::now_or_never;
use tokio::sync::mpsc::UnboundedReceiver;
use warren_recipes::path::PERSISTENT;
use warren_recipes::zookeeper_client::{AddWatchMode, EventType};
use warren_recipes::{ConnState, TreeCache, TreeEvent, TreeEventKind};

use crate::common::*;

/// A tiny `now_or_never`, so the tests need no futures crate.
mod futures_now {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    pub fn now_or_never<F: Future>(f: F) -> Option<F::Output> {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(f).poll(&mut cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }
}

/// Waits for the next event of `kind` (skipping others).
async fn next_of(rx: &mut UnboundedReceiver<TreeEvent>, kind: TreeEventKind) -> TreeEvent {
    bounded(&format!("{kind:?}"), async {
        loop {
            let e = rx.recv().await.expect("cache alive");
            if e.kind == kind {
                return e;
            }
        }
    })
    .await
}

/// Waits for the next event of `kind` about `path` (skipping others).
async fn next_for(
    rx: &mut UnboundedReceiver<TreeEvent>,
    kind: TreeEventKind,
    path: &str,
) -> TreeEvent {
    bounded(&format!("{kind:?} {path}"), async {
        loop {
            let e = rx.recv().await.expect("cache alive");
            if e.kind == kind && e.path.as_deref() == Some(path) {
                return e;
            }
        }
    })
    .await
}

async fn data_is(cache: &TreeCache, path: &str, want: &[u8]) {
    eventually(&format!("{path} = {want:?} in the cache"), || async {
        cache.get_data(path).is_some_and(|n| n.data == want)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_cache_mirrors_the_subtree() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let c = conn.client().unwrap();
    c.mkdir("/tc/a/b", &PERSISTENT).await.unwrap();
    c.set_data("/tc/a", b"A", None).await.unwrap();

    let cache = TreeCache::start(&conn, "/tc").await.unwrap();
    let mut events = cache.listen();
    bounded("initialized", cache.wait_initialized()).await;
    assert_eq!(cache.get_data("/tc/a").unwrap().data, b"A");
    assert_eq!(
        cache
            .get_children("/tc")
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec!["a"]
    );
    assert!(cache.get_data("/elsewhere").is_none());

    // Creations (nested), changes and deletions below the root all arrive.
    c.create("/tc/a/b/c", b"C", &PERSISTENT).await.unwrap();
    let added = next_for(&mut events, TreeEventKind::NodeAdded, "/tc/a/b/c").await;
    assert_eq!(added.data.unwrap().data, b"C");
    c.set_data("/tc/a/b", b"B", None).await.unwrap();
    let updated = next_for(&mut events, TreeEventKind::NodeUpdated, "/tc/a/b").await;
    assert_eq!(updated.data.unwrap().data, b"B");
    c.delete("/tc/a/b/c", None).await.unwrap();
    next_for(&mut events, TreeEventKind::NodeRemoved, "/tc/a/b/c").await;
    assert_eq!(cache.get_children("/tc/a/b").unwrap(), Default::default());
    cache.close();
    conn.close();
    server.stop().await;
}

/// `RECIPES_REFERENCE_ZK=host:port` runs the reconnect-gap tests against another server
/// (Apache ZooKeeper 3.8: `python3 tests/zk/zkrun.py --client-port N --data-dir D`).
fn reference_or(server: &TestServer) -> std::net::SocketAddr {
    match std::env::var("RECIPES_REFERENCE_ZK") {
        Ok(addr) => addr.parse().expect("RECIPES_REFERENCE_ZK is host:port"),
        Err(_) => server.addr,
    }
}

/// The gap itself, on the raw client: after a reconnect ZooKeeper no longer has the
/// persistent watch (`zookeeper-client` 0.11.2 does not re-send it), while one-shot
/// watches are re-sent. Passes against Apache ZooKeeper 3.8 and against warren, which drops
/// a connection's watches when it closes, as ZooKeeper does. If it fails, the client was
/// fixed, and the re-arming in `TreeCache` is merely redundant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_client_loses_persistent_watches_on_reconnect() {
    let server = TestServer::start().await;
    let target = reference_or(&server);
    let proxy = Proxy::start(target).await;
    let conn = connect(&proxy.connect_string()).await;
    let writer = connect(&target.to_string()).await;
    let (c, w) = (conn.client().unwrap(), writer.client().unwrap());
    let _ = c.create("/gap", b"", &PERSISTENT).await;
    let _ = c.delete("/gap/child", None).await;
    let _ = c.create("/marker", b"", &PERSISTENT).await;
    let mut persistent = c
        .watch("/gap", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    // Reconnect.
    proxy.refuse(true);
    proxy.cut();
    wait_state(&conn, ConnState::Suspended).await;
    proxy.refuse(false);
    wait_state(&conn, ConnState::Connected).await;
    let (_, _, oneshot) = c.get_and_watch_data("/marker").await.unwrap();
    // (The watcher has only heard the session's Disconnected and SyncConnected so far.)
    while let Some(e) = now_or_never(persistent.changed()) {
        assert_eq!(e.event_type, EventType::Session);
    }

    // A change under /gap, then one to /marker: the server sends events in order, so once
    // the one-shot event for /marker is here, an event for /gap would have been too.
    w.create("/gap/child", b"", &PERSISTENT).await.unwrap();
    w.set_data("/marker", b"x", None).await.unwrap();
    let marker = bounded("marker event", oneshot.changed()).await;
    assert_eq!(marker.event_type, EventType::NodeDataChanged);
    let leftover = now_or_never(persistent.changed());
    assert!(
        leftover.is_none(),
        "the persistent watch survived the reconnect: zookeeper-client re-sends it now: {leftover:?}"
    );
    conn.close();
    writer.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_cache_rearms_its_watch_after_a_cut_connection() {
    let server = TestServer::start().await;
    let target = reference_or(&server);
    let proxy = Proxy::start(target).await;
    let conn = connect(&proxy.connect_string()).await;
    let writer = connect(&target.to_string()).await;
    let w = writer.client().unwrap();
    // A fresh root, so the test can run again against a long-lived reference server.
    let root = format!("/cut-{}", warren_recipes::path::uuid_hex());
    let (away, after) = (format!("{root}/while-away"), format!("{root}/after"));
    let cache = TreeCache::start(&conn, &root).await.unwrap();
    let mut events = cache.listen();
    bounded("initialized", cache.wait_initialized()).await;
    assert_eq!(cache.arms(), 1);

    // Cut the cache's connection and change the tree meanwhile.
    proxy.refuse(true);
    proxy.cut();
    next_of(&mut events, TreeEventKind::ConnectionSuspended).await;
    w.create(&away, b"1", &PERSISTENT).await.unwrap();
    proxy.refuse(false);

    // Back: the watch is added again and the missed change read.
    next_of(&mut events, TreeEventKind::ConnectionReconnected).await;
    assert_eq!(cache.arms(), 2);
    data_is(&cache, &away, b"1").await;

    // And later changes arrive live, through the re-added watch.
    w.create(&after, b"2", &PERSISTENT).await.unwrap();
    w.set_data(&away, b"3", None).await.unwrap();
    data_is(&cache, &after, b"2").await;
    data_is(&cache, &away, b"3").await;
    cache.close();
    conn.close();
    writer.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_cache_goes_on_in_a_fresh_session_and_after_a_server_restart() {
    let mut server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let writer = connect(&server.connect_string()).await;
    let cache = TreeCache::start(&conn, "/lost").await.unwrap();
    let mut events = cache.listen();
    bounded("initialized", cache.wait_initialized()).await;

    // The session is lost: the cache says so, then refreshes in the fresh session.
    expire_session(&server.connect_string(), &conn).await;
    next_of(&mut events, TreeEventKind::ConnectionLost).await;
    next_of(&mut events, TreeEventKind::ConnectionReconnected).await;
    writer
        .client()
        .unwrap()
        .create("/lost/x", b"x", &PERSISTENT)
        .await
        .unwrap();
    data_is(&cache, "/lost/x", b"x").await;

    // The server restarts on the same port: every connection drops and comes back.
    server.restart().await;
    next_of(&mut events, TreeEventKind::ConnectionReconnected).await;
    writer
        .retry(|c| async move { Ok(c.set_data("/lost/x", b"y", None).await?) })
        .await
        .unwrap();
    data_is(&cache, "/lost/x", b"y").await;
    cache.close();
    conn.close();
    writer.close();
    server.stop().await;
}
