//! Authentication schemes a client can add to its connection with `addauth`.
//!
//! Twin of ZooKeeper's `DigestAuthenticationProvider` and `IPAuthenticationProvider`. A
//! connection's identities are a list of [`Id`]s, always starting with `ip:<address>`; each
//! successful `digest` auth adds `digest:user:base64(sha1("user:password"))`, and a digest
//! equal to the configured super digest also adds `super:`, which passes every ACL check.

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use warren_proto::Id;

/// `user:base64(sha1("user:password"))` for `user:password`, as ZooKeeper's
/// `DigestAuthenticationProvider.generateDigest`. `None` when there is no `:`.
pub fn digest_id(user_password: &str) -> Option<String> {
    let (user, _) = user_password.split_once(':')?;
    let hash = Sha1::digest(user_password.as_bytes());
    Some(format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    ))
}

/// The outcome of an `auth` packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Add these ids to the connection.
    Added(Vec<Id>),
    /// The scheme is unknown or the credentials malformed: ZooKeeper answers AuthFailed and
    /// closes the connection.
    Failed,
}

/// Evaluates an `auth` packet of `scheme` with `auth` bytes.
///
/// `super_digest` is `zookeeper.DigestAuthenticationProvider.superDigest`
/// (`super:<base64 sha1>`), if configured.
pub fn authenticate(scheme: &str, auth: &[u8], super_digest: Option<&str>) -> AuthOutcome {
    match scheme {
        "digest" => {
            let Ok(text) = std::str::from_utf8(auth) else {
                return AuthOutcome::Failed;
            };
            let Some(id) = digest_id(text) else {
                return AuthOutcome::Failed;
            };
            let mut ids = Vec::with_capacity(2);
            if super_digest == Some(id.as_str()) {
                ids.push(Id::new("super", ""));
            }
            ids.push(Id::new("digest", id));
            AuthOutcome::Added(ids)
        }
        // ZooKeeper's `ip` provider ignores the bytes and authenticates the peer address,
        // which every connection already carries; adding nothing is equivalent.
        "ip" => AuthOutcome::Added(Vec::new()),
        _ => AuthOutcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeepers_generate_digest() {
        // Known value: `java DigestAuthenticationProvider super:test` prints
        // super:test -> super:D/InIHSb7yEEbrWz8b9l71RjZJU=
        assert_eq!(
            digest_id("super:test").unwrap(),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
        assert_eq!(digest_id("nocolon"), None);
    }

    #[test]
    fn the_super_digest_adds_super() {
        let out = authenticate(
            "digest",
            b"super:test",
            Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="),
        );
        let AuthOutcome::Added(ids) = out else {
            panic!("expected success")
        };
        assert_eq!(ids[0], Id::new("super", ""));
        assert_eq!(authenticate("kerberos", b"x", None), AuthOutcome::Failed);
    }
}
