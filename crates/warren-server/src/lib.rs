//! warren's server: everything between the socket and the replicated state machine.
//!
//! See `docs/ARCHITECTURE.md` for the flow of a request. Modules:
//! - [`server`]: start-up, listener, leader tickers (expiry, container/TTL sweep), shutdown.
//! - [`connection`]: one client connection: handshake, request loop, writer task.
//! - [`conn`]: a connection's outbox and FIFO queue of pending requests.
//! - [`requests`]: what each request does (reads, write ops, reply frames).
//! - [`core`]: shared state and the apply path (the sequencing point for events and replies).
//! - [`watch`]: the watch registry (ZooKeeper's two `WatchManager`s).
//! - [`reconfig`]: reconfig requests into log ops; the leader making Raft follow them.
//! - [`quorum`]: whether the server is in touch with a quorum; read-only mode.
//! - [`expiry`]: session deadlines in tick buckets, run by the leader.
//! - [`auth`]: digest and ip identities.
//! - [`sasl`]: SASL DIGEST-MD5 (opcode 102) with users from a JAAS file.
//! - [`tls`]: the TLS client port (`secureClientPort`) and `x509` identities.
//! - [`config`], [`limits`]: zoo.cfg, flags, and every bound in one place.
//! - [`fourlw`], [`stats`]: four-letter words.

pub mod auth;
pub mod config;
pub mod conn;
pub mod connection;
pub mod core;
pub mod expiry;
pub mod fourlw;
pub mod limits;
pub mod quorum;
pub mod reconfig;
pub mod requests;
pub mod sasl;
pub mod server;
pub mod stats;
pub mod tls;
pub mod tls_v1;
pub mod watch;
