//! ZooKeeper's wire protocol ("jute"), as spoken by clients of ZooKeeper 3.4 to 3.9.
//!
//! Layout:
//! - [`jute`]: the primitive codec. [`jute::Reader`] reads from a byte slice and never reads
//!   past it or allocates more than the bytes it was given can describe (every length is
//!   checked against what remains), so a hostile frame costs at most its own size.
//! - [`types`]: the numbers and small records every layer shares: [`Zxid`], [`SessionId`],
//!   [`Xid`], [`Stat`], [`Acl`], [`Id`], [`ErrorCode`], [`OpCode`], [`CreateMode`], watch
//!   enums and permission bits.
//! - `records`: every request and response record of `zookeeper.jute`.
//! - `request`: a decoded client request ([`request::Request`]) from a header and a body.
//! - `frame`: the 4-byte length prefix and its bound.
//!
//! Invariant: for every record `R`, `R::decode(R::encode(r)) == r`, and decoding consumes
//! exactly the bytes encoding produced.

pub mod jute;
pub mod types;

pub use jute::{DecodeError, Reader, Record, Writer};
pub use types::*;
