//! The recipes against a real (in-process warren) server, and against kazoo participants.
//! One test binary for all, so the server is linked once.

mod common;

mod barrier;
mod connection;
mod counter;
mod election;
mod interop;
mod lock;
mod more;
mod tree_cache;
mod watchers;
