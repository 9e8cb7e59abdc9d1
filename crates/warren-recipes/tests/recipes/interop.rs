//! Rust and kazoo (Python) participants sharing one recipe on the same paths.

use std::sync::Arc;

use std::time::Duration;

use warren_recipes::{
    Counter, Election, Lock, LockingQueue, NonBlockingLease, Party, Queue, Semaphore, ShallowParty,
};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_lock_and_rust_lock_exclude_each_other_in_queue_order() {
    let Some(python) = kazoo_python() else { return };
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let mut py = Kazoo::spawn(
        &python,
        &server.connect_string(),
        r#"
lock = zk.Lock("/interop/lock", "python")
lock.acquire()
say("acquired")
wait("release")
lock.release()
say("released")
wait("again")
say("contenders " + ",".join(lock.contenders()))
got = lock.acquire(timeout=30)
say("reacquired" if got else "failed")
lock.release()
"#,
    );
    py.expect("acquired").await;

    // kazoo holds the lock: Rust cannot take it, and queues behind it.
    let rust = Arc::new(Lock::new(&conn, "/interop/lock", "rust"));
    assert!(!rust.try_acquire().await.unwrap());
    let r = rust.clone();
    let waiting = tokio::spawn(async move { r.acquire().await });
    eventually("rust queued", || async {
        rust.contenders().await.unwrap() == ["python", "rust"]
    })
    .await;
    py.send("release").await;
    py.expect("released").await;
    bounded("rust acquires", waiting).await.unwrap().unwrap();

    // Now Rust holds it: kazoo sees Rust first and must wait for it.
    py.send("again").await;
    py.expect("contenders rust").await;
    eventually("python queued", || async {
        rust.contenders().await.unwrap() == ["rust", "python"]
    })
    .await;
    rust.release().await.unwrap();
    py.expect("reacquired").await;
    py.finish().await;
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_and_rust_contenders_share_one_election() {
    let Some(python) = kazoo_python() else { return };
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let rust = Arc::new(Election::new(&conn, "/interop/election", "rust-worker"));
    let (step_tx, step_rx) = tokio::sync::oneshot::channel::<()>();
    let e = rust.clone();
    let run = tokio::spawn(async move {
        e.run(async move {
            let _ = step_rx.await;
        })
        .await
    });
    eventually("rust leads", || async { rust.is_leader() }).await;

    let mut py = Kazoo::spawn(
        &python,
        &server.connect_string(),
        r#"
election = zk.Election("/interop/election", "python-worker")
say("contenders " + ",".join(election.contenders()))
def lead():
    say("leading " + ",".join(election.contenders()))
    wait("step down")
election.run(lead)
say("done")
"#,
    );
    py.expect("contenders rust-worker").await;
    eventually("python queued", || async {
        rust.contenders().await.unwrap() == ["rust-worker", "python-worker"]
    })
    .await;

    // Rust steps down; kazoo's contender leads next.
    step_tx.send(()).unwrap();
    bounded("rust run", run).await.unwrap().unwrap();
    py.expect("leading python-worker").await;
    assert_eq!(rust.contenders().await.unwrap(), vec!["python-worker"]);
    py.send("step down").await;
    py.expect("done").await;
    py.finish().await;
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_and_rust_add_to_one_counter() {
    let Some(python) = kazoo_python() else { return };
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let mut py = Kazoo::spawn(
        &python,
        &server.connect_string(),
        r#"
ints = zk.Counter("/interop/counter")
floats = zk.Counter("/interop/fcounter", default=0.5)
curator = zk.Counter("/interop/ccounter", support_curator=True)
say("ready")
wait("go")
for _ in range(50):
    ints += 1
floats += 1.25
curator += 7
say("done")
wait("read")
say("%r %r %r" % (ints.value, floats.value, curator.value))
"#,
    );
    py.expect("ready").await;
    let ints = Arc::new(Counter::new(&conn, "/interop/counter", 0i64));
    let floats = Counter::new(&conn, "/interop/fcounter", 0.5f64);
    let curator = Counter::curator(&conn, "/interop/ccounter", 0i64).unwrap();

    // Both sides add at once; every add counts.
    py.send("go").await;
    for _ in 0..50 {
        ints.add(2).await.unwrap();
    }
    py.expect("done").await;
    assert_eq!(ints.value().await.unwrap(), 150);
    assert_eq!(floats.value().await.unwrap(), 1.75);
    assert_eq!(curator.value().await.unwrap(), 7);

    // And kazoo reads what Rust wrote.
    floats.add(0.25).await.unwrap();
    curator.sub(2).await.unwrap();
    py.send("read").await;
    py.expect("150 2.0 5").await;
    py.finish().await;
    conn.close();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_and_rust_share_queues_parties_semaphores_and_leases() {
    let Some(python) = kazoo_python() else { return };
    let server = TestServer::start().await;
    let conn = connect(&server.connect_string()).await;
    let mut py = Kazoo::spawn(
        &python,
        &server.connect_string(),
        r#"
import datetime
q = zk.Queue("/interop/queue")
q.put(b"py-low", priority=200)
q.put(b"py-high", priority=5)
lq = zk.LockingQueue("/interop/lq")
lq.put(b"py-entry")
party = zk.Party("/interop/party", "python")
party.join()
shallow = zk.ShallowParty("/interop/shallow", "python")
shallow.join()
sem = zk.Semaphore("/interop/sem", "python", max_leases=1)
sem.acquire()
lease = zk.NonBlockingLease("/interop/lease", datetime.timedelta(hours=1), identifier="python")
say("ready %s" % bool(lease))
wait("check")
say("queue " + q.get().decode())
say("lq " + lq.get(timeout=30).decode())
lq.consume()
say("party " + ",".join(sorted(party)))
say("shallow " + ",".join(sorted(shallow)))
sem.release()
wait("sem")
say("sem " + ",".join(sem.lease_holders()))
"#,
    );
    py.expect("ready True").await;

    // Rust reads what kazoo wrote, in kazoo's order, and writes what kazoo reads.
    let q = Queue::new(&conn, "/interop/queue");
    assert_eq!(q.get().await.unwrap().as_deref(), Some(&b"py-high"[..]));
    q.put_with_priority(b"rust-mid", 100).await.unwrap();
    let lq = LockingQueue::new(&conn, "/interop/lq");
    assert_eq!(
        lq.get(None).await.unwrap().as_deref(),
        Some(&b"py-entry"[..])
    );
    lq.consume().await.unwrap();
    lq.put(b"rust-entry").await.unwrap();
    let party = Party::new(&conn, "/interop/party", "rust");
    party.join().await.unwrap();
    let shallow = ShallowParty::new(&conn, "/interop/shallow", "rust");
    shallow.join().await.unwrap();
    let mut members = party.members().await.unwrap();
    members.sort();
    assert_eq!(members, vec!["python", "rust"]);
    let sem = Semaphore::new(&conn, "/interop/sem", "rust", 1);
    assert!(
        !sem.try_acquire().await.unwrap(),
        "kazoo holds the only lease"
    );
    let lease = NonBlockingLease::obtain(&conn, "/interop/lease", Duration::from_secs(60), "rust")
        .await
        .unwrap();
    assert!(!lease.obtained(), "kazoo holds the lease");

    py.send("check").await;
    py.expect("queue rust-mid").await;
    py.expect("lq rust-entry").await;
    py.expect("party python,rust").await;
    py.expect("shallow python,rust").await;
    // kazoo gave its lease back: Rust takes it, and kazoo sees Rust holding it.
    bounded("semaphore", sem.acquire()).await.unwrap();
    py.send("sem").await;
    py.expect("sem rust").await;
    py.finish().await;
    conn.close();
    server.stop().await;
}
