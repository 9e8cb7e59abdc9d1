//! Every demo against a real (in-process warren) server, participants as processes of this
//! crate's `warren-demo` binary. One test binary for all, so the server is linked once.

mod common;

mod election;
mod lottery;
mod philosophers;
mod rudp;
mod two_pc;
