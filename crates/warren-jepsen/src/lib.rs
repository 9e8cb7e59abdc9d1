//! warren-jepsen: warren's cluster under faults, checked from recorded client histories.
//!
//! Layout, from the pure part to the part that touches the machine:
//!
//! - [`history`]: ops as Jepsen records them (process = ZooKeeper session, invoke and
//!   complete times on one monotonic clock, outcome ok / fail / info = unknown).
//! - One checker per property, each a pure function of a history and, where needed, the
//!   final tree ([`dump`]), answering a [`verdict::Verdict`] (pass, fail with the
//!   violations, or unknown when it cannot decide):
//!   - [`acked`] (a): every acknowledged write is present at the end;
//!   - [`register`] over [`wgl`] (b): each register znode's history is linearizable
//!     (Wing & Gong with Lowe's just-in-time linearization and a memo of (linearized set,
//!     state)), bounded in states and time;
//!   - [`zxids`] (c): the zxids each session sees never go back;
//!   - [`ephemerals`] (d): ephemerals of closed and expired sessions are gone, those of live
//!     sessions are there;
//!   - [`converge`] (e): every server's tree (read after `sync`), zxid and digests agree.
//! - [`client`]: a raw session on warren-proto frames that reports whether a request left
//!   (unknown vs failed) and every reply zxid, and resumes its session across servers.
//! - [`workload`]: register, counter, unique-id and ephemeral workers.
//! - [`net`]: one network namespace per server behind a bridge, partitions as iptables
//!   rules inside those namespaces; [`cluster`]: `warren server` processes inside them.
//! - [`nemesis`]: the seeded fault plan (kill, pause, client isolation, partition, leader
//!   isolation) and its execution; [`run`]: one whole run and its report.
//!
//! Invariants: every wait and loop is bounded; every process, namespace and rule a run
//! creates is removed by `Drop` (servers by pid, namespaces by name, rules with their
//! namespace); a seed fixes the fault plan and every worker's choices.
//!
//! A run flows: hosts and servers up → setup znodes → workers + nemesis → heal → recovery
//! load → quiet (two session timeouts) → final tree through every server → probes and final
//! register reads → convergence reads (and, with one server, a kill -9 and restart) →
//! checks → report → cleanup.

mod cmd;

pub mod acked;
pub mod client;
pub mod cluster;
pub mod converge;
pub mod dump;
pub mod ephemerals;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod register;
pub mod rng;
pub mod run;
pub mod verdict;
pub mod wgl;
pub mod workload;
pub mod zxids;
