//! Semaphore, Queue, LockingQueue, Party, ShallowParty, NonBlockingLease,
//! MultiNonBlockingLease.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use warren_recipes::{
    Error, LockingQueue, MultiNonBlockingLease, NonBlockingLease, Party, Queue, Semaphore,
    ShallowParty,
};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_grants_at_most_max_leases() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let a = Semaphore::new(&conn, "/sem", "a", 2);
    let b = Semaphore::new(&conn, "/sem", "b", 2);
    let c = Arc::new(Semaphore::new(&conn, "/sem", "c", 2));
    a.acquire().await.unwrap();
    assert!(b.try_acquire().await.unwrap());
    assert!(!c.try_acquire().await.unwrap(), "both leases are taken");
    let r = c.acquire_with(true, Some(Duration::from_millis(100))).await;
    assert!(matches!(r, Err(Error::LockTimeout(_))), "{r:?}");
    let mut holders = a.lease_holders().await.unwrap();
    holders.sort();
    assert_eq!(holders, vec!["a", "b"]);

    // A waiter gets the lease a holder gives back.
    let c2 = c.clone();
    let waiting = tokio::spawn(async move { c2.acquire().await });
    assert!(a.release().await.unwrap());
    bounded("c acquires", waiting).await.unwrap().unwrap();
    assert!(c.is_acquired());

    // A participant with another lease count is refused (kazoo's ValueError).
    let odd = Semaphore::new(&conn, "/sem", "odd", 3);
    assert!(matches!(
        odd.try_acquire().await,
        Err(Error::Inconsistent(_))
    ));
    let (data, _) = conn.client().unwrap().get_data("/sem").await.unwrap();
    assert_eq!(data, b"2");
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_hands_out_by_priority_then_order() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let q = Queue::new(&conn, "/queue");
    assert_eq!(q.get().await.unwrap(), None);
    q.put(b"first").await.unwrap();
    q.put(b"second").await.unwrap();
    q.put_with_priority(b"urgent", 1).await.unwrap();
    assert!(q.put_with_priority(b"x", 1000).await.is_err());
    assert_eq!(q.len().await.unwrap(), 3);
    let names = conn
        .client()
        .unwrap()
        .list_children("/queue")
        .await
        .unwrap();
    assert!(names.iter().all(|n| n.starts_with("entry-")), "{names:?}");

    // A second consumer shares the queue; every item is handed out once.
    let other = Queue::new(&conn, "/queue");
    assert_eq!(q.get().await.unwrap().as_deref(), Some(&b"urgent"[..]));
    assert_eq!(other.get().await.unwrap().as_deref(), Some(&b"first"[..]));
    assert_eq!(q.get().await.unwrap().as_deref(), Some(&b"second"[..]));
    assert_eq!(q.get().await.unwrap(), None);
    assert!(q.is_empty().await.unwrap());
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_queue_locks_consumes_and_returns_entries_of_lost_takers() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let taker_conn = connect(&server.connect_string()).await;
    let q = LockingQueue::new(&conn, "/lq");
    q.put_all(&[b"one", b"two"], 100).await.unwrap();
    assert_eq!(q.len().await.unwrap(), 2);

    let taker = LockingQueue::new(&taker_conn, "/lq");
    assert_eq!(taker.get(None).await.unwrap().as_deref(), Some(&b"one"[..]));
    assert!(taker.holds_lock().await.unwrap());
    // Asking again returns the same entry until it is consumed or released.
    assert_eq!(taker.get(None).await.unwrap().as_deref(), Some(&b"one"[..]));
    // Another taker skips the locked entry.
    assert_eq!(q.get(None).await.unwrap().as_deref(), Some(&b"two"[..]));
    assert!(q.consume().await.unwrap());
    assert_eq!(q.len().await.unwrap(), 1);

    // The taker of "one" loses its session: its lock goes, and "one" is handed out again.
    expire_session(&server.connect_string(), &taker_conn).await;
    assert!(!taker.holds_lock().await.unwrap());
    assert_eq!(
        q.get(Some(BOUND)).await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    assert!(q.release().await.unwrap());
    assert_eq!(q.get(None).await.unwrap().as_deref(), Some(&b"one"[..]));
    assert!(q.consume().await.unwrap());
    assert!(q.is_empty().await.unwrap());
    // Waiting on an empty queue ends with nothing when the time is up.
    assert_eq!(q.get(Some(Duration::from_millis(50))).await.unwrap(), None);
    // A waiting get takes an entry put later.
    let q = Arc::new(q);
    let q2 = q.clone();
    let waiting = tokio::spawn(async move { q2.get(None).await });
    LockingQueue::new(&conn, "/lq").put(b"late").await.unwrap();
    let got = bounded("waiting get", waiting).await.unwrap().unwrap();
    assert_eq!(got.as_deref(), Some(&b"late"[..]));
    conn.close();
    taker_conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_list_their_members() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let other = connect(&server.connect_string()).await;
    let a = Party::new(&conn, "/party", "alice");
    let b = Party::new(&other, "/party", "bob");
    a.join().await.unwrap();
    b.join().await.unwrap();
    a.join().await.unwrap();
    let mut members = a.members().await.unwrap();
    members.sort();
    assert_eq!(members, vec!["alice", "bob"]);
    assert_eq!(a.len().await.unwrap(), 2);

    // A member whose session is lost leaves the party.
    expire_session(&server.connect_string(), &other).await;
    assert_eq!(a.members().await.unwrap(), vec!["alice"]);
    assert!(a.leave().await.unwrap());
    assert!(!a.leave().await.unwrap());
    assert!(a.is_empty().await.unwrap());

    let s1 = ShallowParty::new(&conn, "/shallow", "host-1");
    let s2 = ShallowParty::new(&conn, "/shallow", "host-2");
    s1.join().await.unwrap();
    s2.join().await.unwrap();
    let mut members = s1.members().await.unwrap();
    members.sort();
    assert_eq!(members, vec!["host-1", "host-2"]);
    assert!(s1.create_path().ends_with("-host-1"));
    conn.close();
    other.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_exclusive_until_they_end_and_renewable_by_their_holder() {
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let hour = Duration::from_secs(3600);
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);

    assert!(
        NonBlockingLease::obtain_at(&conn, "/lease", hour, "a", t0)
            .await
            .unwrap()
            .obtained()
    );
    assert!(
        !NonBlockingLease::obtain_at(&conn, "/lease", hour, "b", t0)
            .await
            .unwrap()
            .obtained()
    );
    // The holder renews; someone else gets it only after it ends.
    let later = t0 + Duration::from_secs(1800);
    assert!(
        NonBlockingLease::obtain_at(&conn, "/lease", hour, "a", later)
            .await
            .unwrap()
            .obtained()
    );
    let past_first_end = t0 + Duration::from_secs(3601);
    assert!(
        !NonBlockingLease::obtain_at(&conn, "/lease", hour, "b", past_first_end)
            .await
            .unwrap()
            .obtained()
    );
    let past_renewal = later + Duration::from_secs(3601);
    assert!(
        NonBlockingLease::obtain_at(&conn, "/lease", hour, "b", past_renewal)
            .await
            .unwrap()
            .obtained()
    );
    let (data, _) = conn
        .client()
        .unwrap()
        .get_data("/lease/lease_holder")
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(data).unwrap(),
        r#"{"version": 1, "holder": "b", "end": "2023-11-15T00:43:21"}"#
    );

    // Two of the multi-lease's three slots go; the third claimant gets the last one.
    for (who, slot) in [("x", Some(0)), ("y", Some(1)), ("z", Some(2)), ("w", None)] {
        let m = MultiNonBlockingLease::obtain_at(&conn, 3, "/multi", hour, who, t0)
            .await
            .unwrap();
        assert_eq!(m.index(), slot, "{who}");
        assert_eq!(m.obtained(), slot.is_some());
    }
    conn.close();
    server.stop().await;
}
