//! The rolling digest of the tree. Twin of ZooKeeper's `DigestCalculator` idea (a sum of
//! per-node hashes, updated by subtracting a node's old hash and adding its new one), with
//! our own hash: 64 bits, and two parts per node so that a change to a parent's stat does
//! not rehash the parent's data.
//!
//! Digest version 1 (never change it in place; snapshots store the digest):
//! `node_hash = content(path, data, acl) + meta(path, stat)`, `digest = Σ node_hash` (wrapping).
//! `meta` covers czxid, mzxid, pzxid, ctime, mtime, version, stored cversion, aversion and the
//! stored ephemeralOwner; numChildren is derived and left out. Unlike ZooKeeper, `/zookeeper`
//! is included.

use warren_proto::Acl;

use crate::node::Node;

/// A small deterministic 64-bit hasher (fixed constants; no per-process seed).
struct Hasher64 {
    h: u64,
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

impl Hasher64 {
    fn new(seed: u64) -> Self {
        Hasher64 { h: seed ^ K2 }
    }

    fn word(&mut self, w: u64) {
        self.h = (self.h ^ w.wrapping_mul(K1))
            .rotate_left(29)
            .wrapping_mul(K2);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.word(b.len() as u64);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.word(u64::from_le_bytes(a));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut a = [0u8; 8];
            a[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(a));
        }
    }

    fn finish(self) -> u64 {
        // murmur3's fmix64.
        let mut h = self.h;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Hash of a node's path, data and ACL.
pub(crate) fn content(path: &[u8], data: Option<&[u8]>, acl: &[Acl]) -> u64 {
    let mut h = Hasher64::new(1);
    h.bytes(path);
    // Null data hashes apart from empty data.
    h.word(u64::from(data.is_none()));
    h.bytes(data.unwrap_or_default());
    h.word(acl.len() as u64);
    for a in acl {
        h.word(a.perms as u32 as u64);
        h.bytes(a.id.scheme.as_bytes());
        h.bytes(a.id.id.as_bytes());
    }
    h.finish()
}

/// Hash of a node's path and persisted stat.
pub(crate) fn meta(n: &Node) -> u64 {
    let mut h = Hasher64::new(2);
    h.bytes(n.path_bytes());
    for w in [
        n.czxid(),
        n.mzxid(),
        n.pzxid(),
        n.ctime(),
        n.mtime(),
        n.ephemeral_owner(),
    ] {
        h.word(w as u64);
    }
    for w in [n.version(), n.cversion(), n.aversion()] {
        h.word(w as u32 as u64);
    }
    h.finish()
}
