//! ACL checks and the ACL table. Twin of `ZooKeeperServer.checkACL`,
//! `PrepRequestProcessor.fixupACL`, the `ip` and `digest` providers and
//! `ReferenceCountedACLCache`.
//!
//! Providers: `ip` and `digest` as on a default ZooKeeper server, plus `world:anyone` and the
//! `super` bypass, plus `sasl` (`SASLAuthenticationProvider`) and `x509`
//! (`X509AuthenticationProvider`), which ZooKeeper registers only when `authProvider.N` names
//! them. Deviations: `sasl` and `x509` are always registered, because the tree is replicated
//! and cannot depend on one server's configuration (a ZooKeeper server without those
//! providers answers InvalidACL instead); `x509` accepts any id where ZooKeeper parses it as
//! an X.500 name; `ip` ACLs accept IPv6 (`addr/bits`) as ZooKeeper 3.9.4 does; 3.8 knew IPv4
//! only.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv6Addr;

use warren_proto::{Acl, ErrorCode, Id};

/// Whether the `auth` ids grant `perm` on a node with `acl` (`ZooKeeperServer.checkACL`).
///
/// An empty ACL grants everything; an id with scheme `super` passes every check.
pub fn check(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
    if acl.is_empty() || auth.iter().any(|a| a.scheme == "super") {
        return true;
    }
    acl.iter().filter(|a| a.perms & perm != 0).any(|a| {
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return true;
        }
        auth.iter()
            .any(|who| who.scheme == a.id.scheme && matches(&a.id.scheme, &who.id, &a.id.id))
    })
}

