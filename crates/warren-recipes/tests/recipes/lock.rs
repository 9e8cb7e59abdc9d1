//! Lock, ReadLock, WriteLock.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use warren_recipes::{Error, Lock, LockStatus, ReadLock, WriteLock};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_is_exclusive_and_granted_in_queue_order() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let a = Lock::new(&conn, "/locks/fair", "a");
    a.acquire().await.unwrap();
    assert!(a.is_acquired());

    // Two more contenders queue behind `a`, one after the other.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut waiters = Vec::new();
    for name in ["b", "c"] {
        let lock = Arc::new(Lock::new(&conn, "/locks/fair", name));
        let (l, tx) = (lock.clone(), tx.clone());
        waiters.push(tokio::spawn(async move {
            l.acquire().await.unwrap();
            tx.send(name).unwrap();
            // Hold until the test has looked, then pass the lock on.
            tokio::task::yield_now().await;
            l.release().await.unwrap();
        }));
        let expect = if name == "b" { 2 } else { 3 };
        eventually("contender queued", || async {
            a.contenders().await.unwrap().len() == expect
        })
        .await;
    }
    assert_eq!(a.contenders().await.unwrap(), vec!["a", "b", "c"]);

    // Nobody else got in while `a` holds it; after `a` releases, b then c.
    assert!(rx.try_recv().is_err());
    assert!(a.release().await.unwrap());
    assert_eq!(bounded("b", rx.recv()).await, Some("b"));
    assert_eq!(bounded("c", rx.recv()).await, Some("c"));
    for w in waiters {
        w.await.unwrap();
    }
    assert!(a.contenders().await.unwrap().is_empty());
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_acquire_and_timeout_fail_while_held_and_leave_no_node() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let holder = Lock::new(&conn, "/locks/busy", "holder");
    holder.acquire().await.unwrap();

    let other = Lock::new(&conn, "/locks/busy", "other");
    assert!(!other.try_acquire().await.unwrap());
    let r = other.acquire_timeout(Duration::from_millis(100)).await;
    assert!(matches!(r, Err(Error::LockTimeout(_))), "{r:?}");
    // Neither attempt left a contender behind.
    assert_eq!(holder.contenders().await.unwrap(), vec!["holder"]);
    assert!(matches!(
        holder.acquire().await,
        Err(Error::AlreadyAcquired)
    ));

    holder.release().await.unwrap();
    assert!(other.try_acquire().await.unwrap());
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_a_pending_acquire() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let holder = Lock::new(&conn, "/locks/cancel", "holder");
    holder.acquire().await.unwrap();
    let waiter = Arc::new(Lock::new(&conn, "/locks/cancel", "waiter"));
    let w = waiter.clone();
    let pending = tokio::spawn(async move { w.acquire().await });
    eventually("waiter queued", || async {
        holder.contenders().await.unwrap().len() == 2
    })
    .await;

    waiter.cancel();
    let r = bounded("cancelled acquire", pending).await.unwrap();
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert_eq!(holder.contenders().await.unwrap(), vec!["holder"]);
    // A cancel is consumed: the next acquire works.
    holder.release().await.unwrap();
    waiter.acquire().await.unwrap();
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_whose_session_is_lost_is_reported_lost_and_passes_on() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let other_conn = connect(&server.connect_string()).await;
    let lock = Lock::new(&conn, "/locks/lost", "doomed");
    lock.acquire().await.unwrap();
    let next = Arc::new(Lock::new(&other_conn, "/locks/lost", "next"));
    let n = next.clone();
    let waiting = tokio::spawn(async move { n.acquire().await });

    // The holder's session ends: the holder is told, and the next contender gets it.
    expire_session(&server.connect_string(), &conn).await;
    bounded("lock reported lost", lock.lost()).await;
    assert_eq!(lock.status(), LockStatus::Lost);
    bounded("next acquires", waiting).await.unwrap().unwrap();
    assert!(next.is_acquired());

    // The lost lock can be released (nothing to delete) and acquired again later.
    assert!(!lock.release().await.unwrap());
    next.release().await.unwrap();
    lock.acquire().await.unwrap();
    conn.close();
    other_conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_acquire_survives_a_session_loss() {
    let server = TestServer::start().await;
    let holder_conn = connect(&server.connect_string()).await;
    let conn = connect(&server.connect_string()).await;
    let holder = Lock::new(&holder_conn, "/locks/survive", "holder");
    holder.acquire().await.unwrap();
    let waiter = Arc::new(Lock::new(&conn, "/locks/survive", "waiter"));
    let w = waiter.clone();
    let pending = tokio::spawn(async move { w.acquire().await });
    eventually("waiter queued", || async {
        holder.contenders().await.unwrap().len() == 2
    })
    .await;

    // The waiter's session is lost while it waits: it queues again in the fresh session.
    expire_session(&server.connect_string(), &conn).await;
    eventually("waiter queued again", || async {
        holder.contenders().await.unwrap() == ["holder", "waiter"]
    })
    .await;
    holder.release().await.unwrap();
    bounded("waiter acquires", pending).await.unwrap().unwrap();
    assert!(waiter.is_acquired());
    holder_conn.close();
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_share_and_writers_exclude() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let r1 = ReadLock::new(&conn, "/locks/rw", "r1");
    let r2 = ReadLock::new(&conn, "/locks/rw", "r2");
    r1.acquire().await.unwrap();
    assert!(r2.try_acquire().await.unwrap(), "readers share");

    let w = Arc::new(WriteLock::new(&conn, "/locks/rw", "w"));
    assert!(!w.try_acquire().await.unwrap(), "readers exclude a writer");
    let w2 = w.clone();
    let writer = tokio::spawn(async move { w2.acquire().await });
    eventually("writer queued", || async {
        r1.contenders().await.unwrap().len() == 3
    })
    .await;
    // A reader arriving after the queued writer waits for it (kazoo's fairness).
    let r3 = ReadLock::new(&conn, "/locks/rw", "r3");
    assert!(!r3.try_acquire().await.unwrap());

    r1.release().await.unwrap();
    r2.release().await.unwrap();
    bounded("writer", writer).await.unwrap().unwrap();
    assert_eq!(r3.contenders().await.unwrap(), vec!["w"]);
    w.release().await.unwrap();
    assert!(r3.try_acquire().await.unwrap());
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_release_is_never_reported_lost() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let lock = Lock::new(&conn, "/locks/release", "a");
    // Record every status the lock goes through while it is taken and released ten times.
    let mut rx = lock.status_watcher();
    let seen = tokio::spawn(async move {
        let mut seen = Vec::new();
        while rx.changed().await.is_ok() {
            seen.push(*rx.borrow_and_update());
        }
        seen
    });
    for _ in 0..10 {
        lock.acquire().await.unwrap();
        assert!(lock.release().await.unwrap());
        // Let the deletion's watch event arrive before the next acquire.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(lock);
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), seen)
        .await
        .unwrap()
        .unwrap();
    assert!(!seen.contains(&LockStatus::Lost), "statuses seen: {seen:?}");
}
