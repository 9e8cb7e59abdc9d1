//! DataWatch and ChildrenWatch.

use tokio::sync::mpsc;
use warren_recipes::path::PERSISTENT;
use warren_recipes::{ChildrenWatch, DataWatch};

use crate::common::*;

/// The data a DataWatch reported (`None`: no node).
type Seen = Option<Vec<u8>>;

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    bounded("a data watch call", rx.recv())
        .await
        .expect("watch alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_watch_reports_creation_changes_and_deletion() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let c = conn.client().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watch = DataWatch::new(&conn, "/dw", move |node, _event| {
        tx.send(node.map(|n| n.data.clone())).is_ok()
    })
    .await
    .unwrap();
    // Called at once, with no node.
    assert_eq!(next(&mut rx).await, None);

    c.create("/dw", b"one", &PERSISTENT).await.unwrap();
    assert_eq!(next(&mut rx).await, Some(b"one".to_vec()));
    c.set_data("/dw", b"two", None).await.unwrap();
    assert_eq!(next(&mut rx).await, Some(b"two".to_vec()));
    c.delete("/dw", None).await.unwrap();
    assert_eq!(next(&mut rx).await, None);
    c.create("/dw", b"three", &PERSISTENT).await.unwrap();
    assert_eq!(next(&mut rx).await, Some(b"three".to_vec()));

    watch.stop();
    eventually("watch stopped", || async { watch.is_stopped() }).await;
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_watch_goes_on_in_a_fresh_session_and_stops_on_false() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let writer = connect(&server.connect_string()).await;
    let w = writer.client().unwrap();
    w.create("/dw2", b"a", &PERSISTENT).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watch = DataWatch::new(&conn, "/dw2", move |node, _| {
        let data = node.map(|n| n.data.clone());
        let go_on = data.as_deref() != Some(b"stop".as_slice());
        tx.send(data).unwrap();
        go_on
    })
    .await
    .unwrap();
    assert_eq!(next(&mut rx).await, Some(b"a".to_vec()));

    // The watching session is lost; the watch re-arms in the fresh one.
    expire_session(&server.connect_string(), &conn).await;
    w.set_data("/dw2", b"b", None).await.unwrap();
    assert_eq!(next(&mut rx).await, Some(b"b".to_vec()));

    // Returning false ends it.
    w.set_data("/dw2", b"stop", None).await.unwrap();
    assert_eq!(next(&mut rx).await, Some(b"stop".to_vec()));
    eventually("watch stopped", || async { watch.is_stopped() }).await;
    w.set_data("/dw2", b"after", None).await.unwrap();
    assert!(
        rx.recv().await.is_none(),
        "no call after the function said stop"
    );
    conn.close();
    writer.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_watch_reports_changes_across_reconnects_and_stops_with_the_node() {
    let server = TestServer::start().await;
    let proxy = Proxy::start(server.addr).await;
    let conn = connect(&proxy.connect_string()).await;
    let writer = connect(&server.connect_string()).await;
    let w = writer.client().unwrap();
    w.create("/cw", b"", &PERSISTENT).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watch = ChildrenWatch::new(&conn, "/cw", move |children, _| {
        let mut children = children.to_vec();
        children.sort();
        tx.send(children).is_ok()
    })
    .await
    .unwrap();
    let mut next = async || bounded("children call", rx.recv()).await;
    assert_eq!(next().await, Some(vec![]));
    w.create("/cw/a", b"", &PERSISTENT).await.unwrap();
    assert_eq!(next().await, Some(vec!["a".to_string()]));

    // While the watcher is cut off a child comes; it is reported once back.
    proxy.refuse(true);
    proxy.cut();
    wait_state(&conn, warren_recipes::ConnState::Suspended).await;
    w.create("/cw/b", b"", &PERSISTENT).await.unwrap();
    proxy.refuse(false);
    assert_eq!(next().await, Some(vec!["a".to_string(), "b".to_string()]));

    // Deleting the node ends the watch.
    w.delete("/cw/a", None).await.unwrap();
    assert_eq!(next().await, Some(vec!["b".to_string()]));
    w.delete("/cw/b", None).await.unwrap();
    assert_eq!(next().await, Some(vec![]));
    w.delete("/cw", None).await.unwrap();
    eventually("watch stopped", || async { watch.is_stopped() }).await;
    assert!(
        ChildrenWatch::new(&conn, "/cw", |_, _| true)
            .await
            .unwrap_err()
            .is_no_node()
    );
    conn.close();
    writer.close();
    server.stop().await;
}
