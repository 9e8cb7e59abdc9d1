//! Hand-written, versioned binary encodings of what warren-raft puts on disk: log entries,
//! the meta blob (vote, committed, purged) and snapshot metadata.
//!
//! All integers are little-endian. Framing and checksums belong to warren-storage (every
//! record it stores carries a CRC32C), so these encodings only need to be unambiguous and
//! versioned. A decode failure is a [`DecodeError`], which the callers treat as corruption.
//!
//! Entry, format 1:
//! ```text
//! u8 version=1 | u8 kind (0 blank, 1 normal, 2 membership) | u64 term | u64 index | body
//! body: blank: nothing; normal: the payload bytes to the end;
//!       membership: u32 #configs { u32 #ids { u64 id } } u32 #nodes { u64 id, u32 len, addr }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use openraft::vote::RaftLeaderId;

use crate::types::{
    Entry, EntryPayload, LeaderId, LogId, Membership, Payload, PeerNode, SnapshotMeta,
    StoredMembership, Vote, log_id,
};

const ENTRY_VERSION: u8 = 1;
const META_VERSION: u8 = 1;
const SNAPSHOT_META_VERSION: u8 = 1;

const KIND_BLANK: u8 = 0;
const KIND_NORMAL: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;

/// Bytes that do not decode as what they claim to be.
#[derive(Debug, thiserror::Error)]
#[error("undecodable {what}: {reason}")]
pub struct DecodeError {
    what: &'static str,
    reason: String,
}

impl DecodeError {
    pub(crate) fn new(what: &'static str, reason: impl Into<String>) -> Self {
        DecodeError {
            what,
            reason: reason.into(),
        }
    }
}

/// A bounded little-endian reader over a byte slice.
pub(crate) struct Reader<'a> {
    what: &'static str,
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(what: &'static str, buf: &'a [u8]) -> Self {
        Reader { what, buf }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::new(
                self.what,
                format!("needed {n} bytes, {} left", self.buf.len()),
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A count that must fit in what is left, `min_item` bytes an item, so a corrupt count
    /// cannot make us allocate gigabytes.
    pub(crate) fn count(&mut self, min_item: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item) > self.buf.len() {
            return Err(DecodeError::new(
                self.what,
                format!("count {n} exceeds the bytes left"),
            ));
        }
        Ok(n)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::new(
                self.what,
                format!("{} trailing bytes", self.buf.len()),
            ))
        }
    }

    fn version(&mut self, supported: u8) -> Result<(), DecodeError> {
        let v = self.u8()?;
        if v != supported {
            return Err(DecodeError::new(
                self.what,
                format!("unknown format version {v}"),
            ));
        }
        Ok(())
    }

    /// A vote as [`put_vote`] writes it.
    pub(crate) fn vote(&mut self) -> Result<Vote, DecodeError> {
        let term = self.u64()?;
        let node = self.u64()?;
        let committed = self.flag()?;
        Ok(Vote {
            leader_id: LeaderId::new(term, node),
            committed,
        })
    }

    /// A boolean byte: 0 or 1, nothing else.
    pub(crate) fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::new(self.what, format!("bad flag byte {b}"))),
        }
    }

    /// `u32` length, then that many bytes.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.count(1)?;
        self.take(n)
    }

    /// `u32` length, then that many bytes of UTF-8.
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|e| DecodeError::new(self.what, e.to_string()))
    }

    pub(crate) fn opt_log_id(&mut self) -> Result<Option<LogId>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => {
                let term = self.u64()?;
                let index = self.u64()?;
                Ok(Some(log_id(term, index)))
            }
            t => Err(DecodeError::new(self.what, format!("bad option tag {t}"))),
        }
    }
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_len(out: &mut Vec<u8>, n: usize) {
    let n = u32::try_from(n).expect("a list, address or payload shorter than 4 GiB");
    put_u32(out, n);
}

/// A vote: `u64 term | u64 voted-for node | u8 committed`.
pub(crate) fn put_vote(out: &mut Vec<u8>, v: &Vote) {
    put_u64(out, v.leader_id.term());
    put_u64(out, *v.leader_id.node_id());
    out.push(u8::from(v.committed));
}

