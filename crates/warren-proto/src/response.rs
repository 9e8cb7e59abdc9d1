//! Encoding of server replies: each function returns one complete frame (length prefix
//! included) in a single vector, ready for the connection's outbox.
//!
//! Twin of `ServerCnxn.sendResponse` (header, then the body record if there is one),
//! `MultiResponse` and `NIOServerCnxn.process` (notifications).

use crate::frame::{encode_frame, encode_frame_with_capacity};
use crate::jute::{DecodeError, Reader, Record, Writer};
use crate::records::{
    ConnectResponse, Create2Response, CreateResponse, ErrorResponse, GetChildrenResponse,
    GetDataResponse, MultiHeader, ReplyHeader, SetDataResponse, WatcherEvent,
};
use crate::types::{ErrorCode, OpCode, Stat, Xid, Zxid};

/// A reply frame: `header`, then `body` if given. Errors carry no body in ZooKeeper, so
/// pass `None` when `header.err` is not [`ErrorCode::Ok`] (or use [`encode_error`]).
pub fn encode_reply<R>(header: &ReplyHeader, body: Option<&R>) -> Vec<u8>
where
    R: Record,
{
    encode_frame(|w| {
        header.encode(w);
        if let Some(b) = body {
            b.encode(w);
        }
    })
}

/// Bytes of a frame's length prefix and reply header (xid, zxid, err).
const REPLY_HEADER_FRAME_BYTES: usize = 4 + 4 + 8 + 4;

/// Bytes of an encoded [`Stat`].
const STAT_BYTES: usize = 68;

/// A successful getData reply frame, the same bytes as [`encode_reply`] of a
/// [`GetDataResponse`], written from borrowed data into one exactly sized vector: the hot
/// read path neither copies the data into a response record nor grows the frame.
pub fn encode_get_data_reply(xid: Xid, zxid: Zxid, data: Option<&[u8]>, stat: &Stat) -> Vec<u8> {
    let capacity = REPLY_HEADER_FRAME_BYTES + 4 + data.map_or(0, <[u8]>::len) + STAT_BYTES;
    encode_frame_with_capacity(capacity, |w| {
        ReplyHeader::new(xid, zxid, ErrorCode::Ok).encode(w);
        match data {
            Some(d) => w.buffer(d),
            None => w.null_buffer(),
        };
        stat.encode(w);
    })
}

/// A reply frame with no body: errors, and the successes of delete, setWatches,
/// setWatches2, ping, auth, checkWatches, removeWatches and closeSession. (A successful
/// addWatch is answered with an `ErrorResponse { err: 0 }` body, as ZooKeeper does.)
pub fn encode_reply_header(header: &ReplyHeader) -> Vec<u8> {
    encode_frame(|w| header.encode(w))
}

/// An error reply: the header alone, with `err`.
pub fn encode_error(xid: Xid, zxid: Zxid, err: ErrorCode) -> Vec<u8> {
    encode_reply_header(&ReplyHeader::new(xid, zxid, err))
}

/// A watch notification frame: header `{xid -1, zxid, err 0}` then the event. ZooKeeper
/// 3.8 sends zxid -1; 3.9 sends the zxid of the change that fired the watch.
pub fn encode_notification(zxid: Zxid, event: &WatcherEvent) -> Vec<u8> {
    encode_reply(
        &ReplyHeader::new(Xid::NOTIFICATION, zxid, ErrorCode::Ok),
        Some(event),
    )
}

/// The handshake answer frame (no reply header). Its `read_only` must be `None` exactly when
/// the client's request had no readOnly byte.
pub fn encode_connect_response(response: &ConnectResponse) -> Vec<u8> {
    encode_frame(|w| response.encode(w))
}

/// One result of a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// create: the created path (type 1).
    Create {
        /// The created path.
        path: String,
    },
    /// create2, createContainer and createTTL: all answered with type 15, as ZooKeeper's
    /// `OpResult.CreateResult(path, stat)` does.
    Create2 {
        /// The created path.
        path: String,
        /// The new node's stat.
        stat: Stat,
    },
    /// delete (type 2, no body).
    Delete,
    /// setData (type 5).
    SetData {
        /// The node's new stat.
        stat: Stat,
    },
    /// check (type 13, no body).
    Check,
    /// getChildren in multiRead (type 8).
    GetChildren {
        /// Child names.
        children: Vec<String>,
    },
    /// getData in multiRead (type 4).
    GetData {
        /// The data (`None`: null, as ZooKeeper keeps it apart from empty).
        data: Option<Vec<u8>>,
        /// The node's stat.
        stat: Stat,
    },
    /// A failed op, or any op of a failed multi (type -1, header err and body both the
    /// code). In a failed multi, ops before the cause carry `Ok`, the cause its code, and
    /// later ops `RuntimeInconsistency`.
    Error(ErrorCode),
}

