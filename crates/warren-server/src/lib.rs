//! warren's server: everything between the socket and the replicated state machine.
//!
//! See `docs/ARCHITECTURE.md` for the flow of a request. Modules:
//! - [`watch`]: the watch registry (ZooKeeper's two `WatchManager`s).
//! - [`expiry`]: session deadlines in tick buckets, run by the leader.
//! - [`config`], [`limits`]: zoo.cfg, flags, and every bound in one place.
//! - [`fourlw`]: four-letter words.

pub mod config;
pub mod expiry;
pub mod fourlw;
pub mod limits;
pub mod watch;