/// `u32` length, then the bytes.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

pub(crate) fn put_opt_log_id(out: &mut Vec<u8>, id: Option<&LogId>) {
    match id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            put_u64(out, id.leader_id.term);
            put_u64(out, id.index);
        }
    }
}

/// Encodes one log entry.
pub(crate) fn encode_entry(entry: &Entry) -> Vec<u8> {
    let body_hint = match &entry.payload {
        EntryPayload::Normal(p) => p.0.len(),
        _ => 64,
    };
    let mut out = Vec::with_capacity(18 + body_hint);
    out.push(ENTRY_VERSION);
    let kind = match &entry.payload {
        EntryPayload::Blank => KIND_BLANK,
        EntryPayload::Normal(_) => KIND_NORMAL,
        EntryPayload::Membership(_) => KIND_MEMBERSHIP,
    };
    out.push(kind);
    put_u64(&mut out, entry.log_id.leader_id.term);
    put_u64(&mut out, entry.log_id.index);
    match &entry.payload {
        EntryPayload::Blank => {}
        EntryPayload::Normal(p) => out.extend_from_slice(&p.0),
        EntryPayload::Membership(m) => encode_membership(&mut out, m),
    }
    out
}

/// Decodes one log entry.
pub(crate) fn decode_entry(buf: &[u8]) -> Result<Entry, DecodeError> {
    let mut r = Reader::new("log entry", buf);
    r.version(ENTRY_VERSION)?;
    let kind = r.u8()?;
    let term = r.u64()?;
    let index = r.u64()?;
    let payload = match kind {
        KIND_BLANK => EntryPayload::Blank,
        KIND_NORMAL => EntryPayload::Normal(Payload(Bytes::copy_from_slice(r.rest()))),
        KIND_MEMBERSHIP => EntryPayload::Membership(decode_membership(&mut r)?),
        k => return Err(DecodeError::new("log entry", format!("unknown kind {k}"))),
    };
    r.finish()?;
    Ok(Entry {
        log_id: log_id(term, index),
        payload,
    })
}

fn encode_membership(out: &mut Vec<u8>, m: &Membership) {
    let configs = m.get_joint_config();
    put_len(out, configs.len());
    for config in configs {
        put_len(out, config.len());
        for id in config {
            put_u64(out, *id);
        }
    }
    let nodes: Vec<(&u64, &PeerNode)> = m.nodes().collect();
    put_len(out, nodes.len());
    for (id, node) in nodes {
        put_u64(out, *id);
        put_len(out, node.addr.len());
        out.extend_from_slice(node.addr.as_bytes());
    }
}

fn decode_membership(r: &mut Reader<'_>) -> Result<Membership, DecodeError> {
    let n_configs = r.count(4)?;
    let mut configs = Vec::with_capacity(n_configs);
    for _ in 0..n_configs {
        let n_ids = r.count(8)?;
        let mut ids = BTreeSet::new();
        for _ in 0..n_ids {
            ids.insert(r.u64()?);
        }
        configs.push(ids);
    }
    let n_nodes = r.count(12)?;
    let mut nodes = BTreeMap::new();
    for _ in 0..n_nodes {
        let id = r.u64()?;
        let len = r.count(1)?;
        let addr = std::str::from_utf8(r.take(len)?)
            .map_err(|e| DecodeError::new("membership", e.to_string()))?
            .to_string();
        nodes.insert(id, PeerNode { addr });
    }
    Membership::new(configs, nodes).map_err(|e| DecodeError::new("membership", e.to_string()))
}

/// What warren-raft keeps in the small meta blob: Raft's hard state besides the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HardState {
    /// The last vote saved, if any.
    pub(crate) vote: Option<Vote>,
    /// The last committed log id this node knew of (saved lazily: a hint, never ahead of the
    /// truth, because a log id is committed only after its entry is durable on a quorum).
    pub(crate) committed: Option<LogId>,
    /// The last log id removed from the front of the log.
    pub(crate) purged: Option<LogId>,
}

/// Encodes the meta blob.
pub(crate) fn encode_hard_state(h: &HardState) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(META_VERSION);
    match &h.vote {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put_vote(&mut out, v);
        }
    }
    put_opt_log_id(&mut out, h.committed.as_ref());
    put_opt_log_id(&mut out, h.purged.as_ref());
    out
}

