//! warren's server: everything between the socket and the replicated state machine.
//!
//! See `docs/ARCHITECTURE.md` for the flow of a request. Modules:
//! - [`watch`]: the watch registry (ZooKeeper's two `WatchManager`s).
//! - [`expiry`]: session deadlines in tick buckets, run by the leader.

pub mod expiry;
pub mod watch;