impl OpResult {
    fn header(&self) -> MultiHeader {
        let (kind, err) = match self {
            OpResult::Create { .. } => (OpCode::Create, 0),
            OpResult::Create2 { .. } => (OpCode::Create2, 0),
            OpResult::Delete => (OpCode::Delete, 0),
            OpResult::SetData { .. } => (OpCode::SetData, 0),
            OpResult::Check => (OpCode::Check, 0),
            OpResult::GetChildren { .. } => (OpCode::GetChildren, 0),
            OpResult::GetData { .. } => (OpCode::GetData, 0),
            OpResult::Error(e) => (OpCode::Error, e.code()),
        };
        MultiHeader {
            kind: kind.code(),
            done: false,
            err,
        }
    }

    fn encode(&self, w: &mut Writer) {
        self.header().encode(w);
        match self {
            OpResult::Create { path } => {
                w.ustring(path);
            }
            OpResult::Create2 { path, stat } => {
                w.ustring(path);
                stat.encode(w);
            }
            OpResult::Delete | OpResult::Check => {}
            OpResult::SetData { stat } => stat.encode(w),
            OpResult::GetChildren { children } => {
                w.string_vec(children);
            }
            OpResult::GetData { data, stat } => {
                match data {
                    Some(d) => w.buffer(d),
                    None => w.null_buffer(),
                };
                stat.encode(w);
            }
            OpResult::Error(e) => ErrorResponse { err: e.code() }.encode(w),
        }
    }

    fn decode(h: &MultiHeader, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bad = |field, value: i32| DecodeError::BadValue {
            field,
            value: i64::from(value),
        };
        let op = OpCode::from_code(h.kind).ok_or(bad("MultiHeader.type", h.kind))?;
        Ok(match op {
            OpCode::Create => OpResult::Create {
                path: CreateResponse::decode(r)?.path,
            },
            OpCode::Create2 => {
                let Create2Response { path, stat } = Create2Response::decode(r)?;
                OpResult::Create2 { path, stat }
            }
            OpCode::Delete => OpResult::Delete,
            OpCode::SetData => OpResult::SetData {
                stat: SetDataResponse::decode(r)?.stat,
            },
            OpCode::Check => OpResult::Check,
            OpCode::GetChildren => OpResult::GetChildren {
                children: GetChildrenResponse::decode(r)?.children,
            },
            OpCode::GetData => {
                let GetDataResponse { data, stat } = GetDataResponse::decode(r)?;
                OpResult::GetData { data, stat }
            }
            OpCode::Error => {
                let err = ErrorResponse::decode(r)?.err;
                OpResult::Error(ErrorCode::from_code(err).ok_or(bad("ErrorResponse.err", err))?)
            }
            _ => return Err(bad("MultiHeader.type", h.kind)),
        })
    }
}

/// The body of a multi or multiRead reply: one result per op, then `{-1, true, -1}`. The
/// reply header's err stays 0 even when the multi failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    /// One result per op, in request order.
    pub results: Vec<OpResult>,
}

impl MultiResponse {
    /// The reply of a failed multi: one [`OpResult::Error`] per op with ZooKeeper's codes.
    pub fn failed(codes: &[ErrorCode]) -> Self {
        MultiResponse {
            results: codes.iter().map(|c| OpResult::Error(*c)).collect(),
        }
    }
}

impl Record for MultiResponse {
    fn encode(&self, w: &mut Writer) {
        for res in &self.results {
            res.encode(w);
        }
        MultiHeader::DONE.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let h = MultiHeader::decode(r)?;
            if h.done {
                return Ok(MultiResponse { results });
            }
            results.push(OpResult::decode(&h, r)?);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_data_reply_is_the_record_encoding_in_one_exact_allocation() {
        let stat = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        for data in [None, Some(&b""[..]), Some(&[7u8; 100][..])] {
            let want = encode_reply(
                &ReplyHeader::new(Xid(42), Zxid(99), ErrorCode::Ok),
                Some(&GetDataResponse {
                    data: data.map(<[u8]>::to_vec),
                    stat,
                }),
            );
            let got = encode_get_data_reply(Xid(42), Zxid(99), data, &stat);
            assert_eq!(got, want, "data {data:?}");
            assert_eq!(got.capacity(), got.len(), "sized exactly for data {data:?}");
        }
    }
}