/// Decodes the meta blob.
pub(crate) fn decode_hard_state(buf: &[u8]) -> Result<HardState, DecodeError> {
    let mut r = Reader::new("meta", buf);
    r.version(META_VERSION)?;
    let vote = match r.u8()? {
        0 => None,
        1 => Some(r.vote()?),
        t => return Err(DecodeError::new("meta", format!("bad vote tag {t}"))),
    };
    let committed = r.opt_log_id()?;
    let purged = r.opt_log_id()?;
    r.finish()?;
    Ok(HardState {
        vote,
        committed,
        purged,
    })
}

/// Encodes snapshot metadata: the last applied log id and the membership as of it.
pub(crate) fn encode_snapshot_meta(meta: &SnapshotMeta) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(SNAPSHOT_META_VERSION);
    put_opt_log_id(&mut out, meta.last_log_id.as_ref());
    put_opt_log_id(&mut out, meta.last_membership.log_id().as_ref());
    encode_membership(&mut out, meta.last_membership.membership());
    out
}

/// Decodes snapshot metadata.
pub(crate) fn decode_snapshot_meta(buf: &[u8]) -> Result<SnapshotMeta, DecodeError> {
    let mut r = Reader::new("snapshot meta", buf);
    r.version(SNAPSHOT_META_VERSION)?;
    let last_log_id = r.opt_log_id()?;
    let membership_log_id = r.opt_log_id()?;
    let membership = decode_membership(&mut r)?;
    r.finish()?;
    Ok(SnapshotMeta {
        last_log_id,
        last_membership: StoredMembership::new(membership_log_id, membership),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership() -> Membership {
        let mut nodes = BTreeMap::new();
        nodes.insert(1, PeerNode { addr: "a:1".into() });
        nodes.insert(2, PeerNode { addr: "b:2".into() });
        nodes.insert(3, PeerNode { addr: "c:3".into() });
        Membership::new(vec![BTreeSet::from([1, 2])], nodes).unwrap()
    }

    #[test]
    fn entries_round_trip() {
        let entries = [
            Entry {
                log_id: log_id(3, 7),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(3, 8),
                payload: EntryPayload::Normal(Payload(Bytes::from_static(b"hello"))),
            },
            Entry {
                log_id: log_id(4, 9),
                payload: EntryPayload::Normal(Payload(Bytes::new())),
            },
            Entry {
                log_id: log_id(5, 10),
                payload: EntryPayload::Membership(membership()),
            },
        ];
        for e in entries {
            let bytes = encode_entry(&e);
            assert_eq!(decode_entry(&bytes).unwrap(), e);
        }
    }

    #[test]
    fn hard_state_round_trips() {
        let h = HardState {
            vote: Some(Vote {
                leader_id: LeaderId::new(9, 2),
                committed: true,
            }),
            committed: Some(log_id(9, 100)),
            purged: None,
        };
        assert_eq!(decode_hard_state(&encode_hard_state(&h)).unwrap(), h);
        let empty = HardState::default();
        assert_eq!(
            decode_hard_state(&encode_hard_state(&empty)).unwrap(),
            empty
        );
    }

    #[test]
    fn snapshot_meta_round_trips() {
        let meta = SnapshotMeta {
            last_log_id: Some(log_id(2, 50)),
            last_membership: StoredMembership::new(Some(log_id(1, 1)), membership()),
        };
        let back = decode_snapshot_meta(&encode_snapshot_meta(&meta)).unwrap();
        assert_eq!(back.last_log_id, meta.last_log_id);
        assert_eq!(back.last_membership, meta.last_membership);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        // Why: a corrupt record must surface as an error the node stops on, never a panic
        // or a huge allocation.
        let e = Entry {
            log_id: log_id(5, 10),
            payload: EntryPayload::Membership(membership()),
        };
        let bytes = encode_entry(&e);
        for cut in 0..bytes.len() {
            assert!(
                decode_entry(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
        let mut huge = bytes.clone();
        huge[18..22].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_entry(&huge).is_err());
        assert!(decode_hard_state(&[9]).is_err());
    }
}
