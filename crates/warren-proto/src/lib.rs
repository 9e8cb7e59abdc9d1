//! ZooKeeper's wire protocol ("jute"), as spoken by clients of ZooKeeper 3.4 to 3.9.
//!
//! Layout:
//! - [`jute`]: the primitive codec. [`jute::Reader`] reads from a byte slice and never reads
//!   past it or allocates more than the bytes it was given can describe (every length is
//!   checked against what remains), so a hostile frame costs at most a small multiple of its
//!   own size. Strings decode leniently, as Java does ([`jute::decode_string_lossy`]).
//! - [`types`]: the numbers and small records every layer shares: [`Zxid`], [`SessionId`],
//!   [`Xid`], [`Stat`], [`Acl`], [`Id`], [`ErrorCode`], [`OpCode`], [`CreateMode`], watch
//!   enums and permission bits.
//! - [`records`]: every request and response record of `zookeeper.jute` that crosses the
//!   client connection.
//! - [`request`]: a decoded client request ([`Request`]) from a header and a body.
//! - [`response`]: reply, multi-reply, notification and handshake frames.
//! - [`frame`]: the 4-byte length prefix, its bound, and four-letter-word detection.
//! - [`fuzz`]: fuzz targets as plain functions, replayed by a stable test.
//!
//! How a connection flows through this crate (the server owns the socket and the bound):
//! 1. The first 4 bytes: [`frame::four_letter_word`], else a length for
//!    [`frame::check_frame_len`]; the frame is a [`ConnectRequest`], answered with
//!    [`response::encode_connect_response`].
//! 2. Every later frame: [`request::decode_frame`] (or [`RequestHeader`] then
//!    [`request::decode_request`]), answered with [`response::encode_reply`] and friends;
//!    watch events go out with [`response::encode_notification`].
//!
//! Invariant: for every record `R`, `R::decode(R::encode(r)) == r`, and decoding consumes
//! exactly the bytes encoding produced. Decoding never panics on any input.

pub mod frame;
pub mod fuzz;
pub mod jute;
pub mod records;
pub mod request;
pub mod response;
pub mod types;

pub use frame::{FourLetterWord, FrameError, PACKET_BYTES_MAX_DEFAULT};
pub use jute::{DecodeError, Reader, Record, Writer};
pub use records::*;
pub use request::{MultiOp, ReadOp, Request, decode_connect, decode_frame, decode_request};
pub use response::{MultiResponse, OpResult};
pub use types::*;
