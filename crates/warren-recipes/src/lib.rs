//! kazoo's recipes in Rust, on the [`zookeeper_client`] crate, with kazoo's node names so
//! Rust and Python (kazoo 2.11) participants share one lock, election, counter, queue or
//! party on the same paths.
//!
//! # Layout
//!
//! | module | what | kazoo twin |
//! |---|---|---|
//! | [`connection`] | [`Connection`]: states `Connected`/`Suspended`/`Lost`, listeners, a fresh session after a loss | `KazooClient` states |
//! | [`retry`] | [`RetryPolicy`]: max tries, delay, backoff, max delay, jitter, deadline | `kazoo.retry.KazooRetry` |
//! | [`lock`] | [`Lock`] (fair, `contenders`), [`ReadLock`], [`WriteLock`] | `recipe/lock.py` |
//! | [`semaphore`] | [`Semaphore`] | `recipe/lock.py` |
//! | [`election`] | [`Election`] (run, contenders, cancel) | `recipe/election.py` |
//! | [`barrier`] | [`Barrier`], [`DoubleBarrier`] | `recipe/barrier.py` |
//! | [`counter`] | [`Counter`] (ASCII `repr` or Curator's int) | `recipe/counter.py` |
//! | [`queue`] | [`Queue`], [`LockingQueue`] | `recipe/queue.py` |
//! | [`party`] | [`Party`], [`ShallowParty`] | `recipe/party.py` |
//! | [`lease`] | [`NonBlockingLease`], [`MultiNonBlockingLease`] | `recipe/lease.py` |
//! | [`watchers`] | [`DataWatch`], [`ChildrenWatch`] (re-arm themselves) | `recipe/watchers.py` |
//! | [`tree_cache`] | [`TreeCache`] on a persistent recursive watch | `recipe/cache.py` |
//!
//! # How a recipe call flows
//!
//! A recipe asks its [`Connection`] for the current session's client on every attempt,
//! runs one attempt of kazoo's algorithm with it, and retries the attempt from the top
//! under a [`RetryPolicy`] when it fails with `ConnectionLoss`, a client timeout,
//! `SessionExpired` (the connection makes a fresh session) or a forced retry. Blocking
//! recipes wait on one-shot watches of a single node (no herd), and wake also on every
//! connection state change and on cancellation, then look again.
//!
//! # Invariants
//!
//! - **Same nodes as kazoo.** Every node a recipe makes has kazoo's name, mode and data
//!   (table below); a recipe only counts nodes matching kazoo's patterns, so other
//!   children are left alone, as kazoo leaves them.
//! - **Ephemeral means session-bound.** A lock, lease, semaphore slot, party membership or
//!   barrier entry lives in one session's ephemeral node. When that session is lost the
//!   recipe reports it ([`LockStatus::Lost`], [`ConnState::Lost`]) and never claims to
//!   still hold it; retried acquires start over in the fresh session.
//! - **Watches survive reconnects.** One-shot watches are re-sent by the client after a
//!   reconnect; persistent watches are *not* (`zookeeper-client` 0.11.2 sends only the
//!   first three watch lists in `SetWatches`), so [`TreeCache`] re-adds its persistent
//!   watch after every reconnect and re-reads the tree to catch what it missed.
//! - No recipe holds a client across a session loss, and every task a recipe spawns ends
//!   when its handle is dropped or its connection closed.
//!
//! # kazoo node-name compatibility
//!
//! | recipe | nodes under the recipe path (`P`) | data |
//! |---|---|---|
//! | Lock, Election, WriteLock | `P/<uuid4 hex>__lock__<seq10>`, ephemeral sequential | identifier |
//! | ReadLock | `P/<uuid4 hex>__rlock__<seq10>`, ephemeral sequential | identifier |
//! | Semaphore | `P` (data: max leases), `P/<uuid4 hex>` ephemeral; its lock at `P-__lock__` | identifier |
//! | Barrier | `P` exists while the barrier is up | |
//! | DoubleBarrier | `P/<uuid4 hex>` ephemeral, `P/ready` | identifier |
//! | Counter | `P` | `repr(value)` ASCII, or big-endian `i32` (Curator) |
//! | Queue | `P/entry-<prio3>-<seq10>`, persistent sequential | item |
//! | LockingQueue | `P/entries/entry-<prio3>-<seq10>`; `P/taken/<entry name>` ephemeral | item; taker id |
//! | Party | `P/<uuid4 hex>__party__`, ephemeral | identifier |
//! | ShallowParty | `P/<uuid4 hex>-<identifier>`, ephemeral | |
//! | NonBlockingLease | a Lock at `P`; `P/lease_holder` | JSON `{"version": 1, "holder": .., "end": "%Y-%m-%dT%H:%M:%S"}` (UTC) |
//! | MultiNonBlockingLease | NonBlockingLease at `P/0` .. `P/<count-1>` | |
//! | DataWatch, ChildrenWatch, TreeCache | (read only; TreeCache creates `P` if missing) | |
//!
//! `<seq10>` is ZooKeeper's ten-digit sequence suffix; `<prio3>` a three-digit priority.

pub mod barrier;
pub mod connection;
pub mod counter;
pub mod election;
pub mod error;
pub mod lease;
pub mod lock;
pub mod party;
pub mod path;
pub mod queue;
pub mod retry;
pub mod semaphore;
pub mod tree_cache;
pub mod watchers;

pub use barrier::{Barrier, DoubleBarrier};
pub use connection::{ConnState, ConnectOptions, Connection, ListenerId, Status};
pub use counter::{Change, Counter, CounterValue};
pub use election::Election;
pub use error::{Error, Result};
pub use lease::{MultiNonBlockingLease, NonBlockingLease};
pub use lock::{Lock, LockStatus, ReadLock, WriteLock};
pub use party::{BaseParty, Party, ShallowParty};
pub use queue::{LockingQueue, Queue};
pub use retry::RetryPolicy;
pub use semaphore::Semaphore;
pub use tree_cache::{TreeCache, TreeEvent, TreeEventKind};
pub use watchers::{ChildrenWatch, DataWatch, NodeData};

/// The client crate the recipes run on, re-exported so users name the same types.
pub use zookeeper_client;