/// `fixupACL`: removes duplicates, rejects an empty list and ids no provider accepts, and
/// expands `auth` entries to the caller's authenticated ids (InvalidACL if there are none).
pub fn fixup(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        if a.id.scheme == "world" && a.id.id == "anyone" {
            out.push(a.clone());
        } else if a.id.scheme == "auth" {
            let before = out.len();
            for who in auth
                .iter()
                .filter(|who| is_authenticated_scheme(&who.scheme))
            {
                out.push(Acl {
                    perms: a.perms,
                    id: who.clone(),
                });
            }
            if out.len() == before {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if is_valid(&a.id.scheme, &a.id.id) {
            out.push(a.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

/// Providers whose ids `auth` ACLs expand to (`isAuthenticated()`): `digest`, `sasl` and
/// `x509` (`ip` is not "authenticated"; `super` has no provider).
fn is_authenticated_scheme(scheme: &str) -> bool {
    matches!(scheme, "digest" | "sasl" | "x509")
}

fn is_valid(scheme: &str, id: &str) -> bool {
    match scheme {
        "digest" => java_split_len(id, ':') == 2,
        "ip" => parse_ip_acl(id).is_some(),
        "sasl" => is_kerberos_name(id),
        "x509" => true,
        _ => false,
    }
}

/// `new KerberosName(id)` succeeds: a name without `@`, or `primary[/instance]@REALM`.
fn is_kerberos_name(id: &str) -> bool {
    let Some((principal, realm)) = id.split_once('@') else {
        return true;
    };
    !realm.contains(['@', '/']) && principal.split('/').count() <= 2
}

fn matches(scheme: &str, who: &str, acl_id: &str) -> bool {
    match scheme {
        "digest" | "x509" => who == acl_id,
        // SASLAuthenticationProvider: the SASL user `super` matches every sasl ACL.
        "sasl" => who == acl_id || who == "super",
        "ip" => ip_matches(who, acl_id),
        _ => false,
    }
}

/// The number of parts Java's `String.split` returns (trailing empty strings dropped).
fn java_split_len(s: &str, sep: char) -> usize {
    if s.is_empty() {
        return 1;
    }
    let parts: Vec<&str> = s.split(sep).collect();
    let trailing_empty = parts.iter().rev().take_while(|p| p.is_empty()).count();
    parts.len() - trailing_empty
}

/// Parses `addr[/bits]` into address bytes and a prefix length.
fn parse_ip_acl(expr: &str) -> Option<(Vec<u8>, usize)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let bytes = addr_bytes(addr)?;
    let max = bytes.len() * 8;
    let bits = match bits {
        None => max,
        Some(b) => usize::try_from(b.parse::<i32>().ok()?)
            .ok()
            .filter(|&b| b <= max)?,
    };
    Some((bytes, bits))
}

/// IPv4 as `IPAuthenticationProvider.v4addr2Bytes` (four decimal parts 0..=255), else IPv6.
fn addr_bytes(addr: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() == 4 {
        let mut out = Vec::with_capacity(4);
        for p in parts {
            let v: i32 = p.parse().ok()?;
            out.push(u8::try_from(v).ok()?);
        }
        return Some(out);
    }
    if addr.contains(':') {
        return addr.parse::<Ipv6Addr>().ok().map(|a| a.octets().to_vec());
    }
    None
}

fn mask(b: &mut [u8], bits: usize) {
    for (i, byte) in b.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i * 8).min(8);
        *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
}

fn ip_matches(who: &str, acl_expr: &str) -> bool {
    let Some((mut acl_addr, bits)) = parse_ip_acl(acl_expr) else {
        return false;
    };
    let Some(mut remote) = addr_bytes(who) else {
        return false;
    };
    if remote.len() != acl_addr.len() {
        return false;
    }
    mask(&mut acl_addr, bits);
    mask(&mut remote, bits);
    remote == acl_addr
}

/// The interned ACL lists of the tree, each with the number of nodes using it
/// (`ReferenceCountedACLCache`). Nodes hold a `u32` index instead of their own list.
///
/// Index assignment is deterministic (the lowest free slot), trailing free slots are dropped,
/// and snapshots keep the slots as they are, so replicas agree on every index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AclTable {
    slots: Vec<Option<(Vec<Acl>, u64)>>,
    index: HashMap<Vec<Acl>, u32>,
    free: BTreeSet<u32>,
}

impl AclTable {
    /// The index of `acl`, allocating a slot with no users if it is new. The caller must
    /// give the index to a node (`add_ref`) before anything else can free it.
    pub(crate) fn intern(&mut self, acl: &[Acl]) -> u32 {
        if let Some(&i) = self.index.get(acl) {
            return i;
        }
        let i = match self.free.pop_first() {
            Some(i) => i,
            None => u32::try_from(self.slots.len()).expect("fewer than 2^32 distinct ACL lists"),
        };
        let slot = Some((acl.to_vec(), 0));
        if (i as usize) == self.slots.len() {
            self.slots.push(slot);
        } else {
            self.slots[i as usize] = slot;
        }
        self.index.insert(acl.to_vec(), i);
        i
    }

    /// The list at `i`.
    pub(crate) fn get(&self, i: u32) -> &[Acl] {
        match self.slots.get(i as usize) {
            Some(Some((acl, _))) => acl,
            _ => panic!("ACL index {i} is in use by a node, so its slot is filled"),
        }
    }

    pub(crate) fn add_ref(&mut self, i: u32) {
        match self.slots.get_mut(i as usize) {
            Some(Some((_, n))) => *n += 1,
            _ => panic!("ACL index {i} was interned before use"),
        }
    }

    pub(crate) fn release(&mut self, i: u32) {
        let Some(Some((acl, n))) = self.slots.get_mut(i as usize) else {
            panic!("ACL index {i} is in use by the node releasing it");
        };
        *n -= 1;
        if *n > 0 {
            return;
        }
        let acl = std::mem::take(acl);
        self.index.remove(&acl);
        self.slots[i as usize] = None;
        self.free.insert(i);
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
            let last = u32::try_from(self.slots.len()).expect("slot count fits u32");
            self.free.remove(&last);
        }
    }

    /// Every slot in index order (`None` for a free slot), for snapshots.
    pub(crate) fn slots(&self) -> impl Iterator<Item = Option<&[Acl]>> {
        self.slots
            .iter()
            .map(|s| s.as_ref().map(|(a, _)| a.as_slice()))
    }

    /// Rebuilds a table from snapshot slots; reference counts start at 0 and are re-added
    /// as nodes load.
    pub(crate) fn from_slots(slots: Vec<Option<Vec<Acl>>>) -> Self {
        let mut t = AclTable::default();
        for (i, s) in slots.into_iter().enumerate() {
            let i32_ = u32::try_from(i).expect("fewer than 2^32 ACL slots");
            match s {
                Some(acl) => {
                    t.index.insert(acl.clone(), i32_);
                    t.slots.push(Some((acl, 0)));
                }
                None => {
                    t.free.insert(i32_);
                    t.slots.push(None);
                }
            }
        }
        t
    }

    /// Slots that no node uses (only possible right after `from_slots`).
    pub(crate) fn unused(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Some((_, 0))))
            .count()
    }

    /// Number of distinct ACL lists in use.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_proto::perms;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }

    #[test]
    fn ip_acls_match_by_prefix_v4_and_v6() {
        assert!(ip_matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_matches("11.1.2.3", "10.0.0.0/8"));
        assert!(ip_matches("10.1.2.3", "10.1.2.3"));
        assert!(!ip_matches("10.1.2.4", "10.1.2.3"));
        assert!(ip_matches("10.1.2.3", "10.1.2.0/30"));
        assert!(!ip_matches("10.1.2.4", "10.1.2.0/30"));
        assert!(ip_matches("1.2.3.4", "0.0.0.0/0"));
        assert!(ip_matches("0:0:0:0:0:0:0:1", "::1"));
        assert!(ip_matches("2001:db8::5", "2001:db8::/32"));
        assert!(!ip_matches("2001:db9::5", "2001:db8::/32"));
        assert!(!ip_matches("10.1.2.3", "::/0"));
        assert!(parse_ip_acl("10.0.0.0/33").is_none());
        assert!(parse_ip_acl("10.0.0/8").is_none());
        assert!(parse_ip_acl("300.0.0.1").is_none());
    }

    #[test]
    fn fixup_rules() {
        let digest = Id::new("digest", "u:h");
        assert_eq!(fixup(&[], &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fixup(&[acl(31, "auth", "")], &[Id::new("ip", "1.2.3.4")]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[acl(31, "auth", "")], std::slice::from_ref(&digest)),
            Ok(vec![Acl {
                perms: 31,
                id: digest.clone()
            }])
        );
        assert_eq!(
            fixup(&[acl(1, "digest", "nouser")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[acl(1, "digest", "a:b:")], &[]),
            Ok(vec![acl(1, "digest", "a:b:")])
        );
        assert_eq!(
            fixup(&[acl(1, "world", "someone")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[acl(1, "super", "x")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        let dup = [acl(1, "ip", "1.2.3.4"), acl(1, "ip", "1.2.3.4")];
        assert_eq!(fixup(&dup, &[]).unwrap().len(), 1);
    }

    #[test]
    fn check_rules() {
        let a = [
            acl(perms::READ, "digest", "u:h"),
            acl(perms::WRITE, "ip", "10.0.0.0/8"),
        ];
        assert!(check(&a, perms::READ, &[Id::new("digest", "u:h")]));
        assert!(!check(&a, perms::WRITE, &[Id::new("digest", "u:h")]));
        assert!(check(&a, perms::WRITE, &[Id::new("ip", "10.9.9.9")]));
        assert!(!check(&a, perms::ADMIN, &[Id::new("ip", "10.9.9.9")]));
        assert!(check(&a, perms::ADMIN, &[Id::new("super", "")]));
        assert!(check(&[], perms::ADMIN, &[]));
    }

    #[test]
    fn sasl_and_x509_providers() {
        let a = [
            acl(perms::READ, "sasl", "bob"),
            acl(perms::WRITE, "x509", "CN=c"),
        ];
        assert!(check(&a, perms::READ, &[Id::new("sasl", "bob")]));
        assert!(check(&a, perms::READ, &[Id::new("sasl", "super")]));
        assert!(!check(&a, perms::READ, &[Id::new("sasl", "alice")]));
        assert!(check(&a, perms::WRITE, &[Id::new("x509", "CN=c")]));
        assert!(!check(&a, perms::WRITE, &[Id::new("x509", "CN=d")]));
        assert_eq!(fixup(&a, &[]), Ok(a.to_vec()));
        assert!(fixup(&[acl(1, "sasl", "a@b@c")], &[]).is_err());
        assert!(fixup(&[acl(1, "sasl", "zk/host@REALM")], &[]).is_ok());
        let expanded = fixup(&[acl(31, "auth", "")], &[Id::new("sasl", "bob")]);
        assert_eq!(expanded, Ok(vec![acl(31, "sasl", "bob")]));
    }

    #[test]
    fn table_reuses_lowest_slot_and_trims() {
        let mut t = AclTable::default();
        let x = t.intern(&Acl::open_unsafe());
        t.add_ref(x);
        let y = t.intern(&[acl(1, "ip", "1.1.1.1")]);
        t.add_ref(y);
        assert_eq!((x, y), (0, 1));
        t.release(y);
        assert_eq!(t.slots().count(), 1);
        t.release(x);
        assert_eq!(t.slots().count(), 0);
        assert_eq!(t, AclTable::default());
    }
}
